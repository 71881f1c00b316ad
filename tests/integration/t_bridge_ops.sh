#!/bin/bash
# Operating the bridge: limits, reload, a lost XMPP side.
#   - limits: a watcher past max_subscriptions_per_user gets 500 with Retry-After;
#     an XMPP user past it gets a resource-constraint error;
#   - SIGHUP with a changed presence.map: the next presence in a live dialog is
#     translated by the new rules, and the dialog is not dropped;
#   - the XMPP server gone: a new SUBSCRIBE gets 480 with Retry-After.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"

pres_setup

ejabberd_start "$T_DIR/ejabberd"
xmppc_start bob bob@xmpp.test/desk bobpw || die "bob cannot log in"
xmppc_start carol carol@xmpp.test/desk carolpw || die "carol cannot log in"
xmppc_send bob '<presence/>'
xmppc_send carol '<presence/>'

# A mappings folder of our own, so the test can change presence.map.
mkdir -p "$T_DIR/maps"
cp "$REPO_DIR/mappings/domains.map" "$REPO_DIR/mappings/presence.map" "$T_DIR/maps/"
pres_conf "$T_DIR/ops.conf" tcp "$(free_port)"
sed -i "s|^mappings = .*|mappings = $T_DIR/maps\nmax_subscriptions_per_user = 1|" "$T_DIR/ops.conf"
pres_bridge_start ops "$T_DIR/ops.conf" || die "the bridge did not come up"

# --- reload: ops1 watches bob; the loop of the scenario ends at "on lunch"
sipp_start watch bridge_pres_sub_uac.xml tcp "$(pres_target tcp)" \
	-key ruri bob@xmpp.test -key from ops1@sip.test -m 1 || die "SIPp watcher did not start"
WATCHER=$LAST_PID
xmppc_expect bob '<presence&&type="subscribe"&&from="ops1@sip.test"' 15 ||
	fail "reload: bob was not asked to authorize"
xmppc_send bob '<presence type="subscribed" to="ops1@sip.test"/>'
wait_until 10 _log_has "$T_DIR/sipp-watch.msg" 'Subscription-State: active' ||
	fail "reload: the subscription did not become active"

# --- limits (ops1 holds its one subscription now)
check "limits: a second subscription of the same watcher gets 500 with Retry-After" \
	sipp_run limit bridge_pres_refused_uac.xml tcp "$(pres_target tcp)" \
	-key ruri carol@xmpp.test -key from ops1@sip.test
xmppc_send carol '<presence type="subscribe" to="x1@sip.test"/>'
xmppc_send carol '<presence type="subscribe" to="x2@sip.test"/>'
check "limits: an XMPP watcher past the limit gets resource-constraint" \
	xmppc_expect carol '<presence&&type="error"&&from="x2@sip.test"&&<resource-constraint' 10

# --- reload with a changed presence.map: XMPP away now reads as busy
sed -i 's/^show-in away  away$/show-in away  busy/' "$T_DIR/maps/presence.map"
grep -q '^show-in away  busy$' "$T_DIR/maps/presence.map" || die "presence.map edit failed"
kill -HUP "$BR_PID"
check "reload: SIGHUP is applied" wait_log "$BR_LOG" 'reloaded ' 10
xmppc_send bob '<presence><show>away</show><status>on lunch</status></presence>'
check "reload: the next NOTIFY follows the new presence.map (away -> busy)" \
	wait_until 10 grep -Ezq -- '<rpid:busy/>[^<]*(<[^>]*>[^<]*)*on lunch|on lunch.*<rpid:busy/>' "$T_DIR/sipp-watch.msg"
check "reload: the subscription's dialog survived (sign-out answered in it)" \
	sipp_wait "$WATCHER" 20
check "reload: no second SUBSCRIBE dialog was needed" \
	test "$(grep -c 'SUBSCRIBE sip:bob@xmpp.test' "$T_DIR/sipp-watch.msg")" -le 4

# A broken presence.map is refused on SIGHUP; the bridge keeps running.
echo "show-in bogus nonsense" >>"$T_DIR/maps/presence.map"
kill -HUP "$BR_PID"
check "reload: a broken presence.map is refused with file:line, the bridge keeps running" \
	wait_log "$BR_LOG" 'presence\.map:[0-9]+: error:.*' 10
check "reload: still running after the refused reload" alive "$BR_PID"

# --- the XMPP side gone
ejabberd_stop
check "link down: the bridge notices" wait_log "$BR_LOG" 'XMPP link for sip\.test is down' 15
check "link down: a new SUBSCRIBE gets 480 with Retry-After" \
	sipp_run down bridge_pres_down_uac.xml tcp "$(pres_target tcp)" \
	-key ruri carol@xmpp.test -key from ops2@sip.test

bridge_rc=0
stop_pid "$BR_PID" 5 || bridge_rc=$?
check "the bridge stops cleanly with the XMPP side gone" test "$bridge_rc" -eq 0
finish
