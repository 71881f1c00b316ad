#!/bin/bash
# The benchmark in one command: builds presbridge and the load tools (Release,
# -O2, in build-bench), then measures presbridge, Kamailio (xmpp module; for
# presence pua_xmpp, pua and its presence server) and a plain TCP relay (the
# floor) on loopback with the same load and the same XMPP sink, and prints one
# table of medians.
#
#   bench/run.sh [--quick] [--runs N] [--msgs N] [--pres N] [--pres-subs N]
#                [--lat-rate R] [--lat-n N] [--subs "A B"] [--window W]
#                [--no-kamailio] [--keep] [--build-dir DIR]
#                [--sub-n N] [--takeover-subs N] [--lease SEC] [--no-postgresql]
#
# The bridge (and Kamailio, every process of it) is pinned to CPU 0, the load
# tools to CPU 1 (with one CPU: no pinning, and the table says so). Each figure
# is the median of --runs runs (default 3); RSS is measured once, restart
# --runs times over the same state.
# --quick: tiny sizes, one run (CI: it only proves the code paths still work).
# The TLS rows: the loadgen as a Lync pool with mutual TLS (a test CA made for
# the run with openssl), presbridge with a TLS listener and a TLS [peer], and
# Kamailio with tls.so (kamailio-tls-modules) and the same certificates.
# The S2S rows: presbridge with [xmpp] transport = s2s against a second
# xmppsink in --s2s mode, the XMPP server of xmpp.test (STARTTLS and SASL
# EXTERNAL both ways, certificates from the same test CA, a static
# [s2s-peer xmpp.test] route: no DNS), the same load as the component rows.
# Kamailio needs Debian's kamailio and kamailio-xmpp-modules; its xmpp.so is
# copied and patched (see kam_xmpp_so) because 5.6.3 crashes on the first
# stanza it reads. Its presence rows add kamailio-presence-modules (pua_xmpp,
# pua, presence, presence_xml; db_text is in kamailio) and UDP port 5060 on two
# loopback addresses (see kam_presence_setup); without them those rows say n/a
# and why. Needs: cmake, gcc, libssl-dev, openssl, taskset, ss; kamailio
# optional.
# The subscription rows: --sub-n SUBSCRIBEs (new dialogs) answered and first
# NOTIFYs in, then as many sign-outs (in-dialog SUBSCRIBE, Expires: 0), each
# answered and its dialog ended by a terminating NOTIFY: both per second.
# The PostgreSQL rows (issue 18): presbridge with [store] backend = postgresql
# on a scratch cluster (tests/integration/pg.sh: initdb in the run's folder, a
# free loopback port, fsync on; the package postgresql) for the subscription,
# presence (each update also writes the presence cache), RSS and restart rows,
# and the takeover of a pool of two ([pool], nodes a and b on 127.0.0.11 and
# 127.0.0.12, --lease SEC, default 3) holding --takeover-subs subscriptions
# (default: the largest of --subs): the active node is killed (-9) --runs
# times, in turns, and the row is the time until the standby logs its
# takeover ("pool: node N is active") and until it answers an OPTIONS.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bdir=build-bench
runs=3 msgs=200000 pres=100000 pres_subs=1000 lat_rate=10000 lat_n=50000
subs="10000 100000" window=500 kamailio=1 keep=0 quick=0
sub_n=10000 takeover_subs="" lease=3 postgresql=1
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 runs=1 msgs=3000 pres=2000 pres_subs=100 lat_rate=2000 lat_n=2000
		subs="200 1000" sub_n=300 ;;
	--runs) runs=$2; shift ;;
	--msgs) msgs=$2; shift ;;
	--pres) pres=$2; shift ;;
	--pres-subs) pres_subs=$2; shift ;;
	--lat-rate) lat_rate=$2; shift ;;
	--lat-n) lat_n=$2; shift ;;
	--subs) subs=$2; shift ;;
	--window) window=$2; shift ;;
	--no-kamailio) kamailio=0 ;;
	--sub-n) sub_n=$2; shift ;;
	--takeover-subs) takeover_subs=$2; shift ;;
	--lease) lease=$2; shift ;;
	--no-postgresql) postgresql=0 ;;
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
	[ -z "${PG_DIR:-}" ] || pg_stop
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
SIP_TLS_PORT=$(free_port) KAM_TLS_PORT=$(free_port)
S2S_PORT=$(free_port) S2S_SINK_PORT=$(free_port) S2S_CTL_PORT=$(free_port)

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
	sink_started
}

sink_started() {
	local i
	for i in $(seq 1 100); do
		sink_cmd stats >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	log "xmppsink did not start"
	return 1
}

# The S2S rows' sink: the XMPP server of xmpp.test. The bridge reaches it at
# S2S_SINK_PORT ([s2s-peer xmpp.test]); it opens its own stream to the bridge's
# [s2s] listen address (S2S_PORT) and keeps reopening it while the bridge is
# down. Its control port is S2S_CTL_PORT (CTL_PORT while the S2S rows run).
start_sink_s2s() {
	$ON_TOOLS "$SINK" -p "$S2S_SINK_PORT" -c "$S2S_CTL_PORT" --s2s xmpp.test --to sip.test \
		--connect "$S2S_PORT" --cert "$W/tls/xmpp.crt" --key "$W/tls/xmpp.key" \
		--ca "$W/tls/ca.crt" 2>"$W/sink-s2s.log" &
	pids+=($!)
	CTL_PORT=$S2S_CTL_PORT sink_started
}

stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# ---- presbridge ----
# shellcheck source=bench/bridge-conf.sh
. "$top/bench/bridge-conf.sh"
write_conf() {
	bench_bridge_conf "$top" "$SIP_PORT" "$XMPP_PORT" "$PEER_PORT" >"$W/pb.ini"
}

start_bridge() { # fresh state unless $1 = keep (PB_PG=1: the PostgreSQL database)
	if [ "${1:-}" != keep ]; then
		rm -rf "$W/state"
		[ "${PB_PG:-0}" = 0 ] || pg_reset || return 1
	fi
	$ON_BRIDGE "$PB" -c "${PB_INI:-$W/pb.ini}" 2>>"$W/presbridge.log" &
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

# The presence rows, the same load for every middlebox: the sink subscribes to
# S SIP users and the peer NOTIFYs N times in those dialogs; then S SUBSCRIBEs
# to XMPP users and N presence stanzas from the sink. Extra arguments go to the
# second loadgen (sub). Fails when a figure is missing.
measure_pres() { # measure_pres BOX TARGET_PORT [loadgen sub options]
	local box=$1 port=$2 out rc=0 to=$((60 + pres / 500))
	shift 2
	out=$(lg notify --listen "$PEER_PORT" --ctl "$CTL_PORT" -s "$pres_subs" -n "$pres" \
		-w "$window" --timeout "$to")
	note pres_s2x "$box" "$(kv rate "$out")"
	[ -n "$(kv rate "$out")" ] || rc=1
	out=$(lg sub --target "$port" --listen "$PEER_PORT" --ctl "$CTL_PORT" -s "$pres_subs" \
		-n "$pres" -w "$window" --timeout "$to" "$@")
	note pres_x2s "$box" "$(kv rate "$out")"
	[ -n "$(kv rate "$out")" ] || rc=1
	return $rc
}

# The subscription rows: --sub-n watchers w<F..> (F past the presence rows'
# users) subscribe, then sign out. Fails when a figure is missing.
measure_subs() { # measure_subs BOX TARGET_PORT
	local out
	out=$(lg sub --target "$2" --listen "$PEER_PORT" --ctl "$CTL_PORT" -s "$sub_n" -n 0 \
		--first 1000000 -w "$window" --teardown --timeout $((60 + sub_n / 200)))
	note sub_setup "$1" "$(kv setup_rate "$out")"
	note sub_teardown "$1" "$(kv teardown_rate "$out")"
	[ -n "$(kv teardown_rate "$out")" ]
}

run_presbridge() {
	start_bridge || return 1
	measure_msgs presbridge "$SIP_PORT" "$PB_PID"
	measure_pres presbridge "$SIP_PORT"
	measure_subs presbridge "$SIP_PORT"
	stop "$PB_PID"
}

# ---- PostgreSQL (issue 18) ----
# A scratch cluster in $W/pg (tests/integration/pg.sh, sourced: pg_start uses
# this script's free_port); every start without keep gets a new, empty
# database. pb-pg.ini: pb.ini with [store] backend = postgresql.
PG_WHY=
pg_setup() {
	[ "$postgresql" = 1 ] || { PG_WHY="skipped (--no-postgresql)"; return 1; }
	# shellcheck source=tests/integration/pg.sh
	. "$top/tests/integration/pg.sh"
	pg_bindir >/dev/null 2>&1 ||
		{ PG_WHY="no PostgreSQL server (the package postgresql)"; return 1; }
	pg_start "$W/pg" >"$W/pg-start.log" 2>&1 ||
		{ PG_WHY="the scratch cluster did not start (see $W/pg-start.log, $W/pg/server.log)"; return 1; }
	{
		cat "$W/pb.ini"
		printf '\n[store]\nbackend = postgresql\nconninfo = %s\n' "$PG_CONNINFO"
	} >"$W/pb-pg.ini"
	if ! "$PB" -c "$W/pb-pg.ini" -n >"$W/pb-pg.check" 2>&1; then
		PG_WHY="presbridge -n refuses pb-pg.ini: $(head -1 "$W/pb-pg.check")"
		return 1
	fi
}

pg_reset() {
	local bin
	bin=$(pg_bindir) || return 1
	pg_as "$bin/psql" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-qc "DROP DATABASE IF EXISTS presbridge WITH (FORCE)" \
		-c "CREATE DATABASE presbridge" >>"$W/pg-reset.log" 2>&1 ||
		{ log "could not empty the PostgreSQL database (see $W/pg-reset.log)"; return 1; }
}

run_presbridge_pg() {
	[ -z "$PG_WHY" ] || return 1
	PB_PG=1 PB_INI=$W/pb-pg.ini start_bridge || return 1
	measure_pres postgresql "$SIP_PORT" ||
		log "PostgreSQL: a presence figure is missing (see $W/loadgen.log)"
	measure_subs postgresql "$SIP_PORT" ||
		log "PostgreSQL: a subscription figure is missing (see $W/loadgen.log)"
	kill -9 "$PB_PID" # as the TLS rows: the database is emptied at the next start
	wait "$PB_PID" 2>/dev/null
	return 0
}

wait_log() { # wait_log FILE TEXT SECONDS: until a line of FILE holds TEXT
	local i
	for i in $(seq 1 $(($3 * 20))); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# The pool: nodes a and b, one database, each on a loopback address of its own
# (the same port), log_level info for the pool's lines. The active node's
# subscriptions are made on it; then, --runs times, it is killed (-9) while the
# other stands by, and the killed node comes back as the standby.
POOL_WHY=
run_takeover() {
	[ -z "$PG_WHY" ] || { POOL_WHY=$PG_WHY; return 1; }
	local n=${takeover_subs:-${subs##* }} node out i sp act sby
	declare -A paddr=([a]=127.0.0.11 [b]=127.0.0.12) ppid=()
	for node in a b; do
		sed -e "s|^listen = tcp:.*|listen = tcp:${paddr[$node]}:$SIP_PORT|" \
			-e 's|^log_level = .*|log_level = info|' "$W/pb-pg.ini" >"$W/pool-$node.ini"
		printf '\n[pool]\nnode = %s\nlease = %s\n' "$node" "$lease" >>"$W/pool-$node.ini"
		: >"$W/pool-$node.log"
	done
	pool_start() { # pool_start NODE ROLE: until it logs that it is ROLE
		$ON_BRIDGE "$PB" -c "$W/pool-$1.ini" 2>>"$W/pool-$1.log" &
		ppid[$1]=$!
		pids+=("${ppid[$1]}")
		wait_log "$W/pool-$1.log" "pool: node $1 is $2" 60
	}
	pg_reset || { POOL_WHY="could not empty the database"; return 1; }
	pool_start a active || { POOL_WHY="node a did not become active (see $W/pool-a.log)"; return 1; }
	wait_up || { POOL_WHY="node a's XMPP link did not come up (see $W/pool-a.log)"; return 1; }
	out=$(lg sub --host "${paddr[a]}" --target "$SIP_PORT" --listen "$PEER_PORT" \
		--ctl "$CTL_PORT" -s "$n" -n 0 -w "$window" --timeout 600)
	[ -n "$(kv setup_rate "$out")" ] ||
		{ POOL_WHY="the $n subscriptions were not set up (see $W/loadgen.log)"; return 1; }
	pool_start b standby || { POOL_WHY="node b did not stand by (see $W/pool-b.log)"; return 1; }
	# the peer answers the NOTIFYs and SUBSCRIBEs the new active node sends
	$ON_TOOLS "$LG" serve --listen "$PEER_PORT" --timeout 3600 >/dev/null 2>>"$W/loadgen.log" &
	sp=$!
	pids+=("$sp")
	act=a sby=b
	for i in $(seq 1 "$runs"); do
		# the shell's "Killed" notice for the node loadgen kills goes nowhere
		{
			out=$($ON_TOOLS "$LG" takeover --host "${paddr[$sby]}" --target "$SIP_PORT" \
				--kill "${ppid[$act]}" --log "$W/pool-$sby.log" \
				--match "pool: node $sby is active" --timeout $((30 + n / 1000)) \
				2>>"$W/loadgen.log")
			wait "${ppid[$act]}"
		} 2>/dev/null
		note takeover_log postgresql "$(kv log_ms "$out")"
		note takeover_answer postgresql "$(kv answer_ms "$out")"
		note takeover_node postgresql "$(kv node_ms "$out")"
		[ -n "$(kv answer_ms "$out")" ] ||
			{ POOL_WHY="node $sby did not take over (see $W/pool-$sby.log)"; break; }
		# let the new active node's NOTIFYs and SUBSCRIBEs go out (about
		# 20,000/s), then the killed node returns as the standby
		sleep $((2 + n / 20000))
		pool_start "$act" standby ||
			{ POOL_WHY="node $act did not come back as standby (see $W/pool-$act.log)"; break; }
		node=$act act=$sby sby=$node
	done
	{
		kill -9 "${ppid[a]}" "${ppid[b]}" "$sp"
		wait "${ppid[a]}" "${ppid[b]}" "$sp"
	} 2>/dev/null
	TAKEOVER_SUBS=$n
	[ -z "$POOL_WHY" ]
}

# ---- TLS ----
# A test CA made for the run (RSA 2048, as tests/integration/ca.sh makes them).
# s2s and xmpp: the S2S rows' certificates, for the bridge's hosted domain
# (sip.test) and for the sink's (xmpp.test).
# The loadgen is the Lync pool: its certificate names the [peer lync] host
# (presbridge refuses a peer whose certificate does not, RFC 5922) and carries
# clientAuth, which presbridge requires of a peer. The middlebox (presbridge,
# and Kamailio in its TLS rows) presents bridge.xmpp.test, which the loadgen
# checks (--tls-name). Both carry serverAuth and clientAuth: every side of
# mutual TLS is a client on one connection and a server on the other.
TLS_BRIDGE_NAME=bridge.xmpp.test
TLS_WHY=
make_certs() {
	local d=$W/tls n name
	mkdir -p "$d"
	openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 \
		-keyout "$d/ca.key" -out "$d/ca.crt" -subj "/O=presbridge bench/CN=presbridge bench CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$W/tls.log" || return 1
	for n in "bridge:$TLS_BRIDGE_NAME" "peer:$TLS_PEER_NAME" s2s:sip.test xmpp:xmpp.test; do
		name=${n#*:} n=${n%%:*}
		printf '%s\n' "basicConstraints = critical,CA:FALSE" \
			"keyUsage = critical,digitalSignature,keyEncipherment" \
			"extendedKeyUsage = serverAuth,clientAuth" "subjectAltName = DNS:$name" \
			"subjectKeyIdentifier = hash" "authorityKeyIdentifier = keyid" >"$d/$n.ext"
		openssl req -new -nodes -newkey rsa:2048 -sha256 -keyout "$d/$n.key" \
			-out "$d/$n.csr" -subj "/O=presbridge bench/CN=$name" 2>>"$W/tls.log" &&
			openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
				-set_serial "0x$(openssl rand -hex 8)" -days 825 -sha256 \
				-extfile "$d/$n.ext" -out "$d/$n.crt" 2>>"$W/tls.log" || return 1
	done
}

# pb-tls.ini: pb.ini with a TLS listener instead of TCP and [peer lync] over TLS.
write_conf_tls() {
	TLS_PEER_NAME=$(sed -n 's/^host = //p' "$W/pb.ini" | head -1)
	make_certs || { TLS_WHY="openssl could not make the test CA (see $W/tls.log)"; return 1; }
	sed -e "s|^listen = tcp:.*|listen = tls:127.0.0.1:$SIP_TLS_PORT\ncert = $W/tls/bridge.crt\nkey = $W/tls/bridge.key\nca = $W/tls/ca.crt|" \
		-e 's|^transport = tcp$|transport = tls|' "$W/pb.ini" >"$W/pb-tls.ini"
	if ! "$PB" -c "$W/pb-tls.ini" -n >"$W/pb-tls.check" 2>&1; then
		TLS_WHY="presbridge -n refuses pb-tls.ini (see $W/pb-tls.check)"
		return 1
	fi
	TLS_LG=(--tls "$W/tls/peer.crt" "$W/tls/peer.key" "$W/tls/ca.crt" --tls-name "$TLS_BRIDGE_NAME")
}

# pb-s2s.ini: pb.ini with [xmpp] transport = s2s, SASL EXTERNAL only (a
# failure shows, rather than a fall-back to dialback), xmpp.test at the S2S sink.
S2S_WHY=
write_conf_s2s() {
	[ -z "$TLS_WHY" ] || { S2S_WHY=$TLS_WHY; return 1; }
	sed -e '/^\[xmpp\]$/,/^$/d' "$W/pb.ini" >"$W/pb-s2s.ini"
	cat >>"$W/pb-s2s.ini" <<EOF_S2S

[xmpp]
transport = s2s

[s2s]
listen = 127.0.0.1:$S2S_PORT
cert = $W/tls/s2s.crt
key = $W/tls/s2s.key
ca = $W/tls/ca.crt
auth = external

[s2s-peer xmpp.test]
address = 127.0.0.1:$S2S_SINK_PORT
EOF_S2S
	if ! "$PB" -c "$W/pb-s2s.ini" -n >"$W/pb-s2s.check" 2>&1; then
		S2S_WHY="presbridge -n refuses pb-s2s.ini (see $W/pb-s2s.check)"
		return 1
	fi
}

measure_tls() { # measure_tls BOX TARGET_PORT: the MESSAGE rates over mutual TLS
	local box=$1 port=$2 out
	out=$(lg msg "${TLS_LG[@]}" --target "$port" --ctl "$CTL_PORT" -n "$msgs" -w "$window" -u 1000)
	note msg_s2x_tls "$box" "$(kv rate "$out")"
	out=$(lg x2s "${TLS_LG[@]}" --listen "$PEER_PORT" --ctl "$CTL_PORT" -n "$msgs" -w "$window" \
		-u 1000)
	note msg_x2s_tls "$box" "$(kv rate "$out")"
}

run_presbridge_tls() {
	[ -z "$TLS_WHY" ] || { log "TLS: $TLS_WHY"; return 1; }
	PB_INI=$W/pb-tls.ini start_bridge || return 1
	measure_tls presbridge "$SIP_TLS_PORT"
	# kill -9: its state goes with the next start, and a graceful stop waits
	# over 2 s for xmppsink to close the XMPP stream, which it never does
	kill -9 "$PB_PID"
	wait "$PB_PID" 2>/dev/null
	return 0
}

# The S2S rows: the component rows' MESSAGE and presence load, the XMPP side
# over server-to-server streams with TLS (box s2s; SIP over TCP as there).
run_presbridge_s2s() {
	[ -z "$S2S_WHY" ] || { log "S2S: $S2S_WHY"; return 1; }
	local CTL_PORT=$S2S_CTL_PORT out t0 t1
	if ! PB_INI=$W/pb-s2s.ini start_bridge; then
		kill -9 "$PB_PID" 2>/dev/null # it holds the ports the next rows need
		wait "$PB_PID" 2>/dev/null
		return 1
	fi
	t0=$(cpu_ticks "$PB_PID")
	out=$(lg msg --target "$SIP_PORT" --ctl "$CTL_PORT" -n "$msgs" -w "$window" -u 1000)
	t1=$(cpu_ticks "$PB_PID")
	note msg_s2x s2s "$(kv rate "$out")"
	[ -n "$(kv rate "$out")" ] && note cpu_100k s2s \
		"$(awk -v d=$((t1 - t0)) -v n="$msgs" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", d/hz*100000/n}')"
	out=$(lg x2s --listen "$PEER_PORT" --ctl "$CTL_PORT" -n "$msgs" -w "$window" -u 1000)
	note msg_x2s s2s "$(kv rate "$out")"
	measure_pres s2s "$SIP_PORT"
	kill -9 "$PB_PID" # as the TLS rows: the state goes with the next start
	wait "$PB_PID" 2>/dev/null
	return 0
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

# Kamailio's presence job (the presence rows): xmpp + pua_xmpp + pua + presence +
# presence_xml, the chain of README.pua_xmpp, in the instance that does the page
# mode. NOTIFY->presence: an XMPP subscribe becomes pua's SUBSCRIBE to the SIP
# user, relayed to the peer; the peer's NOTIFYs come back in that dialog and
# pua_xmpp_notify() makes them <presence/>. presence->NOTIFY: the peer's
# SUBSCRIBE goes to the presence server (handle_subscribe; presence_xml with
# force_active, no XCAP), pua_xmpp_req_winfo() watches its watchers and makes
# them XMPP subscribes; XMPP presence becomes pua's PUBLISH to that server, which
# NOTIFYs the watcher.
# pua sends its SUBSCRIBEs to their request URI (5.6 gives them no outbound
# proxy) and Kamailio finds a host only through DNS, which the loopback run has
# not: the xmpp module's gwmap gives each domain a SIP-side name that is a
# loopback address of Kamailio's own with a UDP listener on 5060 (a URI without
# port and transport): sip.test is KAM_SIPGW, xmpp.test KAM_XMPPGW. The script
# relays what reaches KAM_SIPGW to the peer over TCP and serves KAM_XMPPGW (and
# xmpp.test) with the presence server; pua's PUBLISHes take its outbound proxy,
# this instance over TCP.
# The database is db_text (in the kamailio package; tables in memory, files
# written at exit): subscriptions are written back on a timer (subs_db_mode 2:
# mode 0, no database, crashes in add_waiting_watchers on the first
# presence.winfo NOTIFY), presentities (publ_cache 2) and pua's dialogs (db_mode
# 0) stay in memory, so no NOTIFY or PUBLISH of the measured runs waits for a
# database: the engine serves the setup only (db_sqlite would need one more
# package, kamailio-sqlite-modules).
kam_presence_setup() {
	local mods=/usr/lib/x86_64-linux-gnu/kamailio/modules m used a i
	local schema=/usr/share/kamailio/dbtext/kamailio
	for m in db_text presence presence_xml pua pua_xmpp; do
		[ -f "$mods/$m.so" ] ||
			{ KAM_PRES_WHY="no $m.so (kamailio-presence-modules not installed?)"; return 1; }
	done
	[ -d "$schema" ] || { KAM_PRES_WHY="no db_text tables in $schema"; return 1; }
	used=" $(ss -Huan 'sport = :5060' 2>/dev/null | awk '{print $4}' | tr '\n' ' ')"
	case $used in *" 0.0.0.0:5060 "* | *" *:5060 "* | *" [::]:5060 "*)
		KAM_PRES_WHY="UDP port 5060 is taken on every address (KAM_SIPGW, KAM_XMPPGW)"
		return 1 ;;
	esac
	KAM_SIPGW=
	for i in 1 2 3 4 5 6 7 8; do
		a=127.$((RANDOM % 200 + 50)).$((RANDOM % 250 + 1))
		case $used in *" $a."*) continue ;; esac
		KAM_SIPGW=$a.2 KAM_XMPPGW=$a.3
		break
	done
	[ -n "$KAM_SIPGW" ] || { KAM_PRES_WHY="no loopback address with UDP port 5060 free"; return 1; }
	rm -rf "$W/kam/db"
	mkdir -p "$W/kam/db" || { KAM_PRES_WHY="could not make $W/kam/db"; return 1; }
	for m in version presentity active_watchers watchers pua xcap; do
		cp "$schema/$m" "$W/kam/db/" || { KAM_PRES_WHY="could not copy $schema/$m"; return 1; }
	done
	# db_text knows no column defaults; presence leaves flags out of its inserts
	sed -i '1s/ flags(int) / flags(int,null) /' "$W/kam/db/active_watchers"
}

kam_cfg() { # kam_cfg PRESENCE [TLS]: the configuration on stdout, the presence job
	# with PRESENCE 1, the SIP side over mutual TLS ($W/kamtls/tls.cfg) with TLS 1
	local mods=/usr/lib/x86_64-linux-gnu/kamailio/modules tp=tcp port=$KAM_PORT
	[ "${2:-0}" = 1 ] && tp=tls port=$KAM_TLS_PORT
	echo '#!KAMAILIO'
	[ "$tp" = tls ] && printf '#!define WITH_TLS\nenable_tls=yes\n'
	[ "$1" = 1 ] && cat <<EOF
#!define WITH_PRESENCE
#!define SIPGW "$KAM_SIPGW"
#!define XMPPGW "$KAM_XMPPGW"
#!define PEER "sip:127.0.0.1:$PEER_PORT;transport=tcp"
EOF
	cat <<EOF
debug=1
log_stderror=yes
fork=yes
children=1
tcp_children=1
auto_aliases=no
listen=$tp:127.0.0.1:$port
# a window of 500 MESSAGEs is more than the default queues (32 KiB per TCP
# connection being opened, 64 KiB of clear text while a TLS handshake runs):
# past them Kamailio drops the connection with the MESSAGEs in it
tcp_conn_wq_max=4194304
tcp_wq_max=67108864
#!ifdef WITH_PRESENCE
listen=udp:$KAM_SIPGW:5060
listen=udp:$KAM_XMPPGW:5060
#!endif
mpath="$mods/"
#!ifdef WITH_TLS
loadmodule "tls.so"
modparam("tls", "config", "$W/kamtls/tls.cfg")
modparam("tls", "con_ct_wq_max", 4194304)
modparam("tls", "ct_wq_max", 67108864)
#!endif
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
modparam("xmpp", "outbound_proxy", "sip:127.0.0.1:$PEER_PORT;transport=$tp")
#!ifdef WITH_PRESENCE
modparam("xmpp", "gwmap", "$KAM_SIPGW=sip.test;$KAM_XMPPGW=xmpp.test")
loadmodule "db_text.so"
loadmodule "presence.so"
loadmodule "presence_xml.so"
loadmodule "pua.so"
loadmodule "pua_xmpp.so"
modparam("presence", "db_url", "text://$W/kam/db")
modparam("presence", "subs_db_mode", 2)
modparam("presence", "publ_cache", 2)
modparam("presence", "server_address", "sip:127.0.0.1:$KAM_PORT;transport=tcp")
modparam("presence_xml", "db_url", "text://$W/kam/db")
modparam("presence_xml", "force_active", 1)
modparam("pua", "db_url", "text://$W/kam/db")
modparam("pua", "db_mode", 0)
modparam("pua", "outbound_proxy", "sip:127.0.0.1:$KAM_PORT;transport=tcp")
modparam("pua_xmpp", "server_address", "sip:$KAM_XMPPGW")
#!else
modparam("xmpp", "gwmap", "sip.test=sip.test;xmpp.test=xmpp.test")
#!endif
EOF
	cat <<'EOF'
request_route {
	if (is_method("MESSAGE")) {
		if (xmpp_send_message()) { sl_send_reply("200", "Accepted"); }
		else { sl_send_reply("500", "xmpp failed"); }
		exit;
	}
	if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
#!ifdef WITH_PRESENCE
	route(PRESENCE);
#!endif
	sl_send_reply("501", "Not Implemented");
}
#!ifdef WITH_PRESENCE
route[PRESENCE] {
	# in pua's dialogs: the peer's presence, the presence server's watcher info
	if (is_method("NOTIFY")) {
		$var(from) = $fu; # parsed here: pua_xmpp logs an error when it must parse it
		if (pua_xmpp_notify()) { sl_send_reply("200", "OK"); }
		else { sl_send_reply("481", "Subscription does not exist"); }
		exit;
	}
	# pua subscribes an XMPP user to a SIP user: on to the peer
	if (is_method("SUBSCRIBE") && $rd == SIPGW) {
		$du = PEER;
		$rd = "sip.test";
		if (!t_relay()) { sl_reply_error(); }
		exit;
	}
	# the presence server of the XMPP users
	if (is_method("PUBLISH|SUBSCRIBE")) {
		if ($rd == "xmpp.test") { $rd = XMPPGW; }
		if (!t_newtran()) { sl_reply_error(); exit; }
		if (is_method("PUBLISH")) {
			handle_publish();
		} else {
			handle_subscribe();
			if ($hdr(Event) == "presence") { pua_xmpp_req_winfo("$ru", "$hdr(Expires)"); }
		}
		t_release();
		exit;
	}
}
#!endif
EOF
}

kam_start() { # kam_start PRESENCE: configure, start and wait for the XMPP link
	kam_cfg "$1" >"$W/kam/kamailio.cfg"
	# 1 GiB of shared memory: tm keeps every finished transaction for its
	# wait_timer (5 s), 100,000 and more at these rates; 256 MiB ran out.
	$ON_BRIDGE kamailio -f "$W/kam/kamailio.cfg" -DD -E -w "$W/kam" -Y "$W/kam" \
		-m 1024 -M 32 >"$W/kamailio.log" 2>&1 &
	KAM_PID=$!
	pids+=("$KAM_PID")
	wait_up && return 0
	stop "$KAM_PID"
	return 1
}

run_kamailio() {
	local with_pres=1
	KAM_WHY='' KAM_PRES_WHY=''
	if ! command -v kamailio >/dev/null ||
		[ ! -f /usr/lib/x86_64-linux-gnu/kamailio/modules/xmpp.so ]; then
		KAM_WHY="kamailio or kamailio-xmpp-modules not installed"
		return 1
	fi
	mkdir -p "$W/kam"
	kam_xmpp_so || { KAM_WHY="could not patch a copy of xmpp.so (objdump/readelf?)"; return 1; }
	kam_presence_setup || with_pres=0
	if ! kam_start "$with_pres"; then
		if [ "$with_pres" = 0 ]; then
			KAM_WHY="Kamailio's xmpp component did not connect (see kamailio.log)"
			return 1
		fi
		mv "$W/kamailio.log" "$W/kamailio-presence.log"
		KAM_PRES_WHY="Kamailio did not start with the presence modules (see kamailio-presence.log)"
		with_pres=0
		kam_start 0 || { KAM_WHY="Kamailio's xmpp component did not connect (see kamailio.log)"; return 1; }
	fi
	measure_msgs kamailio "$KAM_PORT" "$KAM_PID"
	if [ "$with_pres" = 1 ]; then
		# pua_xmpp carries <show>, not <status> (the time stamp), into the PIDF
		measure_pres kamailio "$KAM_PORT" --any-notify ||
			log "Kamailio: a presence figure is missing (see $W/loadgen.log, $W/kamailio.log)"
	else
		log "Kamailio presence rows: $KAM_PRES_WHY"
	fi
	stop "$KAM_PID"
}

# Kamailio's TLS rows: an instance of its own with a TLS listener only (tls.so
# from kamailio-tls-modules, mutual TLS with the certificates presbridge gets)
# and the xmpp module's outbound proxy over TLS to the loadgen's listener.
run_kamailio_tls() {
	local mods=/usr/lib/x86_64-linux-gnu/kamailio/modules d=$W/kamtls side
	KAM_TLS_WHY=
	if ! command -v kamailio >/dev/null || [ ! -f $mods/xmpp.so ]; then
		KAM_TLS_WHY="kamailio or kamailio-xmpp-modules not installed"
		return 1
	fi
	[ -f $mods/tls.so ] || { KAM_TLS_WHY="kamailio-tls-modules not installed"; return 1; }
	[ -z "$TLS_WHY" ] || { KAM_TLS_WHY=$TLS_WHY; return 1; }
	mkdir -p "$d" "$W/kam"
	[ -f "$W/kam/xmpp.so" ] || kam_xmpp_so ||
		{ KAM_TLS_WHY="could not patch a copy of xmpp.so (objdump/readelf?)"; return 1; }
	for side in server client; do
		cat <<EOF
[$side:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
private_key = $W/tls/bridge.key
certificate = $W/tls/bridge.crt
ca_list = $W/tls/ca.crt

EOF
	done >"$d/tls.cfg"
	kam_cfg 0 1 >"$d/kamailio.cfg"
	$ON_BRIDGE kamailio -f "$d/kamailio.cfg" -DD -E -w "$d" -Y "$d" \
		-m 1024 -M 32 >"$W/kamailio-tls.log" 2>&1 &
	KAM_PID=$!
	pids+=("$KAM_PID")
	if ! wait_up; then
		KAM_TLS_WHY="Kamailio's xmpp component did not connect (see kamailio-tls.log)"
		stop "$KAM_PID"
		return 1
	fi
	measure_tls kamailio "$KAM_TLS_PORT"
	stop "$KAM_PID"
}

# ---- memory and restart (presbridge; BOX postgresql: PB_PG=1 PB_INI=pb-pg.ini) ----
run_memory() { # run_memory BOX
	local box=$1 prev=0 n out rss0=
	start_bridge || return 1
	for n in $subs; do
		out=$(lg sub --target "$SIP_PORT" --listen "$PEER_PORT" --ctl "$CTL_PORT" \
			-s $((n - prev)) --first "$prev" -n 0 -w "$window" --pid "$PB_PID" --timeout 600)
		[ -n "$rss0" ] || rss0=$(kv rss0_kb "$out")
		local rss1
		rss1=$(kv rss1_kb "$out")
		[ -n "$rss1" ] && [ -n "$rss0" ] &&
			note "rss_$n" "$box" "$(((rss1 - rss0) * 1024 / n))"
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
			-c "${PB_INI:-$W/pb.ini}" 2>>"$W/presbridge.log")
		note restart "$box" "$(kv startup_ms "$out")"
		pid=$(kv pid "$out")
		pids+=("$pid")
		sleep 1 # let it settle before the next kill
	done
	{
		kill -9 "$pid" "$sp"
		wait "$sp"
	} 2>/dev/null
	RESTART_SUBS=$prev
	return 0
}

write_conf
write_conf_tls || log "TLS: $TLS_WHY"
write_conf_s2s || log "S2S: $S2S_WHY"
pg_setup || log "PostgreSQL: $PG_WHY"
start_sink || exit 1
if [ -z "$S2S_WHY" ] && ! start_sink_s2s; then
	S2S_WHY="the S2S xmppsink did not start (see $W/sink-s2s.log)"
fi
for r in $(seq 1 "$runs"); do
	log "run $r of $runs: presbridge"
	run_presbridge || log "presbridge run failed (see $W/presbridge.log, $W/loadgen.log)"
	log "run $r of $runs: presbridge, TLS"
	run_presbridge_tls || log "presbridge TLS run failed (see $W/presbridge.log, $W/loadgen.log)"
	log "run $r of $runs: presbridge, S2S"
	run_presbridge_s2s ||
		log "presbridge S2S run failed (see $W/presbridge.log, $W/loadgen.log, $W/sink-s2s.log)"
	if [ -z "$PG_WHY" ]; then
		log "run $r of $runs: presbridge, PostgreSQL"
		run_presbridge_pg || log "presbridge PostgreSQL run failed (see $W/presbridge.log, $W/loadgen.log)"
	fi
	log "run $r of $runs: floor (TCP relay)"
	run_floor
	if [ "$kamailio" = 1 ]; then
		log "run $r of $runs: Kamailio"
		run_kamailio || log "Kamailio: ${KAM_WHY:-failed}"
		log "run $r of $runs: Kamailio, TLS"
		run_kamailio_tls || log "Kamailio TLS: ${KAM_TLS_WHY:-failed}"
	fi
done
log "memory and restart"
run_memory presbridge || log "memory run failed (see $W/presbridge.log, $W/loadgen.log)"
if [ -z "$PG_WHY" ]; then
	log "memory and restart, PostgreSQL"
	PB_PG=1 PB_INI=$W/pb-pg.ini run_memory postgresql ||
		log "PostgreSQL memory run failed (see $W/presbridge.log, $W/loadgen.log)"
	log "takeover, PostgreSQL pool of two"
	run_takeover || log "takeover: $POOL_WHY"
fi

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
echo "medians of $runs run(s); messages $msgs, presence updates $pres over $pres_subs subscriptions, latency at $lat_rate/s ($lat_n messages), TCP (TLS where a row says so), window $window"
echo
printf '%-34s %12s %12s %12s %10s %10s\n' figure presbridge kamailio floor pb/kam pb/floor
printf '%-34s %12s %12s %12s %10s %10s\n' ---------------------------------- ------------ ------------ ------------ ---------- ----------
missing=0
row() { # row LABEL FIGURE HIGHER_IS_BETTER [BOX: presbridge's figure, default presbridge]
	local p k f
	p=$(median "$2" "${4:-presbridge}") k=$(median "$2" kamailio) f=$(median "$2" floor)
	[ -z "${4:-}" ] || k=n/a f=n/a
	# PostgreSQL rows are missing figures unless --no-postgresql said so
	[ "$p" != n/a ] || { [ "${4:-}" = postgresql ] && [ "$postgresql" = 0 ]; } || missing=$((missing + 1))
	printf '%-34s %12s %12s %12s %10s %10s\n' "$1" "$p" "$k" "$f" "$(ratio "$p" "$k" "$3")" \
		"$(ratio "$p" "$f" "$3")"
}
row "MESSAGE SIP->XMPP /s" msg_s2x 1
row "MESSAGE XMPP->SIP /s" msg_x2s 1
row "MESSAGE SIP->XMPP /s, TLS" msg_s2x_tls 1
row "MESSAGE XMPP->SIP /s, TLS" msg_x2s_tls 1
row "NOTIFY->presence /s" pres_s2x 1
row "presence->NOTIFY /s" pres_x2s 1
row "NOTIFY->presence /s, PostgreSQL" pres_s2x 1 postgresql
row "presence->NOTIFY /s, PostgreSQL" pres_x2s 1 postgresql
row "SUBSCRIBE set-up /s" sub_setup 1
row "SUBSCRIBE set-up /s, PostgreSQL" sub_setup 1 postgresql
row "sign-out (Expires: 0) /s" sub_teardown 1
row "sign-out (Expires: 0) /s, PostgreSQL" sub_teardown 1 postgresql
row "MESSAGE SIP->XMPP /s, S2S" msg_s2x 1 s2s
row "MESSAGE XMPP->SIP /s, S2S" msg_x2s 1 s2s
row "NOTIFY->presence /s, S2S" pres_s2x 1 s2s
row "presence->NOTIFY /s, S2S" pres_x2s 1 s2s
row "latency p50 us @${lat_rate}/s" lat_p50 0
row "latency p99 us @${lat_rate}/s" lat_p99 0
row "latency p99.9 us @${lat_rate}/s" lat_p999 0
row "CPU s per 100k MESSAGE" cpu_100k 0
row "CPU s per 100k MESSAGE, S2S" cpu_100k 0 s2s
for n in $subs; do
	row "RSS bytes per subscription @$n" "rss_$n" 0
	row "RSS bytes per subscription @$n, PG" "rss_$n" 0 postgresql
done
row "restart ms, ${RESTART_SUBS:-?} subscriptions" restart 0
row "restart ms, ${RESTART_SUBS:-?} subs, PostgreSQL" restart 0 postgresql
tk=${TAKEOVER_SUBS:-${takeover_subs:-${subs##* }}}
row "takeover ms to log line, $tk subs" takeover_log 0 postgresql
row "takeover ms to 1st answer, $tk subs" takeover_answer 0 postgresql
row "takeover ms, node's own count" takeover_node 0 postgresql
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
	if [ -n "${KAM_PRES_WHY:-}" ]; then
		echo "- kamailio presence rows n/a: $KAM_PRES_WHY"
	else
		echo "- kamailio presence: the same instance with pua_xmpp, pua, presence, presence_xml"
		echo "  (force_active) and db_text (subscriptions written back, presentities and pua in memory)."
		echo "  pua's SUBSCRIBEs need a routable request URI: each domain's SIP-side name (gwmap) is a"
		echo "  loopback address of Kamailio's with UDP 5060, relayed on to the peer over TCP."
		echo "  presence->NOTIFY counts NOTIFYs: pua_xmpp carries <show>, not <status> (the time stamp),"
		echo "  into PIDF. pua sends a user's next PUBLISH before the last one's answer: with more"
		echo "  updates in flight than subscriptions (--quick) presence answers 412 and pua resends."
	fi
fi
echo "- kamailio RSS and restart: n/a (not measured; its presence state here is in memory,"
echo "  written back to db_text on a timer)."
echo "- floor RSS/restart: n/a (a relay keeps no state)."
echo "- TLS rows: mutual TLS 1.2 or later (OpenSSL negotiates 1.3), a test CA made for the run;"
echo "  the loadgen checks the middlebox's certificate (name, chain, serverAuth/clientAuth) and"
echo "  presents one naming the [peer] host. floor n/a: the relay does not terminate TLS."
if [ "$kamailio" = 1 ] && [ -n "${KAM_TLS_WHY:-}" ]; then
	echo "- kamailio TLS rows n/a: $KAM_TLS_WHY"
elif [ "$kamailio" = 1 ]; then
	echo "  kamailio TLS: an instance of its own (tls.so, the middlebox's certificate, MESSAGE"
	echo "  routes only); both its instances queue up to 4 MiB per connection (tcp_conn_wq_max,"
	echo "  tls con_ct_wq_max): at the defaults it drops a connection and its MESSAGEs at startup."
fi
if [ -n "$S2S_WHY" ]; then
	echo "- S2S rows n/a: $S2S_WHY"
else
	echo "- S2S rows: [xmpp] transport = s2s, the XMPP side a second xmppsink (--s2s) as the"
	echo "  server of xmpp.test: one stream each way, STARTTLS (TLS 1.2 or later) and SASL EXTERNAL"
	echo "  (certificates from the test CA), a static [s2s-peer] route; SIP over TCP as the"
	echo "  component rows. S2S/component (target 0.90 or more; printed, not asserted):"
	echo "  $(for f in msg_s2x msg_x2s pres_s2x pres_x2s; do
		printf '%s %s  ' "$f" "$(ratio "$(median $f s2s)" "$(median $f presbridge)" 1)"
	done)"
fi
if [ -n "$PG_WHY" ]; then
	echo "- PostgreSQL rows n/a: $PG_WHY"
else
	echo "- PostgreSQL rows: [store] backend = postgresql on a scratch PostgreSQL $(basename "$(dirname "$(pg_bindir)")")"
	echo "  cluster on loopback TCP (fsync on, the run's folder); the bridge holds each answer"
	echo "  until its write commits. subscription rows: --sub-n $sub_n new dialogs, then as many"
	echo "  sign-outs. restart: the node comes back under its own name, which holds the lease"
	echo "  until it expires ([pool] lease, 3 s), so the restart waits for that."
	echo "  PostgreSQL/SQLite: $(for f in sub_setup sub_teardown pres_s2x pres_x2s; do
		printf '%s %s  ' "$f" "$(ratio "$(median $f postgresql)" "$(median $f presbridge)" 1)"
	done)"
	echo "- takeover: two nodes ([pool] lease = $lease s) on 127.0.0.11 and 127.0.0.12, the active"
	echo "  one killed (-9) at a random point of its renewal cycle, so the detection part runs"
	echo "  from lease - lease/4 to lease + 0.5 s; 'node's own count' is the T ms of its log line"
	echo "  (restore and start once pb_acquire returned; pb_acquire, which rewrites the owner of"
	echo "  every row, is not in it).${POOL_WHY:+ n/a: $POOL_WHY}"
fi
if [ "$missing" -gt 0 ]; then
	echo "bench: $missing presbridge figure(s) missing: see the logs (--keep keeps $W)" >&2
	exit 1
fi
