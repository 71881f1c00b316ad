#!/bin/bash
# Presence across the bridge, end to end: real ejabberd, SIPp as the Lync-style
# peer, over TCP and over TLS.
#   - an XMPP user watches a Lync user: SUBSCRIBE through the static route, the
#     NOTIFY's presence arriving as XMPP presence (show, status), unsubscribe;
#   - a Lync user watches an XMPP user: pending authorization, approval, presence
#     changes arriving as NOTIFY with the right activity and note, sign-out ending
#     the SIP dialog while the XMPP roster subscription stays;
#   - rejection: the XMPP user refuses, the watcher gets terminated;reason=rejected;
#   - the XMPP server restarts under a live subscription: afterwards the XMPP
#     user's presence reaches the Lync watcher again.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/xmpp/bridge.sh"

pres_setup
export SIPP_TLS_NAME=bridge.xmpp.test

ejabberd_start "$T_DIR/ejabberd"
xmppc_start bob bob@xmpp.test/desk bobpw || die "bob cannot log in"
xmppc_start carol carol@xmpp.test/desk carolpw || die "carol cannot log in"
xmppc_send bob '<presence/>'
xmppc_send carol '<presence/>'

msg_has() { # msg_has NAME REGEX: SIPp's message log of NAME matches (as one text)
	grep -Ezq -- "$2" "$T_DIR/sipp-$1.msg" 2>/dev/null
}
open_never_closed() { # open_never_closed NAME: a NOTIFY said open, none said closed
	wait_until 10 msg_has "$1" '<basic>open</basic>' && ! msg_has "$1" '<basic>closed</basic>'
}

one_true_notify() { # one_true_notify NAME: after the approval's settle time, one NOTIFY active, open
	sleep 2
	local n
	n=$(grep -c '^Subscription-State: active' "$T_DIR/sipp-$1.msg" 2>/dev/null)
	[[ $n -eq 1 ]] || { log "$1: $n NOTIFYs active after the approval, want 1"; return 1; }
	msg_has "$1" 'Subscription-State: active[^<]*<\?xml[^<]*<presence[^>]*>[^<]*<tuple[^>]*><status><basic>open'
}
ending_flow() { # ending_flow TP: bob's unsubscribe from notifierTP as RFC 8048 5.2.3 has it
	local who="bob@xmpp.test -> sip:notifier$1@sip.test" a b
	# (bob's own server drops the unsubscribed, RFC 6121 3.2.3: the bridge's log shows it)
	a=$(grep -nF "$who: sip-2xx-ended: xw-ending -> xw-ending (xmpp-unsubscribed)" "$BR_LOG" | cut -d: -f1)
	b=$(grep -nF "$who: sip-notify-end-retry: xw-ending -> idle (cancel-timer|sip-response|drop)" "$BR_LOG" | cut -d: -f1)
	[[ -n $a && -n $b ]] && ((a < b)) || { log "unsubscribe flow of notifier$1 not in $BR_LOG"; return 1; }
}
roster_has() { # roster_has USER REGEX
	ejctl get_roster "$1" "$EJ_DOMAIN" 2>/dev/null | grep -Eq -- "$2"
}

for tp in tcp tls; do
	# --- an XMPP user watches a Lync user (the bridge is the SIP subscriber)
	sipp_start "notifier-$tp" bridge_pres_notifier_uas.xml "$tp" "" \
		-key presentity "notifier$tp@sip.test" -m 1 || die "SIPp notifier ($tp) did not start"
	NOTIFIER=$LAST_PID
	peer_port=$SIPP_PORT
	[[ $tp == tls ]] && peer_port=$SIPP_TLS_PORT
	BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
	pres_conf "$T_DIR/bridge-$tp.conf" "$tp" "$peer_port"
	pres_bridge_start "bridge-$tp" "$T_DIR/bridge-$tp.conf" || die "the bridge ($tp) did not come up"

	xmppc_send bob "<presence type=\"subscribe\" to=\"notifier$tp@sip.test\"/>"
	check "$tp: XMPP watcher: the Lync user's notifier answers, bob gets subscribed" \
		xmppc_expect bob "<presence&&type=\"subscribed\"&&from=\"notifier$tp@sip.test\"" 15
	check "$tp: XMPP watcher: the NOTIFY's busy + note arrive as show dnd and status" \
		xmppc_expect bob "<presence&&from=\"notifier$tp@sip.test\"&&<show>dnd</show>&&<status>in a meeting</status>" 10
	xmppc_send bob "<presence type=\"unsubscribe\" to=\"notifier$tp@sip.test\"/>"
	check "$tp: XMPP watcher: unsubscribe reaches the notifier as SUBSCRIBE Expires: 0; its final NOTIFY is answered 200, not 481 (RFC 6665 4.1.2.3)" \
		sipp_wait "$NOTIFIER" 20
	check "$tp: XMPP watcher: the 200 to Expires: 0 sends unsubscribed (RFC 8048 5.2.3), the final NOTIFY then ends the dialog" \
		ending_flow "$tp"
	check "$tp: XMPP watcher: the bridge answered no NOTIFY 481" \
		bash -c "! grep -Eq 'NOTIFY .*481|no such subscription' '$BR_LOG'"

	# --- a Lync user watches an XMPP user (the bridge is the SIP notifier); bob is
	# plain available again, without the previous round's "on lunch" marker
	xmppc_send bob '<presence/>'
	sipp_start "watch-$tp" bridge_pres_sub_uac.xml "$tp" "$(pres_target "$tp")" \
		-key ruri bob@xmpp.test -key from watch$tp@sip.test -m 1 ||
		die "SIPp watcher ($tp) did not start"
	WATCHER=$LAST_PID
	check "$tp: SIP watcher: bob is asked to authorize watch$tp@sip.test" \
		xmppc_expect bob "<presence&&type=\"subscribe\"&&from=\"watch$tp@sip.test\"" 15
	check "$tp: SIP watcher: the first NOTIFY says pending (authorization outstanding)" \
		wait_until 10 msg_has "watch-$tp" 'Subscription-State: pending'
	xmppc_send bob "<presence type=\"subscribed\" to=\"watch$tp@sip.test\"/>"
	check "$tp: SIP watcher: approval turns the subscription active" \
		wait_until 10 msg_has "watch-$tp" 'Subscription-State: active'
	check "$tp: SIP watcher: bob's presence follows at once (probed), never a false offline" \
		open_never_closed "watch-$tp"
	check "$tp: SIP watcher: the approval brings exactly one NOTIFY active, and it says open (issue 16 item 7)" \
		one_true_notify "watch-$tp"
	xmppc_send bob '<presence><show>away</show><status>on lunch</status><priority>5</priority></presence>'
	check "$tp: SIP watcher: bob's away + status reach the watcher as PIDF (away, note)" \
		wait_until 10 msg_has "watch-$tp" '<rpid:away/>.*on lunch|on lunch.*<rpid:away/>'
	check "$tp: SIP watcher: the PIDF carries Lync's availability for away (15500)" \
		msg_has "watch-$tp" '15500'
	check "$tp: SIP watcher: a refresh in the dialog is granted (200, Expires 1800, NOTIFY active); sign-out ends it with NOTIFY terminated" \
		sipp_wait "$WATCHER" 20
	check "$tp: SIP watcher: the roster subscription survives the sign-out" \
		roster_has bob "watch$tp@sip\\.test.*(from|both)"

	# --- rejection
	sipp_start "reject-$tp" bridge_pres_reject_uac.xml "$tp" "$(pres_target "$tp")" \
		-key ruri carol@xmpp.test -key from reject$tp@sip.test -m 1 ||
		die "SIPp rejection watcher ($tp) did not start"
	REJECT=$LAST_PID
	xmppc_expect carol "<presence&&type=\"subscribe\"&&from=\"reject$tp@sip.test\"" 15
	xmppc_send carol "<presence type=\"unsubscribed\" to=\"reject$tp@sip.test\"/>"
	check "$tp: rejection: pending, then NOTIFY terminated;reason=rejected" \
		sipp_wait "$REJECT" 20

	bridge_rc=0
	stop_pid "$BR_PID" 5 || bridge_rc=$?
	check "$tp: the bridge stops cleanly on SIGTERM" test "$bridge_rc" -eq 0
done

# --- ejabberd restarts while a Lync user watches bob. bob's status must not be the
# scenario's "on lunch" marker yet, or the check below would pass before the restart.
xmppc_send bob '<presence><status>at desk</status></presence>'
BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
pres_conf "$T_DIR/bridge-xrs.conf" tcp "$(free_port)"
pres_bridge_start bridge-xrs "$T_DIR/bridge-xrs.conf" || die "the bridge did not come up"
# The scenario's loop ends at a marker only bob's post-restart presence carries, so
# nothing from before the restart (nor ejabberd's answer to a probe) can end it.
sed 's/on lunch/back after the restart/' "$IT_DIR/sipp/bridge_pres_sub_uac.xml" >"$T_DIR/xrs_uac.xml"
sipp_start xrs "$T_DIR/xrs_uac.xml" tcp "$(pres_target tcp)" \
	-key ruri bob@xmpp.test -key from xrs@sip.test -m 1 -timeout 90s || die "SIPp watcher did not start"
XRS=$LAST_PID
xmppc_expect bob '<presence&&type="subscribe"&&from="xrs@sip.test"' 15 ||
	fail "XMPP restart: bob was not asked to authorize"
xmppc_send bob '<presence type="subscribed" to="xrs@sip.test"/>'
check "XMPP restart: the subscription is active before the restart" \
	wait_until 10 msg_has xrs 'Subscription-State: active'
xmppc_stop bob || true
xmppc_stop carol || true
ejabberd_stop
check "XMPP restart: the bridge sees its link go down" \
	wait_log "$BR_LOG" 'XMPP link for sip\.test is down' 15
ejabberd_restart || die "ejabberd did not come back"
link_up_again() { (($(count_lines "$BR_LOG" 'XMPP link for sip\.test is up') >= 2)); }
check "XMPP restart: the link is back within the back-off" \
	wait_until 40 link_up_again
xmppc_start bob2 bob@xmpp.test/desk2 bobpw || die "bob cannot log in again"
xmppc_send bob2 '<presence><show>away</show><status>back after the restart</status></presence>'
check "XMPP restart: bob's presence reaches the Lync watcher again (NOTIFY in the same dialog)" \
	sipp_wait "$XRS" 40
stop_pid "$BR_PID" 5 || true

finish
