#!/bin/bash
# Mutual TLS on the SIP leg: every case asserts the outcome and the log line
# that explains it (cause and fix), as an operator would read it.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/sip/lib.sh"

sip_certs
ca=$IT_DIR/ca.sh
issue() { "$ca" issue "$CA_DIR" "$@" >/dev/null; }
issue noclient --dns sipp.sip.test --eku serverAuth
issue wrongname --dns other.sip.test
issue wildcard --dns '*.sip.test'
issue rogue --dns sipp.sip.test --ca rogue
issue expired --dns sipp.sip.test --expired
issue cnonly --cn sipp.sip.test
issue noeku --dns sipp.sip.test --eku none

sip_conf "$T_DIR/br" "
[peer sipp]
host = sipp.sip.test
transport = tls
domains = sip.test
trusted = yes
"
sip_bridge_start bridge "$T_DIR/br" --handshake-ms 1500
pass "sipleg_run started (TLS handshake limit 1.5 s)"

opt() { sip_req OPTIONS sip:bridge.xmpp.test | sip_tls "$BR_TLS" "$1"; }
# tls_case NAME CERT EXPECTED-STATUS-REGEX LOG-REGEX
tls_case() {
	local cert=$2 want=$3 logre=$4 out
	out=$(opt "$cert")
	if [[ $want == refused ]]; then
		[[ -z $out ]] || return 1
	else
		grep -Eq "^SIP/2.0 $want" <<<"$out" || return 1
	fi
	wait_log "$BR_LOG" "$logre" 3
}

check "good certificate (SAN sipp.sip.test, both EKUs): accepted, 200" \
	tls_case good sipp '200 OK' 'peer sipp.sip.test \(127.0.0.1:[0-9]+\): TLS \(TLSv1.[23]\) established, certificate verified, \[peer sipp\]'
check "certificate without clientAuth EKU: refused, alert 43 unsupported_certificate logged" \
	tls_case noclient noclient refused 'TLS handshake failed: its certificate \(.*CN=sipp.sip.test\) lacks the clientAuth EKU it needs as TLS client; reissue it with serverAuth and clientAuth; we sent TLS alert 43 unsupported_certificate'
check "certificate naming no configured peer: 403, logged with its names" \
	tls_case wrongname wrongname '403 Forbidden \(not a configured peer\)' 'TLS established but its certificate names other.sip.test, which is the host of no TLS \[peer\]'
check "wildcard certificate: never matches (RFC 5922), 403" \
	tls_case wildcard wildcard '403 Forbidden' 'names \*.sip.test, which is the host of no TLS \[peer\] \(wildcards never match'
check "certificate from an unknown CA: refused, alert 48 unknown_ca logged" \
	tls_case rogue rogue refused 'issued by a CA that \[sip\] ca does not hold .*; we sent TLS alert 48 unknown_ca'
check "expired certificate: refused, alert 45 certificate_expired logged" \
	tls_case expired expired refused 'the certificate has expired .*; we sent TLS alert 45 certificate_expired'
check "no client certificate: refused, alert 116 certificate_required logged" \
	tls_case none none refused 'we sent TLS alert 116 certificate_required: the peer sent no client certificate'
check "CN-only certificate (no SAN): the CN names the peer, 200" \
	tls_case cnonly cnonly '200 OK' 'peer sipp.sip.test \(127.0.0.1:[0-9]+\): TLS .* \[peer sipp\]'
check "certificate without an EKU extension (unrestricted, RFC 5280): 200" \
	tls_case noeku noeku '200 OK' 'certificate verified, \[peer sipp\]'

once_per_cause() {
	opt expired >/dev/null
	opt expired >/dev/null
	[[ $(log_count "$BR_LOG" 'warn .*alert 45 certificate_expired') -eq 1 ]]
}
check "a repeated refusal is logged once per peer and cause" once_per_cause

plain_on_tls() {
	sip_req OPTIONS sip:bridge.xmpp.test | sip_tcp "$BR_TLS" >/dev/null
	wait_log "$BR_LOG" 'the peer does not speak TLS here \(plain SIP sent to a TLS port' 3
}
check "plain SIP on the TLS port: closed, logged in plain words" plain_on_tls

handshake_timeout() {
	local t0 t1 ok=0
	t0=${EPOCHREALTIME/[.,]/}
	# connects, sends nothing: the bridge must close it after 1.5 s
	timeout 6 socat -t 0.1 - "TCP:127.0.0.1:$BR_TLS" < <(sleep 5) >/dev/null 2>&1 &
	local silent=$!
	sleep 0.2
	# meanwhile a good peer is served at once
	opt sipp | grep -q '^SIP/2.0 200' && ok=1
	wait "$silent" || true
	t1=${EPOCHREALTIME/[.,]/}
	((ok == 1)) && (((t1 - t0) / 1000 >= 1300 && (t1 - t0) / 1000 < 5000)) &&
		wait_log "$BR_LOG" 'no TLS handshake within 1 s' 3
}
check "a client that never completes the handshake is closed after the limit; others unaffected" \
	handshake_timeout

ipv6_tls() { sip_req OPTIONS sip:bridge.xmpp.test | sip_tls "$BR_TLS6" sipp bridge.xmpp.test ::1 | grep -q '^SIP/2.0 200'; }
check "TLS over IPv6 ([::1]) with a client certificate: 200" ipv6_tls

reload() {
	# [peer sipp] becomes [peer other] for other.sip.test: sipp's certificate now
	# names no peer, other.sip.test's does.
	sed -i 's/^\[peer sipp\]/[peer other]/; s/^host = sipp.sip.test/host = other.sip.test/' \
		"$T_DIR/br/presbridge.conf"
	kill -HUP "$BR_PID"
	wait_log "$BR_LOG" 'sip: reloaded: 1 peers' 3 &&
		opt wrongname | grep -q '^SIP/2.0 200' &&
		opt sipp | grep -q '^SIP/2.0 403'
}
check "SIGHUP: peers reloaded, certificates matched against the new hosts" reload

alive "$BR_PID" && pass "the bridge is still running after every refusal" ||
	fail "the bridge is still running after every refusal" "it exited"

mapfile -t procs < <(snapshot_procs)
for p in "${T_PIDS[@]}"; do stop_pid "$p" 5; done
check_nothing_left "${procs[@]}"
finish
