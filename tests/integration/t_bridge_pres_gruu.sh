#!/bin/bash
# Presence of one device across the bridge (RFC 7247 sections 6.3-6.5 applied to
# RFC 8048 sections 5 and 6): a real ejabberd, SIPp as two Lync watchers,
# presbridge over TCP. bob is logged in twice, as bob@xmpp.test/desk (available)
# and bob@xmpp.test/phone (away).
#   - gw@sip.test subscribes to bob's GRUU sip:bob@xmpp.test;gr=desk: the XMPP side
#     is still asked for the bare bob@xmpp.test (RFC 6121 3.1.1), and the NOTIFYs
#     carry desk's tuple only, its <contact> the GRUU; when desk goes offline the
#     tuple turns closed while phone is still online;
#   - bw@sip.test subscribes to the bare sip:bob@xmpp.test: one tuple per resource,
#     each <contact> that resource's GRUU (RFC 7247 section 6.5 step 8); it sees
#     closed only when phone goes offline too;
#   - bob watches ln@sip.test, a Lync user on two devices: each PIDF tuple whose
#     <contact> is a GRUU (;gr=pc, ;gr=mobile) is presence from the full JID
#     ln@sip.test/pc, ln@sip.test/mobile (RFC 7247 section 6.4 step 8), none from
#     the bare JID; the mobile leaving the document is unavailable from .../mobile;
#   - kill -9 and restart (UDP, SQLite state): the subscription to desk's GRUU is
#     restored with its dialog and still carries desk's tuple only.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/xmpp/bridge.sh"

pres_setup
[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"

ejabberd_start "$T_DIR/ejabberd"
xmppc_start desk bob@xmpp.test/desk bobpw || die "bob/desk cannot log in"
xmppc_start phone bob@xmpp.test/phone bobpw || die "bob/phone cannot log in"
xmppc_send desk '<presence><status>at my desk</status></presence>'
xmppc_send phone '<presence><show>away</show></presence>'

PEER_PORT=$(free_port)
pres_conf "$T_DIR/bridge.conf" tcp "$PEER_PORT"
pres_bridge_start bridge "$T_DIR/bridge.conf" || die "the bridge did not come up"
target=$(pres_target tcp)

msg_has() { # msg_has NAME REGEX: SIPp's message log of NAME matches (as one text)
	grep -Ezq -- "$2" "$T_DIR/sipp-$1.msg" 2>/dev/null
}
# notify_bodies NAME: the PIDF documents of the NOTIFYs SIPp NAME received
notify_bodies() {
	awk '/^NOTIFY /{on=1} on&&/<presence/{b=1} b{print} /<\/presence>/{b=0; on=0}' \
		"$T_DIR/sipp-$1.msg" | tr -d '\r'
}
last_body() { # last_body NAME: the last of them
	notify_bodies "$1" | awk '/<presence/{s=""} {s=s $0 "\n"} END{printf "%s", s}'
}
tuples_are_desk_only() { # tuples_are_desk_only [NAME]: NAME defaults to gw
	local b name=${1:-gw}
	b=$(notify_bodies "$name")
	[[ -n $b ]] || { log "$name got no PIDF"; return 1; }
	# one tuple per document, and every contact desk's GRUU
	(($(grep -c '<tuple' <<<"$b") == $(grep -c '<presence' <<<"$b"))) &&
		! grep -q 'gr=phone' <<<"$b" &&
		! grep -o '<contact[^>]*>[^<]*</contact>' <<<"$b" | grep -vq '>sip:bob@xmpp\.test;gr=desk<'
}
bare_has_both() {
	local b
	b=$(last_body bw)
	grep -q '<contact[^>]*>sip:bob@xmpp\.test;gr=desk</contact>' <<<"$b" &&
		grep -q '<contact[^>]*>sip:bob@xmpp\.test;gr=phone</contact>' <<<"$b"
}
gw_open_desk() {
	msg_has gw '<tuple id="desk"><status><basic>open</basic>[^<]*(<[^t][^<]*)*<contact[^>]*>sip:bob@xmpp\.test;gr=desk</contact>'
}
gw_closed_desk() {
	last_body gw | grep -Ezq '<tuple id="desk"><status><basic>closed</basic>.*<contact[^>]*>sip:bob@xmpp\.test;gr=desk</contact>'
}
bare_phone_only() {
	local b
	b=$(last_body bw)
	grep -q 'gr=phone' <<<"$b" && ! grep -q 'gr=desk' <<<"$b" && ! grep -q '<basic>closed' <<<"$b"
}

roster_has() { # roster_has USER REGEX
	ejctl get_roster "$1" "$EJ_DOMAIN" 2>/dev/null | grep -Eq -- "$2"
}

# One watcher at a time: the bridge reaches [peer lync] over the connection the
# peer opened last, and two SIPp processes are two connections of one peer.
# --- the GRUU watcher
sipp_start gw bridge_pres_gruu_uac.xml tcp "$target" \
	-key ruri 'bob@xmpp.test;gr=desk' -key from gw@sip.test -m 1 -timeout 90s ||
	die "SIPp GRUU watcher did not start"
GW=$LAST_PID
check "a SUBSCRIBE to bob's GRUU asks bob to authorize gw@sip.test" \
	xmppc_expect desk '<presence&&type="subscribe"&&from="gw@sip.test"' 15
xmppc_send desk '<presence type="subscribed" to="gw@sip.test"/>'
check "the approval is bob's, the user's: his roster holds gw@sip.test (RFC 6121 3.1, RFC 8048 5.1)" \
	wait_until 10 roster_has bob 'gw@sip\.test.*(from|both)'
check "GRUU watcher: active, desk's tuple open, its contact sip:bob@xmpp.test;gr=desk" \
	wait_until 15 gw_open_desk
xmppc_send phone '<presence><show>dnd</show></presence>'
sleep 1
check "GRUU watcher: every NOTIFY carries desk's tuple only, never phone's (also after phone's change)" \
	tuples_are_desk_only
xmppc_send desk '<presence type="unavailable"/>'
check "GRUU watcher: desk offline -> its tuple closed, while phone is online; the watcher signs out" \
	sipp_wait "$GW" 30
check "GRUU watcher: the closed tuple is desk's, contact its GRUU" gw_closed_desk
check "GRUU watcher: still desk only" tuples_are_desk_only

# --- the bare watcher
xmppc_send desk '<presence><status>at my desk</status></presence>'
sipp_start bw bridge_pres_gruu_uac.xml tcp "$target" \
	-key ruri bob@xmpp.test -key from bw@sip.test -m 1 -timeout 90s ||
	die "SIPp bare watcher did not start"
BW=$LAST_PID
xmppc_expect desk '<presence&&type="subscribe"&&from="bw@sip.test"' 15 ||
	fail "bob was not asked to authorize bw@sip.test"
xmppc_send desk '<presence type="subscribed" to="bw@sip.test"/>'
check "bare watcher: one tuple per resource, contacts ;gr=desk and ;gr=phone (RFC 7247 section 6.5 step 8)" \
	wait_until 15 bare_has_both
xmppc_send desk '<presence type="unavailable"/>'
check "bare watcher: desk offline -> phone's tuple alone, still open" \
	wait_until 10 bare_phone_only
xmppc_send phone '<presence type="unavailable"/>'
check "bare watcher: closed once phone goes offline too; signs out" sipp_wait "$BW" 30
check "the bridge answered no NOTIFY with 481" \
	bash -c "! grep -Eq 'NOTIFY answered 481' '$BR_LOG'"

# --- an XMPP watcher of a Lync user on two devices
xmppc_send desk '<presence/>'
SIPP_LOCAL_PORT=$PEER_PORT sipp_start ln bridge_pres_gruu_notifier_uas.xml tcp "" \
	-key presentity ln@sip.test -m 1 || die "SIPp notifier did not start"
LN=$LAST_PID
xmppc_send desk '<presence type="subscribe" to="ln@sip.test"/>'
check "XMPP watcher: bob's subscription to ln@sip.test is approved" \
	xmppc_expect desk '<presence&&type="subscribed"&&from="ln@sip.test"' 15
check "XMPP watcher: the ;gr=pc tuple is presence from ln@sip.test/pc, its note and priority with it" \
	xmppc_expect desk '<presence&&from="ln@sip.test/pc"&&<status>at the pc</status>&&<priority>102</priority>' 10
check "XMPP watcher: the ;gr=mobile tuple is presence from ln@sip.test/mobile (away)" \
	xmppc_expect desk '<presence&&from="ln@sip.test/mobile"&&<show>away</show>' 10
check "XMPP watcher: the mobile leaving the document is unavailable from ln@sip.test/mobile" \
	xmppc_expect desk '<presence&&type="unavailable"&&from="ln@sip.test/mobile"' 10
check "XMPP watcher: no available presence from the bare ln@sip.test (every tuple is a device)" \
	xmppc_absent desk '<presence&&from="ln@sip.test"&&<priority>' 1
xmppc_send desk '<presence type="unsubscribe" to="ln@sip.test"/>'
check "XMPP watcher: the unsubscribe ends the notifier's dialog" sipp_wait "$LN" 20

stop_pid "$BR_PID" 5 || true

# --- a subscription to one device survives kill -9 (store keys unchanged)
_gone() { ! alive "$1"; }
P=$(free_port)
BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
pres_conf "$T_DIR/rs.conf" udp "$P" "$T_DIR/rs/state.db"
pres_bridge_start rs-1 "$T_DIR/rs.conf" || die "the bridge did not come up"
SIPP_LOCAL_PORT=$P sipp_start rgw bridge_pres_restart_uac.xml udp "$(pres_target udp)" \
	-key ruri 'bob@xmpp.test;gr=desk' -key from rgw@sip.test -m 1 || die "SIPp watcher did not start"
RGW=$LAST_PID
xmppc_expect desk '<presence&&type="subscribe"&&from="rgw@sip.test"' 15 ||
	fail "restart: bob was not asked to authorize rgw@sip.test"
xmppc_send desk '<presence type="subscribed" to="rgw@sip.test"/>'
check "restart: the GRUU watcher is active before the restart" \
	wait_until 10 msg_has rgw 'Subscription-State: active'
kill -9 "$BR_PID" 2>/dev/null
wait_until 5 _gone "$BR_PID" || true
pres_bridge_start rs-2 "$T_DIR/rs.conf" || die "the bridge did not come back"
check "restart: the subscription to bob@xmpp.test/desk is restored with its SIP dialog" \
	wait_log "$BR_LOG" 'restored sip:rgw@sip\.test -> bob@xmpp\.test/desk \(sw-active\) with its SIP dialog' 10
xmppc_send phone '<presence><status>after restart</status></presence>'
sleep 1
xmppc_send desk '<presence><status>after restart</status></presence>'
check "restart: desk's new presence reaches the GRUU watcher in the restored dialog" \
	sipp_wait "$RGW" 30
check "restart: desk's tuple only, never phone's" tuples_are_desk_only rgw
stop_pid "$BR_PID" 5 || true
mapfile -t procs < <(snapshot_procs)
stop_all
check_nothing_left "${procs[@]}"
finish
