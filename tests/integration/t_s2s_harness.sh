#!/bin/bash
# Harness test for XMPP federation (S2S): in a private network namespace with its
# own DNS (netns.sh), ejabberd serves xmpp.test on 127.0.0.2:5269 and Prosody
# serves other.test on 127.0.0.3:5269; both find each other through SRV records
# and authenticate each other with certificates (SASL EXTERNAL, no dialback).
# alice@xmpp.test and bob@other.test chat across.  Needs root (unshare); it does
# not need presbridge itself.
. "$(dirname "$0")/netns.sh"
netns_enter "$@"
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/prosody.sh"
. "$IT_DIR/xmpp.sh"
need dnsmasq prosody unshare

[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"
export CA_DIR=$T_DIR/certs
"$IT_DIR/ca.sh" init "$CA_DIR"
"$IT_DIR/ca.sh" issue "$CA_DIR" xmpp --dns xmpp.test --eku serverAuth,clientAuth
"$IT_DIR/ca.sh" issue "$CA_DIR" other --dns other.test --eku serverAuth,clientAuth

netns_dns host:xmpp.test=127.0.0.2 host:other.test=127.0.0.3 \
	srv:_xmpp-server._tcp.xmpp.test=xmpp.test:5269 \
	srv:_xmpp-server._tcp.other.test=other.test:5269
dns_ok() {
	[[ $(getent -s dns hosts xmpp.test) == 127.0.0.2* && $(getent -s dns hosts other.test) == 127.0.0.3* ]] &&
		! getent -s dns hosts nothing.test >/dev/null
}
check "dns: xmpp.test and other.test resolve through dnsmasq, other names do not" dns_ok

EJ_S2S_PORT=5269 EJ_S2S_ADDR=127.0.0.2 ejabberd_start "$T_DIR/ejabberd"
pass "ejabberd: xmpp.test, s2s on 127.0.0.2:5269"
PR_DOMAIN=other.test PR_CERT=$CA_DIR/other.pem PR_S2S_ADDR=127.0.0.3 PR_C2S_ADDR=127.0.0.3 \
	prosody_start "$T_DIR/prosody"
pass "prosody: other.test, s2s on 127.0.0.3:5269"

check "xmppc: alice logs in to ejabberd" xmppc_start alice alice@xmpp.test/desk alicepw
check "xmppc: bob logs in to prosody" prosody_xmppc_start bob bob@other.test/phone bobpw

chat() { # chat FROM FROM_JID TO TO_JID BODY
	xmppc_send "$1" "<message to=\"$4\" type=\"chat\"><body>$5</body></message>" &&
		xmppc_expect "$3" "<message&&from=\"$2\"&&<body>$5</body>" 15
}
check "s2s: alice -> bob (ejabberd -> prosody)" \
	chat alice alice@xmpp.test/desk bob bob@other.test/phone "hello from xmpp.test"
check "s2s: bob -> alice (prosody -> ejabberd)" \
	chat bob bob@other.test/phone alice alice@xmpp.test/desk "hello from other.test"

check "dns: ejabberd looked up the SRV record of other.test" \
	_log_has "$NETNS_DNS_LOG" 'query\[SRV\] _xmpp-server\._tcp\.other\.test'
check "dns: prosody looked up the SRV record of xmpp.test" \
	_log_has "$NETNS_DNS_LOG" 'query\[SRV\] _xmpp-server\._tcp\.xmpp\.test'
check "ejabberd: outbound S2S to other.test authenticated with SASL EXTERNAL" \
	wait_log "$EJ_LOG" 'Accepted outbound s2s EXTERNAL authentication xmpp\.test -> other\.test' 5
check "ejabberd: inbound S2S from other.test authenticated with SASL EXTERNAL" \
	wait_log "$EJ_LOG" 'Accepted inbound s2s EXTERNAL authentication other\.test -> xmpp\.test' 5
check "prosody: accepted xmpp.test's certificate (SASL EXTERNAL)" \
	wait_log "$PR_LOG" 'Accepting SASL EXTERNAL identity from xmpp\.test' 5

mapfile -t procs < <(snapshot_procs)
xmppc_stop alice || true
xmppc_stop bob || true
prosody_stop
ejabberd_stop
stop_all
check_nothing_left "${procs[@]}"
finish
