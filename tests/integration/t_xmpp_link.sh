#!/bin/bash
# The XMPP leg against a real ejabberd: the XEP-0114 component link over direct
# TLS, the answers the link gives itself, refusals (wrong secret, untrusted or
# misnamed certificate, TLS mismatch, a server that never answers TLS), surviving
# an ejabberd restart, SIGHUP and a clean SIGTERM.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/xmpp/bridge.sh"

need socat
export CA_DIR=$T_DIR/certs
"$IT_DIR/ca.sh" init "$CA_DIR"
"$IT_DIR/ca.sh" issue "$CA_DIR" xmpp --dns xmpp.test --eku serverAuth,clientAuth
"$IT_DIR/ca.sh" issue "$CA_DIR" rogue --dns xmpp.test --eku serverAuth --ca rogue
[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"
[[ -x $BUILD_DIR/presbridge ]] || die "$BUILD_DIR/presbridge missing (build it, or set BUILD_DIR)"
PB_VERSION=$("$BUILD_DIR/presbridge" -V | awk '{print $2}')

# A secret long enough to be found in a log if it ever leaked there.
export EJ_COMPONENT_SECRET="component-secret-$RANDOM$RANDOM"
ejabberd_start "$T_DIR/ejabberd"

# --- the link comes up
bridge_conf "$T_DIR/bridge.conf"
bridge_start bridge "$T_DIR/bridge.conf"
B1=$BRIDGE_PID
B1_LOG=$BRIDGE_LOG

check "link: the bridge connects over TLS and authenticates as sip.test" \
	wait_alive "$B1" 15 _log_has "$B1_LOG" 'sip\.test: component link up \(TLS'
check "ejabberd: accepted the component handshake for sip.test" \
	wait_log "$EJ_LOG" 'Accepted external component handshake authentication for sip\.test' 5

xmppc_start alice alice@xmpp.test/t alicepw || die "alice cannot log in"

CLIENT=alice
ask() { # ask ID XML PATTERN: $CLIENT sends XML, expects a stanza with id ID matching PATTERN
	xmppc_send "$CLIENT" "$2"
	xmppc_expect "$CLIENT" "id=\"$1\"&&$3" 10
}

check "disco#info on sip.test: identity gateway/sip named presbridge" \
	ask di1 '<iq type="get" id="di1" to="sip.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>' \
	'type="result"&&category="gateway"&&type="sip"&&name="presbridge"&&var="urn:xmpp:ping"&&var="jabber:iq:version"'
check "disco#items on sip.test: an empty list" \
	ask dt1 '<iq type="get" id="dt1" to="sip.test"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>' \
	'type="result"&&<query xmlns="http://jabber.org/protocol/disco#items"/>'
check "ping (XEP-0199) on sip.test: result" \
	ask p1 '<iq type="get" id="p1" to="sip.test"><ping xmlns="urn:xmpp:ping"/></iq>' \
	'type="result"&&from="sip.test"'
check "version (XEP-0092): presbridge $PB_VERSION" \
	ask v1 '<iq type="get" id="v1" to="sip.test"><query xmlns="jabber:iq:version"/></iq>' \
	"type=\"result\"&&<name>presbridge</name>&&<version>$PB_VERSION</version>"
check "unknown iq get (jabber:iq:last): service-unavailable" \
	ask l1 '<iq type="get" id="l1" to="sip.test"><query xmlns="jabber:iq:last"/></iq>' \
	'type="error"&&<error type="cancel"&&<service-unavailable'
check "unknown iq get (vcard-temp): service-unavailable" \
	ask vc1 '<iq type="get" id="vc1" to="sip.test"><vCard xmlns="vcard-temp"/></iq>' \
	'type="error"&&<service-unavailable'
check "unknown iq set: service-unavailable" \
	ask s1 '<iq type="set" id="s1" to="sip.test"><query xmlns="jabber:iq:private"><x xmlns="y"/></query></iq>' \
	'type="error"&&<service-unavailable'
check "disco#info addressed to a SIP user: service-unavailable (the link answers for itself)" \
	ask du1 '<iq type="get" id="du1" to="x@sip.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>' \
	'type="error"&&from="x@sip.test"&&<service-unavailable'
# This configuration has no [peer]: the bridge takes the message and, with no
# SIP server to hand it to, answers it (nothing is dropped silently).
check "message to x@sip.test: reaches the bridge, answered item-not-found (no [peer] serves sip.test)" \
	ask m1 '<message type="chat" id="m1" to="x@sip.test"><body>hello</body></message>' \
	'<message&&type="error"&&from="x@sip.test"&&<item-not-found'
check "message to x@sip.test: the refusal is logged with its cause" \
	wait_log "$B1_LOG" 'IM from alice@xmpp\.test[^ ]* to sip:x@sip\.test refused: no \[peer\] serves' 5

# A 40 KiB body arrives in several TLS records; the link must read them all
# without waiting for more traffic (TLS-buffered data, see XL_DRAIN in xlink.c).
big=$(head -c 40000 /dev/zero | tr '\0' 'a')
check "a 40 KiB message is read whole at once (TLS-buffered data drained)" \
	ask big1 "<message type=\"chat\" id=\"big1\" to=\"x@sip.test\"><body>$big</body></message>" \
	'<message&&type="error"&&from="x@sip.test"'
huge=$(head -c 70000 /dev/zero | tr '\0' 'b')
check "a 70 KiB message: policy-violation" \
	ask big2 "<message type=\"chat\" id=\"big2\" to=\"x@sip.test\"><body>$huge</body></message>" \
	'<message&&type="error"&&<policy-violation'

PRES_RE='alice@xmpp\.test -> sip:x@sip\.test: xmpp-subscribe'
xmppc_send alice '<presence type="subscribe" to="x@sip.test"/>'
check "presence subscribe for x@sip.test reaches the bridge's state machine" \
	wait_log "$B1_LOG" "$PRES_RE" 5

trace_masked() {
	grep -q 'sip\.test: out: <handshake>\*\*\*\*</handshake>' "$B1_LOG" &&
		! grep -Eq '<handshake>[0-9a-f]{40}' "$B1_LOG" &&
		! grep -qF -- "$EJ_COMPONENT_SECRET" "$B1_LOG" &&
		grep -q 'sip\.test: in: <iq id="di1"' "$B1_LOG" &&
		grep -q 'sip\.test: out: <iq id="di1"' "$B1_LOG"
}
check "trace: every stanza in and out logged, the handshake masked, the secret never" trace_masked

# --- SIGHUP with nothing changed keeps the stream
hup_unchanged() {
	local ups
	ups=$(count_lines "$B1_LOG" 'component link up')
	kill -HUP "$B1"
	wait_log "$B1_LOG" 'reloaded ' 5 &&
		ask p2 '<iq type="get" id="p2" to="sip.test"><ping xmlns="urn:xmpp:ping"/></iq>' 'type="result"' &&
		! grep -q 'applying the changed' "$B1_LOG" &&
		(($(count_lines "$B1_LOG" 'component link up') == ups))
}
check "SIGHUP, [xmpp] unchanged: the stream stays up" hup_unchanged

# --- ejabberd goes away and comes back
xmppc_stop alice || true
ejabberd_stop
# ejabberd may get a <system-shutdown/> stream error out before it closes the
# socket, or not: the leg logs whichever cause it saw first.
check "restart: the bridge notices the server is gone" \
	wait_log "$B1_LOG" ' warn  xmpp: .*sip\.test: (link lost: .*|the server is shutting down .*); retrying in 1 s \(attempt 1\)' 10
check "restart: a refused connection is named as such" \
	wait_log "$B1_LOG" 'sip\.test: connection refused: check that the XMPP server runs' 10
sleep 6 # let the back-off grow: attempts after 1, 2 and 4 s
t_down=$(date +%s%3N)
ejabberd_restart || die "ejabberd did not come back"
t_back=$(date +%s%3N)
reconnected() { (($(count_lines "$B1_LOG" 'sip\.test: component link up') >= 2)); }
check "restart: the bridge reconnects within its back-off (<= 30 s)" \
	wait_alive "$B1" 35 reconnected
t_up=$(date +%s%3N)
# The recovery time of issue 9's fault list (t_bridge_faults.sh prints the others).
echo "TIME ejabberd restart: ready $((t_back - t_down)) ms after the restart began; component link up $((t_up - t_back)) ms after that (its back-off had grown to about 8 s)"
no_flood() {
	local warns attempts
	warns=$(count_lines "$B1_LOG" ' warn  xmpp: .*retrying in')
	attempts=$(count_lines "$B1_LOG" 'connecting \(attempt')
	log "while ejabberd was down: $warns warning line(s), $attempts attempt(s) in all"
	((warns >= 1 && warns <= 3 && attempts >= 3 && attempts <= 8))
}
check "restart: retries back off and are logged once per cause, not per attempt" no_flood

xmppc_start alice2 alice@xmpp.test/t2 alicepw || die "alice cannot log in again"
CLIENT=alice2
check "restart: disco#info answers again" \
	ask di2 '<iq type="get" id="di2" to="sip.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>' \
	'type="result"&&category="gateway"&&type="sip"'
xmppc_send alice2 '<presence type="subscribe" to="x@sip.test"/>'
presence_again() { (($(count_lines "$B1_LOG" "$PRES_RE") >= 2)); }
check "restart: presence for x@sip.test reaches the bridge's state machine again" \
	wait_until 5 presence_again

# --- SIGHUP with a wrong secret: refused, clearly, with back-off; then fixed again
bridge_conf "$T_DIR/bridge.conf" secret=not-the-secret
kill -HUP "$B1"
check "SIGHUP, secret changed: the bridge reconnects with the new settings" \
	wait_log "$B1_LOG" 'applying the changed \[xmpp\] settings' 5
REFUSED_RE='handshake refused: the server does not accept our secret for sip\.test; check \[xmpp\] secret against the ejabberd_service password'
check "wrong secret: refused with a plain log line naming the fix" \
	wait_log "$B1_LOG" " warn  xmpp: 127\.0\.0\.1:$EJ_COMPONENT_PORT: sip\.test: $REFUSED_RE" 10
check "ejabberd: refused the handshake too" \
	wait_log "$EJ_LOG" 'Failed external component handshake authentication for sip\.test' 5
attempts0=$(count_lines "$B1_LOG" 'connecting \(attempt')
sleep 8
backoff() {
	local n warns
	n=$(($(count_lines "$B1_LOG" 'connecting \(attempt') - attempts0))
	warns=$(count_lines "$B1_LOG" " warn  xmpp: .*$REFUSED_RE")
	log "wrong secret: $n more attempt(s) in 8 s, $warns warning line(s)"
	((n >= 2 && n <= 5 && warns == 1))
}
check "wrong secret: retried with back-off (1, 2, 4 s...), warned once" backoff
bridge_conf "$T_DIR/bridge.conf"
ups=$(count_lines "$B1_LOG" 'sip\.test: component link up')
kill -HUP "$B1"
up_again() { (($(count_lines "$B1_LOG" 'sip\.test: component link up') > ups)); }
check "SIGHUP, secret fixed: the link is up again at once" wait_until 5 up_again

# --- certificate and TLS refusals, each by a second bridge beside the first
refused_by() { # refused_by NAME REGEX [SECS] KEY=VALUE...: a bridge with these settings logs REGEX
	local name=$1 re=$2 secs=$3 rc=0
	shift 3
	bridge_conf "$T_DIR/$name.conf" "$@"
	bridge_start "$name" "$T_DIR/$name.conf"
	wait_alive "$BRIDGE_PID" "$secs" _log_has "$BRIDGE_LOG" "$re" || rc=1
	grep -q 'component link up' "$BRIDGE_LOG" && rc=1
	bridge_stop "$BRIDGE_PID" 5 || rc=1
	return "$rc"
}
check "wrong name: refused (certificate does not carry wrong.test)" \
	refused_by wrongname ' warn  xmpp: .*sip\.test: TLS: certificate does not carry the expected name for wrong\.test \(OpenSSL: hostname mismatch\); set \[xmpp\] name' 10 \
	name=wrong.test
check "tls = off against a TLS listener: refused, the fix named" \
	refused_by plain ' warn  xmpp: .*sip\.test: the server closed the connection before opening a stream: if its component listener has tls: true, set \[xmpp\] tls = direct' 10 \
	tls=off

silent=$(free_port)
spawn silent socat "TCP-LISTEN:$silent,bind=127.0.0.1,reuseaddr,fork" SYSTEM:'sleep 60'
SILENT_PID=$LAST_PID
wait_port 127.0.0.1 "$silent" 5 || die "socat did not listen"
check "a server that never answers TLS: given up after 10 s, not hung" \
	refused_by silent ' warn  xmpp: .*sip\.test: TLS: no TLS answer within 10 s' 20 \
	server="127.0.0.1:$silent"
stop_pid "$SILENT_PID"

# --- SIGTERM closes the stream cleanly
sigterm_clean() {
	local rc=0
	bridge_stop "$B1" 5 || rc=$?
	log "presbridge exited with $rc"
	((rc == 0)) &&
		grep -q 'sip\.test: out: </stream:stream>' "$B1_LOG" &&
		grep -q 'sip\.test: stream closed' "$B1_LOG" &&
		grep -q 'daemon: stopped' "$B1_LOG"
}
check "SIGTERM: </stream:stream>, the server's close, exit 0" sigterm_clean

# --- a server certificate from an unknown CA
xmppc_stop alice2 || true
ejabberd_stop
# ejabberd picks its certificate by the name the client asks for (SNI) among all
# it has, ignoring the listener's own certfile when a global one matches: only
# rogue certificates may be loaded.
EJ_C2S_CERT=$CA_DIR/rogue.pem EJ_COMPONENT_CERT=$CA_DIR/rogue.pem ejabberd_start "$T_DIR/ejabberd-rogue"
check "untrusted certificate (rogue CA): refused, the fix named" \
	refused_by rogue " warn  xmpp: 127\.0\.0\.1:$EJ_COMPONENT_PORT: sip\.test: TLS: certificate signed by an unknown CA for xmpp\.test \(OpenSSL: [^)]*\); add the XMPP server's CA to \[xmpp\] ca" 10

# --- teardown: everything we started must be gone
mapfile -t procs < <(snapshot_procs)
ejabberd_stop
stop_all
check_nothing_left "${procs[@]}"

finish
