#!/bin/bash
# Prosody 0.12 (Debian's package) as the XMPP server of the component mode: a
# private Prosody on loopback (prosody.sh, from a scratch folder) knows the bridge
# as its external component sip.test (XEP-0114); Kamailio plays the Lync pool of
# sip.test as in t_bridge_kamailio.sh (bridge/fed.sh with FED_XMPP=prosody). The
# bridge's configuration is examples/prosody/presbridge.conf with only ports and
# paths replaced.
#   - over direct TLS through Prosody's mod_net_multiplex TLS port (ssl_ports,
#     the example as written), then over plain TCP on loopback (component_ports,
#     tls = off): presence both ways (an XMPP user watches a SIP user; a SIP user
#     watches an XMPP user, approval, a change of show) and page-mode MESSAGE
#     both ways, non-ASCII text compared byte for byte; over plain TCP also a
#     Lync-style IM session from SIP (INVITE with Ms-Text-Format, MESSAGE and
#     INFO in the dialog, the XMPP user's reply, BYE);
#   - what the daemon log and --probe say when Prosody refuses the link: a
#     domain with no Component section (id='' then <host-unknown/>, XEP-0114
#     section 3), a wrong component_secret (<not-authorized/>), TLS against the
#     plain component port and plain TCP against the TLS port (Prosody's
#     settings named in the hint);
#   - --probe while the bridge holds the link: Prosody's <conflict/> reported
#     as expected, not as a failure.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/prosody.sh"
. "$IT_DIR/kamailio.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/xmpp/bridge.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/bridge/im_lib.sh"
. "$IT_DIR/bridge/fed.sh"

[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"

FED_EXAMPLE=$REPO_DIR/examples/prosody/presbridge.conf
check "examples/prosody/presbridge.conf: the Prosody example asks for direct TLS" \
	test "$(ini_get "$FED_EXAMPLE" xmpp tls)" = direct
example_ok() { [[ $("$BUILD_DIR/presbridge" -c "$FED_EXAMPLE" -n 2>&1) == "configuration OK" ]]; }
check "examples/prosody/presbridge.conf passes -n as shipped" example_ok
check "examples/prosody/prosody.cfg.lua keeps the multiplex TLS listener on loopback" \
	grep -Eq '^ssl_interfaces = \{ "127\.0\.0\.1" \}' "$REPO_DIR/examples/prosody/prosody.cfg.lua"

FED_XMPP=prosody FED_LOG_LEVEL=debug fed_start || die "the federation did not come up"
pass "prosody (component sip.test: plain port $PR_COMPONENT_PORT, multiplex TLS port $PR_MUX_TLS_PORT), kamailio and the bridge are up"
TLS_CONF=$FED_CONF

msg_has() { grep -Ezq -- "$2" "$T_DIR/sipp-$1.msg" 2>/dev/null; }
body_is() { # body_is SIPP METHOD N EXPECTED
	local got
	got=$(im_sip_body "$1" "$2" "$3") || return 1
	[[ $got == "$4" ]] || { log "$1: $2 #$3 body is '$got', expected '$4'"; return 1; }
}
logs_count() { (($(count_lines "$1" "$2") >= $3)); }

# fed_cases MODE SIPUSER XMPPUSER PASSWORD: the presence and IM cases over the
# link the bridge now holds.
fed_cases() {
	local m=$1 su=$2 xu=$3 pw=$4 port etag w uas
	prosody_xmppc_start "$xu" "$xu@xmpp.test/desk" "$pw" || die "$xu cannot log in"
	# Asking for the roster makes the client an "interested resource": Prosody
	# delivers the contact's <presence type="subscribed"/> to those only
	# (RFC 6121 sections 2.2 and 3.1.6).
	xmppc_send "$xu" "<iq type=\"get\" id=\"roster-$m\"><query xmlns=\"jabber:iq:roster\"/></iq>"
	xmppc_expect "$xu" "<iq&&id=\"roster-$m\"&&type=\"result\"" 10 || die "$xu got no roster"
	xmppc_send "$xu" '<presence><status>at my desk</status></presence>'
	port=$(free_port)
	check "$m: $su@sip.test registers at kamailio" fed_register "$su" "$port"

	# an XMPP user watches a SIP user: the bridge subscribes at kamailio
	xmppc_send "$xu" "<presence type=\"subscribe\" to=\"$su@sip.test\"/>"
	check "$m: XMPP -> SIP: $xu's subscription through prosody and the bridge is accepted" \
		xmppc_expect "$xu" "<presence&&type=\"subscribed\"&&from=\"$su@sip.test\"" 15
	etag=$(fed_publish "pub-$m" "$su" '<rpid:busy/>' 'in a meeting') || etag=""
	check "$m: SIP: $su PUBLISHes busy 'in a meeting'" test -n "$etag"
	check "$m: XMPP -> SIP: the NOTIFY reaches $xu (via prosody) as <show>dnd</show> <status>in a meeting</status>" \
		xmppc_expect "$xu" "<presence&&from=\"$su@sip.test&&<show>dnd</show>&&<status>in a meeting</status>" 15

	# a SIP user watches an XMPP user
	sipp_start "watch-$m" bridge_kam_watch_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
		-key ruri "$xu@xmpp.test" -key from "$su@sip.test" -m 1 -timeout 60s ||
		die "SIPp watcher ($m) did not start"
	w=$LAST_PID
	check "$m: SIP -> XMPP: $su's SUBSCRIBE asks $xu (via prosody) to authorize $su@sip.test" \
		xmppc_expect "$xu" "<presence&&type=\"subscribe\"&&from=\"$su@sip.test\"" 15
	xmppc_send "$xu" "<presence type=\"subscribed\" to=\"$su@sip.test\"/>"
	check "$m: SIP -> XMPP: $xu's approval turns the subscription active" \
		wait_until 10 fed_sip_msg "watch-$m" '^NOTIFY .*\r\nSubscription-State: active'
	xmppc_send "$xu" '<presence><show>away</show><status>on lunch</status></presence>'
	check "$m: SIP -> XMPP: $xu's away 'on lunch' (from prosody's presence broadcast) reaches $su as PIDF" \
		wait_until 10 fed_sip_msg "watch-$m" '^NOTIFY (?=.*<rpid:away/>)(?=.*<note>on lunch</note>)'
	check "$m: SIP -> XMPP: refresh and sign-out in the dialog; NOTIFY terminated" sipp_wait "$w" 30

	# page-mode MESSAGE both ways
	check "$m: SIP -> XMPP: a MESSAGE from $su is answered 202 (RFC 3428 section 7)" \
		sipp_run "page-in-$m" bridge_im_page_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
		-key ruri "$xu@xmpp.test" -key from "$su@sip.test"
	check "$m: SIP -> XMPP: $xu gets the two-line non-ASCII text intact" \
		xmppc_expect "$xu" "<message&&from=\"$su@sip.test\"&&<body>Grüße&#10;zweite Zeile — 中文 😀&#10;</body>" 10
	# RFC 7572 section 5: pager mode -> no type (normal), never chat
	check "$m: SIP -> XMPP: the page-mode message carries no type=\"chat\"" \
		xmppc_absent "$xu" "<message&&type=\"chat\"&&from=\"$su@sip.test\"&&<body>Grüße" 1
	im_sipp_at "page-out-$m" message_uas.xml udp "$port" "" -m 1 -timeout 30s ||
		die "$su's UAS did not start"
	uas=$LAST_PID
	xmppc_send "$xu" "<message type=\"chat\" to=\"$su@sip.test\" id=\"po-$m\"><body>Grüße zurück&#10;— 中文 😀</body></message>"
	check "$m: XMPP -> SIP: $xu's chat reaches $su's contact as MESSAGE, answered 200" sipp_wait "$uas" 15
	check "$m: XMPP -> SIP: the MESSAGE body is the exact UTF-8 bytes (CRLF line break)" \
		body_is "page-out-$m" MESSAGE 1 $'Grüße zurück\r\n— 中文 😀'
	# RFC 7572 section 4 note 1: the sender's resource (desk) as the gr parameter
	check "$m: XMPP -> SIP: From sip:$xu@xmpp.test;gr=desk" fed_sip_msg "page-out-$m" "^From: <sip:$xu@xmpp\\.test;gr=desk>;tag="
	check "$m: no chat was refused on the XMPP side" xmppc_absent "$xu" '<message&&type="error"' 1
}

# --- (a) direct TLS through mod_net_multiplex (ssl_ports), the example as written
tls_up() {
	grep -Eq "xmpp: 127\.0\.0\.1:$PR_MUX_TLS_PORT: sip\.test: component link up \(TLS, certificate of xmpp\.test verified\)" "$BR_LOG"
}
check "tls: the bridge's link to prosody's multiplex TLS port is up, certificate verified" tls_up
check "tls: prosody's mod_net_multiplex TLS listener is on loopback only" \
	grep -Eq "Activated service 'multiplex_ssl' on \\[127\\.0\\.0\\.1\\]:$PR_MUX_TLS_PORT\$" "$PR_LOG"

# --probe while the bridge holds the link: Prosody refuses a second login with
# <conflict/>; the probe says why, as a warning, and the federation still works.
probe_running() {
	local out rc=0
	out=$(timeout 60 "$BUILD_DIR/presbridge" -c "$TLS_CONF" --probe 2>&1) || rc=$?
	printf '%s\n' "$out" >"$T_DIR/probe-running.out"
	((rc == 0)) || { log "--probe exited $rc: $out"; return 1; }
	if ! grep -Eq '^  warn  component sip\.test: another component is already connected as sip\.test \("Component already connected"\); this is expected while presbridge runs' <<<"$out" ||
		! grep -q '^result: federation would work' <<<"$out"; then
		log "$out"
		return 1
	fi
}
check "--probe while the bridge is linked: prosody's <conflict/> is reported as expected (warn), exit 0" \
	probe_running
check "--probe while the bridge is linked: the bridge's own link stayed up" \
	bash -c "! grep -q 'sip.test: link lost' '$BR_LOG'"

fed_cases tls alice bob bobpw

bridge_rc=0
bridge_stop "$BR_PID" 10 || bridge_rc=$?
check "tls: the bridge stops, exit 0" test "$bridge_rc" -eq 0

# --- (b) plain TCP on loopback: Prosody's component port, tls = off
PLAIN_CONF=$T_DIR/presbridge-plain.conf
ini_set "$TLS_CONF" "$PLAIN_CONF" "xmpp.server=127.0.0.1:$PR_COMPONENT_PORT" "xmpp.tls=off"
pres_bridge_start presbridge-plain "$PLAIN_CONF" || die "the bridge (plain) did not link to prosody"
check "plain: the bridge's link to prosody's component port is up (plain TCP: tls = off)" \
	grep -Eq "127\.0\.0\.1:$PR_COMPONENT_PORT: sip\.test: component link up \(plain TCP: tls = off\)" "$BR_LOG"
fed_cases plain dave carol carolpw

# Lync-style IM sessions over the plain link: [peer lync] im = session (SIGHUP)
_reloaded() { (($(count_lines "$BR_LOG" 'daemon: reloaded') >= $1)); }
to_session() {
	local n
	n=$(count_lines "$BR_LOG" 'daemon: reloaded')
	ini_set "$PLAIN_CONF" "$PLAIN_CONF.new" 'peer lync.im=session' && mv "$PLAIN_CONF.new" "$PLAIN_CONF"
	kill -HUP "$BR_PID"
	wait_until 5 _reloaded "$((n + 1))"
}
check "plain: SIGHUP: the bridge reloads [peer lync] with im = session" to_session
CS='xmlns="http://jabber.org/protocol/chatstates"'
sipp_start sess-in bridge_kam_im_sess_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
	-key ruri carol@xmpp.test -key from dave@sip.test -m 1 -timeout 40s || die "SIPp (dave's session) did not start"
UAC=$LAST_PID
check "plain: session from SIP: dave's INVITE; its Ms-Text-Format message reaches carol with a thread" \
	xmppc_expect carol '<message&&from="dave@sip.test"&&<body>Erste Nachricht: Grüße aus Lync 😀</body>&&<thread>' 10
T=$(im_thread carol 'Erste Nachricht: Grüße aus Lync')
check "plain: session from SIP: the MESSAGE in the dialog arrives in that thread" \
	xmppc_expect carol "<message&&from=\"dave@sip.test\"&&<body>Zweite Nachricht — im Dialog&#10;</body>&&<thread>${T:-none}</thread>" 10
check "plain: session from SIP: the KeyboardActivity INFO arrives as <composing/>" \
	xmppc_expect carol "<message&&from=\"dave@sip.test\"&&<composing $CS/>&&<thread>${T:-none}</thread>" 10
# bridge_kam_im_sess_uac.xml checks the reply for this exact text.
xmppc_send carol "<message type=\"chat\" to=\"dave@sip.test\" id=\"r1\"><body>Antwort von Bob</body><thread>$T</thread></message>"
check "plain: session from SIP: carol's reply reaches dave in the dialog; his BYE is answered" \
	sipp_wait "$UAC" 30
check "plain: session from SIP: the reply's body is exact" body_is sess-in MESSAGE 1 'Antwort von Bob'
check "plain: session from SIP: after BYE carol is told the conversation ended (<gone/>)" \
	xmppc_expect carol "<message&&from=\"dave@sip.test\"&&<gone $CS/>&&<thread>${T:-none}</thread>" 10
bridge_rc=0
bridge_stop "$BR_PID" 10 || bridge_rc=$?
check "plain: the bridge stops, exit 0" test "$bridge_rc" -eq 0

# --- refusals: what the daemon log and --probe tell
# refused NAME CONF LOG-REGEX PROBE-REGEX: the daemon logs LOG-REGEX (a warn line),
# and --probe exits 1 with a FAIL line matching PROBE-REGEX.
refused() {
	local name=$1 conf=$2 lre=$3 pre=$4 pid out rc=0
	spawn "$name" "$BUILD_DIR/presbridge" -c "$conf"
	pid=$LAST_PID
	if ! wait_alive "$pid" 15 _log_has "$T_DIR/$name.log" " warn  xmpp: .*$lre"; then
		log "$name: no warn line matching: $lre"
		bridge_stop "$pid" 5 || true
		return 1
	fi
	bridge_stop "$pid" 5 || true
	out=$(timeout 60 "$BUILD_DIR/presbridge" -c "$conf" --probe 2>&1) || rc=$?
	printf '%s\n' "$out" >"$T_DIR/$name-probe.out"
	((rc == 1)) || { log "$name: --probe exited $rc: $out"; return 1; }
	grep -Eq "^  FAIL  .*$pre" <<<"$out" || { log "$name --probe: $out"; return 1; }
	# the daemon no longer blames libstrophe's log format for Prosody's id=''
	! grep -q "log format changed" "$T_DIR/$name.log"
}

# A bridged domain Prosody has no Component section for: Prosody opens its stream
# with id='' and sends <host-unknown/> (XEP-0114 section 3).
mkdir -p "$T_DIR/mappings-other"
cp "$REPO_DIR"/mappings/*.map "$T_DIR/mappings-other/"
sed -i 's/^sip\( *\)sip\.test\( *\)sip\.test/sip\1other.test\2other.test/' "$T_DIR/mappings-other/domains.map"
ini_set "$PLAIN_CONF" "$T_DIR/unknown.conf" "bridge.mappings=$T_DIR/mappings-other" \
	"bridge.state=:memory:" "peer lync.domains=other.test"
HOST_UNKNOWN='the server does not serve the component domain other\.test \("other\.test does not match any configured external components"\); .*give Prosody a Component section for it with a component_secret'
check "prosody refuses the domain: the log and --probe report <host-unknown/> with prosody's text and hint" \
	refused unknown "$T_DIR/unknown.conf" "other\\.test: $HOST_UNKNOWN" "component other\\.test: $HOST_UNKNOWN"

ini_set "$PLAIN_CONF" "$T_DIR/badsecret.conf" "xmpp.secret=not-the-secret" "bridge.state=:memory:"
BAD_SECRET='handshake refused: the server does not accept our secret for sip\.test \("Given token does not match calculated token"\); check \[xmpp\] secret against the ejabberd_service password.*on Prosody, against the component_secret of its Component section'
check "wrong secret: the log and --probe name prosody's component_secret" \
	refused badsecret "$T_DIR/badsecret.conf" "sip\\.test: $BAD_SECRET" "component sip\\.test: $BAD_SECRET"

ini_set "$TLS_CONF" "$T_DIR/tls-on-plain.conf" "xmpp.server=127.0.0.1:$PR_COMPONENT_PORT" \
	"bridge.state=:memory:"
check "tls = direct against prosody's plain component port: the hint names component_ports and ssl_ports" \
	refused tls-on-plain "$T_DIR/tls-on-plain.conf" \
	"sip\\.test: TLS: .*Prosody(:|'s) component_ports are plain TCP.*ssl_ports" \
	"TLS: .*Prosody(:|'s) component_ports are plain TCP.*ssl_ports"

ini_set "$PLAIN_CONF" "$T_DIR/plain-on-tls.conf" "xmpp.server=127.0.0.1:$PR_MUX_TLS_PORT" \
	"bridge.state=:memory:"
check "tls = off against prosody's multiplex TLS port: the hint names mod_net_multiplex ssl_ports" \
	refused plain-on-tls "$T_DIR/plain-on-tls.conf" \
	"sip\\.test: .*set \\[xmpp\\] tls = direct \\(the same for Prosody's mod_net_multiplex ssl_ports\\)" \
	"set \\[xmpp\\] tls = direct \\(the same for Prosody's mod_net_multiplex ssl_ports\\)"

mapfile -t procs < <(snapshot_procs)
xmppc_stop bob || true
xmppc_stop carol || true
stop_all
check_nothing_left "${procs[@]}"
finish
