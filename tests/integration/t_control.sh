#!/bin/bash
# Operating presbridge (issue 17): presbridgectl against a running bridge, and the
# Prometheus endpoint.
#   - every command, for people and --json (parsed with jq), and its exit status:
#     status, peers, subscriptions [USER|DOMAIN], sessions, reload (what changed,
#     or why refused), log-level, stop; 2 for usage, 3 when no daemon answers;
#   - the socket is 0660 and a client that never speaks does not hold the daemon;
#   - /metrics scraped and parsed (prom.py checks the text format) before and
#     after a subscription and a message cross: the figures move as they should.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"
need jq python3

pres_setup
CTL=$BUILD_DIR/presbridgectl
[[ -x $CTL ]] || die "$CTL missing"
ejabberd_start "$T_DIR/ejabberd"
xmppc_start bob bob@xmpp.test/desk bobpw || die "bob cannot log in"
xmppc_send bob '<presence/>'

mkdir -p "$T_DIR/maps"
cp "$REPO_DIR/mappings/domains.map" "$REPO_DIR/mappings/presence.map" "$T_DIR/maps/"
pres_conf "$T_DIR/ctl.conf" tcp "$(free_port)"
MPORT=$(free_port)
sed -i "s|^mappings = .*|mappings = $T_DIR/maps|" "$T_DIR/ctl.conf"
printf '\n[control]\nsocket = %s\n\n[metrics]\nlisten = 127.0.0.1:%s\n' \
	"$T_DIR/ctl.sock" "$MPORT" >>"$T_DIR/ctl.conf"
pres_bridge_start ctl "$T_DIR/ctl.conf" || die "the bridge did not come up"
wait_port 127.0.0.1 "$MPORT" 5 || die "no /metrics listener"
export PRESBRIDGE_CONTROL=$T_DIR/ctl.sock
URL=http://127.0.0.1:$MPORT/metrics

ctl() { "$CTL" "$@" 2>&1 || true; }
rc_of() { "$CTL" "$@" >/dev/null 2>&1; echo $?; }
metric() { python3 "$IT_DIR/prom.py" "$URL" "$@"; }

# --- the socket
check "socket: mode 0660" test "$(stat -c %a "$T_DIR/ctl.sock")" = 660

# --- status, people and JSON
out=$(ctl status)
check "status: version and uptime" grep -Eq '^presbridge [0-9.]+, running, pid [0-9]+, up ' <<<"$out"
check "status: the component link is up" grep -q 'XMPP (component): 1 of 1 up' <<<"$out"
check "status: the SIP peer is listed with its host" grep -Eq 'sip_peer +lync .*sipp.sip.test over tcp' <<<"$out"
check "status: counts" grep -q '^subscriptions: 0 ' <<<"$out"
js=$(ctl --json status)
check "status --json: parses, link up, pid, counts" \
	jq -e '.xmpp.up == 1 and .xmpp.transport == "component" and .pid > 0 and .counts.subscriptions == 0 and (.links | map(select(.kind == "component" and .up)) | length) == 1' <<<"$js"
check "peers: for people, each with up/down and since when" bash -c \
	"'$CTL' peers | grep -Eq '^  component +sip.test +up +since ' && '$CTL' peers | grep -Eq '^  sip_peer +lync +(up|down) +since '"
check "peers --json: component and SIP peer" \
	jq -e 'map(.kind) | sort == ["component", "sip_peer"]' <<<"$(ctl --json peers)"

m0=$(metric 'presbridge_sip_requests_total{direction="in",method="SUBSCRIBE"}' \
	'presbridge_xmpp_stanzas_total{direction="out",kind="message"}' \
	'presbridge_link_up{kind="component",name="sip.test"}' \
	'presbridge_subscriptions{watcher="sip"}') || fail "metrics: first scrape" "$m0"
read -r sub0 msg0 up0 subs0 <<<"$(echo $m0)"
check "metrics: the component link is up (gauge 1), no subscription yet" \
	test "$up0 $subs0" = "1 0"

# --- a subscription crosses: the lists and the figures follow
sipp_start watch bridge_pres_sub_uac.xml tcp "$(pres_target tcp)" \
	-key ruri bob@xmpp.test -key from ops1@sip.test -m 1 || die "SIPp watcher did not start"
WATCHER=$LAST_PID
xmppc_expect bob '<presence&&type="subscribe"&&from="ops1@sip.test"' 15 || fail "bob was not asked"
xmppc_send bob '<presence type="subscribed" to="ops1@sip.test"/>'
wait_until 10 _log_has "$T_DIR/sipp-watch.msg" 'Subscription-State: active' || fail "not active"
check "subscriptions USER: one, for people" grep -q '^1 subscription of bob@xmpp.test$' <<<"$(ctl subscriptions bob@xmpp.test)"
js=$(ctl --json subscriptions sip.test)
check "subscriptions DOMAIN --json: the watcher and presentity" \
	jq -e 'length == 1 and .[0].watcher == "sip:ops1@sip.test" and .[0].presentity == "bob@xmpp.test" and .[0].direction == "sip-watcher"' \
	<<<"$js"
check "subscriptions of a stranger: none" jq -e 'length == 0' <<<"$(ctl --json subscriptions nobody@nowhere.test)"
check "sessions: none in page mode (people and JSON)" \
	bash -c "'$CTL' sessions | grep -q '^0 IM sessions$' && '$CTL' --json sessions | jq -e 'length == 0'"

check "page MESSAGE to bob is answered 202 (RFC 3428 section 7)" sipp_run msg bridge_im_page_uac.xml tcp "$(pres_target tcp)" \
	-key ruri bob@xmpp.test -key from alice@sip.test
xmppc_expect bob '<message&&from="alice@sip.test"' 10 || fail "bob did not get the message"
m1=$(metric 'presbridge_sip_requests_total{direction="in",method="SUBSCRIBE"}' \
	'presbridge_xmpp_stanzas_total{direction="out",kind="message"}' \
	'presbridge_link_up{kind="component",name="sip.test"}' \
	'presbridge_subscriptions{watcher="sip"}' \
	'presbridge_sip_requests_total{direction="in",method="MESSAGE"}' \
	'presbridge_store_write_seconds_count') || fail "metrics: second scrape" "$m1"
read -r sub1 msg1 up1 subs1 msgin1 storew <<<"$(echo $m1)"
# What an operator sees now (kept with KEEP=1 for notes and bug reports).
ctl status >"$T_DIR/status.txt"
curl -s "$URL" >"$T_DIR/metrics.txt" || true
check "metrics: SUBSCRIBE in counted ($sub0 -> $sub1)" test "${sub1%.*}" -gt "${sub0%.*}"
check "metrics: a message stanza out counted ($msg0 -> $msg1)" test "${msg1%.*}" -gt "${msg0%.*}"
check "metrics: one SIP watcher's subscription (gauge $subs1)" test "$subs1" = 1
check "metrics: MESSAGE in counted ($msgin1)" test "${msgin1%.*}" -ge 1
check "metrics: store writes timed ($storew)" test "${storew%.*}" -ge 1
check "metrics: / is 404, POST is 405" bash -c \
	"[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$MPORT/)\" = 404 ] &&
	 [ \"\$(curl -s -o /dev/null -w '%{http_code}' -X POST $URL)\" = 405 ]"

# --- the example alert rules and dashboard use only families /metrics serves
_families_exist() {
	local served used missing=0 f
	served=$(curl -s "$URL" | sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p')
	used=$(grep -oh 'presbridge_[a-z_]*' "$REPO_DIR/examples/monitoring/alerts.yml" \
		"$REPO_DIR/examples/monitoring/grafana-dashboard.json" | sed -E 's/_(bucket|sum|count)$//' | sort -u)
	for f in $used; do
		grep -qx "$f" <<<"$served" || { echo "not served: $f"; missing=1; }
	done
	[[ -n $used && $missing == 0 ]]
}
check "examples/monitoring: every family named is served" _families_exist
check "examples/monitoring: alerts.yml is YAML, the dashboard JSON" python3 -c \
	"import json, yaml; yaml.safe_load(open('$REPO_DIR/examples/monitoring/alerts.yml')); json.load(open('$REPO_DIR/examples/monitoring/grafana-dashboard.json'))"

# --- a client that never speaks holds nothing
exec {silent}< <(socat -u "UNIX-CONNECT:$T_DIR/ctl.sock" - 2>/dev/null; sleep 30)
t0=$(date +%s%N)
out=$(ctl status)
t1=$(date +%s%N)
check "a silent client does not hold the daemon (status in $(((t1 - t0) / 1000000)) ms)" \
	test $(((t1 - t0) / 1000000)) -lt 2000
exec {silent}<&-

# --- log-level, usage, no daemon
check "log-level debug: exit 0" test "$(rc_of log-level debug)" = 0
check "log-level --json info: says the level" jq -e '.log_level == "info"' <<<"$(ctl --json log-level info)"
check "log-level warn, for people" grep -q '^log level warn until the next reload$' <<<"$(ctl log-level warn)"
check "log-level bogus: exit 2 (usage)" test "$(rc_of log-level bogus)" = 2
check "an unknown command: exit 2" test "$(rc_of frobnicate)" = 2
check "no daemon at the socket: exit 3, said plainly" bash -c \
	"out=\$('$CTL' -s '$T_DIR/none.sock' status 2>&1); rc=\$?; [ \$rc = 3 ] && grep -q 'no presbridge answers' <<<\"\$out\""

# --- reload: nothing, a mapping file, a refused one
check "reload, unchanged: says so" grep -q 'nothing changed' <<<"$(ctl reload)"
sed -i 's/^show-in away  away$/show-in away  busy/' "$T_DIR/maps/presence.map"
check "reload, presence.map edited: names it" grep -q 'changed presence.map' <<<"$(ctl reload)"
sed -i 's/^log_level = .*/log_level = info/' "$T_DIR/ctl.conf"
check "reload, log_level edited: names the key" grep -q 'changed \[bridge\] log_level' <<<"$(ctl reload)"
cp "$T_DIR/ctl.conf" "$T_DIR/ctl.conf.good"
printf 'bogus_key = 1\n' >>"$T_DIR/ctl.conf"
out=$(ctl reload)
rc=$(rc_of reload)
check "reload, a broken file: exit 1, refused, with the line" bash -c \
	"[ '$rc' = 1 ] && grep -q 'refused' <<<'$out' && grep -q 'ctl.conf:' <<<'$out'"
check "reload --json: reloaded false" jq -e '.reloaded == false' <<<"$(ctl --json reload)"
cp "$T_DIR/ctl.conf.good" "$T_DIR/ctl.conf"
check "still running the previous configuration" grep -q 'running' <<<"$(ctl status)"

# --- stop
rc=0
out=$("$CTL" stop 2>&1) || rc=$?
check "stop: exit 0, says so" bash -c "[ '$rc' = 0 ] && grep -q '^stopping$' <<<'$out'"
_gone() { ! alive "$1"; }
check "the daemon stops gracefully" wait_until 10 _gone "$BR_PID"
check "the socket file is removed" test ! -e "$T_DIR/ctl.sock"
sipp_wait "$WATCHER" 10 >/dev/null 2>&1 || true
finish
