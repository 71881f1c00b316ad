#!/bin/bash
# The bridge as an XMPP server, federated server-to-server with a real Prosody
# 0.12 (STARTTLS required), in a private network namespace with its own DNS:
# Prosody serves xmpp.test on 127.0.0.2:5269, the bridge hosts sip.test on
# 127.0.0.3:5269, each found through its _xmpp-server._tcp SRV record. SIPp plays
# the Lync pool. The cases of bridge/s2s_cases.sh (presence and subscriptions
# both ways, IM both ways) run per authentication method:
#   external  s2s_secure_auth = true: certificates only, SASL EXTERNAL both ways;
#   dialback  s2s_secure_auth = false, mod_dialback, and Prosody trusts another
#             CA, so neither side can use EXTERNAL: dialback both ways, the bridge
#             as originating, receiving and authoritative server;
#   directtls only _xmpps-server SRV records (XEP-0368): both sides connect with
#             TLS from the first byte (Prosody's s2s_direct_tls_ports, the
#             bridge's [s2s] listen_tls and direct_tls = yes), SASL EXTERNAL.
. "$(dirname "$0")/netns.sh"
netns_enter "$@"
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/prosody.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"
. "$IT_DIR/bridge/im_lib.sh"
. "$IT_DIR/bridge/s2s_cases.sh"
need dnsmasq unshare prosody

pres_setup perl
[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"
"$IT_DIR/ca.sh" issue "$CA_DIR" s2s --dns sip.test --eku serverAuth,clientAuth
"$IT_DIR/ca.sh" issue "$CA_DIR" prosody --dns xmpp.test --eku serverAuth,clientAuth
"$IT_DIR/ca.sh" init "$T_DIR/other-ca"
export SIPP_TLS_NAME=bridge.xmpp.test

netns_dns host:xmpp.test=127.0.0.2 host:sip.test=127.0.0.3 \
	srv:_xmpp-server._tcp.xmpp.test=xmpp.test:5269 \
	srv:_xmpp-server._tcp.sip.test=sip.test:5269

peer_start() { # peer_start NAME: Prosody for xmpp.test; PR_SECURE, PR_CA as given
	PR_DOMAIN=xmpp.test PR_CERT=$CA_DIR/prosody.pem PR_S2S_ADDR=127.0.0.2 \
		PR_C2S_ADDR=127.0.0.2 prosody_start "$T_DIR/prosody-$1"
}
peer_client() { prosody_xmppc_start "$@"; }
peer_stop() { prosody_stop; }
peer_roster() { # Prosody's roster file: ["CONTACT"] = { ...; ["subscription"] = "STATE"; } (keys in any order)
	perl -e 'my ($c, $st, $f) = @ARGV; open(my $h, "<", $f) or exit 1; local $/;
		my $t = <$h>; exit(!($t =~ /\["\Q$c\E"\]\s*=\s*\{(?:[^{}]|\{[^{}]*\})*?\["subscription"\]\s*=\s*"(?:$st)"/))' \
		"$2" "$3" "$PR_DIR/data/xmpp%2etest/roster/$1.dat" 2>/dev/null
}

# ---- 1. SASL EXTERNAL both ways (Prosody: certificates only)
S2S_RESTART=1 PR_SECURE=true PR_CA=$CA_DIR/ca.crt s2s_case external "external, dialback"
check "external: the bridge's stream to xmpp.test authenticated with SASL EXTERNAL" \
	_log_has "$T_DIR/bridge-external.log" 'sip\.test -> xmpp\.test: stream up \(.*TLSv1\.[23].*SASL EXTERNAL\)'
check "external: Prosody's stream to sip.test authenticated with SASL EXTERNAL" \
	_log_has "$T_DIR/bridge-external.log" 'sip\.test: incoming stream from xmpp\.test authenticated by SASL EXTERNAL'
check "external: Prosody accepted the bridge's certificate" \
	wait_log "$T_DIR/prosody-external/prosody.log" 'Accepting SASL EXTERNAL identity from sip\.test' 5

# ---- 2. dialback both ways (Prosody cannot verify the bridge, nor the bridge it)
PR_SECURE=false PR_CA=$T_DIR/other-ca/ca.crt BR_S2S_CA=$T_DIR/other-ca/ca.crt \
	s2s_case dialback "external, dialback"
check "dialback: the bridge's stream to xmpp.test is up by dialback" \
	_log_has "$T_DIR/bridge-dialback.log" 'sip\.test -> xmpp\.test: stream up \(.*dialback\)'
check "dialback: Prosody's stream to sip.test authenticated by dialback (we verified its key)" \
	_log_has "$T_DIR/bridge-dialback.log" 'sip\.test: incoming stream from xmpp\.test authenticated by dialback'
check "dialback: the bridge answered Prosody's db:verify as authoritative server (valid)" \
	_log_has "$T_DIR/bridge-dialback.log" 'dialback verify from xmpp\.test for stream .*: valid'

# ---- 3. direct TLS (XEP-0368) both ways: new DNS records, only _xmpps-server
stop_pid "$NETNS_DNS_PID" 5 || true
netns_dns host:xmpp.test=127.0.0.2 host:sip.test=127.0.0.3 \
	srv:_xmpps-server._tcp.xmpp.test=xmpp.test:5270 \
	srv:_xmpps-server._tcp.sip.test=sip.test:5270
PR_SECURE=true PR_CA=$CA_DIR/ca.crt PR_S2S_TLS_PORT=5270 \
	BR_S2S_EXTRA=$'listen_tls = 127.0.0.3:5270\ndirect_tls = yes' \
	s2s_case directtls "external, dialback"
check "directtls: the bridge listened for direct TLS on 127.0.0.3:5270" \
	_log_has "$T_DIR/bridge-directtls.log" 'listening for XMPP servers on 127\.0\.0\.3:5270 \(direct TLS'
check "directtls: the bridge's stream went to Prosody's direct TLS port (_xmpps-server), SASL EXTERNAL" \
	_log_has "$T_DIR/bridge-directtls.log" 'sip\.test -> xmpp\.test: stream up \(127\.0\.0\.2:5270, direct TLS, TLSv1\.[23].*SASL EXTERNAL\)'
check "directtls: Prosody's stream came in over direct TLS, SASL EXTERNAL" \
	_log_has "$T_DIR/bridge-directtls.log" 'sip\.test: incoming stream from xmpp\.test authenticated by SASL EXTERNAL \(direct TLS'
finish
