#!/bin/bash
# shellcheck source-path=SCRIPTDIR/../tests/integration
# The main job (README command one): a SIP/SIMPLE domain and an XMPP domain
# federated through presbridge on this machine, server to server.
#
#   1. installs what is missing (scripts/deps.sh demo) and builds (scripts/build.sh);
#   2. enters a private network + mount namespace (tests/integration/netns.sh, as
#      the S2S tests do) with its own DNS (dnsmasq): there every server has its
#      own 127.x address and the standard ports; the machine's /etc/hosts and
#      /etc/resolv.conf stay untouched, and nothing is reachable from outside;
#   3. issues a test CA and certificates, and starts: Kamailio as sip.test's
#      server in the Lync pool's part (lyncpool.sip.test: registrar, presence
#      server, a TLS static route for xmpp.test to the bridge, the bridge its
#      trusted peer over mutual TLS); presbridge as the XMPP server of sip.test,
#      configured from examples/s2s/presbridge-s2s.conf with only addresses,
#      ports and paths replaced (and im = page, for the SIMPLE client); ejabberd
#      as xmpp.test, federating with it server-to-server (RFC 6120: STARTTLS,
#      SASL EXTERNAL), each finding the other by its _xmpp-server._tcp SRV record
#      (tests/integration/bridge/fed_s2s.sh);
#   4. a SIP user (alice@sip.test: SIPp, registered at Kamailio) and an XMPP user
#      (bob@xmpp.test: xmppc at ejabberd) subscribe to each other, change presence
#      and exchange messages both ways; it prints what crossed, as what, and how
#      the server-to-server streams were authenticated (from both servers' logs);
#   5. stops everything it started, also on Ctrl-C or a failure.
# Exit status 0 only if everything crossed. System services are never used. The
# same topology runs in the suite (t_bridge_kamailio_s2s); so does the component
# one (ejabberd with the bridge as XEP-0114 component: t_bridge_kamailio).
#
# Env: BUILD_DIR (default build), KEEP=1 keeps the scratch folder, SHOW_LOGS=1
# prints every server's log at the end.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
export BUILD_DIR=${BUILD_DIR:-build}

# Packages and build outside the namespace (apt-get needs the network); then the
# script runs again inside it (netns_enter), with PB_DEMO_READY=1.
if [[ ${PB_DEMO_READY:-} != 1 ]]; then
	here=$PWD
	cd "$top"
	echo "== 1/3 packages (scripts/deps.sh demo)"
	if ! scripts/deps.sh demo; then
		cat >&2 <<'EOF'

demo: a package could not be installed (the lines above say which). Run the
apt-get line printed above by hand to see why (usually /etc/apt/sources.list,
the network, or a proxy), then run scripts/demo.sh again.
EOF
		exit 1
	fi

	echo "== 2/3 build (scripts/build.sh $BUILD_DIR)"
	buildlog=$(mktemp "${TMPDIR:-/tmp}/presbridge-demo-build.XXXXXX")
	if ! scripts/build.sh "$BUILD_DIR" >"$buildlog" 2>&1; then
		tail -n 40 "$buildlog" >&2
		echo "demo: the build failed; the whole output is in $buildlog" >&2
		exit 1
	fi
	rm -f "$buildlog"
	if ! unshare --net --mount --fork -- true 2>/dev/null; then
		cat >&2 <<'EOF'
demo: the federation runs in a private network and mount namespace (unshare
--net --mount), which this user cannot create: run the demo as root.
EOF
		exit 1
	fi
	export PB_DEMO_READY=1
	cd "$here"
fi
. "$top/tests/integration/netns.sh"
netns_enter "$@"
cd "$top"

# From here on the integration harness runs the federation: process groups, and
# a trap that stops everything at exit, on Ctrl-C and on failure.
export LIB_STYLE=demo
. "$top/tests/integration/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/kamailio.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/xmpp/bridge.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/bridge/im_lib.sh"
. "$IT_DIR/bridge/fed.sh"
. "$IT_DIR/bridge/fed_s2s.sh"

echo "   $("$BUILD_DIR/presbridge" -V) built in $BUILD_DIR/"
echo "== 3/3 the federation, server to server (scratch folder $T_DIR)"
[[ -x $XMPPC ]] || die "$XMPPC is missing: the build should have made it"
if ! fed_s2s_start; then
	cat >&2 <<'EOF'

demo: the federation did not start; the reason is above. Every server runs in
the demo's own network namespace, so no program of this machine can hold its
ports; the logs listed below tell what went wrong.
EOF
	die "the federation did not start"
fi
pool=$(ini_get "$FED_S2S_EXAMPLE" "peer lync" host)
cat <<EOF
   network     a private network namespace, its own DNS (dnsmasq, 127.0.0.1:53):
               SRV _xmpp-server._tcp.sip.test -> sip.test:5269, sip.test $FED_S2S_ADDR
               SRV _xmpp-server._tcp.xmpp.test -> xmpp.test:5269, xmpp.test $FED_S2S_PEER_ADDR
   sip.test    Kamailio $(kamailio -v 2>/dev/null | sed -n 's/^version: kamailio \([0-9.]*\).*/\1/p'), as the Lync pool $pool ($FED_S2S_POOL_ADDR): registrar + presence server
               SIP clients on UDP 127.0.0.1:$KAM_UDP_PORT; mutual TLS on $FED_S2S_POOL_ADDR:$KAM_TLS_PORT
               TLS static route: xmpp.test -> presbridge $FED_S2S_BRIDGE_HOST ($BR_SIP_ADDR:$BR_TLS)
   presbridge  the XMPP server of sip.test: server-to-server on $FED_S2S_ADDR:5269, SIP (mutual TLS) on $BR_SIP_ADDR:$BR_TLS
               $BUILD_DIR/presbridge -c $FED_CONF
               = examples/s2s/presbridge-s2s.conf with addresses, ports and paths replaced, and
                 [peer lync] im = page (alice is a SIMPLE client); presbridge -n: $(tail -n 1 "$T_DIR/check.log")
   xmpp.test   ejabberd $(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null | sed 's/-[^-]*$//'), server-to-server on $FED_S2S_PEER_ADDR:5269 (STARTTLS required); clients on 127.0.0.1:$EJ_C2S_PORT (STARTTLS)
   certs       test CA in $CA_DIR: presbridge ($FED_S2S_BRIDGE_HOST and sip.test, serverAuth+clientAuth),
               Kamailio ($pool), ejabberd (xmpp.test)
EOF

n=0
# sent WHAT: one thing a user did; got WHAT: what arrived on the other side.
sent() {
	n=$((n + 1))
	printf '\n%2d. %s\n' "$n" "$*"
}
got() { printf '    -> %s\n' "$*"; }
# cross NAME CMD...: CMD waits until it arrived; counted, and reported if not.
cross() {
	local name=$1
	shift
	if "$@"; then
		pass "$name"
		return 0
	fi
	fail "$name" "did not arrive"
	return 1
}
xgot() { # xgot PATTERN: the stanza bob got, as he got it
	got "bob@xmpp.test (XMPP) got $(fed_xmpp_show bob "$1")"
}
sgot() { # sgot SIPP METHOD [REGEX] [HOW]: the request alice got
	got "alice@sip.test (SIP${4:+, $4}) got $(fed_sip_show "$1" "$2" "${3:-}")"
}
# streams: the two server-to-server streams, as the bridge's and ejabberd's logs
# tell them; the last line is the summary.
streams() {
	local out line
	out=$(fed_s2s_streams) || return 1
	while IFS= read -r line; do
		case $line in
		"presbridge <-> "*) printf '    = %s\n' "$line" ;;
		*) printf '      %s\n' "$line" ;;
		esac
	done <<<"$out"
}

ALICE_PORT=$(free_port)
sent "alice@sip.test (SIP over UDP) REGISTERs at Kamailio, contact 127.0.0.1:$ALICE_PORT"
cross "alice registers" fed_register alice "$ALICE_PORT" &&
	got "Kamailio (sip.test registrar) answered 200; requests for alice@sip.test now reach 127.0.0.1:$ALICE_PORT"

sent "bob@xmpp.test (XMPP) logs in at ejabberd and says <presence><status>at my desk</status></presence>"
cross "bob logs in" xmppc_start bob bob@xmpp.test/desk bobpw && got "logged in as bob@xmpp.test/desk"
xmppc_send bob '<presence><status>at my desk</status></presence>'

sent "bob@xmpp.test (XMPP) <presence type='subscribe' to='alice@sip.test'/>
    = ejabberd looks up _xmpp-server._tcp.sip.test, opens a server-to-server stream to presbridge
      (the XMPP server of sip.test) -> SUBSCRIBE sip:alice@sip.test to Kamailio's presence server (mutual TLS)"
xmppc_send bob '<presence type="subscribe" to="alice@sip.test"/>'
if cross "bob's subscription to alice" xmppc_expect bob '<presence&&type="subscribed"&&from="alice@sip.test"' 20; then
	xgot '<presence&&type="subscribed"&&from="alice@sip.test"'
	cross "alice's presence (none yet)" xmppc_expect bob '<presence&&type="unavailable"&&from="alice@sip.test"' 10 &&
		xgot '<presence&&type="unavailable"&&from="alice@sip.test"'
	got "(Kamailio answered 200 and NOTIFYed the bridge: alice has published nothing yet, so she is offline)"
fi
printf '    the server-to-server streams, as presbridge and ejabberd logged them:\n'
cross "the server-to-server streams are up and authenticated" streams || true

sent "alice@sip.test (SIP over UDP) PUBLISHes busy 'in a meeting' at Kamailio
    = Kamailio NOTIFYs presbridge over mutual TLS (PIDF, <rpid:busy/>) -> server-to-server -> ejabberd"
etag=$(fed_publish pub-busy alice '<rpid:busy/>' 'in a meeting') || etag=""
cross "alice busy -> bob" xmppc_expect bob '<presence&&from="alice@sip.test&&<show>dnd</show>&&<status>in a meeting</status>' 15 &&
	xgot '<presence&&from="alice@sip.test&&<show>dnd</show>&&<status>in a meeting</status>'

sent "alice@sip.test (SIP over UDP) SUBSCRIBEs to sip:bob@xmpp.test
    = Kamailio record-routes it and relays it along its TLS static route for xmpp.test to presbridge
      -> server-to-server -> ejabberd"
sipp_start watch bridge_kam_watch_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
	-key ruri bob@xmpp.test -key from alice@sip.test -m 1 -timeout 60s || die "SIPp (alice's watcher) did not start"
WATCH=$LAST_PID
cross "alice's subscription request -> bob" xmppc_expect bob '<presence&&type="subscribe"&&from="alice@sip.test"' 15 &&
	xgot '<presence&&type="subscribe"&&from="alice@sip.test"'
cross "alice's subscription pending" wait_until 10 fed_sip_msg watch 'Subscription-State: pending' &&
	sgot watch NOTIFY 'pending' 'NOTIFY along the Record-Route through Kamailio'

sent "bob@xmpp.test (XMPP) accepts: <presence type='subscribed' to='alice@sip.test'/>"
xmppc_send bob '<presence type="subscribed" to="alice@sip.test"/>'
cross "bob's approval -> alice" wait_until 15 fed_sip_msg watch '^NOTIFY .*at my desk' &&
	sgot watch NOTIFY 'at my desk' 'via Kamailio'

sent "bob@xmpp.test (XMPP) <presence><show>away</show><status>on lunch</status></presence>"
xmppc_send bob '<presence><show>away</show><status>on lunch</status></presence>'
cross "bob away -> alice" wait_until 15 fed_sip_msg watch '^NOTIFY .*on lunch' &&
	sgot watch NOTIFY 'on lunch' 'via Kamailio'

sent "alice@sip.test's client refreshes its subscription (Expires: 1800) and signs out (Expires: 0),
    in the dialog, through Kamailio (Route: its Record-Route)"
cross "alice signs out" sipp_wait "$WATCH" 30 &&
	sgot watch NOTIFY 'terminated' 'via Kamailio'

sent "alice@sip.test (SIP over UDP) MESSAGE sip:bob@xmpp.test 'Hallo Bob — Grüße aus sip.test 😀'
    = Kamailio's TLS static route -> presbridge -> server-to-server -> ejabberd"
cross "alice's MESSAGE accepted" sipp_run msg-in message_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
	-key ruri bob@xmpp.test -key from alice@sip.test -key body 'Hallo Bob — Grüße aus sip.test 😀' &&
	cross "alice's MESSAGE -> bob" xmppc_expect bob '<message&&from="alice@sip.test"&&<body>Hallo Bob — Grüße aus sip.test 😀' 15 &&
	xgot '<message&&from="alice@sip.test"&&<body>Hallo Bob'

im_sipp_at msg-out message_uas.xml udp "$ALICE_PORT" "" -m 1 -timeout 30s ||
	die "SIPp (alice's client) did not start on 127.0.0.1:$ALICE_PORT"
UAS=$LAST_PID
sent "bob@xmpp.test (XMPP) <message type='chat' to='alice@sip.test'><body>Hi Alice — greetings from xmpp.test 👋</body></message>
    = ejabberd -> server-to-server -> presbridge -> MESSAGE to Kamailio (mutual TLS) -> alice's registered contact"
xmppc_send bob '<message type="chat" to="alice@sip.test" id="demo1"><body>Hi Alice — greetings from xmpp.test 👋</body></message>'
cross "bob's chat -> alice" sipp_wait "$UAS" 20 &&
	sgot msg-out MESSAGE '' 'Kamailio found her registration'

sent "alice@sip.test (SIP over UDP) changes her publication (SIP-If-Match: $etag): available, 'back at my desk'"
fed_publish pub-back alice '' 'back at my desk' "$etag" >/dev/null || true
cross "alice available -> bob" xmppc_expect bob '<presence&&from="alice@sip.test&&<status>back at my desk</status>' 15 &&
	xgot '<presence&&from="alice@sip.test&&<status>back at my desk</status>'

sent "presbridge gets SIGTERM (a graceful stop)"
unavail() { grep '^RECV <presence' "$(xmppc_log bob)" | grep 'type="unavailable"' | grep -c 'from="alice@sip.test' || true; }
before=$(unavail)
bridge_rc=0
bridge_stop "$BR_PID" 10 || bridge_rc=$?
cross "presbridge exits 0" test "$bridge_rc" -eq 0 &&
	got "presbridge exited 0"
told() { (($(unavail) > before)); }
cross "bob is told alice is out of reach" wait_until 10 told &&
	xgot '<presence&&type="unavailable"&&from="alice@sip.test"'

echo
xmppc_stop bob || true
stop_all
if ((T_FAILED == 0)); then
	echo "Everything crossed: $T_PASSED of $T_PASSED steps, in $SECONDS s. Stopped everything the demo started."
else
	echo "$T_FAILED of $((T_PASSED + T_FAILED)) steps did not cross (FAILED lines above). Stopped everything the demo started."
fi
finish
