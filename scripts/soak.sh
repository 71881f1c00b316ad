#!/bin/bash
# Soak: mixed presence and IM load through one bridge for a long time, sampling
# its memory and descriptors (issue 9). Everything runs on loopback with the
# integration harness (tests/integration): a private ejabberd, SIPp, xmppc.
#
#   scripts/soak.sh [-d SECONDS] [-m MSG_RATE] [-s SUB_RATE] [-x XMPP_RATE]
#                   [-i INTERVAL] [-o OUTDIR] [-b BUILD_DIR]
#
#   -d  duration of the load, seconds (default 1800)
#   -m  SIP -> XMPP MESSAGEs per second (SIPp, to alice@xmpp.test; default 20)
#   -s  SIP subscriptions per second (SIPp, 100 watchers in turn subscribe to
#       bob@xmpp.test, take the NOTIFY, unsubscribe; 4 transactions each; default 4)
#   -x  XMPP -> SIP messages per second (alice to 50 SIP users in turn, answered by
#       a SIPp peer; default 2). Besides: bob changes his presence every 5 s, and
#       alice subscribes to a SIP user and unsubscribes 4 s later, every 2 s (the
#       bridge's SUBSCRIBE, a NOTIFY with PIDF, its unsubscribe).
#   -i  sampling interval, seconds (default 10)
#   -o  output folder (default /tmp/soak-<date>)
#   -b  build folder with presbridge and xmppc (default build)
#
# The defaults are about 40 SIP transactions and 4 XMPP stanzas a second, well
# under what one core carries; the issue asks for half the measured capacity,
# which bench/ measures: pass it with -m/-s/-x.
#
# Output, in OUTDIR: soak.csv (elapsed_s, rss_kb, hwm_kb, fds, cpu_pct, sub rows in
# the store), summary.txt, and the scratch folder of the harness with every log
# (presbridge, ejabberd, SIPp statistics).
#
# Verdict (exit 1 on failure): the bridge must still be running at the end, and
# after a warm-up (the first fifth of the run, at least 60 s):
#   - RSS does not grow without bound: the median of the last half of the samples
#     is at most max(4 MiB, 10 %) above the median of the first half;
#   - no descriptor leak: at the end at most 4 more descriptors are open than at
#     the end of the warm-up, and never more than 64 more.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
duration=1800 msg_rate=20 sub_rate=4 x_rate=2 interval=10
out=/tmp/soak-$(date +%Y%m%d-%H%M%S) build=build
while getopts d:m:s:x:i:o:b:h opt; do
	case $opt in
	d) duration=$OPTARG ;;
	m) msg_rate=$OPTARG ;;
	s) sub_rate=$OPTARG ;;
	x) x_rate=$OPTARG ;;
	i) interval=$OPTARG ;;
	o) out=$OPTARG ;;
	b) build=$OPTARG ;;
	*) sed -n '2,35p' "$0"; exit 2 ;;
	esac
done
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
[[ $build == /* ]] || build=$top/$build
export BUILD_DIR=$build TMPDIR=$out KEEP=1 BR_LOG_LEVEL=info
. "$top/tests/integration/lib.sh"
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
hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
t0=$SECONDS
prev_t=$(date +%s.%N) prev_c=$(ticks "$PID")
log "soak: ${duration} s, MESSAGE ${msg_rate}/s, SUBSCRIBE ${sub_rate}/s, XMPP ${x_rate}/s; samples every ${interval} s to $csv"
while ((SECONDS - t0 < duration)); do
	sleep "$interval"
	alive "$PID" || { fail "soak" "the bridge died after $((SECONDS - t0)) s"; break; }
	now=$(date +%s.%N) c=$(ticks "$PID")
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status")
	hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$PID/status")
	fds=$(ls "/proc/$PID/fd" | wc -l)
	cpu=$(awk -v a="$prev_c" -v b="$c" -v t0="$prev_t" -v t1="$now" -v hz="$hz" \
		'BEGIN { printf "%.1f", (b - a) / hz / (t1 - t0) * 100 }')
	subs=$(sqlite3 "file:$T_DIR/state/presbridge.db?mode=ro" 'SELECT count(*) FROM sub;' 2>/dev/null || echo "")
	echo "$((SECONDS - t0)),$rss,$hwm,$fds,$cpu,$subs" >>"$csv"
	prev_t=$now prev_c=$c
done

# Verdict.
summary=$out/summary.txt
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
	}' "$csv" | tee "$summary"
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
