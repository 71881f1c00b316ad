#!/bin/bash
# Harness smoke test: the test servers and clients work on this machine, and
# nothing is left running afterwards.  It does not need presbridge itself.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/kamailio.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/xmpp.sh"

export CA_DIR=$T_DIR/certs

# --- certificates
certs_ok() {
	"$IT_DIR/ca.sh" init "$CA_DIR" &&
		"$IT_DIR/ca.sh" issue "$CA_DIR" xmpp --dns xmpp.test &&
		"$IT_DIR/ca.sh" issue "$CA_DIR" expired --dns x.sip.test --expired &&
		openssl verify -CAfile "$CA_DIR/ca.crt" "$CA_DIR/xmpp.crt" >/dev/null &&
		! openssl verify -CAfile "$CA_DIR/ca.crt" "$CA_DIR/expired.crt" >/dev/null 2>&1
}
check "ca: issue and verify certificates (expired one rejected)" certs_ok

# --- ejabberd + xmppc
if [[ ! -x $XMPPC ]]; then
	fail "xmppc: built" "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"
	finish
fi
ejabberd_start "$T_DIR/ejabberd"
pass "ejabberd: started (c2s $EJ_C2S_PORT, component $EJ_COMPONENT_PORT)"

xmpp_roster() {
	xmppc_run alice@xmpp.test/smoke alicepw --timeout 10 >"$T_DIR/xmppc-roster.out" 2>&1 <<'EOF'
send <iq type="get" id="roster1"><query xmlns="jabber:iq:roster"/></iq>
expect <iq&&id="roster1"&&type="result"&&jabber:iq:roster
send <presence/>
expect <presence&&from="alice@xmpp.test/smoke"
quit
EOF
	grep -q '^CONNECTED alice@xmpp.test/smoke' "$T_DIR/xmppc-roster.out"
}
track_log "$T_DIR/xmppc-roster.out"
check "xmppc: alice logs in over STARTTLS, gets her roster" xmpp_roster

xmpp_rogue_refused() {
	local rc=0
	"$XMPPC" --jid alice@xmpp.test --password alicepw --port "$EJ_C2S_PORT" \
		--ca "$CA_DIR/rogue-ca.crt" --timeout 5 </dev/null >"$T_DIR/xmppc-rogue.out" 2>&1 || rc=$?
	((rc == 3)) && grep -q 'certificate rejected' "$T_DIR/xmppc-rogue.out"
}
check "xmppc: server certificate from an unknown CA is refused" xmpp_rogue_refused

xmpp_chat() {
	xmppc_start alice alice@xmpp.test/desk alicepw &&
		xmppc_start bob bob@xmpp.test/phone bobpw &&
		xmppc_send bob '<message to="alice@xmpp.test/desk" type="chat"><body>hi alice</body></message>' &&
		xmppc_expect alice '<message&&from="bob@xmpp.test/phone"&&<body>hi alice</body>' 5 &&
		xmppc_absent bob '<message' 0.2 &&
		xmppc_stop alice && xmppc_stop bob
}
check "xmppc: long-lived clients, bob's chat message reaches alice" xmpp_chat

component_tls() {
	timeout 10 openssl s_client -connect "127.0.0.1:$EJ_COMPONENT_PORT" -brief \
		-CAfile "$CA_DIR/ca.crt" -verify_hostname xmpp.test -verify_return_error \
		</dev/null >"$T_DIR/s_client.out" 2>&1 &&
		grep -q 'Verification: OK' "$T_DIR/s_client.out"
}
check "ejabberd: component port accepts a verified TLS handshake" component_tls

# --- Kamailio + SIPp.  A SIPp UAS behind a TLS front (socat) stands in for the
# bridge: Kamailio routes xmpp.test there (KAM_XMPP_ROUTE).
sipp_start bridge message_uas.xml tls "" -m 1
bridge_uas=$LAST_PID
KAM_XMPP_ROUTE=tls:127.0.0.1:$SIPP_TLS_PORT kamailio_start "$T_DIR/kamailio"
pass "kamailio: started (udp $KAM_UDP_PORT, tcp $KAM_TCP_PORT, tls $KAM_TLS_PORT)"

check "sipp: OPTIONS over UDP -> 200" sipp_run options-udp options_uac.xml udp "127.0.0.1:$KAM_UDP_PORT"
check "sipp: OPTIONS over TCP -> 200" sipp_run options-tcp options_uac.xml tcp "127.0.0.1:$KAM_TCP_PORT"
check "sipp: OPTIONS over TLS (socat, client certificate) -> 200" \
	sipp_run options-tls options_uac.xml tls "127.0.0.1:$KAM_TLS_PORT"

tls_without_cert_refused() {
	local rc=0
	SIPP_TIMEOUT=5 SIPP_TLS_CERT=none sipp_run options-nocert options_uac.xml tls \
		"127.0.0.1:$KAM_TLS_PORT" || rc=$?
	((rc != 0)) && wait_log "$KAM_LOG" 'peer did not return a certificate' 5
}
check "kamailio: TLS client without a certificate is refused" tls_without_cert_refused

check "sipp: REGISTER bob@sip.test -> 200" \
	sipp_run register register_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" -key from bob@sip.test
check "kamailio: SUBSCRIBE presence of bob -> 2xx + NOTIFY" \
	sipp_run subscribe subscribe_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" -key ruri bob@sip.test

xmpp_route() {
	sipp_run message message_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
		-key ruri alice@xmpp.test -key body "hello bridge" &&
		sipp_wait "$bridge_uas" 5 &&
		grep -q '^MESSAGE sip:alice@xmpp.test' "$T_DIR/sipp-bridge.msg" &&
		grep -q '^Via: SIP/2.0/TLS' "$T_DIR/sipp-bridge.msg"
}
check "kamailio: MESSAGE for xmpp.test goes to the bridge hook over mutual TLS" xmpp_route

# --- teardown: everything we started must be gone
mapfile -t procs < <(snapshot_procs)
kamailio_stop
ejabberd_stop
stop_all
check_nothing_left "${procs[@]}"

finish
