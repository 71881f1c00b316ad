#!/bin/bash
# kill -9 and restart: every subscription the bridge acknowledged before it died
# still delivers presence afterwards, from the SQLite state file alone.
#   - an XMPP user watches a Lync user: after the restart the bridge refreshes the
#     restored SIP dialog and the notifier's new presence reaches the XMPP user;
#   - a Lync user watches an XMPP user: after the restart a presence change of the
#     XMPP user reaches the watcher as NOTIFY in the restored dialog.
# Over UDP: the SIPp peer must outlive the killed bridge, and SIPp over TCP (or
# behind the TLS front end) ends its calls when its one connection drops, while a
# real SIP server simply accepts the restarted bridge's new connection. The other
# bridge tests cover TCP and TLS.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"

pres_setup
export SIPP_TLS_NAME=bridge.xmpp.test

ejabberd_start "$T_DIR/ejabberd"
xmppc_start bob bob@xmpp.test/desk bobpw || die "bob cannot log in"
xmppc_send bob '<presence/>'

kill9() { # kill9 PID: SIGKILL, wait until it is gone
	kill -9 "$1" 2>/dev/null
	wait_until 5 _gone "$1"
}
_gone() { ! alive "$1"; }

# --- an XMPP user watches a Lync user
for tp in udp; do
	sipp_start "notifier-$tp" bridge_pres_restart_uas.xml "$tp" "" \
		-key presentity "rs$tp@sip.test" -m 1 || die "SIPp notifier ($tp) did not start"
	NOTIFIER=$LAST_PID
	peer_port=$SIPP_PORT
	BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
	pres_conf "$T_DIR/xw-$tp.conf" "$tp" "$peer_port" "$T_DIR/xw-$tp/state.db"
	pres_bridge_start "xw-$tp-1" "$T_DIR/xw-$tp.conf" || die "the bridge ($tp) did not come up"

	xmppc_send bob "<presence type=\"subscribe\" to=\"rs$tp@sip.test\"/>"
	check "$tp: before: bob sees the Lync user busy" \
		xmppc_expect bob "<presence&&from=\"rs$tp@sip.test\"&&<show>dnd</show>&&<status>before restart</status>" 15
	check "$tp: kill -9 of the bridge" kill9 "$BR_PID"
	if [[ ${PB_TEST_STORE:-sqlite} == postgresql ]]; then
		check "$tp: the subscription is a row in PostgreSQL" \
			test "$(pres_pg_rows "$T_DIR/xw-$tp/state.db" pb_sub)" -ge 1
	else
		check "$tp: the state file is there, in a folder the bridge created" test -s "$T_DIR/xw-$tp/state.db"
	fi
	pres_bridge_start "xw-$tp-2" "$T_DIR/xw-$tp.conf" || die "the bridge ($tp) did not come back"
	check "$tp: after: the restored subscription is refreshed and the new presence reaches bob" \
		xmppc_expect bob "<presence&&from=\"rs$tp@sip.test\"&&<show>away</show>&&<status>after restart</status>" 30
	check "$tp: after: the notifier saw an in-dialog refresh of the same subscription" \
		sipp_wait "$NOTIFIER" 20
	check "$tp: after: the restart log names the restored subscription" \
		_log_has "$BR_LOG" "restored bob@xmpp\\.test -> sip:rs$tp@sip\\.test \\(xw-active\\) with its SIP dialog"
	stop_pid "$BR_PID" 5 || true
done

# --- a Lync user watches an XMPP user (the restarted bridge must reach the watcher
# at the peer's address: this SIPp listens there)
P=$(free_port)
BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
pres_conf "$T_DIR/sw.conf" udp "$P" "$T_DIR/sw/state.db"
pres_bridge_start sw-1 "$T_DIR/sw.conf" || die "the bridge did not come up"
SIPP_LOCAL_PORT=$P sipp_start watcher bridge_pres_restart_uac.xml udp "$(pres_target udp)" \
	-key ruri bob@xmpp.test -key from rswatch@sip.test -m 1 || die "SIPp watcher did not start"
WATCHER=$LAST_PID
xmppc_expect bob '<presence&&type="subscribe"&&from="rswatch@sip.test"' 15 ||
	fail "SIP watcher: bob was not asked to authorize"
xmppc_send bob '<presence type="subscribed" to="rswatch@sip.test"/>'
check "SIP watcher: active before the restart" \
	wait_until 10 _log_has "$T_DIR/sipp-watcher.msg" 'Subscription-State: active'
check "SIP watcher: kill -9 of the bridge" kill9 "$BR_PID"
pres_bridge_start sw-2 "$T_DIR/sw.conf" || die "the bridge did not come back"
check "SIP watcher: the restart restores the subscription with its dialog" \
	_log_has "$BR_LOG" 'restored sip:rswatch@sip\.test -> bob@xmpp\.test \(sw-active\) with its SIP dialog'
xmppc_send bob '<presence><show>chat</show><status>after restart</status></presence>'
check "SIP watcher: bob's new presence reaches the watcher as NOTIFY in the restored dialog" \
	sipp_wait "$WATCHER" 30
stop_pid "$BR_PID" 5 || true

finish
