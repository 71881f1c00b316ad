#!/bin/bash
# The bridge's flows through a real SIP server, as in production: Kamailio plays
# the Lync pool of sip.test (registrar, presence server, TLS static route for
# xmpp.test to the bridge), the bridge is its trusted peer over mutual TLS, and
# the SIP user is a SIPp client registered at Kamailio over UDP. The bridge's
# configuration is examples/presbridge.conf with only ports and paths replaced
# (bridge/fed.sh, which scripts/demo.sh runs too).
#   - a SIP user watches an XMPP user: SUBSCRIBE through Kamailio to the bridge,
#     NOTIFYs back along Kamailio's Record-Route, refresh and sign-out in the
#     dialog through Kamailio;
#   - an XMPP user watches a SIP user: the bridge subscribes at Kamailio's
#     presence server; the SIP user's PUBLISH (and its change) reaches the XMPP
#     user as <presence>;
#   - page-mode MESSAGE both ways, non-ASCII text compared byte for byte (to the
#     SIP user through Kamailio's location service);
#   - Lync-style IM sessions (im = session after SIGHUP), opened from SIP and
#     from XMPP: INVITE, MESSAGE, INFO and BYE in the dialog through Kamailio's
#     Record-Route (the bridge's BYE when it stops);
#   - SIGTERM: BYE for the open session, the bridge's subscription ended at
#     Kamailio, exit 0;
#   - examples/lync/presbridge.conf passes -n once certificates for its names
#     are there.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/kamailio.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/xmpp/bridge.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/bridge/im_lib.sh"
. "$IT_DIR/bridge/fed.sh"

[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"

# --- the real-world example (examples/lync): only its certificates are missing
lync_example() {
	local d=$T_DIR/lync out
	cp -rL "$REPO_DIR/examples/lync" "$d"
	out=$("$BUILD_DIR/presbridge" -c "$d/presbridge.conf" -n 2>&1) && return 1
	# four problems, each a certificate file that is not there
	if [[ $(grep -c "error: [a-z]*: cannot read '[^']*/certs/" <<<"$out") -ne 4 ||
		$(grep -c . <<<"$out") -ne 4 ]]; then
		log "examples/lync -n: $out"
		return 1
	fi
	"$IT_DIR/ca.sh" init "$d/ca" && mkdir -p "$d/certs" &&
		"$IT_DIR/ca.sh" issue "$d/ca" presbridge.example.com --dns presbridge.example.com \
			--eku serverAuth,clientAuth &&
		cp "$d/ca/presbridge.example.com.crt" "$d/ca/presbridge.example.com.key" "$d/certs/" &&
		cp "$d/ca/ca.crt" "$d/certs/enterprise-ca.crt" || return 1
	out=$("$BUILD_DIR/presbridge" -c "$d/presbridge.conf" -n 2>&1) || { log "$out"; return 1; }
	[[ $out == "configuration OK" ]] || { log "$out"; return 1; }
}
check "examples/lync: -n finds nothing wrong but its missing certificates; with them, configuration OK" \
	lync_example
FED_LOG_LEVEL=debug fed_start || die "the federation did not come up"
pass "ejabberd, kamailio (TLS route xmpp.test -> 127.0.0.1:$BR_TLS) and the bridge are up; the bridge's configuration is the example's"

received() { (($(im_sip_count "$1" "$2") >= $3)); }
body_is() { # body_is SIPP METHOD N EXPECTED: the N-th METHOD SIPp received has these bytes
	local got
	got=$(im_sip_body "$1" "$2" "$3") || return 1
	[[ $got == "$4" ]] || { log "$1: $2 #$3 body is '$got', expected '$4'"; return 1; }
}
msg_has() { grep -Ezq -- "$2" "$T_DIR/sipp-$1.msg" 2>/dev/null; }
# mutual TLS between Kamailio and the bridge, both ways, the peer known by name
tls_in() { # Kamailio connected to the bridge and presented the pool's certificate
	grep -Eq 'peer lync01\.sip\.test \(127\.0\.0\.1:[0-9]+\): TLS \(TLSv1\.[23]\) established, certificate verified, \[peer lync\]' "$BR_LOG"
}
tls_out() { # the bridge connected to Kamailio's TLS port and verified its certificate
	grep -Eq "peer lync01\\.sip\\.test \\(127\\.0\\.0\\.1:$KAM_TLS_PORT\\): TLS \\(TLSv1\\.[23]\\) established, certificate verified" "$BR_LOG"
}

xmppc_start bob bob@xmpp.test/desk bobpw || die "bob cannot log in"
xmppc_send bob '<presence><status>at my desk</status></presence>'

# The SIP user alice: her requests Kamailio relays (MESSAGE, INVITE) go to the
# Contact she registers, where SIPp UAS scenarios take them one after the other.
ALICE_PORT=$(free_port)
check "alice@sip.test registers at kamailio (UDP), contact 127.0.0.1:$ALICE_PORT" \
	fed_register alice "$ALICE_PORT"
registered() { kamrpc ul.lookup location alice@sip.test | grep -q "sip:sipp@127\.0\.0\.1:$ALICE_PORT"; }
check "kamailio's location service has alice's contact" registered

# --- an XMPP user watches a SIP user: the bridge subscribes at kamailio's presence server
xmppc_send bob '<presence type="subscribe" to="alice@sip.test"/>'
check "XMPP -> SIP: bob's subscription is accepted (kamailio's presence server answered the bridge's SUBSCRIBE)" \
	xmppc_expect bob '<presence&&type="subscribed"&&from="alice@sip.test"' 15
check "XMPP -> SIP: the bridge's SUBSCRIBE went to kamailio over mutual TLS" tls_out
etag=$(fed_publish pub1 alice '<rpid:busy/>' 'in a meeting') || etag=""
check "SIP: alice PUBLISHes busy 'in a meeting' at kamailio (200 with an ETag)" test -n "$etag"
check "XMPP -> SIP: kamailio's NOTIFY reaches bob as <show>dnd</show> <status>in a meeting</status>" \
	xmppc_expect bob '<presence&&from="alice@sip.test&&<show>dnd</show>&&<status>in a meeting</status>' 15
check "kamailio -> bridge: kamailio's client certificate names the pool, and identifies [peer lync]" tls_in
etag2=$(fed_publish pub2 alice '' 'back at my desk' "$etag") || etag2=""
check "SIP: alice changes her publication (SIP-If-Match) to available 'back at my desk'" test -n "$etag2"
available_again() { # the latest presence from alice has no <show/> and the new status
	local last
	xmppc_expect bob '<presence&&from="alice@sip.test&&<status>back at my desk</status>' 15 || return 1
	last=$(grep -F 'from="alice@sip.test' "$(xmppc_log bob)" | grep '^RECV <presence' | tail -n 1)
	[[ $last != *'<show>'* && $last != *'type="unavailable"'* ]] || { log "last presence: $last"; return 1; }
}
check "XMPP -> SIP: the change reaches bob as available (no <show/>) with the new status" available_again

# --- bob unsubscribes: SUBSCRIBE Expires: 0 to kamailio, whose final NOTIFY the
# bridge answers 200 (RFC 6665 4.1.2.3), so kamailio has nothing to delete twice
BA='bob@xmpp.test -> sip:alice@sip.test'
flow_count() { grep -cF "$BA: $1" "$BR_LOG"; }
unsub_flow() { # the 200 sent unsubscribed (RFC 8048 5.2.3), the final NOTIFY ended it
	(($(flow_count 'sip-2xx-ended: xw-ending -> xw-ending (xmpp-unsubscribed)') >= 1)) &&
		grep -F "$BA: sip-notify-end-" "$BR_LOG" | grep -qF ': xw-ending -> idle (cancel-timer|sip-response|drop)'
}
kam_deleted_once() { ! grep -q 'Failed to delete subscription' "$KAM_LOG"; }
no_481() { ! grep -q 'NOTIFY answered 481' "$BR_LOG"; }
xmppc_send bob '<presence type="unsubscribe" to="alice@sip.test"/>'
check "XMPP -> SIP: bob's unsubscribe: Expires: 0 at kamailio, unsubscribed on its 200, kamailio's final NOTIFY answered 200" \
	wait_until 10 unsub_flow
check "XMPP -> SIP: the bridge answered no NOTIFY 481, kamailio logged no failure to delete the subscription" \
	bash -c "$(declare -f kam_deleted_once no_481); KAM_LOG='$KAM_LOG' BR_LOG='$BR_LOG' kam_deleted_once && no_481"
resubscribed() { (($(flow_count 'sip-notify-active: xw-asking -> xw-active') >= 2)); }
xmppc_send bob '<presence type="subscribe" to="alice@sip.test"/>'
check "XMPP -> SIP: bob subscribes again: a new dialog at kamailio, active again" \
	wait_until 15 resubscribed

# --- a SIP user watches an XMPP user, through kamailio both ways
sipp_start watch bridge_kam_watch_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
	-key ruri bob@xmpp.test -key from alice@sip.test -m 1 -timeout 60s || die "SIPp watcher did not start"
WATCH=$LAST_PID
check "SIP -> XMPP: alice's SUBSCRIBE (via kamailio's TLS route) asks bob to authorize alice@sip.test" \
	xmppc_expect bob '<presence&&type="subscribe"&&from="alice@sip.test"' 15
check "SIP -> XMPP: the 200 came back through kamailio, which record-routed the dialog" \
	wait_until 5 fed_sip_msg watch '^SIP/2.0 200 .*\r\nRecord-Route: <sip:127\.0\.0\.1:'"$KAM_TLS_PORT"';transport=tls;'
check "SIP -> XMPP: before bob answers, a NOTIFY says pending" \
	wait_until 10 msg_has watch 'Subscription-State: pending'
xmppc_send bob '<presence type="subscribed" to="alice@sip.test"/>'
check "SIP -> XMPP: bob's approval turns it active (NOTIFY through kamailio)" \
	wait_until 10 fed_sip_msg watch '^NOTIFY .*\r\nSubscription-State: active'
xmppc_send bob '<presence><show>away</show><status>on lunch</status></presence>'
check "SIP -> XMPP: bob's away 'on lunch' reaches alice as PIDF (rpid away, note, Lync 15500)" \
	wait_until 10 fed_sip_msg watch '^NOTIFY (?=.*<rpid:away/>)(?=.*<ms:availability>15500<)(?=.*<note>on lunch</note>)'
notify_via_kam() { # the NOTIFYs alice got crossed kamailio: its Via on top of the bridge's TLS Via
	fed_sip_msg watch '^NOTIFY sip:sipp@127[^\r]*\r\nVia: SIP/2.0/UDP 127\.0\.0\.1:'"$KAM_UDP_PORT"';branch=[^\r]*\r\nVia: SIP/2.0/TLS bridge\.xmpp\.test:'"$BR_TLS;"
}
check "SIP -> XMPP: the NOTIFYs took kamailio's Record-Route (kamailio's Via over the bridge's TLS Via)" notify_via_kam
check "SIP -> XMPP: refresh (Expires 1800) and sign-out in the dialog through kamailio; NOTIFY terminated" \
	sipp_wait "$WATCH" 30

# --- page-mode MESSAGE both ways
check "SIP -> XMPP: a MESSAGE from alice via kamailio is answered 202 (RFC 3428 section 7)" \
	sipp_run page-in bridge_im_page_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
	-key ruri bob@xmpp.test -key from alice@sip.test
check "SIP -> XMPP: bob gets the two-line non-ASCII text intact" \
	xmppc_expect bob '<message&&from="alice@sip.test"&&<body>Grüße&#10;zweite Zeile — 中文 😀&#10;</body>' 10

im_sipp_at page-out message_uas.xml udp "$ALICE_PORT" "" -m 1 -timeout 30s || die "alice's UAS did not start"
UAS=$LAST_PID
xmppc_send bob '<message type="chat" to="alice@sip.test" id="po1"><body>Grüße zurück&#10;— 中文 😀</body></message>'
check "XMPP -> SIP: bob's chat reaches alice's registered contact (kamailio's lookup) as MESSAGE, answered 200" \
	sipp_wait "$UAS" 15
check "XMPP -> SIP: the MESSAGE body is the exact UTF-8 bytes (CRLF line break)" \
	body_is page-out MESSAGE 1 $'Grüße zurück\r\n— 中文 😀'
page_relayed() { # From bob, To alice, R-URI her contact; kamailio's Via over the bridge's
	fed_sip_msg page-out '^MESSAGE sip:sipp@127\.0\.0\.1:'"$ALICE_PORT"'[^\r]*\r\nVia: SIP/2.0/UDP 127\.0\.0\.1:'"$KAM_UDP_PORT"';[^\r]*\r\nVia: SIP/2.0/TLS bridge\.xmpp\.test:'"$BR_TLS"';' &&
		fed_sip_msg page-out '^From: <sip:bob@xmpp\.test;gr=desk>;tag=' &&
		fed_sip_msg page-out '^To: <sip:alice@sip\.test>\r'
}
check "XMPP -> SIP: From sip:bob@xmpp.test;gr=desk (RFC 7572 section 4), To sip:alice@sip.test, to her contact through kamailio (its Via over the bridge's)" \
	page_relayed

# --- Lync-style IM sessions through kamailio: [peer lync] im = session, SIGHUP
_reloaded() { (($(count_lines "$BR_LOG" 'daemon: reloaded') >= $1)); }
to_session() {
	local n
	n=$(count_lines "$BR_LOG" 'daemon: reloaded')
	ini_set "$FED_CONF" "$FED_CONF.new" 'peer lync.im=session' && mv "$FED_CONF.new" "$FED_CONF"
	grep -q '^im = session' "$FED_CONF" || return 1
	kill -HUP "$BR_PID"
	wait_until 5 _reloaded "$((n + 1))"
}
check "SIGHUP: the bridge reloads [peer lync] with im = session" to_session

CS='xmlns="http://jabber.org/protocol/chatstates"'
sipp_start sess-in bridge_kam_im_sess_uac.xml udp "127.0.0.1:$KAM_UDP_PORT" \
	-key ruri bob@xmpp.test -key from alice@sip.test -m 1 -timeout 40s || die "SIPp (alice's session) did not start"
UAC=$LAST_PID
check "session from SIP: alice's INVITE via kamailio; its Ms-Text-Format message reaches bob with a thread" \
	xmppc_expect bob '<message&&from="alice@sip.test"&&<body>Erste Nachricht: Grüße aus Lync 😀</body>&&<thread>' 10
T=$(im_thread bob 'Erste Nachricht: Grüße aus Lync')
check "session from SIP: the MESSAGE in the dialog (routed through kamailio) arrives in that thread" \
	xmppc_expect bob "<message&&from=\"alice@sip.test\"&&<body>Zweite Nachricht — im Dialog&#10;</body>&&<thread>${T:-none}</thread>" 10
check "session from SIP: the KeyboardActivity INFO arrives as <composing/> in the thread" \
	xmppc_expect bob "<message&&from=\"alice@sip.test\"&&<composing $CS/>&&<thread>${T:-none}</thread>" 10
xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\" id=\"r1\"><body>Antwort von Bob</body><thread>$T</thread></message>"
check "session from SIP: bob's reply reaches alice in the dialog through kamailio; her BYE is answered" \
	sipp_wait "$UAC" 30
check "session from SIP: the reply's body is exact" body_is sess-in MESSAGE 1 'Antwort von Bob'
check "session from SIP: the reply came to alice's Contact, relayed by kamailio along the route set" \
	fed_sip_msg sess-in '^MESSAGE sip:sipp@127\.0\.0\.1:[0-9]+;transport=UDP SIP/2\.0\r\nVia: SIP/2\.0/UDP 127\.0\.0\.1:'"$KAM_UDP_PORT"';'
check "session from SIP: after BYE bob is told the conversation ended (<gone/>)" \
	xmppc_expect bob "<message&&from=\"alice@sip.test\"&&<gone $CS/>&&<thread>${T:-none}</thread>" 10

im_sipp_at sess-out bridge_im_sess_uas.xml udp "$ALICE_PORT" "" -m 1 -timeout 60s ||
	die "alice's session UAS did not start"
UAS=$LAST_PID
xmppc_send bob '<message type="chat" to="alice@sip.test" id="s1"><body>Hallo Alice — 1 😀</body></message>'
xmppc_send bob '<message type="chat" to="alice@sip.test" id="s2"><body>zweite Nachricht&#10;über XMPP</body></message>'
# from XMPP: to alice's registered contact
check "session: INVITE to alice via kamailio, then the second chat as MESSAGE in the dialog" \
	wait_until 15 received sess-out MESSAGE 1
mstf_is() { # the INVITE's Ms-Text-Format carries TEXT, base64 of its exact bytes
	local v b
	v=$(im_sip_header sess-out INVITE Ms-Text-Format) || return 1
	b=$(sed -n 's/.*ms-body=\([A-Za-z0-9+/=]*\).*/\1/p' <<<"$v")
	[[ $(base64 -d <<<"$b") == "$1" ]] || { log "Ms-Text-Format: $v"; return 1; }
}
check "session: the INVITE carries the first chat in Ms-Text-Format, exact" \
	mstf_is 'Hallo Alice — 1 😀'
check "session: the second chat's body is exact (CRLF)" \
	body_is sess-out MESSAGE 1 $'zweite Nachricht\r\nüber XMPP'
in_dialog_via_kam() { # the in-dialog MESSAGE reached alice's contact, relayed by kamailio
	im_sip_header sess-out MESSAGE Via | grep -q "^SIP/2.0/UDP 127\.0\.0\.1:$KAM_UDP_PORT;" &&
		grep -q "^MESSAGE sip:sipp@127\.0\.0\.1:$ALICE_PORT" "$T_DIR/sipp-sess-out.msg"
}
check "session: alice's 200 record-routed kamailio, and the MESSAGE in the dialog came along that route" \
	in_dialog_via_kam
xmppc_send bob '<message type="chat" to="alice@sip.test"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>'
typing_info() {
	wait_until 10 received sess-out INFO 1 &&
		im_sip_body sess-out INFO 1 | grep -q '<KeyboardActivity><status status="type"'
}
check "session: bob typing arrives as Lync KeyboardActivity INFO in the dialog" typing_info
check "session: no chat was refused on the XMPP side" \
	xmppc_absent bob '<message&&type="error"' 1

# --- stop: the open session gets BYE through kamailio, exit 0
bridge_rc=0
bridge_stop "$BR_PID" 10 || bridge_rc=$?
check "SIGTERM: the open session gets BYE through kamailio (alice answers it)" sipp_wait "$UAS" 10
check "SIGTERM: the bridge exits 0" test "$bridge_rc" -eq 0
check "SIGTERM: the bridge ends its subscription at kamailio's presence server, which answers 2xx" \
	test "$(flow_count 'sip-2xx-ended')" -ge 2 # the unsubscribe above, and this one
check "SIGTERM: kamailio's final NOTIFY is answered 200, not 481 (RFC 6665 4.1.2.3); kamailio deletes the subscription once" \
	bash -c "! grep -q 'NOTIFY answered 481' '$BR_LOG' && ! grep -q 'Failed to delete subscription' '$KAM_LOG'"
check "nothing was challenged or refused between kamailio and the bridge" \
	bash -c "! grep -Eq 'challenged|answered 40[137]|TLS alert' '$BR_LOG'"

mapfile -t procs < <(snapshot_procs)
xmppc_stop bob || true
stop_all
check_nothing_left "${procs[@]}"
finish
