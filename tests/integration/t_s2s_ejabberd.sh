#!/bin/bash
# The bridge as an XMPP server, federated server-to-server with a real ejabberd
# (RFC 6120 streams, STARTTLS required), in a private network namespace with its
# own DNS: ejabberd serves xmpp.test on 127.0.0.2:5269, the bridge hosts sip.test
# on 127.0.0.3:5269, each found through its _xmpp-server._tcp SRV record. SIPp
# plays the Lync pool. Per authentication case, each side's view is asserted:
#   external  both trust the test CA: SASL EXTERNAL (XEP-0178) both ways;
#   fallback  ejabberd trusts another CA: it offers EXTERNAL, refuses our
#             certificate with <failure/>, and our stream falls back to dialback
#             on the same stream (XEP-0220); its own stream to us uses EXTERNAL;
#   dialback  [s2s] auth = dialback: dialback both ways, the bridge as
#             originating, receiving and authoritative server (XEP-0185 keys).
# In each: presence and subscriptions both ways, IM both ways (page mode), and
# then the peer-side failures: a domain not on the allow list, a spoofed from.
. "$(dirname "$0")/netns.sh"
netns_enter "$@"
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/bridge/im_lib.sh"
need dnsmasq unshare

pres_setup perl
[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"
"$IT_DIR/ca.sh" issue "$CA_DIR" s2s --dns sip.test --eku serverAuth,clientAuth
# A second CA that ejabberd trusts in the fallback case: ours is then unknown to it.
"$IT_DIR/ca.sh" init "$T_DIR/other-ca"
export SIPP_TLS_NAME=bridge.xmpp.test

netns_dns host:xmpp.test=127.0.0.2 host:sip.test=127.0.0.3 \
	srv:_xmpp-server._tcp.xmpp.test=xmpp.test:5269 \
	srv:_xmpp-server._tcp.sip.test=sip.test:5269

. "$IT_DIR/bridge/s2s_cases.sh"

peer_start() { # peer_start NAME: ejabberd for xmpp.test; EJ_CA: the CA it trusts
	EJ_S2S_PORT=5269 EJ_S2S_ADDR=127.0.0.2 EJ_S2S_DIALBACK=1 EJ_S2S_CA=$EJ_CA \
		ejabberd_start "$T_DIR/ejabberd-$1"
}
peer_client() { xmppc_start "$@"; }
peer_stop() { ejabberd_stop; }
peer_roster() { ejctl get_roster "$1" xmpp.test 2>/dev/null | grep -F -- "$2" | grep -Eq -- "$3"; }

# ---- 1. SASL EXTERNAL both ways
S2S_RESTART=1 EJ_CA=$CA_DIR/ca.crt s2s_case external "external, dialback"
check "external: the bridge's stream to xmpp.test authenticated with SASL EXTERNAL" \
	_log_has "$T_DIR/bridge-external.log" 'sip\.test -> xmpp\.test: stream up \(.*TLSv1\.[23].*SASL EXTERNAL\)'
check "external: ejabberd's stream to sip.test authenticated with SASL EXTERNAL" \
	_log_has "$T_DIR/bridge-external.log" 'sip\.test: incoming stream from xmpp\.test authenticated by SASL EXTERNAL'
check "external: ejabberd accepted the bridge's certificate (outbound from its side: inbound EXTERNAL)" \
	wait_log "$T_DIR/ejabberd-external/logs/ejabberd.log" 'Accepted inbound s2s EXTERNAL authentication sip\.test -> xmpp\.test' 5
check "external: the bridge looked up _xmpp-server._tcp.xmpp.test" \
	_log_has "$NETNS_DNS_LOG" 'query\[SRV\] _xmpp-server\._tcp\.xmpp\.test'

# ---- 2. ejabberd cannot verify the bridge: EXTERNAL refused, dialback on the same stream
EJ_CA=$T_DIR/other-ca/ca.crt s2s_case fallback "external, dialback"
check "fallback: ejabberd refused our EXTERNAL and the bridge said it tries dialback" \
	_log_has "$T_DIR/bridge-fallback.log" 'sip\.test -> xmpp\.test: the peer refused SASL EXTERNAL.*trying dialback on the same stream'
check "fallback: the bridge's stream is then up by dialback" \
	_log_has "$T_DIR/bridge-fallback.log" 'sip\.test -> xmpp\.test: stream up \(.*dialback\)'

# ---- 3. dialback only, both ways (originating, receiving, authoritative)
EJ_CA=$CA_DIR/ca.crt s2s_case dialback "dialback"
check "dialback: the bridge's stream to xmpp.test is up by dialback" \
	_log_has "$T_DIR/bridge-dialback.log" 'sip\.test -> xmpp\.test: stream up \(.*dialback\)'
check "dialback: ejabberd's stream to sip.test authenticated by dialback (we verified its key)" \
	_log_has "$T_DIR/bridge-dialback.log" 'sip\.test: incoming stream from xmpp\.test authenticated by dialback'
check "dialback: the bridge answered ejabberd's db:verify as authoritative server (valid)" \
	_log_has "$T_DIR/bridge-dialback.log" 'dialback verify from xmpp\.test for stream .*: valid'
finish
