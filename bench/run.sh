#!/bin/bash
# The benchmark in one command: builds presbridge and the load tools (Release,
# -O2, in build-bench), then measures presbridge, Kamailio (xmpp module) and a
# plain TCP relay (the floor) on loopback with the same load and the same XMPP
# sink, and prints one table of medians.
#
#   bench/run.sh [--quick] [--runs N] [--msgs N] [--pres N] [--pres-subs N]
#                [--lat-rate R] [--lat-n N] [--subs "A B"] [--window W]
#                [--no-kamailio] [--keep] [--build-dir DIR]
#
# The bridge (and Kamailio, every process of it) is pinned to CPU 0, the load
# tools to CPU 1 (with one CPU: no pinning, and the table says so). Each figure
# is the median of --runs runs (default 3); RSS is measured once, restart
# --runs times over the same state.
# --quick: tiny sizes, one run (CI: it only proves the code paths still work).
# Kamailio needs Debian's kamailio and kamailio-xmpp-modules; its xmpp.so is
# copied and patched (see kam_xmpp_so) because 5.6.3 crashes on the first
# stanza it reads. Needs: cmake, gcc, libssl-dev, taskset, ss; kamailio optional.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bdir=build-bench
runs=3 msgs=200000 pres=100000 pres_subs=1000 lat_rate=10000 lat_n=50000
subs="10000 100000" window=500 kamailio=1 keep=0 quick=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 runs=1 msgs=3000 pres=2000 pres_subs=100 lat_rate=2000 lat_n=2000
		subs="200 1000" ;;
	--runs) runs=$2; shift ;;
	--msgs) msgs=$2; shift ;;
	--pres) pres=$2; shift ;;
	--pres-subs) pres_subs=$2; shift ;;
	--lat-rate) lat_rate=$2; shift ;;
	--lat-n) lat_n=$2; shift ;;
	--subs) subs=$2; shift ;;
	--window) window=$2; shift ;;
	--no-kamailio) kamailio=0 ;;
	--keep) keep=1 ;;
	--build-dir) bdir=$2; shift ;;
	*) echo "bench: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
	esac
	shift
done

log() { echo "bench: $*" >&2; }

# ---- packages: one command on a fresh machine (CI's --quick run has the test
# lists, which carry kamailio-xmpp-modules, installed already) ----
if [ "$quick" = 0 ]; then
	"$top/scripts/deps.sh" bench >&2 || {
		log "could not install the packages of scripts/packages-{build,demo,bench}.txt"
		exit 1
	}
fi

# ---- build ----
log "building presbridge and bench/ (Release, -O2) in $bdir"
cmake -S "$top" -B "$top/$bdir" -DCMAKE_BUILD_TYPE=Release \
	"-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG" -DPB_WERROR=ON -DPB_TESTS=OFF \
	-DPB_BENCH=ON >/dev/null || exit 1
cmake --build "$top/$bdir" -j "$(nproc)" >/dev/null || exit 1
B=$top/$bdir
LG=$B/bench/loadgen SINK=$B/bench/xmppsink RELAY=$B/bench/relay PB=$B/presbridge

W=$(mktemp -d /tmp/pbbench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$keep" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

ncpu=$(nproc)
if [ "$ncpu" -ge 2 ]; then
	ON_BRIDGE="taskset -c 0" ON_TOOLS="taskset -c 1"
	pinning="bridge on CPU 0, load tools on CPU 1"
else
	ON_BRIDGE="" ON_TOOLS=""
	pinning="one CPU: no pinning, tools share it"
fi

used_ports=" "
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		case $used_ports in *" $p "*) continue ;; esac
		ss -Htan "sport = :$p" 2>/dev/null | grep -q . && continue
		used_ports="$used_ports$p "
		echo "$p"
		return
	done
}

SIP_PORT=$(free_port) PEER_PORT=$(free_port) XMPP_PORT=$(free_port) CTL_PORT=$(free_port)
RELAY_PORT=$(free_port) KAM_PORT=$(free_port)

# ticks (1/CLK_TCK s) of user+system CPU of a process and its children processes
cpu_ticks() {
	local sum=0 p f
	for p in $1 $(ps -o pid= --ppid "$1" 2>/dev/null); do
		f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		f=${f##*) }
		set -- $f
		sum=$((sum + ${12} + ${13}))
	done
	echo "$sum"
}
CLK_TCK=$(getconf CLK_TCK)

kv() { sed -nE "s/.*(^| )$1=([^ ]*).*/\2/p" <<<"$2"; }

sink_cmd() { # sink_cmd LINE: one command to xmppsink's control port, its answer
	local ans
	exec 9<>"/dev/tcp/127.0.0.1/$CTL_PORT" || return 1
	echo "$1" >&9
	read -r -t 5 ans <&9
	exec 9>&-
	echo "$ans"
}

wait_up() { # wait until a component link is up at the sink
	local i
	for i in $(seq 1 200); do
		[[ $(sink_cmd stats) == *up=1* ]] && return 0
		sleep 0.05
	done
	return 1
}

start_sink() {
	$ON_TOOLS "$SINK" -p "$XMPP_PORT" -c "$CTL_PORT" -s bench-secret 2>"$W/sink.log" &
	SINK_PID=$!
	pids+=("$SINK_PID")
	local i
	for i in $(seq 1 100); do
		sink_cmd stats >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	log "xmppsink did not start"
	return 1
}

stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# ---- presbridge ----
write_conf() {
	cat >"$W/pb.ini" <<EOF
[bridge]
state = state/presbridge.db
mappings = $top/mappings
log_level = warn
max_subscriptions = 0
max_subscriptions_per_user = 0

[sip]
listen = tcp:127.0.0.1:$SIP_PORT

[xmpp]
server = 127.0.0.1:$XMPP_PORT
secret = bench-secret
tls = off

[peer lync]
host = lync.sip.test
address = 127.0.0.1:$PEER_PORT
transport = tcp
domains = sip.test
trusted = yes
im = page
EOF
}

start_bridge() { # fresh state unless $1 = keep
	[ "${1:-}" = keep ] || rm -rf "$W/state"
	$ON_BRIDGE "$PB" -c "$W/pb.ini" 2>>"$W/presbridge.log" &
	PB_PID=$!
	pids+=("$PB_PID")
	wait_up || { log "presbridge's XMPP link did not come up (see $W/presbridge.log)"; return 1; }
}

lg() { $ON_TOOLS "$LG" "$@" 2>>"$W/loadgen.log"; }

# One result line per figure and middlebox: "<figure> <box> <value>"
R=$W/results
note() { echo "$1 $2 $3" >>"$R"; }

# The figures every middlebox with a message path gives: rates, latency, CPU.
measure_msgs() { # measure_msgs BOX TARGET_PORT PID
	local box=$1 port=$2 pid=$3 out t0 t1
	t0=$(cpu_ticks "$pid")
	out=$(lg msg --target "$port" --ctl "$CTL_PORT" -n "$msgs" -w "$window" -u 1000)
	t1=$(cpu_ticks "$pid")
	note msg_s2x "$box" "$(kv rate "$out")"
	[ -n "$(kv rate "$out")" ] && note cpu_100k "$box" \
		"$(awk -v d=$((t1 - t0)) -v n="$msgs" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", d/hz*100000/n}')"
	out=$(lg x2s --listen "$PEER_PORT" --ctl "$CTL_PORT" -n "$msgs" -w "$window" -u 1000)
	note msg_x2s "$box" "$(kv rate "$out")"
	out=$(lg msg --target "$port" --ctl "$CTL_PORT" -n "$lat_n" -w 100000 -r "$lat_rate" -u 1000)
	note lat_p50 "$box" "$(kv p50_us "$out")"
	note lat_p99 "$box" "$(kv p99_us "$out")"
	note lat_p999 "$box" "$(kv p999_us "$out")"
}

run_presbridge() {
	start_bridge || return 1
	measure_msgs presbridge "$SIP_PORT" "$PB_PID"
	local out
	out=$(lg notify --listen "$PEER_PORT" --ctl "$CTL_PORT" -s "$pres_subs" -n "$pres" -w "$window")
	note pres_s2x presbridge "$(kv rate "$out")"
	out=$(lg sub --target "$SIP_PORT" --listen "$PEER_PORT" --ctl "$CTL_PORT" -s "$pres_subs" \
		-n "$pres" -w "$window")
	note pres_x2s presbridge "$(kv rate "$out")"
	stop "$PB_PID"
}

run_floor() {
	$ON_BRIDGE "$RELAY" "$RELAY_PORT" "$PEER_PORT" &
	local rp=$! out t0 t1
	pids+=("$rp")
	sleep 0.1
	t0=$(cpu_ticks "$rp")
	out=$(lg msg --target "$RELAY_PORT" --listen "$PEER_PORT" -n "$msgs" -w "$window" -u 1000)
	t1=$(cpu_ticks "$rp")
	note msg_s2x floor "$(kv rate "$out")"
	note msg_x2s floor "$(kv rate "$out")"
	note cpu_100k floor \
		"$(awk -v d=$((t1 - t0)) -v n="$msgs" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", d/hz*100000/n}')"
	out=$(lg msg --pidf --target "$RELAY_PORT" --listen "$PEER_PORT" -n "$pres" -w "$window" -u 1000)
	note pres_s2x floor "$(kv rate "$out")"
	note pres_x2s floor "$(kv rate "$out")"
	out=$(lg msg --target "$RELAY_PORT" --listen "$PEER_PORT" -n "$lat_n" -w 100000 -r "$lat_rate")
	note lat_p50 floor "$(kv p50_us "$out")"
	note lat_p99 floor "$(kv p99_us "$out")"
	note lat_p999 floor "$(kv p999_us "$out")"
	stop "$rp"
}

# ---- Kamailio ----
# Debian 12's xmpp.so (5.6.3) dereferences the NULL that ends expat's attribute
# list (_xode_put_expatattribs: `*(atts[i]) != '\0'`, kamailio issue #4154) and
# crashes on the server's first stanza. A private copy is fixed where it loads
# atts[i] and compares the byte it points to: `cmpb $0x0,(%rsi)` (80 3e 00)
# becomes `test %rsi,%rsi` (48 85 f6), the same length, so the loop ends at the
# NULL. The places are found by disassembly, not by fixed offsets.
kam_xmpp_so() {
	local src=/usr/lib/x86_64-linux-gnu/kamailio/modules/xmpp.so dst=$W/kam/xmpp.so
	local text_addr text_off offs o
	cp "$src" "$dst" || return 1
	read -r text_addr text_off < <(LC_ALL=C readelf -SW "$src" |
		awk '$2==".text"{print $4, $5} $3==".text"{print $5, $6}' | head -1)
	offs=$(objdump -d "$src" | awk '
		/cmpb   \$0x0,\(%rsi\)/ && prev ~ /mov +(0x0)?\(%r(bx|bp)(,%r[a-z0-9]+,8)?\),%rsi/ {
			sub(":", "", $1); print $1 }
		{ prev = $0 }')
	[ -n "$offs" ] || return 1
	for o in $offs; do
		o=$((0x$o - 0x$text_addr + 0x$text_off))
		printf '\x48\x85\xf6' | dd of="$dst" bs=1 seek="$o" conv=notrunc status=none
	done
	KAM_PATCHED=$(wc -w <<<"$offs")
}

run_kamailio() {
	KAM_WHY=
	if ! command -v kamailio >/dev/null ||
		[ ! -f /usr/lib/x86_64-linux-gnu/kamailio/modules/xmpp.so ]; then
		KAM_WHY="kamailio or kamailio-xmpp-modules not installed"
		return 1
	fi
	mkdir -p "$W/kam"
	kam_xmpp_so || { KAM_WHY="could not patch a copy of xmpp.so (objdump/readelf?)"; return 1; }
	cat >"$W/kam/kamailio.cfg" <<EOF
#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children=1
tcp_children=1
auto_aliases=no
listen=tcp:127.0.0.1:$KAM_PORT
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "$W/kam/xmpp.so"
modparam("xmpp", "backend", "component")
modparam("xmpp", "xmpp_domain", "sip.test")
modparam("xmpp", "xmpp_host", "127.0.0.1")
modparam("xmpp", "xmpp_port", $XMPP_PORT)
modparam("xmpp", "xmpp_password", "bench-secret")
modparam("xmpp", "gwmap", "sip.test=sip.test;xmpp.test=xmpp.test")
modparam("xmpp", "outbound_proxy", "sip:127.0.0.1:$PEER_PORT;transport=tcp")
request_route {
	if (is_method("MESSAGE")) {
		if (xmpp_send_message()) { sl_send_reply("200", "Accepted"); }
		else { sl_send_reply("500", "xmpp failed"); }
		exit;
	}
	if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
	sl_send_reply("501", "Not Implemented");
}
EOF
	# 1 GiB of shared memory: tm keeps every finished transaction for its
	# wait_timer (5 s), 100,000 and more at these rates; 256 MiB ran out.
	$ON_BRIDGE kamailio -f "$W/kam/kamailio.cfg" -DD -E -w "$W/kam" -Y "$W/kam" \
		-m 1024 -M 32 >"$W/kamailio.log" 2>&1 &
	KAM_PID=$!
	pids+=("$KAM_PID")
	if ! wait_up; then
		KAM_WHY="Kamailio's xmpp component did not connect (see kamailio.log)"
		stop "$KAM_PID"
		return 1
	fi
	measure_msgs kamailio "$KAM_PORT" "$KAM_PID"
	stop "$KAM_PID"
}

# ---- memory and restart (presbridge) ----
run_memory() {
	local prev=0 n out rss0=
	start_bridge || return 1
	for n in $subs; do
		out=$(lg sub --target "$SIP_PORT" --listen "$PEER_PORT" --ctl "$CTL_PORT" \
			-s $((n - prev)) --first "$prev" -n 0 -w "$window" --pid "$PB_PID" --timeout 600)
		[ -n "$rss0" ] || rss0=$(kv rss0_kb "$out")
		local rss1
		rss1=$(kv rss1_kb "$out")
		[ -n "$rss1" ] && [ -n "$rss0" ] &&
			note "rss_$n" presbridge "$(((rss1 - rss0) * 1024 / n))"
		prev=$n
	done
	# Restart with every subscription persisted: kill -9, then time from exec
	# to the first answered OPTIONS, with the peer up (it answers the NOTIFYs
	# the resumed watchers get).
	# Killed and restarted --runs times over the same state file: the median.
	local pid=$PB_PID i sp
	$ON_TOOLS "$LG" serve --listen "$PEER_PORT" --timeout 600 >/dev/null 2>>"$W/loadgen.log" &
	sp=$!
	pids+=("$sp")
	for i in $(seq 1 "$runs"); do
		kill -9 "$pid"
		wait "$pid" 2>/dev/null # our child the first time only
		while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
		out=$($ON_TOOLS "$LG" startup --target "$SIP_PORT" --timeout 120 -- $ON_BRIDGE "$PB" \
			-c "$W/pb.ini" 2>>"$W/presbridge.log")
		note restart presbridge "$(kv startup_ms "$out")"
		pid=$(kv pid "$out")
		pids+=("$pid")
		sleep 1 # let it settle before the next kill
	done
	{
		kill -9 "$pid" "$sp"
		wait "$sp"
	} 2>/dev/null
	RESTART_SUBS=$prev
}

write_conf
start_sink || exit 1
for r in $(seq 1 "$runs"); do
	log "run $r of $runs: presbridge"
	run_presbridge || log "presbridge run failed (see $W/presbridge.log, $W/loadgen.log)"
	log "run $r of $runs: floor (TCP relay)"
	run_floor
	if [ "$kamailio" = 1 ]; then
		log "run $r of $runs: Kamailio"
		run_kamailio || log "Kamailio: ${KAM_WHY:-failed}"
	fi
done
log "memory and restart"
run_memory || log "memory run failed (see $W/presbridge.log, $W/loadgen.log)"

# ---- the table ----
median() { # median FIGURE BOX
	awk -v f="$1" -v b="$2" '$1==f && $2==b && $3!="" {v[n++]=$3}
		END { if (!n) { print "n/a"; exit }
		      for (i=0;i<n;i++) for (j=i+1;j<n;j++) if (v[j]+0<v[i]+0) {t=v[i];v[i]=v[j];v[j]=t}
		      print (n%2 ? v[int(n/2)] : (v[n/2-1]+v[n/2])/2) }' "$R" 2>/dev/null
}
ratio() { # ratio A B HIGHER_IS_BETTER
	awk -v a="$1" -v b="$2" -v h="$3" 'BEGIN{ if (a=="n/a"||b=="n/a"||a+0==0||b+0==0) {print "n/a"; exit}
		printf "%.2f", h ? a/b : b/a }'
}
kam_na=${KAM_WHY:-}
[ "$kamailio" = 1 ] || kam_na="skipped (--no-kamailio)"
echo
echo "presbridge benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $ncpu CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $pinning"
echo "medians of $runs run(s); messages $msgs, presence updates $pres over $pres_subs subscriptions, latency at $lat_rate/s ($lat_n messages), TCP, window $window"
echo
printf '%-34s %12s %12s %12s %10s %10s\n' figure presbridge kamailio floor pb/kam pb/floor
printf '%-34s %12s %12s %12s %10s %10s\n' ---------------------------------- ------------ ------------ ------------ ---------- ----------
missing=0
row() { # row LABEL FIGURE HIGHER_IS_BETTER
	local p k f
	p=$(median "$2" presbridge) k=$(median "$2" kamailio) f=$(median "$2" floor)
	[ "$p" != n/a ] || missing=$((missing + 1))
	printf '%-34s %12s %12s %12s %10s %10s\n' "$1" "$p" "$k" "$f" "$(ratio "$p" "$k" "$3")" \
		"$(ratio "$p" "$f" "$3")"
}
row "MESSAGE SIP->XMPP /s" msg_s2x 1
row "MESSAGE XMPP->SIP /s" msg_x2s 1
row "NOTIFY->presence /s" pres_s2x 1
row "presence->NOTIFY /s" pres_x2s 1
row "latency p50 us @${lat_rate}/s" lat_p50 0
row "latency p99 us @${lat_rate}/s" lat_p99 0
row "latency p99.9 us @${lat_rate}/s" lat_p999 0
row "CPU s per 100k MESSAGE" cpu_100k 0
for n in $subs; do
	row "RSS bytes per subscription @$n" "rss_$n" 0
done
row "restart ms, ${RESTART_SUBS:-?} subscriptions" restart 0
echo
echo "notes:"
echo "- floor: a plain TCP relay (bench/relay.c) between the load generator and itself: the same"
echo "  SIP request and its 200 relayed, no parsing; its XMPP->SIP and presence rows reuse that path."
echo "- latency: end to end, SIP send to stanza received at the sink (floor: to the request"
echo "  received back); the bridge's added latency is its figure minus the floor's."
if [ -n "$kam_na" ]; then
	echo "- kamailio n/a: $kam_na"
else
	echo "- kamailio: 5.6.3 from Debian with a private copy of xmpp.so patched in ${KAM_PATCHED:-?} places"
	echo "  (cmpb \$0,(%rsi) -> test %rsi,%rsi: kamailio issue #4154), pinned with all its processes."
fi
echo "- kamailio presence rows n/a: pua_xmpp needs Kamailio's presence server, pua and a"
echo "  database between SIP and XMPP; not set up by this script. RSS and restart: n/a (no"
echo "  comparable persisted subscription table in the xmpp module)."
echo "- floor RSS/restart: n/a (a relay keeps no state)."
if [ "$missing" -gt 0 ]; then
	echo "bench: $missing presbridge figure(s) missing: see the logs (--keep keeps $W)" >&2
	exit 1
fi
