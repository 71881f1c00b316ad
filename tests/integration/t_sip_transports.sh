#!/bin/bash
# The SIP leg over UDP, TCP and TLS (IPv4 and IPv6) with SIPp and raw clients:
# OPTIONS round trips, Lync-shaped requests, trust (403, never a challenge),
# bad input (400, 405, 501, 513, broken framing), keep-alives and UDP
# retransmissions. Runs tests/integration/sip/sipleg_run (the leg alone).
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/sip/lib.sh"

sip_certs
export SIPP_TLS_NAME=bridge.xmpp.test
SIPP_TLS_ADDR=127.0.0.1:$(free_port) # where [peer sipp] would be reached; nobody listens
# [peer sipp]: TLS, recognised by its certificate (sipp.sip.test, issued by sipp.sh).
# [peer plain]: UDP/TCP from 127.0.0.1. Anything from 127.0.0.2 is nobody.
sip_conf "$T_DIR/br" "
[peer sipp]
host = sipp.sip.test
address = $SIPP_TLS_ADDR
transport = tls
domains = sip.test
trusted = yes

[peer plain]
host = plain.sip.test
address = 127.0.0.1
transport = udp
domains = plain.sip.test
trusted = yes
"
# Every 700 ms the bridge pings [peer sipp]: over a connection sipp.sip.test
# opened, when there is one (connection reuse), else by connecting to it.
sip_bridge_start bridge "$T_DIR/br" --ping sipp --ping-ms 700 --idle-ms 3000
pass "sipleg_run: listening on udp/tcp/tls 127.0.0.1 and tcp/tls [::1]"

# --- OPTIONS round trips with SIPp
check "sipp: OPTIONS over UDP -> 200" sipp_run opt-udp options_uac.xml udp "127.0.0.1:$BR_UDP"
check "sipp: OPTIONS over TCP -> 200" sipp_run opt-tcp options_uac.xml tcp "127.0.0.1:$BR_TCP"
check "sipp: OPTIONS over TLS (client certificate sipp.sip.test) -> 200" \
	sipp_run opt-tls options_uac.xml tls "127.0.0.1:$BR_TLS"

options_headers() {
	local out
	out=$(sip_req OPTIONS sip:bob@xmpp.test "Accept: application/sdp" "Ms-Keep-Alive: UAC;hop-hop=yes" |
		sip_tcp "$BR_TCP")
	grep -q '^SIP/2.0 200 OK' <<<"$out" &&
		grep -q '^Allow: .*BENOTIFY' <<<"$out" &&
		grep -q '^Accept: .*application/pidf+xml' <<<"$out" &&
		grep -q '^Supported: ms-piggyback-first-notify' <<<"$out" &&
		grep -q '^ms-keep-alive: UAS' <<<"$out"
}
check "OPTIONS to a user: 200 with Allow, Accept, Supported, ms-keep-alive" options_headers

ipv6() {
	sip_req OPTIONS sip:bridge.xmpp.test | sip_tcp "$BR_TCP6" ::1 | grep -q '^SIP/2.0 403' &&
		sip_req OPTIONS sip:bridge.xmpp.test | sip_tls "$BR_TLS6" sipp bridge.xmpp.test ::1 |
		grep -q '^SIP/2.0 200 OK'
}
check "IPv6: TLS [::1] -> 200; TCP from ::1 (no peer's address) -> 403" ipv6

# --- requests for the bridge
check "sipp: MESSAGE over TLS to an unknown user -> 404, no challenge" \
	sipp_run msg-tls sip_message_uac.xml tls "127.0.0.1:$BR_TLS" -key ruri bob@xmpp.test
check "sipp: MESSAGE over UDP -> 404, no challenge" \
	sipp_run msg-udp sip_message_uac.xml udp "127.0.0.1:$BR_UDP" -key ruri bob@xmpp.test \
	-key from alice@plain.sip.test
never_challenged() {
	! grep -Eq '^SIP/2.0 40[17]|WWW-Authenticate|Proxy-Authenticate' "$T_DIR"/sipp-*.msg &&
		[[ $(log_count "$BR_LOG" 'handling MESSAGE sip:bob@xmpp.test from \[peer sipp\]') -ge 1 ]] &&
		[[ $(log_count "$BR_LOG" 'handling MESSAGE sip:bob@xmpp.test from \[peer plain\]') -ge 1 ]]
}
check "trusted peers are served and never challenged (no 401/407 anywhere)" never_challenged

check "sipp: Lync IM INVITE (call-type=im, Ms-Text-Format) over TLS -> 100, 480, ACK" \
	sipp_run invite-tls sip_lync_invite_uac.xml tls "127.0.0.1:$BR_TLS" -key ruri bob@xmpp.test
check "the INVITE's first message is read from Ms-Text-Format" \
	wait_log "$BR_LOG" 'first message in Ms-Text-Format: Hello from Lync' 3
check "sipp: Lync SUBSCRIBE (ms-piggyback-first-notify) over TCP -> 404" \
	sipp_run sub-tcp sip_lync_subscribe_uac.xml tcp "127.0.0.1:$BR_TCP" -key ruri bob@xmpp.test

# --- routing
unmapped() {
	local out
	out=$(sip_req MESSAGE sip:bob@elsewhere.test | sip_udp 127.0.0.1 "$BR_UDP")
	grep -q '^SIP/2.0 404 Not Found (domain not bridged)' <<<"$out" &&
		grep -q '^ms-diagnostics: 1000;reason="domain not bridged: elsewhere.test is not in domains.map"' <<<"$out"
}
check "a request for a domain not in domains.map -> 404 with ms-diagnostics" unmapped
sip_homed() {
	sip_req MESSAGE sip:bob@sip.test | sip_udp 127.0.0.1 "$BR_UDP" |
		grep -q '^ms-diagnostics: .*sip.test is SIP-homed'
}
check "a request for a SIP-homed domain -> 404 (no loop back into SIP)" sip_homed

# --- trust
forbidden() {
	local out
	out=$(sip_req MESSAGE sip:bob@xmpp.test | sip_udp 127.0.0.2 "$BR_UDP")
	grep -q '^SIP/2.0 403 Forbidden (not a configured peer)' <<<"$out" &&
		grep -q '^ms-diagnostics: 1000;reason="not a configured peer' <<<"$out" &&
		wait_log "$BR_LOG" 'peer 127.0.0.2:[0-9]+: MESSAGE refused with 403: its source address is the address of no plain' 3 &&
		[[ $(log_count "$BR_LOG" 'handling MESSAGE.*from \[peer -\]') -eq 0 ]]
}
check "a source that is no peer (127.0.0.2) gets 403 and a log line" forbidden
no_peer_log_once() {
	sip_req OPTIONS sip:bridge.xmpp.test | sip_udp 127.0.0.2 "$BR_UDP" | grep -q '^SIP/2.0 403' &&
		[[ $(log_count "$BR_LOG" 'peer 127.0.0.2:.*refused with 403') -eq 1 ]]
}
check "the 403 is logged once per source, not per request" no_peer_log_once

# --- bad input on one TCP connection: each answered, the connection survives
bad_input() {
	local big out
	big=$(head -c 70000 /dev/zero | tr '\0' a)
	out=$({
		printf 'MESSAGE sip:bob@xmpp.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKbad1\r\nFrom: <sip:a@sip.test>;tag=1\r\nTo: <sip:bob@xmpp.test>\r\nCall-ID: bad1\r\nCSeq: one MESSAGE\r\nContent-Length: 0\r\n\r\n'
		sleep 0.2
		printf 'MESSAGE sip:bob@xmpp.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKbig1\r\nFrom: <sip:a@sip.test>;tag=1\r\nTo: <sip:bob@xmpp.test>\r\nCall-ID: big1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 70000\r\n\r\n%s' "$big"
		sleep 0.2
		sip_req FROBNICATE sip:bob@xmpp.test
		sleep 0.2
		sip_req REGISTER sip:xmpp.test
		sleep 0.2
		printf '\r\n\r\n'
		sleep 0.2
		sip_req OPTIONS sip:bridge.xmpp.test
		sleep 0.3
	} | sip_tcp "$BR_TCP")
	printf '%s\n' "$out" >"$T_DIR/bad_input.out"
	grep -q '^SIP/2.0 400 Bad Request (no readable CSeq header)' <<<"$out" &&
		grep -Eq '^SIP/2.0 513 Message Too Large \(70[0-9]{3} bytes; the bridge accepts at most 65536\)' <<<"$out" &&
		grep -q '^SIP/2.0 501 Not Implemented (unknown method)' <<<"$out" &&
		grep -q '^SIP/2.0 405 Method Not Allowed' <<<"$out" &&
		grep -q '^Allow: INVITE, ACK' <<<"$out" &&
		grep -q '^SIP/2.0 200 OK' <<<"$out" &&
		[[ $(grep -c '^SIP/2.0' <<<"$out") -eq 5 ]]
}
track_log "$T_DIR/bad_input.out"
check "TCP: malformed -> 400, oversize -> 513, unknown method -> 501, REGISTER -> 405, CRLF ping; the same connection then serves OPTIONS" bad_input
pong() {
	{ printf '\r\n\r\n'; sleep 0.5; } | timeout 5 socat -t 1 - "TCP:127.0.0.1:$BR_TCP" | od -An -c | tr -d ' ' | grep -qx '\\r\\n'
}
check "TCP: a CRLFCRLF ping gets a CRLF pong (RFC 5626)" pong
no_length() {
	printf 'MESSAGE sip:bob@xmpp.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKnolen\r\nFrom: <sip:a@sip.test>;tag=1\r\nTo: <sip:bob@xmpp.test>\r\nCall-ID: nolen\r\nCSeq: 1 MESSAGE\r\n\r\n' |
		sip_tcp "$BR_TCP" | grep -q '^SIP/2.0 400 Bad Request (Content-Length is missing'
}
check "TCP: a request without Content-Length -> 400" no_length
broken_framing() {
	local t0 t1
	t0=$(date +%s)
	timeout 6 socat -t 0.2 - "TCP:127.0.0.1:$BR_TCP" >/dev/null 2>&1 \
		< <(printf 'INVITE sip:bob@xmpp.test SIP/2.0\r\nContent-Length: 12abc\r\n\r\n'; sleep 3) || true
	t1=$(date +%s)
	# closed by the bridge at once (socat ends when the bridge closes, not after 3 s)
	((t1 - t0 <= 2)) &&
		wait_log "$BR_LOG" 'unreadable stream \(Content-Length is not a number\); connection closed' 3 &&
		sip_req OPTIONS sip:bridge.xmpp.test | sip_tcp "$BR_TCP" | grep -q '^SIP/2.0 200'
}
check "TCP: broken framing closes that connection only; the bridge serves the next one" broken_framing
garbage_udp() {
	head -c 3000 /dev/urandom | sip_udp 127.0.0.1 "$BR_UDP" >/dev/null
	printf 'NOT SIP AT ALL\r\n\r\n' | sip_udp 127.0.0.1 "$BR_UDP" >/dev/null
	sip_req OPTIONS sip:bridge.xmpp.test | sip_udp 127.0.0.1 "$BR_UDP" | grep -q '^SIP/2.0 200'
}
check "UDP: random bytes and garbage are dropped; the bridge answers the next request" garbage_udp

# --- connections
reuse() {
	local out
	out=$(timeout 8 socat -t 0.3 - "OPENSSL:127.0.0.1:$BR_TLS,cert=$CA_DIR/sipp.crt,key=$CA_DIR/sipp.key,cafile=$CA_DIR/ca.crt,commonname=bridge.xmpp.test" \
		< <(sip_req OPTIONS sip:bridge.xmpp.test; sleep 2) 2>/dev/null || true)
	grep -q '^SIP/2.0 200 OK' <<<"$out" &&
		grep -q '^OPTIONS sip:sipp.sip.test SIP/2.0' <<<"$out" &&
		grep -q '^Via: SIP/2.0/TLS bridge.xmpp.test:[0-9]*;branch=z9hG4bK' <<<"$out"
}
check "the bridge sends to a peer over the connection the peer opened (reuse)" reuse
unreachable() {
	wait_log "$BR_LOG" "OPTIONS to \[peer sipp\]: 503 \(no response\)" 3 &&
		[[ $(log_count "$BR_LOG" "warn .*peer sipp.sip.test \($SIPP_TLS_ADDR\): cannot connect: Connection refused") -eq 1 ]]
}
check "an unreachable peer: 503 to the bridge, logged once however often it retries" unreachable
idle() {
	timeout 8 socat -t 0.2 - "TCP:127.0.0.1:$BR_TCP" < <(sleep 5) >/dev/null 2>&1 &
	local pid=$!
	sleep 0.3
	local port
	port=$(ss -Htn "dport = :$BR_TCP" 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n]; exit }')
	wait "$pid" || true
	[[ -n $port ]] && grep -q "peer plain.sip.test (127.0.0.1:$port): no traffic for 3 s; connection closed" "$BR_LOG"
}
check "an idle connection is closed after the idle limit (3 s here)" idle

fuzz() {
	local f i
	for f in "$REPO_DIR"/tests/data/sip/*.sip; do
		for i in 1 2 3 4 5 6; do
			perl -e 'srand($ARGV[1]); local $/; open(F, "<", $ARGV[0]) or die; $_ = <F>;
				s/\n/\r\n/g; s/\$\{LEN\}/12/; s/\$\{TAG\}/x/;
				for (1 .. 6) { substr($_, int(rand(length)), 1) = chr(int(rand(256))) }
				print' "$f" "$i" >"$T_DIR/fuzz.sip"
			timeout 2 socat -u -t 0.01 "FILE:$T_DIR/fuzz.sip" "UDP:127.0.0.1:$BR_UDP" 2>/dev/null || true
			timeout 2 socat -u -t 0.01 "FILE:$T_DIR/fuzz.sip" "TCP:127.0.0.1:$BR_TCP" 2>/dev/null || true
		done
	done
	alive "$BR_PID" &&
		sip_req OPTIONS sip:bridge.xmpp.test | sip_udp 127.0.0.1 "$BR_UDP" | grep -q '^SIP/2.0 200' &&
		sip_req OPTIONS sip:bridge.xmpp.test | sip_tcp "$BR_TCP" | grep -q '^SIP/2.0 200'
}
check "mangled copies of every golden message over UDP and TCP: the bridge survives and serves" fuzz

# --- UDP retransmission: processed once, answered twice identically
retransmission() {
	local req=$T_DIR/retrans.req out n cid r1 r2
	sip_req MESSAGE sip:carol@xmpp.test >"$req"
	cid=$(sed -n 's/^Call-ID: \(.*\)\r$/\1/p' "$req")
	out=$({
		cat "$req"
		sleep 0.3
		cat "$req"
		sleep 0.5
	} | timeout 5 socat -t 1 - "UDP:127.0.0.1:$BR_UDP,bind=127.0.0.1" 2>/dev/null || true)
	printf '%s\n' "$out" >"$T_DIR/retrans.out"
	n=$(log_count "$BR_LOG" "handling MESSAGE sip:carol@xmpp.test .*call-id $cid")
	r1=$(awk 'BEGIN{RS="SIP/2.0 404"} NR==2' <<<"$out")
	r2=$(awk 'BEGIN{RS="SIP/2.0 404"} NR==3' <<<"$out")
	[[ $(grep -c '^SIP/2.0 404' <<<"$out") -eq 2 ]] && [[ -n $r1 && $r1 == "$r2" ]] && ((n == 1))
}
track_log "$T_DIR/retrans.out"
check "UDP: the same MESSAGE twice -> processed once, two identical 404s" retransmission

# --- outbound: a peer that challenges the bridge
challenge() {
	local dir=$T_DIR/br2 rc=0
	sipp_start chal sip_uas_401.xml udp "" -m 1 || return 1
	local sipp_pid=$LAST_PID
	(
		BR_UDP=$(free_port) BR_TCP=$(free_port) BR_TLS=$(free_port) BR_TCP6=$(free_port) BR_TLS6=$(free_port)
		sip_conf "$dir" "
[peer chal]
host = chal.sip.test
address = 127.0.0.1:$SIPP_PORT
transport = udp
domains = sip.test
trusted = yes
"
	)
	sip_bridge_start bridge-chal "$dir" --ping chal
	local log=$BR_LOG
	sipp_wait "$sipp_pid" 10 || rc=$?
	((rc == 0)) &&
		wait_log "$log" 'OPTIONS to \[peer chal\]: 401' 5 &&
		grep -q 'peer chal: challenged the bridge.s OPTIONS with 401 .*the peer must exclude the bridge from authentication' "$log"
}
check "a peer answering 401 is logged: it must exclude the bridge from authentication" challenge

# --- teardown
mapfile -t procs < <(snapshot_procs)
for p in "${T_PIDS[@]}"; do stop_pid "$p" 5; done
check_nothing_left "${procs[@]}"
finish
