#!/bin/bash
# `presbridge --probe` against real peers, one cause of a failed federation per
# case, each with certificates issued by the test CA: a working federation
# (Kamailio over mutual TLS + ejabberd's component port), the bridge's
# certificate without clientAuth (Kamailio sends alert 43), a peer certificate
# that does not name the configured host, from an unknown CA, expired, the
# bridge's key not matching its certificate, a peer that answers OPTIONS with
# 401, a route to a port where nothing listens, a route to a port that speaks
# plain TCP, and on the XMPP side a wrong secret and a wrong server name.
# Every case asserts the exit status and the words of the cause; the JSON form
# is checked with jq.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/kamailio.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/sip/lib.sh"

need jq
sip_certs
iss() { "$IT_DIR/ca.sh" issue "$CA_DIR" "$@" >/dev/null; }
iss bridge-noclient --dns bridge.xmpp.test --eku serverAuth
iss peer-rogue --dns kamailio.sip.test --ca rogue
iss peer-expired --dns kamailio.sip.test --expired
iss peer-noclient --dns kamailio.sip.test --eku serverAuth
iss other --dns other.sip.test

ejabberd_start "$T_DIR/ejabberd"
kamailio_start "$T_DIR/kamailio"
pass "ejabberd (component $EJ_COMPONENT_PORT) and kamailio (tls $KAM_TLS_PORT) started"

# probe_conf NAME PEER-SECTION [key=value overrides of [sip]/[xmpp]]: write
# $T_DIR/NAME/presbridge.conf; print its path.
probe_conf() {
	local name=$1 peer=$2 dir=$T_DIR/$1
	shift 2
	local cert=$CA_DIR/bridge.crt key=$CA_DIR/bridge.key secret=$EJ_COMPONENT_SECRET
	local xname=xmpp.test xport=$EJ_COMPONENT_PORT kv
	for kv in "$@"; do
		case $kv in
		cert=*) cert=${kv#cert=} ;;
		key=*) key=${kv#key=} ;;
		secret=*) secret=${kv#secret=} ;;
		xname=*) xname=${kv#xname=} ;;
		xport=*) xport=${kv#xport=} ;;
		esac
	done
	mkdir -p "$dir/maps"
	printf 'sip   sip.test   sip.test\nxmpp  xmpp.test  xmpp.test\n' >"$dir/maps/domains.map"
	cp "$REPO_DIR/mappings/presence.map" "$dir/maps/"
	cat >"$dir/presbridge.conf" <<CONF
[bridge]
state = :memory:
mappings = maps

[sip]
listen = tls:127.0.0.1:$(free_port)
cert = $cert
key = $key
ca = $CA_DIR/ca.crt

[xmpp]
server = 127.0.0.1:$xport
secret = $secret
tls = direct
ca = $CA_DIR/ca.crt
name = $xname

$peer
CONF
	printf '%s' "$dir/presbridge.conf"
}

peer() { # peer HOST PORT [TRANSPORT]
	printf '[peer kam]\nhost = %s\naddress = 127.0.0.1:%s\ntransport = %s\ndomains = sip.test\ntrusted = yes\n' \
		"$1" "$2" "${3:-tls}"
}

# probe NAME CONF [--json]: run the probe; output in $T_DIR/NAME.out, status in PROBE_RC.
probe() {
	local name=$1 conf=$2
	shift 2
	set +e
	timeout 60 "$BUILD_DIR/presbridge" -c "$conf" --probe "$@" >"$T_DIR/$name.out" 2>&1
	PROBE_RC=$?
	set -e
	track_log "$T_DIR/$name.out"
}

# expect NAME RC REGEX...: exit status RC and every REGEX in the output.
expect() {
	local name=$1 rc=$2 re
	shift 2
	if [[ $PROBE_RC != "$rc" ]]; then
		echo "exit status $PROBE_RC, expected $rc; output:" >&2
		cat "$T_DIR/$name.out" >&2
		return 1
	fi
	for re in "$@"; do
		if ! grep -Eq -- "$re" "$T_DIR/$name.out"; then
			echo "no line matches: $re; output:" >&2
			cat "$T_DIR/$name.out" >&2
			return 1
		fi
	done
}

# --- a working federation ---------------------------------------------------------
good=$(probe_conf good "$(peer kamailio.sip.test "$KAM_TLS_PORT")")
probe good "$good"
check "working federation: exit 0, every step named" expect good 0 \
	"^\[peer kam\] kamailio.sip.test over tls at 127.0.0.1:$KAM_TLS_PORT " \
	'ok    reachable: TCP connection to 127.0.0.1:[0-9]+ in [0-9.]+ ms' \
	'ok    TLS: TLSv1\.[23], [A-Z0-9_-]+' \
	'info    \[0\] /O=presbridge tests/CN=kamailio.sip.test; issued by /O=presbridge tests/CN=presbridge test CA; valid until .*; names kamailio.sip.test, sip.test; EKU serverAuth, clientAuth' \
	'ok    its chain verifies against \[sip\] ca' \
	'ok    its certificate names kamailio.sip.test, sip.test: matches host kamailio.sip.test' \
	'ok    the peer asked for the bridge.s certificate and accepted it' \
	'ok    OPTIONS: 200 OK in [0-9.]+ ms; the peer did not challenge the bridge' \
	'ok    its certificate verifies against \[xmpp\] ca .* and names xmpp.test' \
	'ok    component sip.test: handshake accepted' \
	'^result: federation would work \(2 targets probed\)'
probe good-json "$good" --json
json_good() {
	[[ $PROBE_RC == 0 ]] &&
		jq -e '.ok == true and (.targets | length) == 2
			and .targets[0].kind == "sip-peer" and .targets[0].reachable == true
			and (.targets[0].tls.version | test("^TLSv1\\.[23]$"))
			and .targets[0].tls.verified == true and .targets[0].tls.names_match == true
			and .targets[0].tls.eku_client_auth == true
			and .targets[0].peer_accepted_our_certificate == true
			and .targets[0].options.status == 200 and .targets[0].options.challenged == false
			and .targets[1].kind == "xmpp-server"
			and .targets[1].component_handshakes.accepted == 1' "$T_DIR/good-json.out" >/dev/null
}
check "working federation: --json says the same (jq)" json_good

# --- the bridge's certificate lacks clientAuth -----------------------------------------
noclient=$(probe_conf noclient "$(peer kamailio.sip.test "$KAM_TLS_PORT")" \
	cert="$CA_DIR/bridge-noclient.crt" key="$CA_DIR/bridge-noclient.key")
check "-n: bridge certificate without clientAuth is an error naming alert 43" bash -c "
	! '$BUILD_DIR/presbridge' -c '$noclient' -n >'$T_DIR/noclient-n.out' 2>&1 &&
	grep -q 'error: cert: .*bridge-noclient.crt lacks the clientAuth EKU: Lync/SfB refuses it when the bridge connects (TLS alert 43, unsupported_certificate)' '$T_DIR/noclient-n.out'"
probe noclient "$noclient"
check "--probe: kamailio refuses it; alert 43 decoded" expect noclient 1 \
	'FAIL  TLS alert 43 unsupported_certificate from the peer: the peer refused our certificate; it lacks the clientAuth EKU \(the bridge was the TLS client; Lync/SfB refuses federation peers without it\)|FAIL  TLS handshake failed: TLS alert 43 unsupported_certificate from the peer: the peer refused our certificate; it lacks the clientAuth EKU' \
	'^result: federation would NOT work'
probe noclient-json "$noclient" --json
check "--probe --json: alert 43 in the record" \
	jq -e '.ok == false and .targets[0].alert_received.code == 43
		and .targets[0].alert_received.name == "unsupported_certificate"
		and .targets[0].peer_accepted_our_certificate == false' "$T_DIR/noclient-json.out"

# --- the peer's certificate does not name the configured host -------------------------------
wrong=$(probe_conf wrong "$(peer lync01.sip.test "$KAM_TLS_PORT")")
probe wrong "$wrong"
check "peer certificate with a wrong name: refused even though its chain verifies" expect wrong 1 \
	'ok    its chain verifies against \[sip\] ca' \
	'FAIL  the bridge refuses this peer: its certificate names kamailio.sip.test, sip.test, not lync01.sip.test, the host of \[peer kam\] \(RFC 5922 section 7.2; wildcards never match\): fix host in \[peer kam\] or put lync01.sip.test in the certificate.s subjectAltName'

# --- unknown CA, expired: TLS fronts with those certificates before Kamailio's TCP port -----
front() { # front NAME CERT: socat TLS -> kamailio TCP with CERT; sets PROXY_PORT
	SIPP_TLS_CERT=$CA_DIR/$2.crt SIPP_TLS_KEY=$CA_DIR/$2.key tls_server_proxy "$1" "$KAM_TCP_PORT"
}
front front-rogue peer-rogue
rogue=$(probe_conf rogue "$(peer kamailio.sip.test "$PROXY_PORT")")
probe rogue "$rogue"
check "peer certificate from an unknown CA: named, with the fix" expect rogue 1 \
	'FAIL  the bridge refuses this peer: its certificate \(.*CN=kamailio.sip.test\) was refused: the certificate was issued by a CA that \[sip\] ca does not hold \(unable to get local issuer certificate\); add the issuing CA' \
	'info    \[0\] .*CN=kamailio.sip.test; issued by .*CN=rogue test CA'
front front-expired peer-expired
expired=$(probe_conf expired "$(peer kamailio.sip.test "$PROXY_PORT")")
probe expired "$expired"
check "expired peer certificate: named" expect expired 1 \
	'FAIL  the bridge refuses this peer: its certificate \(.*CN=kamailio.sip.test\) was refused: .*\(certificate has expired\)' \
	'valid until Jan  1 00:00:00 2021 GMT'
front front-noclient peer-noclient
pnc=$(probe_conf peer-noclient "$(peer kamailio.sip.test "$PROXY_PORT")")
probe peer-noclient "$pnc"
check "peer certificate without clientAuth: it could not connect to the bridge" expect peer-noclient 1 \
	'FAIL  when the peer connects to the bridge, the bridge refuses it \(TLS alert 43\): its certificate \(kamailio.sip.test\) lacks the clientAuth EKU it needs as TLS client'

# --- the bridge's key does not belong to its certificate ------------------------------------
badkey=$(probe_conf badkey "$(peer kamailio.sip.test "$KAM_TLS_PORT")" key="$CA_DIR/sipp.key")
check "-n: key mismatch is an error" bash -c "
	! '$BUILD_DIR/presbridge' -c '$badkey' -n >'$T_DIR/badkey-n.out' 2>&1 &&
	grep -q 'error: key: .*sipp.key does not belong to the certificate .*bridge.crt: use the key the certificate was issued for' '$T_DIR/badkey-n.out'"
probe badkey "$badkey"
check "--probe: key mismatch reported offline, TLS peers not probed, exit 1" expect badkey 1 \
	'error: key: .*sipp.key does not belong to the certificate' \
	'FAIL  not probed over TLS: the bridge.s certificate, key or \[sip\] ca cannot be used' \
	'offline checks found errors'

# --- a peer that challenges --------------------------------------------------------------
sipp_start uas401 sip_uas_401.xml udp
chal=$(probe_conf chal "$(peer sipp.sip.test "$SIPP_PORT" udp)")
probe chal "$chal"
check "peer answers OPTIONS with 401: told to exclude the bridge from authentication" expect chal 1 \
	'warn  plain udp: traffic to and from this peer is not encrypted' \
	'ok    reachable: UDP answer from 127.0.0.1:[0-9]+' \
	'FAIL  OPTIONS: 401 Unauthorized \(WWW-Authenticate: Digest realm="SIP Communications Service".*\): the peer must exclude the bridge from authentication: a trusted federation peer is never challenged \(on Lync/SfB make the bridge a trusted application'
check "--json: challenged" jq -e '.targets[0].options.status == 401 and .targets[0].options.challenged == true' \
	< <("$BUILD_DIR/presbridge" -c "$chal" --probe --json || true)

# --- nothing listens / plain TCP instead of TLS ----------------------------------------------
dead=$(free_port)
nothing=$(probe_conf nothing "$(peer kamailio.sip.test "$dead")" xport="$(free_port)")
probe nothing "$nothing"
check "route to a port where nothing listens (SIP and XMPP): refused, named" expect nothing 1 \
	"FAIL  connection refused at 127.0.0.1:$dead: nothing listens there; check address \(line [0-9]+\) and transport in \[peer kam\], and that the peer.s TLS listener runs" \
	'FAIL  connection refused at 127.0.0.1:[0-9]+: check that the XMPP server runs with its component listener on this port' \
	'federation would NOT work: 2 of 2 targets fail'
plain=$(probe_conf plain "$(peer kamailio.sip.test "$KAM_TCP_PORT")")
probe plain "$plain"
check "route to a plain TCP port with transport tls: named as such" expect plain 1 \
	'FAIL  TLS handshake failed: (the peer does not speak TLS here|no TLS answer: the port accepted the connection but said nothing \(a plain TCP listener waiting for a SIP request)'

# --- XMPP: wrong secret, wrong name -------------------------------------------------------------
secret=$(probe_conf secret "$(peer kamailio.sip.test "$KAM_TLS_PORT")" secret=wrong-secret)
probe secret "$secret"
check "XMPP: wrong component secret: the handshake is refused in plain words" expect secret 1 \
	'ok    OPTIONS: 200 OK' \
	'FAIL  component sip.test: .*(secret|not-authorized|refused)'
xname=$(probe_conf xname "$(peer kamailio.sip.test "$KAM_TLS_PORT")" xname=chat.example.org)
probe xname "$xname"
check "XMPP: server certificate does not carry [xmpp] name" expect xname 1 \
	'FAIL  TLS: .*chat.example.org'

# --- run time says it in the same words -----------------------------------------------------------
same_words() {
	# the SIP leg, started with the noclient certificate, logs alert 43 in the words of the probe
	local dir=$T_DIR/rt
	(
		BR_UDP=$(free_port) BR_TCP=$(free_port) BR_TLS=$(free_port) BR_TCP6=$(free_port) BR_TLS6=$(free_port)
		BR_CERT=$CA_DIR/bridge-noclient.crt BR_KEY=$CA_DIR/bridge-noclient.key
		sip_conf "$dir" "$(peer kamailio.sip.test "$KAM_TLS_PORT")"
	)
	sip_bridge_start rt "$dir" --ping kam || return 1
	local words
	words=$(grep -Eo 'TLS alert 43 unsupported_certificate from the peer: .*' "$T_DIR/noclient.out" | head -1)
	[[ -n $words ]] && wait_log "$BR_LOG" "$(printf '%s' "$words" | sed 's/[][().*^$]/\\&/g')" 10
}
check "run time: the leg's log carries the probe's words for alert 43" same_words

finish
