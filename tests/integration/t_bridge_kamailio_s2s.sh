#!/bin/bash
# The demo's topology (scripts/demo.sh), server-to-server: Kamailio plays the
# Lync pool of sip.test (registrar, presence server, TLS static route for
# xmpp.test to the bridge, the bridge its trusted peer over mutual TLS); the
# bridge is the XMPP server of sip.test and federates with ejabberd (xmpp.test)
# over S2S, each found by its _xmpp-server._tcp SRV record, in a private network
# namespace with its own DNS (bridge/fed_s2s.sh; the bridge's configuration is
# examples/s2s/presbridge-s2s.conf with only addresses, ports and paths replaced,
# and im = page). The demo's flows, each asserted:
#   - an XMPP user watches a SIP user: subscribe over S2S, the bridge's SUBSCRIBE
#     at Kamailio's presence server, PUBLISH and its change as <presence>;
#   - a SIP user watches an XMPP user: SUBSCRIBE along Kamailio's static route,
#     pending, approval, away, refresh and sign-out in the dialog;
#   - page-mode MESSAGE both ways, non-ASCII text intact;
#   - the two S2S streams: STARTTLS, SASL EXTERNAL both ways (as both ends log
#     it), the SRV lookups; mutual TLS with the pool, found by its name;
#   - SIGTERM: exit 0, the XMPP user told the SIP user is out of reach.
. "$(dirname "$0")/netns.sh"
netns_enter "$@"
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/kamailio.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/xmpp/bridge.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/bridge/im_lib.sh"
. "$IT_DIR/bridge/fed.sh"
. "$IT_DIR/bridge/fed_s2s.sh"
need dnsmasq unshare

[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"
FED_LOG_LEVEL=debug fed_s2s_start || die "the federation did not come up"
pass "ejabberd (xmpp.test, S2S 127.0.0.2:5269), kamailio (lyncpool.sip.test, TLS route xmpp.test -> 127.0.0.3:5061) and the bridge (sip.test, S2S 127.0.0.3:5269) are up; the bridge's configuration is examples/s2s's"
check "presbridge -n: configuration OK" grep -qx 'configuration OK' "$T_DIR/check.log"

msg_has() { grep -Ezq -- "$2" "$T_DIR/sipp-$1.msg" 2>/dev/null; }
tls_in() { # Kamailio connected to the bridge and presented the pool's certificate
	grep -Eq 'peer lyncpool\.sip\.test \(127\.0\.0\.1:[0-9]+\): TLS \(TLSv1\.[23]\) established, certificate verified, \[peer lync\]' "$BR_LOG"
}
tls_out() { # the bridge found the pool by name (127.0.0.1:5061) and verified its certificate
	grep -Eq 'peer lyncpool\.sip\.test \(127\.0\.0\.1:5061\): TLS \(TLSv1\.[23]\) established, certificate verified' "$BR_LOG"
}

xmppc_start bob bob@xmpp.test/desk bobpw || die "bob cannot log in"
xmppc_send bob '<presence><status>at my desk</status></presence>'
ALICE_PORT=$(free_port)
check "alice@sip.test registers at kamailio (UDP), contact 127.0.0.1:$ALICE_PORT" \
	fed_register alice "$ALICE_PORT"

# --- an XMPP user watches a SIP user
xmppc_send bob '<presence type="subscribe" to="alice@sip.test"/>'
check "XMPP -> SIP: bob's subscription crosses S2S and is accepted (kamailio's presence server answered the bridge)" \
	xmppc_expect bob '<presence&&type="subscribed"&&from="alice@sip.test"' 20
check "XMPP -> SIP: alice has published nothing yet: bob gets unavailable" \
	xmppc_expect bob '<presence&&type="unavailable"&&from="alice@sip.test"' 10
check "XMPP -> SIP: the bridge's SUBSCRIBE went to lyncpool.sip.test (found by name) over mutual TLS" tls_out

# --- the S2S streams, as both ends logged them
check "S2S: the bridge's stream to xmpp.test is up by SASL EXTERNAL after STARTTLS" \
	_log_has "$BR_LOG" 'sip\.test -> xmpp\.test: stream up \(127\.0\.0\.2:5269, TLSv1\.[23] [^,]*, SASL EXTERNAL\)'
check "S2S: ejabberd's stream to sip.test authenticated by SASL EXTERNAL (TLS)" \
	_log_has "$BR_LOG" 'sip\.test: incoming stream from xmpp\.test authenticated by SASL EXTERNAL \(TLSv1\.[23] '
check "S2S: ejabberd accepted the bridge's certificate (inbound EXTERNAL) and the bridge accepted its (outbound EXTERNAL)" \
	wait_until 10 eval "_log_has '$EJ_LOG' 'Accepted inbound s2s EXTERNAL authentication sip\\.test -> xmpp\\.test' &&
		_log_has '$EJ_LOG' 'Accepted outbound s2s EXTERNAL authentication xmpp\\.test -> sip\\.test'"
check "S2S: both SRV records were looked up (_xmpp-server._tcp.xmpp.test and .sip.test)" \
	eval "_log_has '$NETNS_DNS_LOG' 'query\\[SRV\\] _xmpp-server\\._tcp\\.xmpp\\.test' &&
		_log_has '$NETNS_DNS_LOG' 'query\\[SRV\\] _xmpp-server\\._tcp\\.sip\\.test'"
streams_told() { # the demo's lines about the streams
	local out
	out=$(fed_s2s_streams) || return 1
	log "$out"
	grep -Eq '^presbridge <-> ejabberd: server-to-server, STARTTLS \(TLSv1\.[23]\), authenticated by SASL EXTERNAL both ways$' <<<"$out"
}
check "S2S: the demo's summary: STARTTLS, SASL EXTERNAL both ways" streams_told

etag=$(fed_publish pub1 alice '<rpid:busy/>' 'in a meeting') || etag=""
check "SIP: alice PUBLISHes busy 'in a meeting' at kamailio (200 with an ETag)" test -n "$etag"
check "XMPP -> SIP: kamailio's NOTIFY reaches bob over S2S as <show>dnd</show> <status>in a meeting</status>" \
	xmppc_expect bob '<presence&&from="alice@sip.test&&<show>dnd</show>&&<status>in a meeting</status>' 15
check "kamailio -> bridge: kamailio's client certificate names the pool, and identifies [peer lync]" tls_in

# --- a SIP user watches an XMPP user, through kamailio both ways
sipp_start watch bridge_kam_watch_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
	-key ruri bob@xmpp.test -key from alice@sip.test -m 1 -timeout 60s || die "SIPp watcher did not start"
WATCH=$LAST_PID
check "SIP -> XMPP: alice's SUBSCRIBE (kamailio's TLS route, then S2S) asks bob to authorize alice@sip.test" \
	xmppc_expect bob '<presence&&type="subscribe"&&from="alice@sip.test"' 15
check "SIP -> XMPP: before bob answers, a NOTIFY says pending" \
	wait_until 10 msg_has watch 'Subscription-State: pending'
xmppc_send bob '<presence type="subscribed" to="alice@sip.test"/>'
check "SIP -> XMPP: bob's approval turns it active, with his status (NOTIFY through kamailio)" \
	wait_until 15 fed_sip_msg watch '^NOTIFY .*\r\nSubscription-State: active.*at my desk'
xmppc_send bob '<presence><show>away</show><status>on lunch</status></presence>'
check "SIP -> XMPP: bob's away 'on lunch' reaches alice as PIDF (rpid away, note, Lync 15500)" \
	wait_until 15 fed_sip_msg watch '^NOTIFY (?=.*<rpid:away/>)(?=.*<ms:availability>15500<)(?=.*<note>on lunch</note>)'
check "SIP -> XMPP: refresh (Expires 1800) and sign-out in the dialog through kamailio; NOTIFY terminated" \
	sipp_wait "$WATCH" 30

# --- page-mode MESSAGE both ways
check "SIP -> XMPP: a MESSAGE from alice via kamailio is answered 200" \
	sipp_run page-in message_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
	-key ruri bob@xmpp.test -key from alice@sip.test -key body 'Hallo Bob — Grüße aus sip.test 😀'
check "SIP -> XMPP: bob gets the non-ASCII text intact over S2S" \
	xmppc_expect bob '<message&&from="alice@sip.test"&&<body>Hallo Bob — Grüße aus sip.test 😀' 15
im_sipp_at page-out message_uas.xml udp "$ALICE_PORT" "" -m 1 -timeout 30s || die "alice's UAS did not start"
UAS=$LAST_PID
xmppc_send bob '<message type="chat" to="alice@sip.test" id="po1"><body>Hi Alice — greetings from xmpp.test 👋</body></message>'
check "XMPP -> SIP: bob's chat crosses S2S and reaches alice's registered contact (kamailio's lookup) as MESSAGE" \
	sipp_wait "$UAS" 20
check "XMPP -> SIP: From sip:bob@xmpp.test;gr=desk (RFC 7572 section 4), the exact UTF-8 text" \
	eval "fed_sip_msg page-out '^From: <sip:bob@xmpp\\.test;gr=desk>;tag=' &&
		[[ \$(im_sip_body page-out MESSAGE 1) == 'Hi Alice — greetings from xmpp.test 👋' ]]"

etag2=$(fed_publish pub2 alice '' 'back at my desk' "$etag") || etag2=""
check "SIP: alice changes her publication (SIP-If-Match) to available 'back at my desk'" test -n "$etag2"
check "XMPP -> SIP: the change reaches bob over S2S" \
	xmppc_expect bob '<presence&&from="alice@sip.test&&<status>back at my desk</status>' 15

# --- stop
bridge_rc=0
bridge_stop "$BR_PID" 10 || bridge_rc=$?
check "SIGTERM: the bridge exits 0" test "$bridge_rc" -eq 0
check "SIGTERM: bob is told over S2S that alice is out of reach" \
	xmppc_expect bob '<presence&&type="unavailable"&&from="alice@sip.test"' 10
gone_count() {
	(($(grep '^RECV <presence' "$(xmppc_log bob)" | grep 'type="unavailable"' | grep -c 'from="alice@sip.test') >= 2))
}
check "SIGTERM: that unavailable is a new one (the second bob got from alice)" wait_until 5 gone_count
check "nothing was challenged or refused between kamailio and the bridge; no S2S warning or error" \
	bash -c "! grep -Eq 'challenged|answered 40[137]|TLS alert| (warn|error) +s2s: ' '$BR_LOG'"

mapfile -t procs < <(snapshot_procs)
xmppc_stop bob || true
stop_all
check_nothing_left "${procs[@]}"
finish
