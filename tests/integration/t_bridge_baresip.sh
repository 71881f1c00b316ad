#!/bin/bash
# A real SIP user agent through the bridge: baresip 1.0.0 (Debian's package), the
# SIP user carol@sip.test, registered at the Kamailio that plays the Lync pool of
# the component federation (bridge/fed.sh), all its requests through Kamailio
# (outbound proxy). bob@xmpp.test is an xmppc client of ejabberd. baresip runs
# headless (no audio or video module) and is driven through ctrl_tcp
# (baresip.sh); its output (-s: SIP trace) is what the checks read.
#   - carol watches bob (contact with presence=p2p): her SUBSCRIBE asks bob, who
#     approves; bob's available, away, dnd and unavailable reach baresip as NOTIFY
#     and baresip shows them;
#   - carol sends bob a MESSAGE (non-ASCII), bob gets it as a chat;
#   - bob sends carol a chat, baresip prints it;
#   - baresip publishes carol's presence at Kamailio's presence server (PUBLISH,
#     pubint); bob, who subscribed to carol (the bridge subscribes at Kamailio),
#     sees her online, offline and online again;
#   - quit: baresip unpublishes, unsubscribes and unregisters, exits 0.
# It runs in a private network namespace (netns.sh): baresip's DNS client binds
# UDP sockets to the wildcard address, which there can reach nothing but lo.
. "$(dirname "$0")/netns.sh"
netns_enter "$@"
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/kamailio.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/xmpp/bridge.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/bridge/fed.sh"
. "$IT_DIR/baresip.sh"

[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"
FED_LOG_LEVEL=debug fed_start || die "the federation did not come up"
pass "ejabberd, kamailio and the bridge are up (bridge/fed.sh)"

BOB=sip:bob@xmpp.test
xmppc_start bob bob@xmpp.test/desk bobpw || die "bob cannot log in"
xmppc_send bob '<presence><status>at my desk</status></presence>'

baresip_start "$T_DIR/baresip" sip:carol@sip.test "127.0.0.1:$KAM_UDP_PORT" "$BOB" ||
	die "baresip did not start"
pass "baresip runs headless, SIP on 127.0.0.1:$BS_SIP_PORT, ctrl_tcp on $BS_CTL_PORT"

registered() { kamrpc ul.lookup location carol@sip.test 2>/dev/null | grep -q "@127\.0\.0\.1:$BS_SIP_PORT"; }
check "baresip registers carol@sip.test at kamailio (200 OK, one binding)" \
	wait_until 10 bs_log_has 'carol@sip\.test: \{0/UDP/v4\} 200 OK .*\[1 binding\]'
check "kamailio's location service has baresip's contact" registered

got() { bs_sip "$@" >/dev/null; } # got in|out METHOD [REGEX]: baresip's trace has it

# --- carol (baresip) watches bob (XMPP), through kamailio's route (RFC 8048 section 5.3.1)
check "baresip's SUBSCRIBE (via kamailio) asks bob to authorize carol@sip.test" \
	xmppc_expect bob '<presence&&type="subscribe"&&from="carol@sip.test"' 15
xmppc_send bob '<presence type="subscribed" to="carol@sip.test"/>'
check "bob approves: baresip shows bob Online" wait_until 10 bs_presence_is "$BOB" Online
check "the NOTIFY baresip got is active, basic open, bob's status as <note> (RFC 8048 section 6.2)" \
	got in NOTIFY '^Subscription-State: active.*<basic>open</basic>.*<note>at my desk</note>'

xmppc_send bob '<presence><show>away</show><status>on lunch</status></presence>'
# <show/> has no standard mapping (RFC 8048 section 6.2, note 7): the bridge's
# table gives RPID activities (RFC 4480 section 3.2); basic stays open.
check "bob away: NOTIFY to baresip says open with <rpid:away/> and the new note" \
	wait_until 10 got in NOTIFY '<basic>open</basic>.*<rpid:away/>.*<note>on lunch</note>'
# baresip 1.0.0 knows no away state: its presence module shows <rpid:away/> as
# Offline (its own mapping; the PIDF it got says open, checked above).
check "bob away: baresip changes bob from Online (it shows rpid:away as Offline)" \
	wait_until 10 bs_log_has "<$BOB> changed status from Online to Offline"

xmppc_send bob '<presence><show>dnd</show><status>busy</status></presence>'
check "bob dnd: NOTIFY says open with <rpid:busy/> (RFC 4480 section 3.2)" \
	wait_until 10 got in NOTIFY '<basic>open</basic>.*<rpid:busy/>.*<note>busy</note>'
check "bob dnd: baresip shows bob Busy" wait_until 10 bs_presence_is "$BOB" Busy

xmppc_send bob '<presence type="unavailable"/>'
check "bob offline: NOTIFY says basic closed (RFC 8048 section 6.2: type)" \
	wait_until 10 got in NOTIFY '<basic>closed</basic>'
check "bob offline: baresip shows bob Offline" \
	wait_until 10 bs_log_has "<$BOB> changed status from Busy to Offline"

xmppc_send bob '<presence><status>back</status></presence>'
check "bob back: baresip shows bob Online again" \
	wait_until 10 bs_log_has "<$BOB> changed status from Offline to Online"

# --- page-mode MESSAGE both ways (RFC 3428; RFC 7572 sections 4 and 5)
OUT_TEXT='Grüße aus baresip — 中文 😀'
check "baresip's MESSAGE (ctrl_tcp \"message\" to its current contact) is accepted" \
	bsctl message "$OUT_TEXT"
# RFC 3428 section 7: a relay into a non-SIP domain answers 202 Accepted.
check "baresip's MESSAGE went through kamailio and was answered 202" \
	wait_until 10 got in 'SIP/2.0 202' '^CSeq: \d+ MESSAGE\r'
# RFC 7572 section 5: a pager-mode MESSAGE becomes a stanza with no type.
check "bob gets carol's text intact, with no type (RFC 7572 section 5)" \
	xmppc_expect bob "<message&&from=\"carol@sip.test\"&&<body>$OUT_TEXT</body>" 10
check "carol's page-mode message carries no type=\"chat\"" \
	xmppc_absent bob "<message&&from=\"carol@sip.test\"&&type=\"chat\"&&<body>$OUT_TEXT</body>" 1

xmppc_send bob '<message type="chat" to="carol@sip.test" id="m1"><body>Hallo carol — 中文</body></message>'
# RFC 7572 section 4 note 1: the sender's resource travels as the gr parameter.
check "bob's chat reaches baresip as MESSAGE From sip:bob@xmpp.test;gr=desk via kamailio" \
	wait_until 10 got in MESSAGE "^Via: SIP/2.0/UDP 127\\.0\\.0\\.1:$KAM_UDP_PORT;.*^From: <sip:bob@xmpp\\.test;gr=desk>;tag="
check "baresip prints bob's text" \
	wait_until 10 bs_log_has '^sip:bob@xmpp\.test;gr=desk: "Hallo carol — 中文"$'

# --- baresip publishes carol's presence; bob watches carol through the bridge
carol_pres() { # the presence stanzas bob got from carol, one a line (no subscription ones)
	grep '^RECV <presence' "$(xmppc_log bob)" | grep -F 'from="carol@sip.test"' |
		grep -vE 'type="(un)?subscribed?"' || true
}
carol_now() { # carol_now N available|unavailable: more than N, and the last one is so
	local all last
	all=$(carol_pres)
	(($(grep -c . <<<"$all") > $1)) || return 1
	last=$(tail -n 1 <<<"$all")
	case $2 in
	available) [[ $last != *'type='* ]] ;;
	unavailable) [[ $last == *'type="unavailable"'* ]] ;;
	esac
}
check "baresip PUBLISHed carol at kamailio and got 200 with a SIP-ETag" \
	wait_until 10 got in 'SIP/2.0 200' '^CSeq: \d+ PUBLISH\r.*^SIP-ETag: '
check "baresip's PUBLISH carries PIDF basic open" \
	got out PUBLISH '^Event: presence\r.*<basic>open</basic>'
xmppc_send bob '<presence type="subscribe" to="carol@sip.test"/>'
check "bob's subscription to carol is accepted: kamailio's presence server answered the bridge (RFC 8048 section 5.2.1)" \
	xmppc_expect bob '<presence&&type="subscribed"&&from="carol@sip.test"' 15
check "bob sees carol available: basic open, no type (RFC 8048 section 6.3)" wait_until 10 carol_now 0 available
n=$(carol_pres | grep -c .) || n=0
check "baresip: presence_offline" bsctl presence_offline
check "baresip re-PUBLISHes with SIP-If-Match, basic closed" \
	wait_until 10 got out PUBLISH '^SIP-If-Match: .*<basic>closed</basic>'
check "bob sees carol unavailable (RFC 8048 section 6.3: closed)" wait_until 10 carol_now "$n" unavailable
n=$(carol_pres | grep -c .) || n=0
check "baresip: presence_online" bsctl presence_online
check "bob sees carol available again" wait_until 10 carol_now "$n" available

# --- clean shutdown
n=$(carol_pres | grep -c .) || n=0
check "baresip quits (ctrl_tcp quit) and exits 0 within 10 s" baresip_stop 10
check "baresip removed its publication (PUBLISH Expires: 0): bob sees carol unavailable" \
	wait_until 10 carol_now "$n" unavailable
check "baresip ended its subscription to bob: Expires 0, final NOTIFY terminated;reason=timeout (RFC 6665 section 4.1.2.3, RFC 8048 section 5.3.3)" \
	got in NOTIFY '^Subscription-State: terminated;reason=timeout\r'
unregistered() { ! registered; }
check "baresip unregistered (RFC 3261 section 10.2.2): kamailio's location no longer has its contact" wait_until 10 unregistered
finish
