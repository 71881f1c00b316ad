# shellcheck shell=bash
# The demo federation, server-to-server: the bridge is itself the XMPP server of
# the SIP domain sip.test and federates over RFC 6120 S2S with an XMPP server
# (ejabberd, xmpp.test), each finding the other through _xmpp-server._tcp SRV
# records. The SIP side is the one of bridge/fed.sh: Kamailio plays the Lync
# pool. Used by t_bridge_kamailio_s2s.sh and scripts/demo.sh. Everything runs
# inside a private network + mount namespace (netns.sh: call netns_enter first),
# with its own DNS (dnsmasq), so that every server has its own 127.x address
# and the standard ports. Source after lib.sh, netns.sh, ejabberd.sh,
# kamailio.sh, sipp.sh, xmpp.sh, bridge/pres.sh and bridge/fed.sh.
#
#   SIPp alice (SIP, UDP) <-> Kamailio sip.test, lyncpool.sip.test 127.0.0.1:5061 (TLS)
#                               |  mutual TLS: static route for xmpp.test one way,
#                               |  [peer lync] of the bridge (found by name) the other
#                            presbridge bridge.example.com 127.0.0.3:5061 (SIP, TLS),
#                               XMPP server of sip.test on 127.0.0.3:5269
#                               |  S2S: STARTTLS, SASL EXTERNAL (or dialback)
#                            ejabberd xmpp.test 127.0.0.2:5269 <-> xmppc bob (c2s)
#
#   fed_s2s_start
#       DNS (netns_dns): xmpp.test 127.0.0.2, sip.test and the bridge's FQDN
#       127.0.0.3, the pool's FQDN 127.0.0.1, _xmpp-server._tcp SRV records of
#       xmpp.test and sip.test (port 5269). A test CA in $CA_DIR ($T_DIR/certs):
#       the bridge ($FED_S2S_BRIDGE_HOST and sip.test, serverAuth+clientAuth:
#       one certificate for SIP and S2S, as the example has it), the pool (the
#       example's [peer lync] host, sip.test), ejabberd (xmpp.test). Starts
#       ejabberd (S2S on 127.0.0.2:5269, certificates trusted from the test CA,
#       dialback loaded as in a stock ejabberd), Kamailio (TLS on
#       127.0.0.1:5061, static route for xmpp.test to the bridge at
#       127.0.0.3:5061) and the bridge, configured from
#       examples/s2s/presbridge-s2s.conf with only addresses, ports and paths
#       replaced, and [peer lync] im = page (the demo's SIP client is a SIMPLE
#       client, not Lync): $FED_CONF. Sets BR_PID, BR_LOG, BR_TLS (5061),
#       BR_SIP_ADDR, FED_S2S_ADDR and what ejabberd_start, kamailio_start and
#       netns_dns export. Returns non-zero, with the reason on stderr, if any
#       of it fails.
#   fed_s2s_streams
#       after something crossed both ways: one line per S2S stream, as the logs
#       of both ends tell it, and a summary line; false unless both streams are
#       up and each end logged its authentication:
#         presbridge -> ejabberd (sip.test -> xmpp.test): 127.0.0.2:5269 found by SRV, STARTTLS TLSv1.3 ..., SASL EXTERNAL; ejabberd: "Accepted inbound s2s EXTERNAL authentication sip.test -> xmpp.test"
#         ejabberd -> presbridge (xmpp.test -> sip.test): ...
#         presbridge <-> ejabberd: server-to-server, STARTTLS (TLSv1.3), authenticated by SASL EXTERNAL both ways
#   fed_s2s_auth DIRECTION
#       how the stream of DIRECTION (out: sip.test -> xmpp.test, in: the other)
#       was authenticated according to the bridge's log: "SASL EXTERNAL",
#       "dialback" (nothing and false if it is not up)
#   fed_s2s_peer_auth DIRECTION
#       the same according to ejabberd's log ("EXTERNAL" or "dialback")
#
# Inputs (env, optional): FED_S2S_EXAMPLE (default examples/s2s/presbridge-s2s.conf),
# FED_LOG_LEVEL (default info), FED_S2S_BRIDGE_HOST (default bridge.example.com,
# the example's name for the bridge).

FED_S2S_EXAMPLE=${FED_S2S_EXAMPLE:-$REPO_DIR/examples/s2s/presbridge-s2s.conf}
FED_S2S_BRIDGE_HOST=${FED_S2S_BRIDGE_HOST:-bridge.example.com}
FED_S2S_ADDR=127.0.0.3   # the bridge: sip.test's S2S and its SIP TLS listener
FED_S2S_PEER_ADDR=127.0.0.2 # ejabberd: xmpp.test's S2S
FED_S2S_POOL_ADDR=127.0.0.1 # Kamailio, the pool

# fed_s2s_conf OUT: the example with this run's addresses, ports and paths.
fed_s2s_conf() {
	local ex=$FED_S2S_EXAMPLE
	mkdir -p "$T_DIR/state"
	ini_set "$ex" "$1" \
		"bridge.state=$T_DIR/state/presbridge.db" \
		"bridge.mappings=$(cd "$(dirname "$ex")" && cd "$(ini_get "$ex" bridge mappings)" && pwd)" \
		"bridge.log_level=${FED_LOG_LEVEL:-info}" \
		"sip.listen=tls:$BR_SIP_ADDR:$BR_TLS" \
		"sip.cert=$CA_DIR/bridge.crt" "sip.key=$CA_DIR/bridge.key" "sip.ca=$CA_DIR/ca.crt" \
		"s2s.listen=$FED_S2S_ADDR:5269" \
		"peer lync.im=page"
}

fed_s2s_start() {
	local ex=$FED_S2S_EXAMPLE sip_host tp
	need sipp socat perl dnsmasq
	[[ -x $BUILD_DIR/presbridge ]] || { echo "$BUILD_DIR/presbridge missing: build it first" >&2; return 1; }
	if ! netns_inside; then
		echo "fed_s2s_start: not inside a private namespace (netns_enter first)" >&2
		return 1
	fi
	sip_host=$(ini_get "$ex" "peer lync" host)
	tp=$(ini_get "$ex" xmpp transport)
	if [[ -z $sip_host || $tp != s2s || -z $(ini_get "$ex" s2s listen) ]]; then
		echo "$ex: [peer lync] host, [xmpp] transport = s2s and [s2s] listen are needed" >&2
		return 1
	fi
	if [[ -n $(ini_get "$ex" "peer lync" address) ]]; then
		echo "$ex: [peer lync] has an address; the demo finds the pool by its name (host)" >&2
		return 1
	fi

	# Callers test fed_s2s_start's status, which turns errexit off inside it:
	# every step checks its own.
	export CA_DIR=$T_DIR/certs
	if ! { "$IT_DIR/ca.sh" init "$CA_DIR" &&
		"$IT_DIR/ca.sh" issue "$CA_DIR" bridge --dns "$FED_S2S_BRIDGE_HOST,sip.test" --eku serverAuth,clientAuth &&
		"$IT_DIR/ca.sh" issue "$CA_DIR" sipserver --dns "$sip_host,sip.test" --eku serverAuth,clientAuth &&
		"$IT_DIR/ca.sh" issue "$CA_DIR" xmpp --dns xmpp.test --eku serverAuth,clientAuth; }; then
		echo "could not issue the test certificates (openssl)" >&2
		return 1
	fi

	# The bridge finds xmpp.test, ejabberd finds sip.test, by SRV; the bridge
	# finds the pool by its FQDN (getaddrinfo: these records are in /etc/hosts too).
	netns_dns "host:xmpp.test=$FED_S2S_PEER_ADDR" "host:sip.test=$FED_S2S_ADDR" \
		"host:$FED_S2S_BRIDGE_HOST=$FED_S2S_ADDR" "host:$sip_host=$FED_S2S_POOL_ADDR" \
		srv:_xmpp-server._tcp.xmpp.test=xmpp.test:5269 \
		srv:_xmpp-server._tcp.sip.test=sip.test:5269

	EJ_DOMAIN=xmpp.test EJ_S2S_PORT=5269 EJ_S2S_ADDR=$FED_S2S_PEER_ADDR EJ_S2S_DIALBACK=1 \
		EJ_S2S_CA=$CA_DIR/ca.crt EJ_C2S_CERT=$CA_DIR/xmpp.pem \
		ejabberd_start "$T_DIR/ejabberd" || return 1

	BR_SIP_ADDR=$FED_S2S_ADDR BR_TLS=5061
	export BR_SIP_ADDR BR_TLS FED_S2S_ADDR
	# Kamailio resolves the bridge's FQDN (its Contact) from its DNS cache.
	KAM_XMPP_ROUTE=tls:$BR_SIP_ADDR:$BR_TLS KAM_XMPP_DOMAIN=xmpp.test \
		KAM_HOSTS="$FED_S2S_BRIDGE_HOST=$BR_SIP_ADDR" KAM_TLS_LISTEN_PORT=5061 \
		KAM_CERT=$CA_DIR/sipserver.crt KAM_KEY=$CA_DIR/sipserver.key \
		kamailio_start "$T_DIR/kamailio" || return 1

	FED_CONF=$T_DIR/presbridge.conf
	export FED_CONF
	fed_s2s_conf "$FED_CONF" || return 1
	if ! "$BUILD_DIR/presbridge" -c "$FED_CONF" -n >"$T_DIR/check.log" 2>&1; then
		cat "$T_DIR/check.log" >&2
		echo "presbridge -n refused the configuration made from $ex" >&2
		return 1
	fi
	if ! BR_S2S_ADDR=$FED_S2S_ADDR pres_bridge_start presbridge "$FED_CONF"; then
		echo "presbridge did not listen for XMPP servers within 15 s; see $BR_LOG" >&2
		return 1
	fi
	if ! wait_until 5 _fed_s2s_sip_up; then
		echo "presbridge does not listen on $BR_SIP_ADDR:$BR_TLS; see $BR_LOG" >&2
		return 1
	fi
}

_fed_s2s_sip_up() { ss -Hltn "src $BR_SIP_ADDR:$BR_TLS" 2>/dev/null | grep -q .; }

# _fed_s2s_fields DIRECTION: "PEER|TLS|AUTH" of the latest log line of the
# bridge saying the stream is up (out: "stream up (PEER, TLS, AUTH)" or "stream
# up again (TLS, AUTH) after ..."; in: "authenticated by AUTH (TLS)").
_fed_s2s_fields() {
	local l
	if [[ $1 == out ]]; then
		l=$(grep -E 'sip\.test -> xmpp\.test: stream up' "$BR_LOG" | tail -n 1)
		[[ -n $l ]] || return 1
		sed -E -e 's/.*stream up \(([^,]*), ([^,]*), ([^)]*)\).*/\1|\2|\3/' \
			-e 's/.*stream up again \(([^,]*), ([^)]*)\).*/|\1|\2/' <<<"$l"
	else
		l=$(grep -E 'sip\.test: incoming stream from xmpp\.test authenticated by ' "$BR_LOG" | tail -n 1)
		[[ -n $l ]] || return 1
		sed -E 's/.*authenticated by (.*) \(([^)]*)\)$/|\2|\1/' <<<"$l"
	fi
}

fed_s2s_auth() {
	local f
	f=$(_fed_s2s_fields "$1") || return 1
	printf '%s\n' "${f##*|}"
}

_fed_s2s_tls() {
	local f
	f=$(_fed_s2s_fields "$1") || return 1
	f=${f#*|}
	printf '%s\n' "${f%%|*}"
}

fed_s2s_peer_auth() {
	local re
	case $1 in
	out) re='Accepted inbound s2s [A-Za-z]+ authentication sip\.test -> xmpp\.test' ;;
	*) re='Accepted outbound s2s [A-Za-z]+ authentication xmpp\.test -> sip\.test' ;;
	esac
	grep -Eo "$re" "$EJ_LOG" 2>/dev/null | tail -n 1 | awk '{ print $4 }' | grep .
}

_fed_s2s_both_logged() {
	fed_s2s_auth out >/dev/null && fed_s2s_auth in >/dev/null &&
		fed_s2s_peer_auth out >/dev/null && fed_s2s_peer_auth in >/dev/null
}

fed_s2s_streams() {
	# ejabberd writes its log a little after the events.
	wait_until 10 _fed_s2s_both_logged || return 1
	local a_out a_in e_out e_in t_out t_in peer srv_x srv_s both
	a_out=$(fed_s2s_auth out) a_in=$(fed_s2s_auth in)
	e_out=$(fed_s2s_peer_auth out) e_in=$(fed_s2s_peer_auth in)
	t_out=$(_fed_s2s_tls out) t_in=$(_fed_s2s_tls in)
	peer=$(_fed_s2s_fields out) peer=${peer%%|*}
	srv_x="" srv_s=""
	grep -q 'query\[SRV\] _xmpp-server\._tcp\.xmpp\.test' "$NETNS_DNS_LOG" && srv_x=", found by SRV _xmpp-server._tcp.xmpp.test"
	grep -q 'query\[SRV\] _xmpp-server\._tcp\.sip\.test' "$NETNS_DNS_LOG" && srv_s=", found by SRV _xmpp-server._tcp.sip.test"
	printf 'presbridge -> ejabberd (sip.test -> xmpp.test): %s%s, STARTTLS %s, %s; ejabberd logged "Accepted inbound s2s %s authentication sip.test -> xmpp.test"\n' \
		"${peer:-xmpp.test}" "$srv_x" "$t_out" "$a_out" "$e_out"
	printf 'ejabberd -> presbridge (xmpp.test -> sip.test): %s:5269%s, STARTTLS %s, %s; ejabberd logged "Accepted outbound s2s %s authentication xmpp.test -> sip.test"\n' \
		"$FED_S2S_ADDR" "$srv_s" "$t_in" "$a_in" "$e_in"
	if [[ $a_out == "$a_in" ]]; then
		both="authenticated by $a_out both ways"
	else
		both="authenticated by $a_out (presbridge -> ejabberd) and $a_in (ejabberd -> presbridge)"
	fi
	local v_out=${t_out%% *} v_in=${t_in%% *} tls
	tls="STARTTLS ($v_out)"
	[[ $v_out == "$v_in" ]] || tls="STARTTLS ($v_out out, $v_in in)"
	printf 'presbridge <-> ejabberd: server-to-server, %s, %s\n' "$tls" "$both"
}
