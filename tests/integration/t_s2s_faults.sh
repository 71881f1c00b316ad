#!/bin/bash
# The failure cases of the bridge's server-to-server federation, in the private
# namespace of t_s2s_ejabberd.sh: the bridge hosts sip.test on 127.0.0.3:5269,
# ejabberd serves xmpp.test on 127.0.0.2:5269 (dialback loaded), SIPp plays the
# Lync pool. Each case sends one message each way (or the one that matters) and
# asserts what each side can see: the bridge's log, ejabberd's or Prosody's log,
# what bob@xmpp.test or the SIP side receives.
#   1-3  ejabberd presents a certificate for wrong.test / from an unknown CA /
#        without the clientAuth EKU: no SASL EXTERNAL from it; with dialback
#        allowed federation works by dialback, with auth = external it does not
#   4    Prosody serving evil.test (not in domains.map) writes to sip.test
#   5    a raw S2S client authenticated as xmpp.test sends a spoofed from
#   6    no SRV record for xmpp.test: the A record on 5269 (RFC 6120 3.2.2)
#   7    SRV target "." for xmpp.test: no service
#   8    no DNS at all for xmpp.test, a static route ([s2s-peer] address)
#   9    ejabberd restarted under a live federation
#   10   plain TCP and dialback where [s2s-peer] tls = off says so (ejabberd
#        with STARTTLS optional); -n warns
#   11   idle streams close after [s2s] idle_timeout and reopen on demand
# FAULT_CASES="1 5" (env) runs only those cases.
. "$(dirname "$0")/netns.sh"
netns_enter "$@"
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/prosody.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/bridge/im_lib.sh"
need dnsmasq unshare prosody python3

pres_setup perl
[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"
ca() { "$IT_DIR/ca.sh" "$@"; }
ca issue "$CA_DIR" s2s --dns sip.test --eku serverAuth,clientAuth
ca issue "$CA_DIR" wrong --dns wrong.test --eku serverAuth,clientAuth
ca issue "$CA_DIR" noclient --dns xmpp.test --eku serverAuth
ca issue "$CA_DIR" evil --dns evil.test --eku serverAuth,clientAuth
ca init "$T_DIR/ca2"
ca issue "$T_DIR/ca2" xmpp --dns xmpp.test --eku serverAuth,clientAuth
export SIPP_TLS_NAME=bridge.xmpp.test

# The records every case keeps: sip.test (the bridge) and evil.test (Prosody).
BASE_DNS=(host:sip.test=127.0.0.3 srv:_xmpp-server._tcp.sip.test=sip.test:5269
	host:evil.test=127.0.0.4 srv:_xmpp-server._tcp.evil.test=evil.test:5269)
dns_set() { # dns_set RECORD... : dnsmasq again with BASE_DNS and these records
	[[ -n ${NETNS_DNS_PID:-} ]] && stop_pid "$NETNS_DNS_PID" 2
	netns_dns "${BASE_DNS[@]}" "$@"
	DNS_LOG_START=$(wc -l <"$NETNS_DNS_LOG")
}
dns_log_since() { tail -n "+$((DNS_LOG_START + 1))" "$NETNS_DNS_LOG"; } # this dnsmasq's queries
dns_set host:xmpp.test=127.0.0.2 srv:_xmpp-server._tcp.xmpp.test=xmpp.test:5269

UAS_PORT=$(free_port)
want() { [[ -z ${FAULT_CASES:-} || " $FAULT_CASES " == *" $1 "* ]]; }
B=""          # the current xmppc client of bob@xmpp.test
BOB_ARGS=()   # its extra arguments (--insecure when ejabberd's certificate is bad)

ej_up() { # ej_up NAME PEM : ejabberd with that certificate (c2s and S2S), bob logged in
	[[ -n $B ]] && { xmppc_stop "$B" || true; }
	[[ -n ${EJ_PID:-} ]] && ejabberd_stop
	EJ_S2S_PORT=5269 EJ_S2S_ADDR=127.0.0.2 EJ_S2S_DIALBACK=1 EJ_C2S_CERT=$2 EJ_S2S_CERT=$2 \
		ejabberd_start "$T_DIR/ejabberd-$1" || die "ejabberd ($1) did not start"
	B=bob-$1
	xmppc_start "$B" bob@xmpp.test/desk bobpw "${BOB_ARGS[@]}" || die "bob cannot log in ($1)"
	xmppc_send "$B" '<presence/>'
}

br_up() { # br_up NAME AUTH : the bridge (its log $T_DIR/bridge-NAME.log)
	[[ -n ${BR_PID:-} ]] && stop_pid "$BR_PID" 5
	BR_TCP=$(free_port) BR_TLS=$(free_port) BR_UDP=$(free_port)
	BR_S2S_ADDR=127.0.0.3 BR_S2S_AUTH=$2 BR_IM=page \
		pres_conf "$T_DIR/bridge-$1.conf" tcp "$UAS_PORT"
	BR_S2S_ADDR=127.0.0.3 pres_bridge_start "bridge-$1" "$T_DIR/bridge-$1.conf" ||
		die "the bridge ($1) did not come up"
	TARGET=$(pres_target tcp)
}

# sip_to_bob TAG: a page-mode MESSAGE from alice@sip.test to bob@xmpp.test (202).
sip_to_bob() {
	sipp_run "in-$1" bridge_im_page_uac.xml tcp "$TARGET" -key ruri bob@xmpp.test \
		-key from alice@sip.test
}
bob_got() { xmppc_expect "$B" '<message&&from="alice@sip.test"&&zweite Zeile' "${1:-15}"; }
# bob_to_sip TAG: bob writes to alice@sip.test; true if the Lync side gets it.
bob_to_sip() {
	im_uas_start "out-$1" message_uas.xml "$UAS_PORT" -m 1 -timeout 30s || return 1
	local uas=$LAST_PID
	xmppc_send "$B" "<message type=\"chat\" to=\"alice@sip.test\" id=\"m-$1\"><body>text $1</body></message>"
	sipp_wait "$uas" 20 && [[ $(im_sip_body "out-$1" MESSAGE) == "text $1" ]]
}
# bob_to_sip_fails TAG: bob writes to alice@sip.test and gets an error back; the
# Lync side gets nothing.
bob_to_sip_fails() {
	im_uas_start "out-$1" message_uas.xml "$UAS_PORT" -m 1 -timeout 30s || return 1
	local uas=$LAST_PID rc=0
	xmppc_send "$B" "<message type=\"chat\" to=\"alice@sip.test\" id=\"m-$1\"><body>text $1</body></message>"
	xmppc_expect "$B" "<message&&type=\"error\"&&id=\"m-$1\"&&from=\"alice@sip.test\"" 20 || rc=1
	(($(im_sip_count "out-$1" MESSAGE) == 0)) || rc=1
	stop_pid "$uas" 2
	return "$rc"
}
blog() { printf '%s\n' "$T_DIR/bridge-$1.log"; }

# ---- cases 1-3: ejabberd's certificate is not good enough for SASL EXTERNAL
cert_case() { # cert_case N NAME PEM CAUSE_REGEX OUT_BAD (1: also unfit as a TLS server certificate)
	local n=$1 name=$2 pem=$3 cause=$4 out_bad=$5
	BOB_ARGS=(--insecure)
	ej_up "$name" "$pem"
	# dialback allowed: federation works by dialback
	br_up "$name-db" "external, dialback"
	check "$n $name: dialback allowed: IM SIP -> XMPP answered 202" sip_to_bob "$name-db"
	check "$n $name: dialback allowed: bob gets it" bob_got
	check "$n $name: dialback allowed: IM XMPP -> SIP reaches the Lync side" bob_to_sip "$name-db"
	check "$n $name: dialback allowed: the bridge names why it took no EXTERNAL from xmpp.test" \
		_log_has "$(blog "$name-db")" "sip\.test: .*xmpp\.test.*$cause"
	check "$n $name: dialback allowed: ejabberd's stream to sip.test is authenticated by dialback" \
		_log_has "$(blog "$name-db")" 'sip\.test: incoming stream from xmpp\.test authenticated by dialback'
	check "$n $name: dialback allowed: ejabberd says it used dialback towards sip.test" \
		wait_log "$EJ_LOG" 'Accepted outbound s2s dialback authentication xmpp\.test -> sip\.test' 5
	# external only: ejabberd cannot authenticate to the bridge
	br_up "$name-ext" external
	check "$n $name: external only: bob's message to alice@sip.test comes back as an error, the Lync side gets nothing" \
		bob_to_sip_fails "$name-ext"
	check "$n $name: external only: the bridge names the certificate problem" \
		_log_has "$(blog "$name-ext")" "sip\.test: .*xmpp\.test.*$cause"
	check "$n $name: external only: the bridge refused ejabberd's dialback fallback, naming why" \
		_log_has "$(blog "$name-ext")" 'sip\.test: refused dialback from xmpp\.test: dialback is not allowed for that domain'
	check "$n $name: external only: ejabberd logs that it could not authenticate to sip.test" \
		wait_log "$EJ_LOG" 'Failed (outbound s2s|to establish outbound).*sip\.test' 5
	if [[ $out_bad == 1 ]]; then
		# ... and the bridge must not send to a server that does not prove it is
		# xmpp.test when dialback is not allowed: its TLS server certificate is
		# the only proof (RFC 6120 13.7.2, RFC 6125)
		check "$n $name: external only: IM SIP -> XMPP answered 202 (page mode)" sip_to_bob "$name-ext"
		check "$n $name: external only: bob does not get it" \
			xmppc_absent "$B" '<message&&from="alice@sip.test"&&zweite Zeile' 5
		check "$n $name: external only: the bridge logs why it does not federate with xmpp.test" \
			wait_log "$(blog "$name-ext")" "sip\.test -> xmpp\.test: cannot federate: .*$cause" 5
		check "$n $name: external only: the bounce reaches the bridge's IM code, which reports it to the SIP sender (it had a 202, RFC 3428 section 7)" \
			wait_log "$(blog "$name-ext")" 'IM from sip:alice@sip\.test to bob@xmpp\.test not delivered on the XMPP side \(remote-server-not-found\); the SIP user is told by a MESSAGE' 5
	else
		# its certificate is a good TLS server certificate: our stream to it is fine
		check "$n $name: external only: IM SIP -> XMPP answered 202" sip_to_bob "$name-ext"
		check "$n $name: external only: bob gets it (our stream to xmpp.test needs no clientAuth from it)" bob_got
		check "$n $name: external only: the bridge's stream is up by SASL EXTERNAL" \
			_log_has "$(blog "$name-ext")" 'sip\.test -> xmpp\.test: stream up \(.*SASL EXTERNAL\)'
	fi
	BOB_ARGS=()
}

want 1 && cert_case 1 wrongname "$CA_DIR/wrong.pem" 'does not name xmpp\.test' 1
want 2 && cert_case 2 unknownca "$T_DIR/ca2/xmpp.pem" 'does not verify against \[s2s\] ca' 1
want 3 && cert_case 3 noclientauth "$CA_DIR/noclient.pem" 'lacks the clientAuth EKU' 0

# ---- cases 4-9 against a good ejabberd (4 needs none)
if want 5 || want 6 || want 7 || want 8 || want 9; then
	ej_up good "$CA_DIR/xmpp.pem"
fi

# ---- 5. a spoofed from on a stream authenticated as xmpp.test
if want 5; then
	br_up spoof "external, dialback"
	raw_rc=0
	python3 "$IT_DIR/s2s_raw.py" 127.0.0.3 5269 xmpp.test sip.test "$CA_DIR/xmpp.crt" \
		"$CA_DIR/xmpp.key" "$CA_DIR/ca.crt" \
		"<message from='x@other.test' to='alice@sip.test' type='chat'><body>spoofed</body></message>" \
		>"$T_DIR/raw.log" 2>&1 || raw_rc=$?
	track_log "$T_DIR/raw.log"
	check "5 spoof: the raw client authenticated as xmpp.test by SASL EXTERNAL" \
		_log_has "$T_DIR/raw.log" '^STEP authenticated as xmpp\.test'
	check "5 spoof: the bridge closes the stream with <invalid-from/> (RFC 6120 4.9.3.9)" \
		eval "((raw_rc == 0)) && grep -q '<invalid-from' '$T_DIR/raw.log'"
	check "5 spoof: the bridge's log says spoofed from" \
		_log_has "$(blog spoof)" "sip\.test: incoming stream from xmpp\.test: it sent a stanza from 'x@other\.test', which its stream did not authenticate \(spoofed from\?\)"
	check "5 spoof: the stanza went nowhere (no MESSAGE to the Lync side)" \
		eval "! grep -q 'sent as a MESSAGE' '$(blog spoof)'"
fi

# ---- 6. no SRV record: the A record of xmpp.test on 5269
if want 6; then
	dns_set host:xmpp.test=127.0.0.2
	br_up nosrv "external, dialback"
	check "6 no SRV: IM SIP -> XMPP answered 202" sip_to_bob nosrv
	check "6 no SRV: bob gets it" bob_got
	check "6 no SRV: IM XMPP -> SIP reaches the Lync side" bob_to_sip nosrv
	check "6 no SRV: dnsmasq answered the bridge's SRV query" \
		_log_has "$NETNS_DNS_LOG" 'query\[SRV\] _xmpp-server\._tcp\.xmpp\.test'
	check "6 no SRV: the bridge fell back to xmpp.test on 5269 (RFC 6120 3.2.2)" \
		_log_has "$(blog nosrv)" 'xmpp\.test: 1 target\(s\): .*no SRV records: xmpp\.test on port 5269; xmpp\.test: 127\.0\.0\.2'
	check "6 no SRV: its stream went to 127.0.0.2:5269" \
		_log_has "$(blog nosrv)" 'sip\.test -> xmpp\.test: stream up \(127\.0\.0\.2:5269'
fi

# ---- 7. SRV target ".": xmpp.test offers no XMPP server service
if want 7; then
	dns_set host:xmpp.test=127.0.0.2 nosrv:_xmpp-server._tcp.xmpp.test
	br_up dot "external, dialback"
	check "7 SRV '.': IM SIP -> XMPP answered 202 (page mode: handed to the XMPP leg)" sip_to_bob dot
	check "7 SRV '.': bob gets nothing" \
		xmppc_absent "$B" '<message&&from="alice@sip.test"&&zweite Zeile' 3
	check "7 SRV '.': the bridge's log names the \".\" record" \
		wait_log "$(blog dot)" 'sip\.test -> xmpp\.test: cannot federate: DNS: .*target "\.": xmpp\.test offers no XMPP server service' 5
	check "7 SRV '.': the bounce reaches the bridge's IM code, which reports it to the SIP sender (it had a 202, RFC 3428 section 7)" \
		wait_log "$(blog dot)" 'IM from sip:alice@sip\.test to bob@xmpp\.test not delivered on the XMPP side \(remote-server-not-found\); the SIP user is told by a MESSAGE' 5
	check "7 SRV '.': the bridge did not connect to xmpp.test's A address" \
		eval "! _log_has '$(blog dot)' 'to xmpp\.test: TLS established|stream up'"
fi

# ---- 8. no DNS for xmpp.test at all; [s2s-peer xmpp.test] address
if want 8 || want 9; then
	dns_set
	BR_S2S_PEERS=$'[s2s-peer xmpp.test]\naddress = 127.0.0.2:5269' br_up static "external, dialback"
fi
if want 8; then
	check "8 static route: IM SIP -> XMPP answered 202" sip_to_bob static
	check "8 static route: bob gets it" bob_got
	check "8 static route: IM XMPP -> SIP reaches the Lync side" bob_to_sip static
	check "8 static route: the stream went to 127.0.0.2:5269 with SASL EXTERNAL" \
		_log_has "$(blog static)" 'sip\.test -> xmpp\.test: stream up \(127\.0\.0\.2:5269, .*SASL EXTERNAL\)'
	check "8 static route: nobody asked DNS about xmpp.test" \
		eval "! dns_log_since | grep -Eq 'query\[[A-Z]+\] (_xmpps?-server\._tcp\.)?xmpp\.test'"
	check "8 static route: and DNS has no record of xmpp.test" \
		eval "! getent -s dns hosts xmpp.test >/dev/null"
fi

# ---- 9. ejabberd restarted under a live federation (the static-route bridge)
if want 9; then
	want 8 || { check "9 restart: federation up before" sip_to_bob before && bob_got; }
	ej_up good2 "$CA_DIR/xmpp.pem"
	check "9 restart: IM SIP -> XMPP answered 202" sip_to_bob restart
	check "9 restart: bob (on the new ejabberd) gets it" bob_got 20
	check "9 restart: IM XMPP -> SIP reaches the Lync side" bob_to_sip restart
	check "9 restart: the bridge's stream to xmpp.test came up again" \
		eval "(($(grep -c 'sip\.test -> xmpp\.test: stream up' "$(blog static)") >= 2))"
fi

# ---- 10. plain TCP, dialback only, where the configuration says so for the peer
# ([s2s-peer xmpp.test] tls = off: -n warns; ejabberd with STARTTLS optional)
if want 10; then
	dns_set host:xmpp.test=127.0.0.2 srv:_xmpp-server._tcp.xmpp.test=xmpp.test:5269
	[[ -n $B ]] && { xmppc_stop "$B" || true; }
	[[ -n ${EJ_PID:-} ]] && ejabberd_stop
	EJ_S2S_TLS=optional EJ_S2S_PORT=5269 EJ_S2S_ADDR=127.0.0.2 EJ_S2S_DIALBACK=1 \
		EJ_C2S_CERT=$CA_DIR/xmpp.pem EJ_S2S_CERT=$CA_DIR/xmpp.pem \
		ejabberd_start "$T_DIR/ejabberd-plain" || die "ejabberd (plain) did not start"
	B=bob-plain
	xmppc_start "$B" bob@xmpp.test/desk bobpw || die "bob cannot log in (plain)"
	xmppc_send "$B" '<presence/>'
	BR_S2S_PEERS=$'[s2s-peer xmpp.test]\ntls = off\nauth = dialback' br_up plain "external, dialback"
	check "10 plain TCP: -n warns that the peer's stanzas cross in clear text" \
		eval "'$BUILD_DIR/presbridge' -c '$T_DIR/bridge-plain.conf' -n | grep -q 'tls = off: plain TCP, authenticated by dialback alone'"
	check "10 plain TCP: IM SIP -> XMPP answered 202" sip_to_bob plain
	check "10 plain TCP: bob gets it" bob_got
	check "10 plain TCP: IM XMPP -> SIP reaches the Lync side" bob_to_sip plain
	check "10 plain TCP: the bridge's stream is up without TLS, by dialback" \
		_log_has "$(blog plain)" 'sip\.test -> xmpp\.test: stream up \(127\.0\.0\.2:5269, no TLS, dialback\)'
	check "10 plain TCP: ejabberd's stream authenticated by dialback without TLS" \
		_log_has "$(blog plain)" 'sip\.test: incoming stream from xmpp\.test authenticated by dialback \(no TLS\)'
fi

# ---- 11. idle streams close after [s2s] idle_timeout and reopen on demand
if want 11; then
	dns_set host:xmpp.test=127.0.0.2 srv:_xmpp-server._tcp.xmpp.test=xmpp.test:5269
	ej_up idle "$CA_DIR/xmpp.pem"
	BR_S2S_EXTRA="idle_timeout = 2" br_up idle "external, dialback"
	check "11 idle: IM SIP -> XMPP before" sip_to_bob idle1
	check "11 idle: bob gets it" bob_got
	check "11 idle: the bridge closes its silent stream after idle_timeout (2 s; checked every 5 s)" \
		wait_log "$(blog idle)" 'stream to xmpp\.test: idle for 2 s, closing' 12
	check "11 idle: the close is no failure (no warning, no back-off)" \
		eval "! grep -q 'cannot federate' '$(blog idle)'"
	check "11 idle: the next MESSAGE reopens the stream and bob gets it" \
		eval "sip_to_bob idle2 && xmppc_expect '$B' '<message&&from=\"alice@sip.test\"&&zweite Zeile' 15 &&
			(( \$(grep -c 'sip\.test -> xmpp\.test: stream up' '$(blog idle)') >= 2 ))"
fi

# ---- 4. Prosody serving evil.test (not on the allow list) writes to sip.test
if want 4; then
	dns_set host:xmpp.test=127.0.0.2 srv:_xmpp-server._tcp.xmpp.test=xmpp.test:5269
	br_up evil "external, dialback"
	PR_DOMAIN=evil.test PR_CERT=$CA_DIR/evil.pem PR_S2S_ADDR=127.0.0.4 PR_C2S_ADDR=127.0.0.4 \
		PR_SECURE=false PR_USERS="mallory:malpw" prosody_start "$T_DIR/prosody" ||
		die "prosody did not start"
	prosody_xmppc_start mallory mallory@evil.test/pc malpw || die "mallory cannot log in"
	im_uas_start out-evil message_uas.xml "$UAS_PORT" -m 1 -timeout 30s || die "SIPp UAS did not start"
	EVIL_UAS=$LAST_PID
	xmppc_send mallory '<message type="chat" to="alice@sip.test" id="evil1"><body>from evil</body></message>'
	check "4 evil.test: mallory gets remote-server-timeout back for her message" \
		xmppc_expect mallory '<message&&type="error"&&id="evil1"&&<remote-server-timeout' 20
	check "4 evil.test: the bridge refused SASL EXTERNAL: not on the allow list" \
		_log_has "$(blog evil)" 'sip\.test: refused SASL EXTERNAL from evil\.test \(not-authorized\): the domain is not on the allow list'
	check "4 evil.test: the bridge refused dialback: not on the allow list" \
		_log_has "$(blog evil)" 'sip\.test: refused dialback from evil\.test \(127\.0\.0\.[0-9]+:[0-9]+\): the domain is not on the allow list'
	check "4 evil.test: Prosody logs that sip.test refused its SASL EXTERNAL" \
		wait_log "$PR_LOG" 'SASL EXTERNAL with sip\.test failed: error<cancel:not-authorized:>' 5
	check "4 evil.test: Prosody logs that dialback failed and bounces the queued stanza" \
		wait_log "$PR_LOG" 'evil\.test->sip\.test closed: dialback authentication failed' 5
	stop_pid "$EVIL_UAS" 1
	check "4 evil.test: nothing reached the Lync side" eval "(($(im_sip_count out-evil MESSAGE) == 0))"
fi

finish
