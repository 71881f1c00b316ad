#!/bin/bash
# One device's address across the bridge, end to end (RFC 7247 sections 6.3-6.5;
# RFC 7572 sections 4 and 5): a real ejabberd, SIPp as the Lync-style peer,
# presbridge in page mode over TCP. bob is logged in twice, as bob@xmpp.test/im
# and bob@xmpp.test/pc.
#   - SIP -> XMPP: a MESSAGE to sip:bob@xmpp.test;gr=pc reaches bob's resource
#     "pc" only (RFC 7247 section 6.4 step 8), and the sender's GRUU in From
#     (;gr=lyncpc) becomes the 'from' resource (RFC 7572 section 5 note 1);
#   - a MESSAGE to the bare sip:bob@xmpp.test from a plain From still reaches bob,
#     from the bare alice@sip.test;
#   - XMPP -> SIP: bob/pc's chat to alice@sip.test/lyncpc is a MESSAGE to
#     sip:alice@sip.test;gr=lyncpc (RFC 7247 section 6.5 step 8) whose From
#     carries bob's resource as gr (RFC 7572 section 4 note 1); bob/im's chat to
#     the bare alice@sip.test goes to the plain URI.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/xmpp/bridge.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/bridge/im_lib.sh"

pres_setup perl
[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"

ejabberd_start "$T_DIR/ejabberd"
xmppc_start bob bob@xmpp.test/im bobpw || die "bob/im cannot log in"
xmppc_start bobpc bob@xmpp.test/pc bobpw || die "bob/pc cannot log in"
xmppc_send bob '<presence/>'
xmppc_send bobpc '<presence/>'

UAS_PORT=$(free_port)
conf=$T_DIR/bridge.conf
BR_IM=page pres_conf "$conf" tcp "$UAS_PORT"
pres_bridge_start bridge "$conf" || die "the bridge did not come up"
target=$(pres_target tcp)

# request_line NAME N: the N-th request line SIPp NAME received (CR removed)
request_line() {
	grep -a '^MESSAGE ' "$T_DIR/sipp-$1.msg" | tr -d '\r' | sed -n "${2}p"
}
line_is() { # line_is NAME N EXPECTED
	local got
	got=$(request_line "$1" "$2")
	[[ $got == "$3" ]] || {
		log "$1: request #$2 is '$got', expected '$3'"
		return 1
	}
}
received() { (($(im_sip_count "$1" "$2") >= $3)); }
header_is() { # header_is NAME N HEADER REGEX
	im_sip_header "$1" MESSAGE "$3" "$2" | grep -Eq -- "$4"
}

# ---- SIP -> XMPP
check "SIP -> XMPP: a MESSAGE to sip:bob@xmpp.test;gr=pc from alice's GRUU is answered 202" \
	sipp_run gr-in bridge_im_page_uac.xml tcp "$target" \
	-key ruri 'bob@xmpp.test;gr=pc' -key from 'alice@sip.test;gr=lyncpc'
check "SIP -> XMPP: bob/pc gets it, from alice@sip.test/lyncpc (RFC 7572 section 5 note 1)" \
	xmppc_expect bobpc '<message&&from="alice@sip.test/lyncpc"&&to="bob@xmpp.test/pc"&&<body>Grüße' 10
check "SIP -> XMPP: bob/im does not (RFC 7247 section 6.4 step 8: the GRUU names one resource)" \
	xmppc_absent bob '<message&&<body>Grüße' 2
check "SIP -> XMPP: a MESSAGE to the bare sip:bob@xmpp.test is answered 202" \
	sipp_run bare-in bridge_im_page_uac.xml tcp "$target" \
	-key ruri bob@xmpp.test -key from alice@sip.test
bare_in() {
	xmppc_expect bob '<message&&from="alice@sip.test"&&to="bob@xmpp.test' 1 ||
		xmppc_expect bobpc '<message&&from="alice@sip.test"&&to="bob@xmpp.test' 1
}
check "SIP -> XMPP: the bare MESSAGE reaches bob, from the bare alice@sip.test" \
	wait_until 10 bare_in

# ---- XMPP -> SIP
im_uas_start gr-out message_uas.xml "$UAS_PORT" -m 2 -timeout 30s ||
	die "SIPp UAS did not start"
UAS=$LAST_PID
xmppc_send bobpc '<message type="chat" to="alice@sip.test/lyncpc" id="g1"><body>an ein Gerät</body></message>'
wait_until 10 received gr-out MESSAGE 1 || true
xmppc_send bob '<message type="chat" to="alice@sip.test" id="g2"><body>an alle</body></message>'
check "XMPP -> SIP: SIPp takes both chats" sipp_wait "$UAS" 20
check "XMPP -> SIP: a chat to alice@sip.test/lyncpc goes to sip:alice@sip.test;gr=lyncpc (RFC 7247 section 6.5 step 8)" \
	line_is gr-out 1 'MESSAGE sip:alice@sip.test;gr=lyncpc SIP/2.0'
check "XMPP -> SIP: its From is bob's GRUU <sip:bob@xmpp.test;gr=pc> (RFC 7572 section 4 note 1)" \
	header_is gr-out 1 From '^<sip:bob@xmpp\.test;gr=pc>;tag='
check "XMPP -> SIP: a chat to the bare alice@sip.test goes to the plain sip:alice@sip.test" \
	line_is gr-out 2 'MESSAGE sip:alice@sip.test SIP/2.0'
check "XMPP -> SIP: its From is <sip:bob@xmpp.test;gr=im>" \
	header_is gr-out 2 From '^<sip:bob@xmpp\.test;gr=im>;tag='
check "no chat came back as an error" xmppc_absent bobpc '<message&&type="error"' 1

stop_pid "$BR_PID" 5
mapfile -t procs < <(snapshot_procs)
stop_all
check_nothing_left "${procs[@]}"
finish
