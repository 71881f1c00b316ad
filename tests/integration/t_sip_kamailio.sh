#!/bin/bash
# The SIP leg against Kamailio's TLS module, both ways, with mutual TLS:
# the bridge pings Kamailio; SIPp reaches the bridge through Kamailio (UDP in,
# TLS out); Kamailio refuses a bridge certificate without clientAuth (TLS alert
# 43, Lync's behaviour) and the bridge refuses a Kamailio certificate that does
# not name the configured host.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/kamailio.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/sip/lib.sh"

sip_certs
"$IT_DIR/ca.sh" issue "$CA_DIR" bridge-noclient --dns bridge.xmpp.test --eku serverAuth >/dev/null

BR_UDP=$(free_port) BR_TCP=$(free_port) BR_TLS=$(free_port) BR_TCP6=$(free_port) BR_TLS6=$(free_port)
export KAM_XMPP_ROUTE=tls:127.0.0.1:$BR_TLS KAM_XMPP_DOMAIN=xmpp.test
kamailio_start "$T_DIR/kamailio"
pass "kamailio started (tls $KAM_TLS_PORT), routing xmpp.test to the bridge over TLS"

kam_peer() { # kam_peer HOST
	printf '\n[peer kam]\nhost = %s\naddress = 127.0.0.1:%s\ntransport = tls\ndomains = sip.test\ntrusted = yes\n' \
		"$1" "$KAM_TLS_PORT"
}
sip_conf "$T_DIR/br" "$(kam_peer kamailio.sip.test)"
sip_bridge_start bridge "$T_DIR/br" --ping kam
main_log=$BR_LOG

check "bridge -> kamailio: OPTIONS over mutual TLS -> 200" \
	wait_log "$main_log" 'OPTIONS to \[peer kam\]: 200$' 10
check "bridge -> kamailio: server certificate verified and named kamailio.sip.test" \
	grep -Eq "peer kamailio.sip.test \(127.0.0.1:$KAM_TLS_PORT\): TLS \(TLSv1.[23]\) established, certificate verified" "$main_log"

check "sipp -> kamailio (UDP) -> bridge (TLS): OPTIONS bob@xmpp.test -> 200" \
	sipp_run kam-opt options_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" -key ruri bob@xmpp.test
check "kamailio -> bridge: kamailio's client certificate identifies [peer kam]" \
	wait_log "$main_log" 'peer kamailio.sip.test \(127.0.0.1:[0-9]+\): TLS \(TLSv1.[23]\) established, certificate verified, \[peer kam\]' 5
check "sipp -> kamailio -> bridge: MESSAGE to an unknown user -> 404" \
	sipp_run kam-msg sip_message_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" -key ruri bob@xmpp.test
check "sipp -> kamailio -> bridge: Lync IM INVITE (Record-Route by kamailio) -> 480, ACK" \
	sipp_run kam-inv sip_lync_invite_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" -key ruri bob@xmpp.test
ack_absorbed() {
	# kamailio acknowledges the 480 hop by hop; the bridge must not retransmit it
	sleep 1
	! grep -q 'no ACK\|did not answer' "$main_log" &&
		[[ $(log_count "$main_log" 'handling INVITE sip:bob@xmpp.test from \[peer kam\]') -eq 1 ]]
}
check "the INVITE was processed once and its 480 acknowledged" ack_absorbed
check "kamailio never challenged the bridge, nor the bridge kamailio" \
	bash -c "! grep -Eq 'challenged|(answered|ends with|with) 40[17]([^0-9]|\$)' '$main_log'"

noclient() {
	local dir=$T_DIR/br-noclient
	(
		BR_UDP=$(free_port) BR_TCP=$(free_port) BR_TLS=$(free_port) BR_TCP6=$(free_port) BR_TLS6=$(free_port)
		BR_CERT=$CA_DIR/bridge-noclient.crt BR_KEY=$CA_DIR/bridge-noclient.key
		sip_conf "$dir" "$(kam_peer kamailio.sip.test)"
	)
	sip_bridge_start bridge-noclient "$dir" --ping kam
	wait_log "$BR_LOG" 'OPTIONS to \[peer kam\]: 503 \(no response\)' 10 &&
		grep -q 'cert: .*bridge-noclient.crt lacks the clientAuth EKU: Lync/SfB refuses it' "$BR_LOG" &&
		grep -Eq 'peer kamailio.sip.test \(127.0.0.1:[0-9]+\): (TLS handshake failed: )?TLS alert 43 unsupported_certificate from the peer: the peer refused our certificate; it lacks the clientAuth EKU \(the bridge was the TLS client; Lync/SfB refuses federation peers without it\)' "$BR_LOG"
}
check "our certificate without clientAuth: kamailio refuses it; start-up warning and decoded alert logged" noclient

wrong_name() {
	local dir=$T_DIR/br-wrong
	(
		BR_UDP=$(free_port) BR_TCP=$(free_port) BR_TLS=$(free_port) BR_TCP6=$(free_port) BR_TLS6=$(free_port)
		sip_conf "$dir" "$(kam_peer lync01.sip.test)"
	)
	sip_bridge_start bridge-wrong "$dir" --ping kam
	wait_log "$BR_LOG" 'OPTIONS to \[peer kam\]: 503' 10 &&
		grep -q 'its certificate names kamailio.sip.test, sip.test, not lync01.sip.test, the host of \[peer kam\]' "$BR_LOG"
}
check "kamailio's certificate does not name the configured host: refused, logged" wrong_name

alive "$(pgrep -f "sipleg_run -c $T_DIR/br/presbridge.conf" | head -1)" &&
	pass "the bridge is still running" || fail "the bridge is still running" "it exited"

mapfile -t procs < <(snapshot_procs)
for p in "${T_PIDS[@]}"; do stop_pid "$p" 10; done
check_nothing_left "${procs[@]}"
finish
