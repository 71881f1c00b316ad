#!/bin/bash
# Instant messages across the bridge, end to end: a real ejabberd, SIPp as the
# Lync-style peer, presbridge as the daemon, over TCP and over TLS.
#   - page mode (RFC 3428) both ways, with multi-line non-ASCII text, and the
#     RFC 7572 mapping: no type (normal) toward XMPP, Subject <-> <subject/>,
#     Call-ID <-> <thread/>, Content-Language <-> xml:lang, the 1300-byte limit;
#   - an XMPP error after the 202 (no such XMPP user) reaches the SIP sender as
#     a MESSAGE (RFC 3428 section 7); typing stops after a 415 (RFC 3994 4);
#   - session mode as Lync does it: a Lync-initiated INVITE with Ms-Text-Format,
#     MESSAGE and INFO in the dialog, the XMPP user's reply, BYE; an XMPP-initiated
#     session (INVITE with the first message, a queued second message, typing,
#     BYE when the bridge stops);
#   - typing both ways (isComposing / KeyboardActivity <-> XEP-0085);
#   - errors: an unknown user (SIP 404 -> item-not-found, page and session), a
#     domain not bridged (404), bodies the bridge cannot take (400/413/415 and
#     policy-violation), the XMPP link down (480 with Retry-After).
#   - idle sessions end with BYE after [bridge] im_idle_timeout;
#   - kill -9 and restart (over UDP: SIPp over TCP ends its calls when its one
#     connection drops): the open session is resumed from the state file, the
#     XMPP user's reply goes on in the same dialog and thread.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/xmpp/bridge.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/bridge/im_lib.sh"

pres_setup perl base64
[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"
export SIPP_TLS_NAME=bridge.xmpp.test

ejabberd_start "$T_DIR/ejabberd"
xmppc_start bob bob@xmpp.test/im bobpw || die "bob cannot log in"
xmppc_send bob '<presence/>'

# The Lync side's server: SIPp UAS scenarios, one after the other, on one TCP
# port; over TLS the bridge reaches them through a socat TLS front end
# (certificate sipp.sip.test, the [peer]'s host).
UAS_PORT=$(free_port)
tls_server_proxy tlsfront "$UAS_PORT" || die "the TLS front end did not start"
FRONT_PORT=$PROXY_PORT

CS='xmlns="http://jabber.org/protocol/chatstates"'
# What SIPp sends ends with CRLF (it writes every line so); the bridge keeps it, as
# a line break: LF on the XMPP side.
PAGE_IN_BODY='<body>Grüße&#10;zweite Zeile — 中文 😀&#10;</body>'
TEXT_OUT='Grüße&#10;zweite Zeile — 中文 😀'
SIP_OUT=$'Grüße\r\nzweite Zeile — 中文 😀'
LONG=$(printf 'Lange Nachricht %04d. ' $(seq 1 41)) # 901 characters
LONG=${LONG% }

body_is() { # body_is SIPP METHOD N EXPECTED: the N-th METHOD SIPp received has this body
	local got
	got=$(im_sip_body "$1" "$2" "$3") || return 1
	[[ $got == "$4" ]] || {
		log "$1: $2 #$3 body is '$got', expected '$4'"
		return 1
	}
}
header_has() { # header_has SIPP METHOD HEADER REGEX [N]: in the N-th (default 1) METHOD
	im_sip_header "$1" "$2" "$3" "${5:-1}" | grep -Eq -- "$4"
}
received() { (($(im_sip_count "$1" "$2") >= $3)); }
mstf_is() { # mstf_is SIPP TEXT: the INVITE's Ms-Text-Format carries TEXT (CRLF form)
	local v b
	v=$(im_sip_header "$1" INVITE Ms-Text-Format) || return 1
	[[ $v == text/plain\;* ]] || return 1
	b=$(sed -n 's/.*ms-body=\([A-Za-z0-9+/=]*\).*/\1/p' <<<"$v")
	[[ $(base64 -d <<<"$b") == "$2" ]]
}
page_headers() { # From the XMPP user's GRUU (RFC 7572 section 4 note 1), To the Lync user, UTF-8 text
	header_has "$1" MESSAGE From '^<sip:bob@xmpp\.test;gr=im>;tag=' &&
		header_has "$1" MESSAGE To '^<sip:alice@sip\.test>$' &&
		header_has "$1" MESSAGE Content-Type '^text/plain; charset=UTF-8$'
}
page_typing() { # the second MESSAGE is an isComposing document, state active
	header_has "$1" MESSAGE Content-Type '^application/im-iscomposing\+xml$' 2 &&
		im_sip_body "$1" MESSAGE 2 | grep -q '<state>active</state>'
}
error_says() { # error_says ID TEXT: bob's error stanza for ID holds TEXT
	grep -F "id=\"$1\"" "$(xmppc_log bob)" | grep -q "type=\"error\".*$2"
}
page_in_normal() { # page_in_normal SIPP: bob's copy of alice's page (RFC 7572 sections 5, 8);
	# xmppc's libstrophe prints xml:lang without its prefix
	local line cid
	line=$(grep '^RECV ' "$(xmppc_log bob)" | grep -F 'zweite Zeile' | grep -F 'aus Lync</subject>' | tail -n 1)
	cid=$(sed -n 's/^Call-ID: *//p' "$T_DIR/sipp-$1.msg" | head -n 1 | tr -d '\r')
	log "page in: '$line' (Call-ID '$cid')"
	[[ -n $line && -n $cid && $line != *' type="'* && $line == *' lang="de"'* &&
		$line == *'<subject>Grüße aus Lync</subject>'* && $line == *"<thread>$cid</thread>"* &&
		$line != *"$CS"* ]]
}
page_out_map() { # RFC 7572 table 1 and section 8 in the first MESSAGE SIPp got
	header_has "$1" MESSAGE Subject '^Betreff: Grüße$' &&
		header_has "$1" MESSAGE Content-Language '^de$' &&
		header_has "$1" MESSAGE Call-ID '^thr-po1@xmpp\.test$'
}
report_is() { # report_is SIPP: the MESSAGE telling alice her page to nobody failed
	header_has "$1" MESSAGE From '^<sip:nobody@xmpp\.test>;tag=' &&
		header_has "$1" MESSAGE To '^<sip:alice@sip\.test>$' &&
		header_has "$1" MESSAGE Content-Type '^text/plain; charset=UTF-8$' &&
		im_sip_body "$1" MESSAGE 1 | grep -Eq '^Not delivered to nobody@xmpp\.test: [456][0-9][0-9] [A-Za-z ]+ \(XMPP [a-z-]+' &&
		im_sip_body "$1" MESSAGE 1 | grep -Fq 'Your message: "Grüße zweite Zeile — 中文 😀'
}
sess_report_is() { # the report in the dialog names nobody and quotes the first message
	im_sip_body "$1" MESSAGE 1 | grep -q '^Not delivered to nobody@xmpp\.test: ' &&
		im_sip_body "$1" MESSAGE 1 | grep -Fq 'Your message: "Erste Nachricht: Grüße aus Lync 😀"' &&
		header_has "$1" MESSAGE From '^<sip:nobody@xmpp\.test>;tag='
}
_log_count_above() { (($(count_lines "$BR_LOG" 'typing notifications to sip:alice@sip.test stopped') > $1)); }
sess_lang_in() { # bob's copy of the in-dialog MESSAGE: type chat, xml:lang de-DE
	grep '^RECV ' "$(xmppc_log bob)" | grep -F 'Zweite Nachricht — im Dialog' | tail -n 1 |
		grep ' type="chat"' | grep -q ' lang="de-DE"'
}
long_first() { # no Ms-Text-Format in the INVITE; the text is the first MESSAGE
	! im_sip_header "$1" INVITE Ms-Text-Format >/dev/null &&
		body_is "$1" MESSAGE 1 "$LONG"
}
invite_headers() {
	header_has "$1" INVITE From '^<sip:bob@xmpp\.test;gr=im>;tag=' &&
		header_has "$1" INVITE To '^<sip:alice@sip\.test>$'
}
session_typing() { # an INFO with Lync's KeyboardActivity, status type
	wait_until 10 received "$1" INFO 1 &&
		header_has "$1" INFO Content-Type '^application/xml$' &&
		im_sip_body "$1" INFO 1 | grep -q '<status status="type"'
}
reload() { # reload CONF [KEY=VALUE...]: rewrite CONF (session mode, [bridge] extras), SIGHUP
	local conf=$1 n kv
	shift
	BR_IM=session pres_conf "$conf" "$tp" "$peer_port"
	for kv in "$@"; do
		sed -i "/^\[bridge\]\$/a ${kv%%=*} = ${kv#*=}" "$conf"
	done
	n=$(count_lines "$BR_LOG" 'daemon: reloaded')
	kill -HUP "$BR_PID"
	wait_until 5 _reloaded "$((n + 1))"
}
_reloaded() { (($(count_lines "$BR_LOG" 'daemon: reloaded') >= $1)); }
sip_raw() { # sip_raw PORT CONTENT-TYPE BODY-FILE: a MESSAGE over TCP; print the status line
	local b=$RANDOM$RANDOM len
	len=$(stat -c %s "$3")
	{
		printf 'MESSAGE sip:bob@xmpp.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK%s;rport\r\n' "$b"
		printf 'Max-Forwards: 70\r\nFrom: <sip:alice@sip.test>;tag=%s\r\nTo: <sip:bob@xmpp.test>\r\n' "$b"
		printf 'Call-ID: %s@sip.test\r\nCSeq: 1 MESSAGE\r\nContent-Type: %s\r\nContent-Length: %s\r\n\r\n' "$b" "$2" "$len"
		cat "$3"
	} | timeout 8 socat -t 1 - "TCP:127.0.0.1:$1" 2>/dev/null | grep -m1 '^SIP/2.0 ' || true
}

for tp in tcp tls; do
	peer_port=$UAS_PORT
	[[ $tp == tls ]] && peer_port=$FRONT_PORT
	BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
	conf=$T_DIR/bridge-$tp.conf
	BR_IM=page pres_conf "$conf" "$tp" "$peer_port"
	pres_bridge_start "bridge-$tp" "$conf" || die "the bridge ($tp) did not come up"
	target=$(pres_target "$tp")

	# ---- page mode, SIP -> XMPP
	check "$tp: page, SIP -> XMPP: a two-line non-ASCII MESSAGE is answered 202 (RFC 3428 section 7)" \
		sipp_run "page-in-$tp" bridge_im_page_uac.xml "$tp" "$target" \
		-key ruri bob@xmpp.test -key from alice@sip.test
	check "$tp: page, SIP -> XMPP: bob gets the text intact (UTF-8, line breaks)" \
		xmppc_expect bob "<message&&from=\"alice@sip.test\"&&to=\"bob@xmpp.test&&$PAGE_IN_BODY" 10
	check "$tp: page, SIP -> XMPP: no type (normal, RFC 7572 section 5), no chat state, Subject -> <subject/>, Call-ID -> <thread/>, Content-Language -> xml:lang" \
		page_in_normal "page-in-$tp"
	check "$tp: typing, SIP -> XMPP: isComposing active is answered 202" \
		sipp_run "typing-in-$tp" bridge_im_typing_uac.xml "$tp" "$target" \
		-key ruri bob@xmpp.test -key from alice@sip.test
	check "$tp: typing, SIP -> XMPP: bob sees <composing/> from alice@sip.test" \
		xmppc_expect bob "<message&&from=\"alice@sip.test\"&&<composing $CS/>" 10
	check "$tp: a MESSAGE for a domain not in domains.map -> 404" \
		sipp_run "unmapped-$tp" sip_message_uac.xml "$tp" "$target" \
		-key ruri bob@elsewhere.test -key from alice@sip.test

	# ---- page mode, XMPP -> SIP
	im_uas_start "page-out-$tp" message_uas.xml "$UAS_PORT" -m 2 -timeout 30s ||
		die "SIPp UAS ($tp) did not start"
	UAS=$LAST_PID
	xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\" id=\"po1\" xml:lang=\"de\"><subject>Betreff:&#10;Grüße</subject><thread>thr-po1@xmpp.test</thread><body>$TEXT_OUT</body></message>"
	wait_until 10 received "page-out-$tp" MESSAGE 1 || true
	xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\"><composing $CS/></message>"
	check "$tp: page, XMPP -> SIP: SIPp takes the chat and the typing notification" \
		sipp_wait "$UAS" 20
	check "$tp: page, XMPP -> SIP: the MESSAGE body is the exact UTF-8 text, CRLF line breaks" \
		body_is "page-out-$tp" MESSAGE 1 "$SIP_OUT"
	check "$tp: page, XMPP -> SIP: From sip:bob@xmpp.test;gr=im, To sip:alice@sip.test, text/plain; charset=UTF-8" \
		page_headers "page-out-$tp"
	check "$tp: typing, XMPP -> SIP (page): <composing/> arrives as isComposing active" \
		page_typing "page-out-$tp"
	check "$tp: page, XMPP -> SIP: <subject/> -> Subject (one line), <thread/> -> Call-ID, xml:lang -> Content-Language (RFC 7572 table 1, section 8)" \
		page_out_map "page-out-$tp"

	# RFC 3994 section 4: a user agent that answers a typing notification 415 gets
	# no more of them; its text still arrives.
	im_uas_start "typing415-$tp" bridge_im_typing415_uas.xml "$UAS_PORT" -m 2 -timeout 30s ||
		die "SIPp UAS ($tp) did not start"
	UAS=$LAST_PID
	xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\"><composing $CS/></message>"
	wait_log "$BR_LOG" 'typing notifications to sip:alice@sip.test stopped: it answered one with 415' 10 || true
	xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\"><paused $CS/></message>"
	xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\"><composing $CS/></message>"
	sleep 1
	xmppc_send bob '<message type="chat" to="alice@sip.test" id="t415"><body>nach dem 415</body></message>'
	check "$tp: typing after a 415: the SIP side gets one isComposing (415) and then the text (200)" \
		sipp_wait "$UAS" 20
	check "$tp: typing after a 415: the second MESSAGE is the text, not another typing notification" \
		body_is "typing415-$tp" MESSAGE 2 'nach dem 415'
	check "$tp: typing after a 415: no third MESSAGE" test "$(im_sip_count "typing415-$tp" MESSAGE)" -eq 2

	im_uas_start "page-404-$tp" bridge_im_404_uas.xml "$UAS_PORT" -m 1 -timeout 30s ||
		die "SIPp UAS ($tp) did not start"
	UAS=$LAST_PID
	xmppc_send bob '<message type="chat" to="nobody@sip.test" id="e404p"><body>hello?</body></message>'
	check "$tp: page, unknown user: the peer's 404 reaches bob as item-not-found" \
		xmppc_expect bob '<message&&type="error"&&id="e404p"&&from="nobody@sip.test"&&<item-not-found' 10
	check "$tp: page, unknown user: the error names the peer's reason" \
		error_says e404p 'not enabled for SIP or does not exist'
	sipp_wait "$UAS" 10 || true

	if [[ $tp == tcp ]]; then
		# RFC 7247 section 7.2 note 1: 301 -> <gone/> with the new address, 410 ->
		# <gone/> without one.
		im_uas_start "page-301" bridge_im_301_uas.xml "$UAS_PORT" -m 1 -timeout 30s ||
			die "SIPp UAS (301) did not start"
		UAS=$LAST_PID
		xmppc_send bob '<message type="chat" to="moved@sip.test" id="e301"><body>there?</body></message>'
		check "tcp: page, SIP 301: bob gets <gone/> naming the new address (RFC 7247 7.2 note 1)" \
			xmppc_expect bob '<message&&type="error"&&id="e301"&&<gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">xmpp:newhome@sip.test</gone>' 10
		sipp_wait "$UAS" 10 || true
		im_uas_start "page-410" bridge_im_410_uas.xml "$UAS_PORT" -m 1 -timeout 30s ||
			die "SIPp UAS (410) did not start"
		UAS=$LAST_PID
		xmppc_send bob '<message type="chat" to="moved@sip.test" id="e410"><body>still?</body></message>'
		check "tcp: page, SIP 410: bob gets an empty <gone/> (RFC 7247 7.2 note 1)" \
			xmppc_expect bob '<message&&type="error"&&id="e410"&&<gone xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>' 10
		sipp_wait "$UAS" 10 || true
		# An XMPP error after the 202 (no such XMPP user) reaches alice as a MESSAGE
		# from the address she wrote to (RFC 3428 section 7: "some other mechanism").
		# The page goes over UDP: over a stream the bridge would send the report on
		# SIPp's own connection (RFC 3261 section 18.2.2 lets it), where a SIPp UAC
		# cannot take a request of another Call-ID. TCP only: a [peer] over TLS is not
		# heard over UDP.
		im_uas_start "report-$tp" message_uas.xml "$UAS_PORT" -m 1 -timeout 30s ||
			die "SIPp UAS ($tp) did not start"
		UAS=$LAST_PID
		check "$tp: page, SIP -> XMPP, no such XMPP user: answered 202 at once" \
			sipp_run "page-nobody-$tp" bridge_im_page_uac.xml udp "$(pres_target udp)" \
			-key ruri nobody@xmpp.test -key from alice@sip.test
		check "$tp: page, no such XMPP user: ejabberd's error comes back to alice as a MESSAGE" \
			sipp_wait "$UAS" 15
		check "$tp: page, no such XMPP user: the report is from nobody@xmpp.test, names the mapped status, the XMPP condition and her message" \
			report_is "report-$tp"
		check "$tp: page, no such XMPP user: logged" \
			grep -q 'IM from sip:alice@sip.test to nobody@xmpp.test not delivered on the XMPP side ([a-z-]*); the SIP user is told by a MESSAGE' "$BR_LOG"
	fi

	if [[ $tp == tcp ]]; then
		# ---- what the bridge cannot translate, both ways (TCP: the peer is known
		# by its address, so a raw client can speak for it)
		printf 'bad \xff\xfe UTF-8' >"$T_DIR/bad.txt"
		printf 'binary' >"$T_DIR/bin.txt"
		head -c 9000 /dev/zero | tr '\0' x >"$T_DIR/big.txt"
		bodies() {
			local a b c
			a=$(sip_raw "$BR_TCP" 'text/plain; charset=UTF-8' "$T_DIR/bad.txt")
			b=$(sip_raw "$BR_TCP" 'application/octet-stream' "$T_DIR/bin.txt")
			c=$(sip_raw "$BR_TCP" 'text/plain' "$T_DIR/big.txt")
			log "bad UTF-8: $a; octet-stream: $b; 9000 characters: $c"
			[[ $a == 'SIP/2.0 400 '* && $b == 'SIP/2.0 415 '* && $c == 'SIP/2.0 413 '* ]]
		}
		check "tcp: SIP bodies: bad UTF-8 -> 400, unsupported type -> 415, over 8000 characters -> 413" bodies
		big=$(head -c 9000 /dev/zero | tr '\0' y)
		xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\" id=\"big1\"><body>$big</body></message>"
		check "tcp: an XMPP message over 8000 characters: policy-violation, nothing sent" \
			xmppc_expect bob '<message&&type="error"&&id="big1"&&<policy-violation' 10
		# RFC 7572 section 6 / RFC 3428 section 8: a page-mode MESSAGE over 1300
		# bytes is not sent; the XMPP sender gets policy-violation.
		pg=$(head -c 1200 /dev/zero | tr '\0' z)
		xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\" id=\"pg13\"><body>$pg</body></message>"
		check "tcp: page, a 1200-character message (a MESSAGE over 1300 bytes): policy-violation" \
			xmppc_expect bob '<message&&type="error"&&id="pg13"&&<policy-violation' 10
		check "tcp: page, over 1300 bytes: logged with the rule" \
			grep -q 'IM from bob@xmpp.test/im to sip:alice@sip.test refused: as a MESSAGE it would be over the 1300 bytes of RFC 3428 section 8' "$BR_LOG"
	fi

	# ---- session mode (the default, as Lync does it)
	reload "$conf" || die "the bridge ($tp) did not reload"

	sipp_start "sess-in-$tp" bridge_im_sess_uac.xml "$tp" "$target" \
		-key ruri bob@xmpp.test -key from alice@sip.test -m 1 -timeout 40s ||
		die "SIPp UAC ($tp) did not start"
	UAC=$LAST_PID
	check "$tp: session, SIP-initiated: the Ms-Text-Format first message reaches bob with a thread" \
		xmppc_expect bob '<message&&from="alice@sip.test"&&<body>Erste Nachricht: Grüße aus Lync 😀</body>&&<thread>' 10
	T=$(im_thread bob 'Erste Nachricht: Grüße aus Lync')
	log "session thread: '$T'"
	check "$tp: session, SIP-initiated: the MESSAGE in the dialog arrives in the same thread" \
		xmppc_expect bob "<message&&from=\"alice@sip.test\"&&<body>Zweite Nachricht — im Dialog&#10;</body>&&<thread>${T:-none}</thread>" 10
	check "$tp: session, SIP-initiated: Content-Language -> xml:lang (RFC 7572 section 8), type chat kept" \
		sess_lang_in
	check "$tp: session, SIP-initiated: Lync's KeyboardActivity INFO -> <composing/> in the thread" \
		xmppc_expect bob "<message&&from=\"alice@sip.test\"&&<composing $CS/>&&<thread>${T:-none}</thread>" 10
	xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\" id=\"r1\"><body>Antwort von Bob</body><thread>$T</thread></message>"
	check "$tp: session, SIP-initiated: bob's reply goes into the dialog; BYE answered 200" \
		sipp_wait "$UAC" 30
	check "$tp: session, SIP-initiated: the reply's body is exact" \
		body_is "sess-in-$tp" MESSAGE 1 'Antwort von Bob'
	check "$tp: session, SIP-initiated: after BYE bob is told the conversation ended (<gone/>)" \
		xmppc_expect bob "<message&&from=\"alice@sip.test\"&&<gone $CS/>&&<thread>${T:-none}</thread>" 10

	im_uas_start "sess-404-$tp" bridge_im_inv404_uas.xml "$UAS_PORT" -m 1 -timeout 30s ||
		die "SIPp UAS ($tp) did not start"
	UAS=$LAST_PID
	xmppc_send bob '<message type="chat" to="nobody@sip.test" id="e404s"><body>hello?</body></message>'
	check "$tp: session, unknown user: INVITE 404 reaches bob as item-not-found" \
		xmppc_expect bob '<message&&type="error"&&id="e404s"&&from="nobody@sip.test"&&<item-not-found' 10
	check "$tp: session, unknown user: the 404 is acknowledged" sipp_wait "$UAS" 10

	# An XMPP error about a message of a Lync session (here its first, in
	# Ms-Text-Format) reaches the user in the conversation: a MESSAGE in the dialog.
	sipp_start "sess-report-$tp" bridge_im_sess_report_uac.xml "$tp" "$target" \
		-key ruri nobody@xmpp.test -key from alice@sip.test -m 1 -timeout 30s ||
		die "SIPp UAC ($tp) did not start"
	check "$tp: session, no such XMPP user: the error comes back as a MESSAGE in the dialog; BYE answered" \
		sipp_wait "$LAST_PID" 25
	check "$tp: session, no such XMPP user: the report quotes the first message" \
		sess_report_is "sess-report-$tp"

	# RFC 3994 section 4 in a session: after a 415 to Lync's KeyboardActivity INFO
	# no more INFOs; bob's text still arrives.
	sipp_start "sess-t415-$tp" bridge_im_sess_typing415_uac.xml "$tp" "$target" \
		-key ruri bob@xmpp.test -key from alice@sip.test -m 1 -timeout 40s ||
		die "SIPp UAC ($tp) did not start"
	UAC=$LAST_PID
	xmppc_expect bob '<message&&from="alice@sip.test"&&<body>Erste Nachricht: Grüße aus Lync 😀</body>&&<thread>' 10 ||
		log "the 415 session did not open"
	T=$(im_thread bob 'Erste Nachricht: Grüße aus Lync')
	n415=$(count_lines "$BR_LOG" 'typing notifications to sip:alice@sip.test stopped')
	xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\"><composing $CS/><thread>$T</thread></message>"
	wait_until 10 _log_count_above "$n415" || true
	xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\"><paused $CS/><thread>$T</thread></message>"
	xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\"><composing $CS/><thread>$T</thread></message>"
	sleep 1
	xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\" id=\"t415s\"><body>nach dem 415 im Dialog</body><thread>$T</thread></message>"
	check "$tp: session, typing after a 415: one INFO (415), then the text as MESSAGE, then BYE" \
		sipp_wait "$UAC" 25
	check "$tp: session, typing after a 415: no second INFO (SIPp only logs an unexpected one)" \
		test "$(im_sip_count "sess-t415-$tp" INFO)" -eq 1

	# A first message over the 800 characters Lync takes in Ms-Text-Format
	im_uas_start "long-$tp" bridge_im_long_uas.xml "$UAS_PORT" -m 1 -timeout 30s ||
		die "SIPp UAS ($tp) did not start"
	UAS=$LAST_PID
	xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\" id=\"l1\"><body>$LONG</body></message>"
	check "$tp: session, a 901-character first message: session opened, then the SIP side's BYE answered" \
		sipp_wait "$UAS" 20
	check "$tp: session, a 901-character first message: not in the INVITE, but as the dialog's first MESSAGE" \
		long_first "long-$tp"
	check "$tp: session, XMPP-initiated: the SIP side's BYE reaches bob as <gone/>" \
		xmppc_expect bob "<message&&from=\"alice@sip.test\"&&<gone $CS/>" 10

	# An idle session ends with BYE after im_idle_timeout (2 s here)
	reload "$conf" im_idle_timeout=2 || die "the bridge ($tp) did not reload"
	im_uas_start "idle-$tp" bridge_im_idle_uas.xml "$UAS_PORT" -m 1 -timeout 30s ||
		die "SIPp UAS ($tp) did not start"
	UAS=$LAST_PID
	xmppc_send bob '<message type="chat" to="alice@sip.test" id="i1"><body>bin gleich weg</body></message>'
	check "$tp: session, idle: BYE after im_idle_timeout, answered 200" sipp_wait "$UAS" 15
	check "$tp: session, idle: logged, naming both parties" \
		grep -q 'IM session between sip:alice@sip.test and bob@xmpp.test ended (BYE) after 2 s without messages' "$BR_LOG"
	reload "$conf" || die "the bridge ($tp) did not reload"

	im_uas_start "sess-out-$tp" bridge_im_sess_uas.xml "$UAS_PORT" -m 1 -timeout 40s ||
		die "SIPp UAS ($tp) did not start"
	UAS=$LAST_PID
	xmppc_send bob '<message type="chat" to="alice@sip.test" id="s1"><body>Hallo Alice — 1 😀</body></message>'
	xmppc_send bob '<message type="chat" to="alice@sip.test" id="s2" xml:lang="de-AT"><body>zweite Nachricht&#10;über XMPP</body></message>'
	check "$tp: session, XMPP-initiated: INVITE, then the second chat as MESSAGE in the dialog" \
		wait_until 10 received "sess-out-$tp" MESSAGE 1
	check "$tp: session, XMPP-initiated: the INVITE carries the first chat in Ms-Text-Format" \
		mstf_is "sess-out-$tp" 'Hallo Alice — 1 😀'
	check "$tp: session, XMPP-initiated: From sip:bob@xmpp.test;gr=im, To sip:alice@sip.test" \
		invite_headers "sess-out-$tp"
	check "$tp: session, XMPP-initiated: the second chat's body is exact (CRLF)" \
		body_is "sess-out-$tp" MESSAGE 1 $'zweite Nachricht\r\nüber XMPP'
	check "$tp: session, XMPP-initiated: xml:lang -> Content-Language in the dialog (RFC 7572 section 8)" \
		header_has "sess-out-$tp" MESSAGE Content-Language '^de-AT$'
	xmppc_send bob '<message type="chat" to="alice@sip.test"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>'
	check "$tp: typing, XMPP -> SIP (session): <composing/> arrives as KeyboardActivity INFO" \
		session_typing "sess-out-$tp"
	check "$tp: no chat went unanswered on the XMPP side" \
		xmppc_absent bob '<message&&type="error"&&id="s' 1

	# ---- stopping ends the open session with BYE
	bridge_rc=0
	bridge_stop "$BR_PID" 5 || bridge_rc=$?
	check "$tp: shutdown: the open session gets BYE (SIPp answers it)" sipp_wait "$UAS" 10
	check "$tp: shutdown: the bridge exits 0" test "$bridge_rc" -eq 0
	check "$tp: shutdown: logged, naming the session's parties" \
		grep -q 'bridge: IM session between sip:alice@sip.test and bob@xmpp.test ended (BYE): the bridge is stopping' "$BR_LOG"
done

# ---- kill -9 and restart: the open session is resumed from the state file, with
# its dialog, and goes on (over UDP: the SIPp peer must outlive the bridge's
# connections)
tp=udp peer_port=$(free_port)
BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
mkdir -p "$T_DIR/state"
conf=$T_DIR/bridge-restart.conf
BR_IM=session pres_conf "$conf" udp "$peer_port" "$T_DIR/state/im.db"
pres_bridge_start bridge-restart "$conf" || die "the bridge did not come up"
im_sipp_at restart bridge_im_sess_uac.xml udp "$peer_port" "127.0.0.1:$BR_UDP" \
	-key ruri bob@xmpp.test -key from alice@sip.test -m 1 -timeout 40s ||
	die "SIPp UAC did not start"
UAC=$LAST_PID
xmppc_expect bob '<message&&from="alice@sip.test"&&<body>Erste Nachricht: Grüße aus Lync 😀</body>' 10 ||
	die "the session to be saved did not open"
T=$(im_thread bob 'Erste Nachricht: Grüße aus Lync')
xmppc_expect bob "<message&&from=\"alice@sip.test\"&&<composing $CS/>&&<thread>${T:-none}</thread>" 10 ||
	die "the session to be saved did not carry the INFO"
kill -KILL "$BR_PID"
wait "$BR_PID" 2>/dev/null || true
pres_bridge_start bridge-restart2 "$conf" || die "the bridge did not come back"
check "restart: the session saved before kill -9 is loaded from the state file" \
	grep -Eq 'state: [0-9]+ subscriptions and 1 IM sessions loaded' "$BR_LOG"
check "restart: it is resumed with its dialog and thread, naming both parties" \
	grep -Eq "IM session between sip:alice@sip\\.test and bob@xmpp\\.test \\(Call-ID [^,]+, thread $T\\) resumed after a restart" "$BR_LOG"
xmppc_send bob "<message type=\"chat\" to=\"alice@sip.test\" id=\"rr1\"><body>Antwort von Bob nach dem Neustart</body><thread>$T</thread></message>"
check "restart: bob's reply goes into the resumed dialog; the peer's BYE in it is answered" \
	sipp_wait "$UAC" 30
check "restart: the reply's body is exact" \
	body_is restart MESSAGE 1 'Antwort von Bob nach dem Neustart'
check "restart: the peer's BYE reaches bob as <gone/> in the same thread" \
	xmppc_expect bob "<message&&from=\"alice@sip.test\"&&<gone $CS/>&&<thread>${T:-none}</thread>" 10
bridge_stop "$BR_PID" 5 || true
pres_bridge_start bridge-restart3 "$conf" || die "the bridge did not come back"
check "restart: the ended session is gone from the state file" \
	grep -Eq 'state: [0-9]+ subscriptions and 0 IM sessions loaded' "$BR_LOG"

# ---- the XMPP link down: MESSAGE -> 480 with Retry-After (RFC 7247 section 7)
xmppc_stop bob || true
ejabberd_stop
wait_log "$BR_LOG" 'XMPP link for sip\.test is down' 10 || die "the bridge did not notice ejabberd stop"
check "XMPP link down: a MESSAGE is refused with 480 and Retry-After" \
	sipp_run down bridge_im_down_uac.xml tcp "127.0.0.1:$BR_TCP" \
	-key ruri bob@xmpp.test -key from alice@sip.test
stop_pid "$BR_PID" 5

# ---- teardown: everything we started must be gone
mapfile -t procs < <(snapshot_procs)
stop_all
check_nothing_left "${procs[@]}"
finish
