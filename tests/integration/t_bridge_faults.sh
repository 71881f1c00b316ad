#!/bin/bash
# Faults around the bridge (issue 9): whatever a peer sends or whatever fails, it
# keeps serving and loses nothing it acknowledged. Each case prints the recovery
# time it observed as a "TIME <case>: ..." line.
#   - reset: the SIP peer's TCP connection reset (RST) in the middle of a message;
#   - silence: half a SIP message, then nothing: closed after [sip] idle_timeout,
#     while other peers are served;
#   - TLS: a client that connects to the TLS port and never starts the handshake:
#     closed after the leg's 10 s handshake limit, others served (t_sip_tls checks
#     the same limit on the leg alone, with a 1.5 s limit: this measures the daemon,
#     with the default idle_timeout, which would otherwise close it first);
#   - flood: SUBSCRIBEs far past max_subscriptions / max_subscriptions_per_user:
#     500 with Retry-After, the store stays at the limit, and VmRSS bounded: a
#     third flood after the first two's transactions ended (64*T1 = 32 s) does not
#     grow it;
#   - invalid UTF-8 and control characters in SIP bodies, display names and URIs,
#     and in XMPP bodies and JIDs: refused with the error of err.c's tables;
#   - kill -9 in a burst of SUBSCRIBEs: every subscription SIPp saw a 200 for is in
#     the SQLite file, restored with its dialog and NOTIFYed after the restart.
# ejabberd stopped and restarted is t_xmpp_link.sh and t_bridge_presence.sh
# (ejabberd_restart); t_xmpp_link.sh prints its recovery time the same way.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"

pres_setup sqlite3
RAWSIP=$BUILD_DIR/tests/integration/rawsip
[[ -x $RAWSIP ]] || cmake --build "$BUILD_DIR" --target rawsip >/dev/null 2>&1 ||
	die "$RAWSIP missing (build the rawsip target)"

now_ms() { date +%s%3N; }
timing() { printf 'TIME %s\n' "$*"; log "TIME $*"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
nfds() { ls "/proc/$1/fd" | wc -l; }
_gone() { ! alive "$1"; }
# calls NAME CODE: distinct Call-IDs SIPp got a CODE response for
calls() {
	awk -v c="$2" '$1 == "SIP/2.0" && $2 == c {r = 1} r && /^Call-ID:/ {print $2; r = 0}' \
		"$T_DIR/sipp-$1.msg" | tr -d '\r' | sort -u | grep -c . || true
}

# A SIP request from the peer (127.0.0.1, trusted by address), CRLF line ends and
# a right Content-Length. sip_req METHOD RURI FROM_HEADER CALLID [BODY [TYPE]]
sip_req() {
	local method=$1 ruri=$2 from=$3 cid=$4 body=${5:-} type=${6:-text/plain;charset=UTF-8}
	printf '%s %s SIP/2.0\r\n' "$method" "$ruri"
	printf 'Via: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-%s;rport\r\n' "$cid"
	printf 'Max-Forwards: 70\r\nFrom: %s;tag=f-%s\r\nTo: <%s>\r\n' "$from" "$cid" "$ruri"
	printf 'Call-ID: %s\r\nCSeq: 1 %s\r\n' "$cid" "$method"
	printf 'Contact: <sip:peer@127.0.0.1:5099;transport=tcp>\r\n'
	[[ $method == SUBSCRIBE ]] && printf 'Event: presence\r\nExpires: 600\r\n'
	[[ -n $body ]] && printf 'Content-Type: %s\r\n' "$type"
	printf 'Content-Length: %s\r\n\r\n%s' "$(printf '%s' "$body" | wc -c)" "$body"
}
# sip_ask NAME: the request on stdin over a new TCP connection; the answer's
# status line to $T_DIR/NAME.out (whole header there too).
sip_ask() { "$RAWSIP" 127.0.0.1 "$BR_TCP" --reply 5 >"$T_DIR/$1.out" || true; }
answered() { # answered NAME REGEX: the answer's header matches
	grep -Eq -- "$2" "$T_DIR/$1.out" || { log "$1: got $(head -c 600 "$T_DIR/$1.out")"; return 1; }
}
options_ok() { sipp_run "opt-$1-$RANDOM" options_uac.xml "$1" "$(pres_target "$1")"; }

ejabberd_start "$T_DIR/ejabberd"
xmppc_start bob bob@xmpp.test/desk bobpw || die "bob cannot log in"
xmppc_send bob '<presence/>'

# Short idle limit (the case of the silent peer) and small subscription limits (the
# flood); UDP peer for SIPp, TCP from 127.0.0.1 is the same peer (by address).
FP=$(free_port)
pres_conf "$T_DIR/f.conf" udp "$FP" "$T_DIR/f/state.db"
sed -i -e 's|^\[sip\]$|[sip]\nidle_timeout = 3|' \
	-e 's|^log_level = .*|log_level = debug\nmax_subscriptions = 20\nmax_subscriptions_per_user = 2|' \
	"$T_DIR/f.conf"
# A sanitized daemon keeps freed memory in quarantine: keep that small, or RSS
# measures ASan and not the bridge.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8
pres_bridge_start faults "$T_DIR/f.conf" || die "the bridge did not come up"
FPID=$BR_PID

# --- reset in the middle of a message
full=$(sip_req SUBSCRIBE sip:bob@xmpp.test '<sip:rst@sip.test>' rst-1)
half=${full:0:180}
t0=$(now_ms)
check "reset: half a SUBSCRIBE, then a TCP reset" \
	sh -c 'printf "%s" "$1" | "$2" 127.0.0.1 "$3" --rst' _ "$half" "$RAWSIP" "$BR_TCP"
check "reset: the bridge closes that connection, naming the reset" \
	wait_log "$BR_LOG" 'reset by peer; connection closed' 5
t1=$(now_ms)
check "reset: OPTIONS over TCP answered 200 right after" options_ok tcp
t2=$(now_ms)
check "reset: nothing of the half SUBSCRIBE reached the bridge" \
	bash -c "! grep -q 'rst@sip\.test' '$BR_LOG'"
timing "reset: closed $((t1 - t0)) ms after the RST; OPTIONS answered $((t2 - t0)) ms after it"

# --- half a message then silence
sip_req MESSAGE sip:bob@xmpp.test '<sip:slow@sip.test>' slow-1 'never finished' >"$T_DIR/full.sip"
head -c 150 "$T_DIR/full.sip" >"$T_DIR/half.sip"
fds0=$(nfds "$FPID")
"$RAWSIP" 127.0.0.1 "$BR_TCP" --wait 15 <"$T_DIR/half.sip" >"$T_DIR/silent.out" 2>&1 &
SILENT=$!
track_pid "$SILENT"
sleep 1
check "silence: meanwhile OPTIONS over UDP answered 200" options_ok udp
check "silence: meanwhile OPTIONS over TCP answered 200" options_ok tcp
wait "$SILENT"
check "silence: the half message's connection closed by the bridge" grep -q '^closed after' "$T_DIR/silent.out"
s=$(sed -n 's/^closed after \([0-9.]*\) s/\1/p' "$T_DIR/silent.out")
check "silence: closed after idle_timeout (3 s), not before, at most 5 s" \
	awk -v s="${s:-0}" 'BEGIN { exit !(s >= 2.9 && s <= 5) }'
check "silence: the log says why" wait_log "$BR_LOG" 'no traffic for 3 s; connection closed' 2
check "silence: nothing of the half message reached the bridge" \
	bash -c "! grep -q 'slow@sip.test' '$BR_LOG'"
timing "silence: half a MESSAGE then nothing: closed after ${s:-?} s (idle_timeout = 3)"
sleep 0.5
fds1=$(nfds "$FPID")
check "silence: no descriptor left behind (${fds0} before, ${fds1} after)" test "$fds1" -le "$fds0"

# --- flood past the limits: 20 in all, 2 per watcher
flood_csv() { # flood_csv FILE N: N watchers, each asking for 3 presentities
	{
		echo SEQUENTIAL
		for ((i = 1; i <= $2; i++)); do
			for p in bob alice carol; do echo "fl$i;$p"; done
		done
	} >"$1"
}
flood() { # flood NAME N RATE: 3*N SUBSCRIBEs; SIPp's message log in sipp-NAME.msg
	flood_csv "$T_DIR/$1.csv" "$2"
	SIPP_TIMEOUT=60 sipp_run "$1" bridge_fault_flood_uac.xml udp "$(pres_target udp)" \
		-inf "$T_DIR/$1.csv" -m $((3 * $2)) -r "$3" -l 200 || true
}
count_in() { grep -c -- "$2" "$T_DIR/sipp-$1.msg" || true; }
rss0=$(rss_kb "$FPID")
t0=$(now_ms)
flood flood1 400 400
t1=$(now_ms)
rss1=$(rss_kb "$FPID")
ok=$(calls flood1 200)
busy=$(calls flood1 500)
ra=$(count_in flood1 '^Retry-After: [0-9]')
check "flood: exactly max_subscriptions (20) SUBSCRIBEs accepted (got $ok)" test "$ok" -eq 20
check "flood: the other 1180 answered 500 (got $busy)" test "$busy" -eq 1180
check "flood: every 500 carries Retry-After ($ra)" test "$ra" -ge "$busy"
check "flood: Retry-After is the limit's 60 s" _log_has "$T_DIR/sipp-flood1.msg" '^Retry-After: 60'
check "flood: the per-watcher limit is logged as such" _log_has "$BR_LOG" \
	'subscription sip:fl[0-9]+@sip\.test -> [a-z]+@xmpp\.test refused: the watcher has as many subscriptions as allowed'
check "flood: the global limit is logged as such" _log_has "$BR_LOG" \
	'subscription sip:fl[0-9]+@sip\.test -> [a-z]+@xmpp\.test refused: the bridge holds as many subscriptions as allowed'
refused_lines() { grep -c 'refused: the \(watcher\|bridge\) \(has\|holds\) as many' "$BR_LOG" || true; }
check "flood: 1180 refusals are a few log lines, not a log flood ($(refused_lines))" \
	test "$(refused_lines)" -le 8
flood flood2 400 400
t2=$(now_ms)
rss2=$(rss_kb "$FPID")
# The same pairs again: the 20 that stand are renewed in new dialogs, the rest refused.
check "flood: the second flood is refused alike (20 renewed, 1180 x 500)" \
	test "$(calls flood2 200)-$(calls flood2 500)" = 20-1180
check "flood: the store holds 20 subscriptions, not more" \
	test "$(sqlite3 "$T_DIR/f/state.db" 'SELECT count(*) FROM sub;')" -eq 20
check "flood: OPTIONS still answered" options_ok udp
timing "flood: 1200 SUBSCRIBEs in $((t1 - t0)) ms (20 accepted, 1180 x 500); VmRSS ${rss0} -> ${rss1} -> ${rss2} kB"

# --- invalid UTF-8 and control characters
xmppc_start alice alice@xmpp.test/desk alicepw || die "alice cannot log in"
xmppc_send alice '<presence/>'
# Her own presence back: ejabberd has her as available, so a message to her bare
# JID is delivered rather than left to offline handling (RFC 6121 8.5.2.1.1).
xmppc_expect alice '<presence&&from="alice@xmpp.test/desk"' 10 || log "alice's presence did not come back"
sip_req MESSAGE sip:alice@xmpp.test '<sip:u1@sip.test>' u8-1 $'caf\xe9 \xff\xfe' | sip_ask u8body
check "UTF-8: MESSAGE body with invalid UTF-8 -> 400 (bad body)" answered u8body '^SIP/2.0 400 '
check "UTF-8: ... and says why" answered u8body 'reason="the message is not valid UTF-8'
sip_req MESSAGE sip:alice@xmpp.test '<sip:u2@sip.test>' u8-2 $'bell\x07 esc\x1b[31m end' | sip_ask ctlbody
check "control: MESSAGE body with BEL and ESC -> 202 (relayed, RFC 3428 section 7)" answered ctlbody '^SIP/2.0 202 '
check "control: ... delivered with the controls dropped" \
	xmppc_expect alice 'from="u2@sip.test"&&<body>bell esc[31m end</body>' 5
sip_req MESSAGE sip:alice@xmpp.test $'"Ali\x01ce \xff" <sip:u3@sip.test>' u8-3 'bad name' |
	sip_ask ctlname
check "names: a display name with a control byte and invalid UTF-8 -> 202" answered ctlname '^SIP/2.0 202 '
check "names: ... delivered from the address, the name left out" \
	xmppc_expect alice 'from="u3@sip.test"&&<body>bad name</body>' 5
check "names: no control byte reached XMPP" bash -c "! grep -q \$'\\x01' '$(xmppc_log alice)'"
sip_req MESSAGE 'sip:al%01ice@xmpp.test' '<sip:u4@sip.test>' u8-4 hi | sip_ask ctluri
check "URI: %01 in the Request-URI user -> 400 (address malformed)" answered ctluri '^SIP/2.0 400 '
sip_req MESSAGE 'sip:al%FFice@xmpp.test' '<sip:u5@sip.test>' u8-5 hi | sip_ask u8uri
check "URI: %FF (not UTF-8) in the Request-URI user -> 400 (address malformed)" answered u8uri '^SIP/2.0 400 '
sip_req MESSAGE sip:alice@xmpp.test '<sip:u%07x@sip.test>' u8-6 hi | sip_ask ctlfrom
check "URI: %07 in the From user -> 400 (address malformed)" answered ctlfrom '^SIP/2.0 400 '
# XMPP: XML 1.0 has no C0 controls nor U+FFFE (ejabberd ends the stream of a
# client that sends them); C1 controls are XML characters and reach the bridge.
SIPP_LOCAL_PORT=$FP sipp_start msguas message_uas.xml udp "" -m 1 || die "SIPp MESSAGE UAS did not start"
MSGUAS=$LAST_PID
xmppc_send alice '<message to="u6@sip.test" type="chat" id="c1"><body>c1 &#x85;&#x9f; end</body></message>'
check "XMPP: a body with C1 controls reaches the SIP peer as a MESSAGE" sipp_wait "$MSGUAS" 10
check "XMPP: ... with them as UTF-8 (valid, so kept)" \
	_log_has "$T_DIR/sipp-msguas.msg" $'^c1 \xc2\x85\xc2\x9f end'
xmppc_send alice '<message to="a&#x85;b@sip.test" type="chat" id="j1"><body>to a JID with a C1 control</body></message>'
check "XMPP: a JID localpart with a C1 control -> an error back, from ejabberd or the bridge" \
	xmppc_expect alice '<message&&type="error"&&id="j1"' 5
sip_req MESSAGE sip:alice@xmpp.test '<sip:u7@sip.test>' u8-7 'still there' | sip_ask after
check "XMPP: alice's stream and the bridge still carry messages" \
	xmppc_expect alice 'from="u7@sip.test"&&<body>still there</body>' 5
check "UTF-8: the bridge is alive" alive "$FPID"
check "UTF-8: and still serves OPTIONS" options_ok tcp

# The floods' server transactions live 64*T1 = 32 s (RFC 3261 Timer J, for
# retransmissions): once they are gone, a third flood must reuse their memory.
wait_until 40 bash -c "(( \$(date +%s%3N) - $t2 > 34000 ))"
flood flood3 400 400
rss3=$(rss_kb "$FPID")
check "flood: a third flood after the transactions ended is refused alike" \
	test "$(calls flood3 200)-$(calls flood3 500)" = 20-1180
check "flood: VmRSS bounded: the third flood grows it by at most 2 MiB (${rss2} -> ${rss3} kB)" \
	test $((rss3 - rss2)) -le 2048
timing "flood: VmRSS ${rss0} kB before, ${rss2} kB at the peak (2400 live transactions), ${rss3} kB after a third flood"
check "flood: the bridge is alive" alive "$FPID"
stop_pid "$FPID" 10 || true

# --- kill -9 in a burst of SUBSCRIBEs
P=$(free_port)
BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
pres_conf "$T_DIR/k.conf" udp "$P" "$T_DIR/k/state.db"
pres_bridge_start kill-1 "$T_DIR/k.conf" || die "the bridge (kill -9 case) did not come up"
{
	echo SEQUENTIAL
	for ((i = 1; i <= 3000; i++)); do echo "kw$i"; done
} >"$T_DIR/burst.csv"
SIPP_LOCAL_PORT=$P sipp_start burst bridge_fault_burst_uac.xml udp "$(pres_target udp)" \
	-inf "$T_DIR/burst.csv" -m 3000 -r 100 -l 3000 || die "SIPp burst did not start"
BURST=$LAST_PID
sleep 3
t0=$(now_ms)
kill -9 "$BR_PID"
wait_until 5 _gone "$BR_PID" 2>/dev/null || wait_until 5 bash -c "! kill -0 $BR_PID 2>/dev/null"
# What SIPp got before the kill is what the bridge acknowledged: stop SIPp now
# (it writes its message log out on exit).
stop_pid "$BURST" 5 || true
acked=$(awk '/^SIP\/2.0 200/ {ok = 1} ok && /^Call-ID:/ {print $2; ok = 0}' \
	"$T_DIR/sipp-burst.msg" | tr -d '\r' | sort -u)
n=$(printf '%s\n' "$acked" | grep -c . || true)
check "kill -9: SIPp had acknowledgements before the kill ($n)" test "$n" -ge 50
stored=$(sqlite3 "$T_DIR/k/state.db" 'SELECT call_id FROM sub;' 2>&1 | sort -u)
missing=$(comm -23 <(printf '%s\n' "$acked") <(printf '%s\n' "$stored") | grep -c . || true)
check "kill -9: every acknowledged subscription is in the SQLite file ($n acked, $missing missing)" \
	test "$missing" -eq 0
# The restarted bridge NOTIFYs each restored watcher at its Contact: SIPp's port.
SIPP_LOCAL_PORT=$P sipp_start notified bridge_fault_notified_uas.xml udp "" -m "$n" ||
	die "SIPp UAS for the restored NOTIFYs did not start"
NOTIFIED=$LAST_PID
pres_bridge_start kill-2 "$T_DIR/k.conf" || die "the bridge did not come back"
t1=$(now_ms)
# Meanwhile: a TLS client that connects and never speaks (default idle_timeout).
"$RAWSIP" 127.0.0.1 "$BR_TLS" --wait 25 </dev/null >"$T_DIR/tlsmute.out" 2>&1 &
TLSMUTE=$!
track_pid "$TLSMUTE"
restored=$(grep -c 'restored sip:kw[0-9]*@sip\.test -> bob@xmpp\.test (sw-[a-z]*) with its SIP dialog' "$BR_LOG" || true)
check "kill -9: the restart restores each of them with its dialog ($restored >= $n)" test "$restored" -ge "$n"
check "kill -9: each restored watcher gets a NOTIFY in its dialog" sipp_wait "$NOTIFIED" 40
t2=$(now_ms)
got=$(awk '/^NOTIFY / {nt = 1} nt && /^Call-ID:/ {print $2; nt = 0}' "$T_DIR/sipp-notified.msg" |
	tr -d '\r' | sort -u)
lost=$(comm -23 <(printf '%s\n' "$acked") <(printf '%s\n' "$got") | grep -c . || true)
check "kill -9: no acknowledged subscription without a NOTIFY after the restart ($lost)" test "$lost" -eq 0
check "kill -9: the NOTIFYs resume the dialogs' CSeq past the gap (>= 1000)" \
	_log_has "$T_DIR/sipp-notified.msg" '^CSeq: 1[0-9]{3} NOTIFY'
timing "kill -9: $n subscriptions acknowledged in ~3 s at 100/s; restarted and link up $((t1 - t0)) ms after the kill; all $n NOTIFYed $((t2 - t0)) ms after it"

wait "$TLSMUTE"
s=$(sed -n 's/^closed after \([0-9.]*\) s/\1/p' "$T_DIR/tlsmute.out")
check "TLS: a client that never starts the handshake is closed after 10 s (at most 12)" \
	awk -v s="${s:-0}" 'BEGIN { exit !(s >= 9.9 && s <= 12) }'
check "TLS: the log says why" _log_has "$BR_LOG" 'no TLS handshake within 10 s'
check "TLS: meanwhile OPTIONS over UDP answered 200" options_ok udp
timing "TLS: silent client closed after ${s:-?} s (handshake limit 10 s)"
stop_pid "$BR_PID" 10 || true

finish
