#!/bin/bash
# Soak: mixed presence and IM load through one bridge for a long time, sampling
# its memory and descriptors (issue 9). Two drivers, both on loopback:
#
#   scripts/soak.sh [-D sipp] [-d SECONDS] [-m MSG_RATE] [-s SUB_RATE] [-x XMPP_RATE]
#                   [-i INTERVAL] [-o OUTDIR] [-b BUILD_DIR]
#   scripts/soak.sh -D bench [-d SECONDS] [-L FRACTION] [-C MSG,X2S,NOTIFY,PRES]
#                   [-T SECONDS] [-S SUBS] [-c CHURN_RATE] [-P CHURN_POOL]
#                   [-i INTERVAL] [-o OUTDIR] [-b BUILD_DIR]
#
#   -D  driver: sipp (default) or bench
#   -d  duration of the load, seconds (default 1800)
#   -i  sampling interval, seconds (default 10)
#   -o  output folder (default /tmp/soak-<date>)
#   -b  build folder (sipp: with presbridge and xmppc, default build; bench: it is
#       configured Release with the load tools, as bench/run.sh does, default
#       build-soak: do not give it a Debug or test build folder)
#
# -D sipp: the integration harness (tests/integration): a private ejabberd,
# SIPp, xmppc. About 40 SIP transactions and 4 XMPP stanzas a second by default.
#   -m  SIP -> XMPP MESSAGEs per second (SIPp, to alice@xmpp.test; default 20)
#   -s  SIP subscriptions per second (SIPp, 100 watchers in turn subscribe to
#       bob@xmpp.test, take the NOTIFY, unsubscribe; 4 transactions each; default 4)
#   -x  XMPP -> SIP messages per second (alice to 50 SIP users in turn, answered by
#       a SIPp peer; default 2). Besides: bob changes his presence every 5 s, and
#       alice subscribes to a SIP user and unsubscribes 4 s later, every 2 s (the
#       bridge's SUBSCRIBE, a NOTIFY with PIDF, its unsubscribe).
#
# -D bench: the benchmark's tools (bench/: loadgen as the Lync peer over TCP,
# xmppsink as the XMPP server), the bridge pinned to CPU 0 and the tools to CPU
# 1 as in bench/run.sh. First the capacity of each kind is measured with a short
# saturation run (MESSAGE SIP->XMPP, MESSAGE XMPP->SIP, NOTIFY->presence,
# presence->NOTIFY), then `loadgen mix` drives all four at once, each at
# FRACTION/4 of its own capacity (so the sum of rate/capacity is FRACTION), with
# subscription churn and refreshes, for -d seconds, and counts every request
# answered and every message and presence delivered.
#   -L  share of the measured capacity in all (default 0.5)
#   -C  the capacities (per second) instead of measuring them, e.g.
#       48000,62000,21000,31000
#   -T  seconds of each saturation run, about (default 4)
#   -S  subscriptions each way: XMPP users watching SIP users (NOTIFY->presence)
#       and SIP watchers of XMPP users (presence->NOTIFY) (default 1000)
#   -c  churn operations a second over the pool (default 20)
#   -P  churn pool: further SIP watchers (default 200), taken in turn: an idle
#       one subscribes (a new row in the store, or its dormant one woken), a
#       subscribed one loses it, in turns by the XMPP user revoking it (the row
#       goes) or by signing out (in-dialog Expires: 0; the row stays, dormant).
#       The main watchers refresh their dialogs every 1200 s.
#
# Output, in OUTDIR: soak.csv (elapsed_s, rss_kb, hwm_kb, fds, cpu_pct, sub rows in
# the store; bench also: pres rows in the store and the load's cumulative
# sent and delivered, all kinds), summary.txt, and the scratch folder of the
# harness with every log (presbridge, ejabberd, SIPp statistics; bench: mix.log
# with loadgen's counts every INTERVAL).
#
# Verdict (exit 1 on failure): the bridge must still be running at the end, and
# after a warm-up (the first fifth of the run, at least 60 s):
#   - RSS does not grow without bound: the median of the last half of the samples
#     is at most max(4 MiB, 10 %) above the median of the first half;
#   - no descriptor leak: at the end at most 4 more descriptors are open than at
#     the end of the warm-up, and never more than 64 more.
# bench besides: nothing lost: after a drain of up to 30 s every request sent
# was answered 2xx and every kind's delivered count equals its sent count.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
duration=1800 msg_rate=20 sub_rate=4 x_rate=2 interval=10
out=/tmp/soak-$(date +%Y%m%d-%H%M%S) build=
driver=sipp load=0.5 caps='' cal_secs=4 subs=1000 churn_rate=20 churn_pool=200
while getopts D:d:m:s:x:i:o:b:L:C:T:S:c:P:h opt; do
	case $opt in
	D) driver=$OPTARG ;;
	L) load=$OPTARG ;;
	C) caps=$OPTARG ;;
	T) cal_secs=$OPTARG ;;
	S) subs=$OPTARG ;;
	c) churn_rate=$OPTARG ;;
	P) churn_pool=$OPTARG ;;
	d) duration=$OPTARG ;;
	m) msg_rate=$OPTARG ;;
	s) sub_rate=$OPTARG ;;
	x) x_rate=$OPTARG ;;
	i) interval=$OPTARG ;;
	o) out=$OPTARG ;;
	b) build=$OPTARG ;;
	*) sed -n '2,63p' "$0"; exit 2 ;;
	esac
done
case $driver in
sipp) : "${build:=build}" ;;
bench) : "${build:=build-soak}" ;;
*) echo "soak: -D sipp or -D bench" >&2; exit 2 ;;
esac
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
[[ $build == /* ]] || build=$top/$build
export BUILD_DIR=$build TMPDIR=$out KEEP=1 BR_LOG_LEVEL=info
. "$top/tests/integration/lib.sh"

# verdict CSV: the RSS and descriptor rules on the samples (see the header).
verdict() {
	awk -F, -v dur="$duration" '
	NR == 1 { next }
	{ n++; t[n] = $1; r[n] = $2; f[n] = $4; c[n] = $5
	  if ($2 > rmax) rmax = $2; if ($4 > fmax) fmax = $4; csum += $5 }
	function median(a, lo, hi,   k, m, tmp, i, j, x) {
		m = 0
		for (i = lo; i <= hi; i++) tmp[++m] = a[i]
		for (i = 2; i <= m; i++) { x = tmp[i]; for (j = i - 1; j >= 1 && tmp[j] > x; j--) tmp[j + 1] = tmp[j]; tmp[j + 1] = x }
		return m ? tmp[int((m + 1) / 2)] : 0
	}
	END {
		if (n < 4) { print "too few samples: " n; print "VERDICT FAIL"; exit }
		warm = dur / 5; if (warm < 60) warm = 60
		w = 1; while (w < n && t[w] < warm) w++
		if (n - w + 1 < 4) { printf "only %d samples after the warm-up (%d s): run longer\n", n - w + 1, warm; print "VERDICT FAIL"; exit }
		mid = int((w + n) / 2)
		m1 = median(r, w, mid); m2 = median(r, mid + 1, n)
		allow = m1 / 10; if (allow < 4096) allow = 4096
		printf "samples %d over %d s; warm-up ends at sample %d (%d s)\n", n, t[n], w, t[w]
		printf "RSS kB: start %d, middle %d, end %d, max %d\n", r[1], r[int((1 + n) / 2)], r[n], rmax
		printf "RSS kB after warm-up: median of first half %d, of last half %d (growth allowed %d)\n", m1, m2, allow
		printf "fds: start %d, after warm-up %d, middle %d, end %d, max %d\n", f[1], f[w], f[int((1 + n) / 2)], f[n], fmax
		printf "bridge CPU: mean %.1f %%\n", csum / n
		ok = 1
		if (m2 - m1 > allow) { ok = 0; print "FAIL: RSS grows: last-half median exceeds first-half median by " m2 - m1 " kB" }
		if (f[n] > f[w] + 4) { ok = 0; print "FAIL: descriptors leak: " f[n] " open at the end, " f[w] " after warm-up" }
		if (fmax > f[w] + 64) { ok = 0; print "FAIL: descriptors peaked at " fmax }
		print (ok ? "VERDICT PASS" : "VERDICT FAIL")
	}' "$1"
}

# sample PID: ROW= one CSV row's figures of process PID: rss_kb,hwm_kb,fds,cpu_pct
# (CPU since the last call; SAMPLE_T and SAMPLE_C keep where that was).
hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
sample() {
	local now c rss hwm fds cpu
	now=$(date +%s.%N) c=$(ticks "$1")
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status")
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$1/status")
	fds=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
	cpu=$(awk -v a="$SAMPLE_C" -v b="$c" -v t0="$SAMPLE_T" -v t1="$now" -v hz="$hz" \
		'BEGIN { printf "%.1f", (b - a) / hz / (t1 - t0) * 100 }')
	SAMPLE_T=$now SAMPLE_C=$c
	ROW=$rss,$hwm,$fds,$cpu
}
sample_start() { SAMPLE_T=$(date +%s.%N) SAMPLE_C=$(ticks "$1"); }

# ---- -D bench ----
# shellcheck disable=SC2317 # its helpers run through wait_alive
soak_bench() {
	local LG SINK PB on_bridge="" on_tools="" pinning="one CPU: no pinning"
	local SIP_PORT PEER_PORT XMPP_PORT CTL_PORT SINK_PID
	need cmake taskset sqlite3 ss
	log "building presbridge and bench/ (Release, -O2) in $BUILD_DIR"
	{ cmake -S "$top" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
		"-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG" -DPB_WERROR=ON -DPB_TESTS=OFF \
		-DPB_BENCH=ON && cmake --build "$BUILD_DIR" -j "$(nproc)"; } \
		>"$T_DIR/build.log" 2>&1 || die "the build failed (see $T_DIR/build.log)"
	LG=$BUILD_DIR/bench/loadgen SINK=$BUILD_DIR/bench/xmppsink PB=$BUILD_DIR/presbridge
	if (($(nproc) >= 2)); then
		on_bridge="taskset -c 0" on_tools="taskset -c 1"
		pinning="bridge on CPU 0, load tools on CPU 1"
	fi
	SIP_PORT=$(free_port) PEER_PORT=$(free_port) XMPP_PORT=$(free_port) CTL_PORT=$(free_port)

	sink_cmd() { # sink_cmd LINE: one command to xmppsink's control port, its answer
		local ans=""
		exec 9<>"/dev/tcp/127.0.0.1/$CTL_PORT" || return 1
		echo "$1" >&9
		read -r -t 5 ans <&9 || true
		exec 9>&-
		echo "$ans"
	}
	sink_up() { [[ $(sink_cmd stats 2>/dev/null) == *up=1* ]]; }
	sink_answers() { [[ -n $(sink_cmd stats 2>/dev/null) ]]; }
	start_sink() { # a fresh sink: no generator, no counts, no old link
		[[ -z ${SINK_PID:-} ]] || stop_pid "$SINK_PID" 5
		# shellcheck disable=SC2086 # on_tools: a command and its arguments, or nothing
		spawn xmppsink $on_tools "$SINK" -p "$XMPP_PORT" -c "$CTL_PORT" -s bench-secret
		SINK_PID=$LAST_PID
		wait_alive "$SINK_PID" 10 sink_answers || die "xmppsink did not start"
	}
	# The configuration of bench/run.sh (bench/bridge-conf.sh).
	# shellcheck source=bench/bridge-conf.sh
	. "$top/bench/bridge-conf.sh"
	bench_bridge_conf "$top" "$SIP_PORT" "$XMPP_PORT" "$PEER_PORT" >"$T_DIR/soak.ini"
	start_bridge() { # start_bridge NAME: fresh state, a fresh sink, the link up
		[[ -z ${PID:-} ]] || stop_pid "$PID" 10
		start_sink
		rm -rf "$T_DIR/state"
		mkdir -p "$T_DIR/state"
		# shellcheck disable=SC2086
		spawn "$1" $on_bridge "$PB" -c "$T_DIR/soak.ini"
		PID=$LAST_PID
		wait_alive "$PID" 15 sink_up || die "the bridge's XMPP link did not come up (see $T_DIR/$1.log)"
	}
	# shellcheck disable=SC2086
	lg() { $on_tools "$LG" "$@" 2>>"$T_DIR/loadgen.log"; }
	kv() { sed -nE "s/.*(^| )$1=([^ ]*).*/\2/p" <<<"$2"; }

	# 1. Capacity: one saturation run per kind (window 500, as bench/run.sh), of
	# about -T seconds at the rates this machine measured before.
	local c_msg c_x2s c_notify c_pres res
	if [[ -n $caps ]]; then
		IFS=, read -r c_msg c_x2s c_notify c_pres <<<"$caps"
		[[ $c_msg =~ ^[0-9]+$ && $c_x2s =~ ^[0-9]+$ && $c_notify =~ ^[0-9]+$ &&
			$c_pres =~ ^[0-9]+$ ]] || die "-C wants four rates: MSG,X2S,NOTIFY,PRES"
		log "capacities from -C: msg $c_msg/s, x2s $c_x2s/s, notify $c_notify/s, pres $c_pres/s"
	else
		start_bridge presbridge-capacity
		sizes() { awk -v t="$cal_secs" -v r="$1" 'BEGIN { n = int(t * r); print (n < 5000 ? 5000 : n) }'; }
		log "capacity: saturation runs of about $cal_secs s per kind ($pinning)"
		res=$(lg msg --target "$SIP_PORT" --ctl "$CTL_PORT" -n "$(sizes 48000)" -w 500 -u 1000 --timeout 120) || true
		c_msg=$(kv rate "$res")
		res=$(lg x2s --listen "$PEER_PORT" --ctl "$CTL_PORT" -n "$(sizes 62000)" -w 500 -u 1000 --timeout 120) || true
		c_x2s=$(kv rate "$res")
		res=$(lg notify --listen "$PEER_PORT" --ctl "$CTL_PORT" -s "$subs" -n "$(sizes 21000)" -w 500 \
			--timeout 120) || true
		c_notify=$(kv rate "$res")
		res=$(lg sub --target "$SIP_PORT" --listen "$PEER_PORT" --ctl "$CTL_PORT" -s "$subs" \
			-n "$(sizes 31000)" -w 500 --timeout 120) || true
		c_pres=$(kv rate "$res")
		[[ -n $c_msg && -n $c_x2s && -n $c_notify && -n $c_pres ]] ||
			die "a saturation run failed (see $T_DIR/loadgen.log, $T_DIR/presbridge-capacity.log)"
		log "capacity: msg $c_msg/s, x2s $c_x2s/s, notify $c_notify/s, pres $c_pres/s"
	fi

	# 2. The rates: each kind at load/4 of its own capacity.
	local r_msg r_x2s r_notify r_pres share
	share=$(awk -v l="$load" 'BEGIN { printf "%.4f", l / 4 }')
	rate_of() { awk -v c="$1" -v s="$share" 'BEGIN { r = int(c * s + 0.5); print (r < 1 ? 1 : r) }'; }
	r_msg=$(rate_of "$c_msg") r_x2s=$(rate_of "$c_x2s") r_notify=$(rate_of "$c_notify")
	r_pres=$(rate_of "$c_pres")
	local plan=$T_DIR/plan.txt
	{
		echo "capacity (/s, one bridge core, $pinning): MESSAGE SIP->XMPP $c_msg," \
			"MESSAGE XMPP->SIP $c_x2s, NOTIFY->presence $c_notify, presence->NOTIFY $c_pres" \
			"${caps:+(from -C)}"
		echo "load: $load of the capacity in all, split evenly over the four kinds: each at" \
			"$share of its own capacity, so the sum of rate/capacity is $load"
		echo "rates (/s): msg $r_msg, x2s $r_x2s, notify $r_notify, pres $r_pres;" \
			"$((r_msg + r_x2s + r_notify + r_pres)) requests/s in all, plus churn $churn_rate/s" \
			"over $churn_pool watchers (not counted)"
		awk -v a="$r_msg" -v b="$c_msg" -v c="$r_x2s" -v d="$c_x2s" -v e="$r_notify" \
			-v f="$c_notify" -v g="$r_pres" -v h="$c_pres" \
			'BEGIN { printf "check: sum of rate/capacity = %.3f\n", a / b + c / d + e / f + g / h }'
		echo "subscriptions: $subs each way; duration $duration s, samples every $interval s"
	} | tee "$plan" >&2

	# 3. The soak: a fresh bridge, the load, the samples.
	start_bridge presbridge
	# shellcheck disable=SC2086
	spawn mix $on_tools "$LG" mix --target "$SIP_PORT" --listen "$PEER_PORT" --ctl "$CTL_PORT" \
		-s "$subs" -w 1000 -u 1000 --msg-rate "$r_msg" --x2s-rate "$r_x2s" \
		--notify-rate "$r_notify" --pres-rate "$r_pres" --churn "$churn_pool" \
		--churn-rate "$churn_rate" --duration "$duration" --report "$interval" --drain 30 \
		--timeout 300
	local LGP=$LAST_PID mixlog=$T_DIR/mix.log
	wait_alive "$LGP" 300 _log_has "$mixlog" '^mix: [0-9]+ s at' ||
		die "loadgen mix did not get through its setup (see $mixlog)"
	csv=$out/soak.csv
	echo "elapsed_s,rss_kb,hwm_kb,fds,cpu_pct,subs,pres,sent,delivered" >"$csv"
	local t0=$SECONDS rows last sent dlv
	sample_start "$PID"
	log "soak: ${duration} s; samples every ${interval} s to $csv, loadgen's counts in $mixlog"
	while ((SECONDS - t0 < duration)); do
		sleep "$interval"
		alive "$PID" || { fail "soak" "the bridge died after $((SECONDS - t0)) s"; break; }
		sample "$PID"
		rows=$(sqlite3 -separator , "file:$T_DIR/state/presbridge.db?mode=ro" \
			'SELECT (SELECT count(*) FROM sub), (SELECT count(*) FROM pres);' \
			2>/dev/null || echo ",")
		last=$(grep '^mix t=' "$mixlog" | tail -n 1 || true)
		sent=$(awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[a-z0-9]+_sent=/) { split($i, a, "="); s += a[2] } }
			END { print s + 0 }' <<<"$last")
		dlv=$(awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[a-z0-9]+_dlv=/) { split($i, a, "="); s += a[2] } }
			END { print s + 0 }' <<<"$last")
		echo "$((SECONDS - t0)),$ROW,$rows,$sent,$dlv" >>"$csv"
		# Its run ends with ours; before that it only ends on an error (its
		# final count is missing then, and the verdict says so).
		if ! alive "$LGP"; then
			((SECONDS - t0 >= duration)) ||
				log "loadgen mix ended early, after $((SECONDS - t0)) s (see $mixlog)"
			break
		fi
	done
	# The drain: loadgen waits up to 30 s for the rest, then prints its final counts.
	local i rc=0
	for ((i = 0; i < 45 * 10; i++)); do
		alive "$LGP" || break
		sleep 0.1
	done
	alive "$LGP" && stop_pid "$LGP" 5
	wait "$LGP" 2>/dev/null || rc=$?

	# 4. The verdict.
	summary=$out/summary.txt
	{
		cat "$plan"
		verdict "$csv"
		awk -F, 'NR > 1 && $6 != "" { n++; if (n == 1 || $6 < lo) lo = $6; if ($6 > hi) hi = $6; e = $6
				p = $7; s = $8; d = $9 }
			END { if (n) printf "store rows: sub %d to %d (end %d), pres %d at the end; load sent %d, delivered %d\n", lo, hi, e, p, s, d }' "$csv"
	} | tee "$summary"
	local final lost failed unanswered extra
	final=$(grep '^mix t=.* final=1' "$mixlog" | tail -n 1 || true)
	lost=$(kv lost "$final") failed=$(kv failed "$final")
	unanswered=$(kv unanswered "$final") extra=$(kv extra "$final")
	{
		awk '{ for (i = 3; i <= NF; i++) if ($i ~ /^(msg|x2s|notify|pres)_(sent|ok|failed|dlv|repeat)=|^(churn|refresh)/) printf "%s%s", (n++ % 6 ? " " : "\nloadgen: "), $i }
			END { print "" }' <<<"$final" | sed '/^$/d'
		grep '^mix: .* after .* of drain' "$mixlog" | tail -n 1 || echo "loadgen: no final count (see $mixlog)"
		if [[ -n $final && $rc == 0 && $lost == 0 && $failed == 0 && $unanswered == 0 &&
			$extra == 0 ]]; then
			echo "nothing lost: PASS"
		else
			echo "nothing lost: FAIL (lost ${lost:-?}, failed ${failed:-?}," \
				"unanswered ${unanswered:-?}, extra ${extra:-?}, loadgen exit $rc)"
		fi
		echo "output: $out (logs in $T_DIR)"
	} | tee -a "$summary"
	if grep -q '^VERDICT PASS' "$summary" && grep -q '^nothing lost: PASS' "$summary" &&
		alive "$PID"; then
		pass "soak"
	else
		fail "soak" "see $summary"
	fi
	stop_pid "$PID" 10 || true
	stop_pid "$SINK_PID" 5 || true
}

if [[ $driver == bench ]]; then
	soak_bench
	finish
fi
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"

pres_setup sqlite3
[[ -x $XMPPC ]] || cmake --build "$BUILD_DIR" --target xmppc >/dev/null 2>&1 ||
	die "$XMPPC missing (build the xmppc target)"

# sipp_bg NAME SCENARIO LOCAL_PORT [ARGS...]: SIPp in the background without a
# message trace (30 minutes of it would be gigabytes), statistics every 10 s.
sipp_bg() {
	local name=$1 scen=$2 port=$3
	shift 3
	spawn "sipp-$name" sipp -sf "$IT_DIR/sipp/$scen" -nd -nostdin -i 127.0.0.1 -mi 127.0.0.1 \
		-p "$port" -cp "$(free_port)" -mp "$(_sipp_media_port)" -t u1 \
		-trace_stat -stf "$T_DIR/sipp-$name.csv" -fd 10 \
		-trace_err -error_file "$T_DIR/sipp-$name.err" "$@"
	wait_alive "$LAST_PID" 5 port_listening "$port" udp || die "SIPp $name did not start"
}

ejabberd_start "$T_DIR/ejabberd"
xmppc_start alice alice@xmpp.test/soak alicepw || die "alice cannot log in"
xmppc_start bob bob@xmpp.test/soak bobpw || die "bob cannot log in"
xmppc_send alice '<presence/>'
xmppc_send bob '<presence/>'

PEER=$(free_port)
pres_conf "$T_DIR/soak.conf" udp "$PEER" "$T_DIR/state/presbridge.db"
pres_bridge_start presbridge "$T_DIR/soak.conf" || die "the bridge did not come up"
PID=$BR_PID

# A second NOTIFY in a dialog (the final one) must find a new call, not a dead one.
sipp_bg peer bridge_soak_peer_uas.xml "$PEER" -deadcall_wait 0 -aa
{
	echo SEQUENTIAL
	for ((i = 1; i <= 100; i++)); do echo "soak$i;bob"; done
} >"$T_DIR/watchers.csv"
n_msg=$(awk -v r="$msg_rate" -v d="$duration" 'BEGIN { printf "%d", r * d }')
n_sub=$(awk -v r="$sub_rate" -v d="$duration" 'BEGIN { printf "%d", r * d }')
target=$(pres_target udp)
((n_msg > 0)) && sipp_bg messages message_uac.xml "$(free_port)" -r "$msg_rate" -m "$n_msg" \
	-l 500 -key ruri alice@xmpp.test -key from soak@sip.test -key body "soak message" "$target"
((n_sub > 0)) && sipp_bg subscriptions bridge_soak_sub_uac.xml "$(free_port)" -r "$sub_rate" \
	-m "$n_sub" -l 500 -inf "$T_DIR/watchers.csv" "$target"

# The XMPP side: messages to SIP users, bob's presence, alice's subscriptions.
xmpp_load() {
	local end=$((SECONDS + duration)) i=0 tick
	tick=$(awk -v r="$x_rate" 'BEGIN { printf "%.3f", (r > 0 ? 1 / r : 1) }')
	local shows=(away dnd xa chat "")
	while ((SECONDS < end)); do
		i=$((i + 1))
		if awk -v r="$x_rate" 'BEGIN { exit !(r > 0) }'; then
			xmppc_send alice "<message to=\"u$((i % 50))@sip.test\" type=\"chat\"><body>soak $i</body></message>"
		fi
		local per_s=${x_rate%.*}
		((per_s < 1)) && per_s=1
		if ((i % (5 * per_s) == 0)); then
			local s=${shows[$((i / (5 * per_s) % 5))]}
			xmppc_send bob "<presence>${s:+<show>$s</show>}<status>soak $i</status></presence>"
		fi
		if ((i % (2 * per_s) == 0)); then
			local k=$((i / (2 * per_s) % 20))
			xmppc_send alice "<presence type=\"subscribe\" to=\"s$k@sip.test\"/>"
			xmppc_send alice "<presence type=\"unsubscribe\" to=\"s$(((k + 18) % 20))@sip.test\"/>"
		fi
		sleep "$tick"
	done
}
xmpp_load &
track_pid $!

# Sampling.
csv=$out/soak.csv
echo "elapsed_s,rss_kb,hwm_kb,fds,cpu_pct,subs" >"$csv"
t0=$SECONDS
sample_start "$PID"
log "soak: ${duration} s, MESSAGE ${msg_rate}/s, SUBSCRIBE ${sub_rate}/s, XMPP ${x_rate}/s; samples every ${interval} s to $csv"
while ((SECONDS - t0 < duration)); do
	sleep "$interval"
	alive "$PID" || { fail "soak" "the bridge died after $((SECONDS - t0)) s"; break; }
	sample "$PID"
	subs=$(sqlite3 "file:$T_DIR/state/presbridge.db?mode=ro" 'SELECT count(*) FROM sub;' 2>/dev/null || echo "")
	echo "$((SECONDS - t0)),$ROW,$subs" >>"$csv"
done

# Verdict.
summary=$out/summary.txt
verdict "$csv" | tee "$summary"
for s in messages subscriptions peer; do
	f=$T_DIR/sipp-$s.csv
	[[ -s $f ]] || continue
	# SIPp's statistics: the last row's cumulative successful and failed calls.
	awk -F';' -v s="$s" 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "SuccessfulCall(C)") a = i; if ($i == "FailedCall(C)") b = i } }
		END { printf "SIPp %s: %s calls succeeded, %s failed\n", s, $a, $b }' "$f" | tee -a "$summary"
done
echo "output: $out (logs in $T_DIR)" | tee -a "$summary"
if grep -q '^VERDICT PASS' "$summary" && alive "$PID"; then
	pass "soak"
else
	fail "soak" "see $summary"
fi
stop_pid "$PID" 10 || true
finish
