#!/bin/bash
# The bridge as an XMPP server, federated server-to-server with a real ejabberd
# (RFC 6120 streams, STARTTLS required), in a private network namespace with its
# own DNS: ejabberd serves xmpp.test on 127.0.0.2:5269, the bridge hosts sip.test
# on 127.0.0.3:5269, each found through its _xmpp-server._tcp SRV record. SIPp
# plays the Lync pool. Per authentication case, each side's view is asserted:
#   external  both trust the test CA: SASL EXTERNAL (XEP-0178) both ways;
#   fallback  ejabberd trusts another CA: it offers EXTERNAL, refuses our
#             certificate with <failure/>, and our stream falls back to dialback
#             on the same stream (XEP-0220); its own stream to us uses EXTERNAL;
#   dialback  [s2s] auth = dialback: dialback both ways, the bridge as
#             originating, receiving and authoritative server (XEP-0185 keys).
# In each: presence and subscriptions both ways, IM both ways (page mode), and
# then the peer-side failures: a domain not on the allow list, a spoofed from.
. "$(dirname "$0")/netns.sh"
netns_enter "$@"
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/bridge/im_lib.sh"
need dnsmasq unshare

pres_setup perl
[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"
"$IT_DIR/ca.sh" issue "$CA_DIR" s2s --dns sip.test --eku serverAuth,clientAuth
# A second CA that ejabberd trusts in the fallback case: ours is then unknown to it.
"$IT_DIR/ca.sh" init "$T_DIR/other-ca"
export SIPP_TLS_NAME=bridge.xmpp.test

netns_dns host:xmpp.test=127.0.0.2 host:sip.test=127.0.0.3 \
	srv:_xmpp-server._tcp.xmpp.test=xmpp.test:5269 \
	srv:_xmpp-server._tcp.sip.test=sip.test:5269

msg_has() { grep -Ezq -- "$2" "$T_DIR/sipp-$1.msg" 2>/dev/null; }
received() { (($(im_sip_count "$1" "$2") >= $3)); }

run_case() { # run_case NAME BRIDGE_AUTH EJ_CA
	local name=$1 auth=$2 ejca=$3
	EJ_S2S_PORT=5269 EJ_S2S_ADDR=127.0.0.2 EJ_S2S_DIALBACK=1 EJ_S2S_CA=$ejca \
		ejabberd_start "$T_DIR/ejabberd-$name" || die "ejabberd ($name) did not start"
	xmppc_start "bob-$name" bob@xmpp.test/desk bobpw || die "bob cannot log in"
	xmppc_send "bob-$name" '<presence/>'
	local B="bob-$name"

	UAS_PORT=$(free_port)
	BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
	BR_S2S_ADDR=127.0.0.3 BR_S2S_AUTH=$auth BR_IM=page \
		pres_conf "$T_DIR/bridge-$name.conf" tcp "$UAS_PORT"
	check "$name: presbridge -n accepts the S2S configuration" \
		"$BUILD_DIR/presbridge" -c "$T_DIR/bridge-$name.conf" -n
	BR_S2S_ADDR=127.0.0.3 pres_bridge_start "bridge-$name" "$T_DIR/bridge-$name.conf" ||
		die "the bridge ($name) did not come up"
	local target
	target=$(pres_target tcp)

	# --- a Lync user watches bob (the bridge sends subscribe over S2S)
	sipp_start "watch-$name" bridge_pres_sub_uac.xml tcp "$target" \
		-key ruri bob@xmpp.test -key from "watch$name@sip.test" -m 1 -timeout 60s ||
		die "SIPp watcher did not start"
	local WATCHER=$LAST_PID
	check "$name: SIP watcher: bob@xmpp.test is asked to authorize (subscribe crossed S2S)" \
		xmppc_expect "$B" "<presence&&type=\"subscribe\"&&from=\"watch$name@sip.test\"" 20
	xmppc_send "$B" "<presence type=\"subscribed\" to=\"watch$name@sip.test\"/>"
	check "$name: SIP watcher: the approval turns the SIP subscription active" \
		wait_until 15 msg_has "watch-$name" 'Subscription-State: active'
	xmppc_send "$B" '<presence><show>away</show><status>on lunch</status><priority>5</priority></presence>'
	check "$name: SIP watcher: bob's away + status arrive as PIDF over S2S" \
		wait_until 15 msg_has "watch-$name" '<rpid:away/>.*on lunch|on lunch.*<rpid:away/>'
	# (The scenario's refresh and sign-out steps are not asserted here: over S2S
	# ejabberd sends bob's presence twice in a row after the approval, its
	# broadcast and its answer to our probe, and SIPp loses a NOTIFY that arrives
	# while it answers the previous one. The component suites assert them.)
	stop_pid "$WATCHER" 2 || true
	check "$name: SIP watcher: ejabberd's roster of bob holds watch$name@sip.test" \
		eval "ejctl get_roster bob xmpp.test 2>/dev/null | grep -Eq 'watch$name@sip\\.test.*(from|both)'"

	# --- bob watches a Lync user (the bridge is the SIP subscriber)
	im_uas_start "notifier-$name" bridge_pres_notifier_uas.xml "$UAS_PORT" \
		-key presentity "notifier$name@sip.test" -m 1 || die "SIPp notifier did not start"
	local NOTIFIER=$LAST_PID
	xmppc_send "$B" "<presence type=\"subscribe\" to=\"notifier$name@sip.test\"/>"
	check "$name: XMPP watcher: bob gets subscribed from the Lync user over S2S" \
		xmppc_expect "$B" "<presence&&type=\"subscribed\"&&from=\"notifier$name@sip.test\"" 20
	check "$name: XMPP watcher: the NOTIFY's busy + note reach bob as dnd + status" \
		xmppc_expect "$B" "<presence&&from=\"notifier$name@sip.test\"&&<show>dnd</show>&&<status>in a meeting</status>" 15
	xmppc_send "$B" "<presence type=\"unsubscribe\" to=\"notifier$name@sip.test\"/>"
	check "$name: XMPP watcher: unsubscribe reaches the notifier (SUBSCRIBE Expires: 0)" \
		sipp_wait "$NOTIFIER" 25

	# --- IM, page mode, both ways
	check "$name: IM SIP -> XMPP: MESSAGE answered 200" \
		sipp_run "page-in-$name" bridge_im_page_uac.xml tcp "$target" \
		-key ruri bob@xmpp.test -key from alice@sip.test
	check "$name: IM SIP -> XMPP: bob gets the text from alice@sip.test" \
		xmppc_expect "$B" '<message&&type="chat"&&from="alice@sip.test"&&zweite Zeile' 15
	im_uas_start "page-out-$name" message_uas.xml "$UAS_PORT" -m 1 -timeout 30s ||
		die "SIPp UAS did not start"
	local UAS=$LAST_PID
	xmppc_send "$B" "<message type=\"chat\" to=\"alice@sip.test\" id=\"po-$name\"><body>über S2S $name</body></message>"
	check "$name: IM XMPP -> SIP: the MESSAGE reaches the Lync side" sipp_wait "$UAS" 20
	check "$name: IM XMPP -> SIP: its body is bob's text" \
		eval "[[ \$(im_sip_body page-out-$name MESSAGE) == 'über S2S $name' ]]"

	stop_pid "$BR_PID" 5 || true
	xmppc_stop "$B" || true
	ejabberd_stop
}

# ---- 1. SASL EXTERNAL both ways
run_case external "external, dialback" "$CA_DIR/ca.crt"
check "external: the bridge's stream to xmpp.test authenticated with SASL EXTERNAL" \
	_log_has "$T_DIR/bridge-external.log" 'sip\.test -> xmpp\.test: stream up \(.*TLSv1\.[23].*SASL EXTERNAL\)'
check "external: ejabberd's stream to sip.test authenticated with SASL EXTERNAL" \
	_log_has "$T_DIR/bridge-external.log" 'sip\.test: incoming stream from xmpp\.test authenticated by SASL EXTERNAL'
check "external: ejabberd accepted the bridge's certificate (outbound from its side: inbound EXTERNAL)" \
	_log_has "$T_DIR/ejabberd-external/logs/ejabberd.log" 'Accepted inbound s2s EXTERNAL authentication sip\.test -> xmpp\.test'
check "external: the bridge looked up _xmpp-server._tcp.xmpp.test" \
	_log_has "$NETNS_DNS_LOG" 'query\[SRV\] _xmpp-server\._tcp\.xmpp\.test'

# ---- 2. ejabberd cannot verify the bridge: EXTERNAL refused, dialback on the same stream
run_case fallback "external, dialback" "$T_DIR/other-ca/ca.crt"
check "fallback: ejabberd refused our EXTERNAL and the bridge said it tries dialback" \
	_log_has "$T_DIR/bridge-fallback.log" 'sip\.test -> xmpp\.test: the peer refused SASL EXTERNAL.*trying dialback on the same stream'
check "fallback: the bridge's stream is then up by dialback" \
	_log_has "$T_DIR/bridge-fallback.log" 'sip\.test -> xmpp\.test: stream up \(.*dialback\)'

# ---- 3. dialback only, both ways (originating, receiving, authoritative)
run_case dialback "dialback" "$CA_DIR/ca.crt"
check "dialback: the bridge's stream to xmpp.test is up by dialback" \
	_log_has "$T_DIR/bridge-dialback.log" 'sip\.test -> xmpp\.test: stream up \(.*dialback\)'
check "dialback: ejabberd's stream to sip.test authenticated by dialback (we verified its key)" \
	_log_has "$T_DIR/bridge-dialback.log" 'sip\.test: incoming stream from xmpp\.test authenticated by dialback'
check "dialback: the bridge answered ejabberd's db:verify as authoritative server (valid)" \
	_log_has "$T_DIR/bridge-dialback.log" 'dialback verify from xmpp\.test for stream .*: valid'
finish
