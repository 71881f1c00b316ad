# shellcheck shell=bash
# The cases every server-to-server suite runs, whatever XMPP server is the peer:
# presence and subscriptions both ways, IM both ways (page mode), SIGHUP, and
# Lync's session mode with typing, each asserted on the XMPP user's and the SIP
# side's view. Source after lib.sh, xmpp.sh, sipp.sh,
# bridge/pres.sh and bridge/im_lib.sh, inside a namespace with netns_dns records
# for the peer domain (xmpp.test) and sip.test (the bridge on 127.0.0.3:5269).
#
#   s2s_case NAME BRIDGE_AUTH
#       peer_start NAME (the suite's: start the XMPP server of xmpp.test),
#       peer_client CLIENT JID PASSWORD (log a user in to it), then a bridge with
#       [s2s] auth = BRIDGE_AUTH; runs the cases; stops the bridge, the client
#       and the peer (peer_stop). Logs: $T_DIR/bridge-NAME.log.
#       S2S_RESTART=1: also kill -9 a bridge with a state file and restart it.
#   peer_roster USER CONTACT STATES (the suite's): true once the peer's roster of
#       USER holds CONTACT with a subscription in STATES (a regex, e.g. "from|both")

msg_has() { grep -Ezq -- "$2" "$T_DIR/sipp-$1.msg" 2>/dev/null; }

s2s_case() {
	local name=$1 auth=$2
	peer_start "$name" || die "the XMPP server ($name) did not start"
	local B="bob-$name"
	peer_client "$B" bob@xmpp.test/desk bobpw || die "bob cannot log in"
	xmppc_send "$B" '<presence/>'

	UAS_PORT=$(free_port)
	BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
	BR_S2S_ADDR=127.0.0.3 BR_S2S_AUTH=$auth BR_IM=page \
		pres_conf "$T_DIR/bridge-$name.conf" tcp "$UAS_PORT"
	check "$name: presbridge -n accepts the S2S configuration" \
		"$BUILD_DIR/presbridge" -c "$T_DIR/bridge-$name.conf" -n
	BR_S2S_ADDR=127.0.0.3 pres_bridge_start "bridge-$name" "$T_DIR/bridge-$name.conf" ||
		die "the bridge ($name) did not come up"
	local target
	target=$(pres_target tcp)
	# (The [peer lync] target of the probe fails: no SIPp listens yet.)
	"$BUILD_DIR/presbridge" -c "$T_DIR/bridge-$name.conf" --probe >"$T_DIR/probe-$name.out" 2>&1 || true
	check "$name: --probe: xmpp.test by SRV, STARTTLS or direct TLS, authenticated as a stream would be, works" \
		eval "sed -n '/server-to-server at/,/=>/p' '$T_DIR/probe-$name.out' >'$T_DIR/probe-$name.s2s' &&
			grep -Eq 'SRV records: _xmpps?-server._tcp' '$T_DIR/probe-$name.s2s' &&
			grep -Eq 'STARTTLS offered|from SRV, direct TLS' '$T_DIR/probe-$name.s2s' &&
			grep -Eq 'the peer offers (SASL EXTERNAL|dialback)' '$T_DIR/probe-$name.s2s' &&
			grep -Eq 'SASL EXTERNAL: the peer accepted|dialback: the peer confirmed' '$T_DIR/probe-$name.s2s' &&
			grep -q '=> works' '$T_DIR/probe-$name.s2s'"

	# --- a Lync user watches bob (the bridge sends subscribe over S2S)
	sipp_start "watch-$name" bridge_pres_sub_uac.xml tcp "$target" \
		-key ruri bob@xmpp.test -key from "watch$name@sip.test" -m 1 -timeout 60s ||
		die "SIPp watcher did not start"
	local WATCHER=$LAST_PID
	check "$name: SIP watcher: bob@xmpp.test is asked to authorize (subscribe crossed S2S)" \
		xmppc_expect "$B" "<presence&&type=\"subscribe\"&&from=\"watch$name@sip.test\"" 20
	xmppc_send "$B" "<presence type=\"subscribed\" to=\"watch$name@sip.test\"/>"
	check "$name: SIP watcher: the approval turns the SIP subscription active" \
		wait_until 15 msg_has "watch-$name" 'Subscription-State: active'
	xmppc_send "$B" '<presence><show>away</show><status>on lunch</status><priority>5</priority></presence>'
	check "$name: SIP watcher: bob's away + status arrive as PIDF over S2S" \
		wait_until 15 msg_has "watch-$name" '<rpid:away/>.*on lunch|on lunch.*<rpid:away/>'
	# (The scenario's refresh and sign-out steps are not asserted here: over S2S
	# ejabberd sends bob's presence twice in a row after the approval, its
	# broadcast and its answer to our probe, and SIPp loses a NOTIFY that arrives
	# while it answers the previous one. The component suites assert them.)
	stop_pid "$WATCHER" 2 || true
	check "$name: SIP watcher: the XMPP server's roster of bob has watch$name@sip.test (from)" \
		wait_until 10 peer_roster bob "watch$name@sip.test" 'from|both'

	# --- bob watches a Lync user (the bridge is the SIP subscriber)
	im_uas_start "notifier-$name" bridge_pres_notifier_uas.xml "$UAS_PORT" \
		-key presentity "notifier$name@sip.test" -m 1 || die "SIPp notifier did not start"
	local NOTIFIER=$LAST_PID
	xmppc_send "$B" "<presence type=\"subscribe\" to=\"notifier$name@sip.test\"/>"
	# RFC 6121 section 3.1.6: the approval goes to bob's server, which records it
	# in his roster (it delivers the presence only to resources that asked for
	# the roster: ejabberd does so anyway, Prosody does not).
	check "$name: XMPP watcher: the Lync user's approval crosses S2S into bob's roster (to)" \
		wait_until 20 peer_roster bob "notifier$name@sip.test" 'to|both'
	check "$name: XMPP watcher: the NOTIFY's busy + note reach bob as dnd + status" \
		xmppc_expect "$B" "<presence&&from=\"notifier$name@sip.test\"&&<show>dnd</show>&&<status>in a meeting</status>" 15
	xmppc_send "$B" "<presence type=\"unsubscribe\" to=\"notifier$name@sip.test\"/>"
	check "$name: XMPP watcher: unsubscribe reaches the notifier (SUBSCRIBE Expires: 0)" \
		sipp_wait "$NOTIFIER" 25

	# --- IM, page mode, both ways
	check "$name: IM SIP -> XMPP: MESSAGE answered 202 (RFC 3428 section 7)" \
		sipp_run "page-in-$name" bridge_im_page_uac.xml tcp "$target" \
		-key ruri bob@xmpp.test -key from alice@sip.test
	check "$name: IM SIP -> XMPP: bob gets the text from alice@sip.test" \
		xmppc_expect "$B" '<message&&from="alice@sip.test"&&zweite Zeile' 15
	check "$name: IM SIP -> XMPP: pager mode gives no type=\"chat\" (RFC 7572 section 5)" \
		xmppc_absent "$B" '<message&&type="chat"&&from="alice@sip.test"&&zweite Zeile' 1
	im_uas_start "page-out-$name" message_uas.xml "$UAS_PORT" -m 1 -timeout 30s ||
		die "SIPp UAS did not start"
	local UAS=$LAST_PID
	xmppc_send "$B" "<message type=\"chat\" to=\"alice@sip.test\" id=\"po-$name\"><body>über S2S $name</body></message>"
	check "$name: IM XMPP -> SIP: the MESSAGE reaches the Lync side" sipp_wait "$UAS" 20
	check "$name: IM XMPP -> SIP: its body is bob's text" \
		eval "[[ \$(im_sip_body page-out-$name MESSAGE) == 'über S2S $name' ]]"

	# --- SIGHUP: the same [s2s] settings keep the streams; then Lync's session
	# mode (INVITE, MESSAGE and INFO in the dialog, BYE) over the same streams
	local conf=$T_DIR/bridge-$name.conf
	sed -i 's/^im = page$/im = session/' "$conf"
	kill -HUP "$BR_PID"
	check "$name: SIGHUP (im = session): reloaded, the S2S streams kept" \
		eval "wait_log '$BR_LOG' 'daemon: reloaded' 10 && ! grep -q 'closing every stream' '$BR_LOG'"
	sipp_start "sess-in-$name" bridge_im_sess_uac.xml tcp "$target" \
		-key ruri bob@xmpp.test -key from alice@sip.test -m 1 -timeout 40s ||
		die "SIPp UAC did not start"
	local UAC=$LAST_PID CS='xmlns="http://jabber.org/protocol/chatstates"' T
	check "$name: session: the Ms-Text-Format first message reaches bob with a thread" \
		xmppc_expect "$B" '<message&&from="alice@sip.test"&&<body>Erste Nachricht: Grüße aus Lync 😀</body>&&<thread>' 15
	T=$(im_thread "$B" 'Erste Nachricht: Grüße aus Lync')
	check "$name: session: Lync's typing (INFO) arrives as <composing/> in the thread" \
		xmppc_expect "$B" "<message&&from=\"alice@sip.test\"&&<composing $CS/>&&<thread>${T:-none}</thread>" 15
	xmppc_send "$B" "<message type=\"chat\" to=\"alice@sip.test\" id=\"r-$name\"><body>Antwort von Bob</body><thread>$T</thread></message>"
	check "$name: session: bob's reply goes into the SIP dialog; BYE answered" sipp_wait "$UAC" 30
	check "$name: session: the reply's body is exact" \
		eval "[[ \$(im_sip_body sess-in-$name MESSAGE) == 'Antwort von Bob' ]]"
	check "$name: session: after BYE bob is told the conversation ended (<gone/>)" \
		xmppc_expect "$B" "<message&&from=\"alice@sip.test\"&&<gone $CS/>&&<thread>${T:-none}</thread>" 15

	stop_pid "$BR_PID" 5 || true

	# --- kill -9 and restart from the state file (S2S_RESTART=1): the XMPP
	# watcher's subscription to a Lync user comes back with its SIP dialog, and
	# the next presence crosses a new S2S stream. Over UDP, as t_bridge_restart
	# (SIPp over TCP ends its call when its connection drops).
	if [[ -n ${S2S_RESTART:-} ]]; then
		sipp_start "rs-$name" bridge_pres_restart_uas.xml udp "" \
			-key presentity "rs$name@sip.test" -m 1 || die "SIPp notifier did not start"
		local NOT=$LAST_PID rconf=$T_DIR/rs-$name.conf
		BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
		BR_S2S_ADDR=127.0.0.3 BR_S2S_AUTH=$auth BR_IM=page \
			pres_conf "$rconf" udp "$SIPP_PORT" "$T_DIR/rs-$name/state.db"
		BR_S2S_ADDR=127.0.0.3 pres_bridge_start "rs-$name-1" "$rconf" ||
			die "the bridge ($name, restart) did not come up"
		xmppc_send "$B" "<presence type=\"subscribe\" to=\"rs$name@sip.test\"/>"
		check "$name: restart: before, bob sees the Lync user busy over S2S" \
			xmppc_expect "$B" "<presence&&from=\"rs$name@sip.test\"&&<show>dnd</show>&&<status>before restart</status>" 20
		kill -9 "$BR_PID" 2>/dev/null
		wait_until 5 eval "! alive $BR_PID" || true
		BR_S2S_ADDR=127.0.0.3 pres_bridge_start "rs-$name-2" "$rconf" ||
			die "the bridge ($name) did not come back"
		check "$name: restart: kill -9, restored from the state file: the new presence reaches bob" \
			xmppc_expect "$B" "<presence&&from=\"rs$name@sip.test\"&&<show>away</show>&&<status>after restart</status>" 40
		check "$name: restart: the notifier saw an in-dialog refresh of the same subscription" \
			sipp_wait "$NOT" 20
		check "$name: restart: the log names the restored subscription" \
			_log_has "$BR_LOG" "restored bob@xmpp\\.test -> sip:rs$name@sip\\.test \\(xw-active\\) with its SIP dialog"
		stop_pid "$BR_PID" 5 || true
	fi
	xmppc_stop "$B" || true
	peer_stop
}
