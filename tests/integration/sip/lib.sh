# shellcheck shell=bash
# Helpers for the SIP-leg tests (t_sip_*.sh).  Source after lib.sh and sipp.sh.
#
#   sip_certs                    CA_DIR with the test CA and the certificates below
#   sip_conf DIR [PEER-SECTIONS] write DIR/presbridge.conf + DIR/maps for sipleg_run:
#                                listeners udp/tcp/tls on 127.0.0.1 ($BR_UDP, $BR_TCP,
#                                $BR_TLS, free ports) and tcp:[::1]:$BR_TCP6,
#                                tls:[::1]:$BR_TLS6; PEER-SECTIONS is appended as is.
#                                BR_CERT/BR_KEY (default $CA_DIR/bridge.*) is ours.
#   sip_bridge_start NAME DIR [ARGS]  run sipleg_run on DIR/presbridge.conf; sets
#                                BR_PID and BR_LOG ($T_DIR/NAME.log)
#   sip_req METHOD RURI [HEADER...]   print a request (fresh branch, tag, Call-ID;
#                                CRLF line ends, Content-Length 0)
#   sip_udp SRC_IP PORT          send stdin as one datagram from SRC_IP; print the
#                                answers received within 1 s
#   sip_tcp PORT / sip_tls PORT CERT [HOST]  send stdin over one connection (TLS: with
#                                $CA_DIR/CERT.crt/.key, server name HOST, default
#                                bridge.xmpp.test; CERT "none": no certificate); print
#                                what comes back until the bridge is quiet for 1 s
#   log_count FILE REGEX         number of matching lines

SIPLEG_RUN=${SIPLEG_RUN:-$BUILD_DIR/tests/integration/sip/sipleg_run}
SIP_DOMAINS_MAP=$'sip   sip.test        sip.test\nsip   plain.sip.test  plain.sip.test\nxmpp  xmpp.test       xmpp.test\n'

sip_certs() {
	: "${CA_DIR:=$T_DIR/certs}"
	export CA_DIR
	[[ -f $CA_DIR/ca.crt ]] || "$IT_DIR/ca.sh" init "$CA_DIR"
	local c
	for c in "bridge --dns bridge.xmpp.test" "sipp --dns sipp.sip.test"; do
		set -- $c
		[[ -f $CA_DIR/$1.crt ]] || "$IT_DIR/ca.sh" issue "$CA_DIR" "$@"
	done
}

sip_conf() {
	local dir=$1 peers=${2:-}
	mkdir -p "$dir/maps"
	printf '%s' "$SIP_DOMAINS_MAP" >"$dir/maps/domains.map"
	cp "$REPO_DIR/mappings/presence.map" "$dir/maps/"
	: "${BR_UDP:=$(free_port)}" "${BR_TCP:=$(free_port)}" "${BR_TLS:=$(free_port)}"
	: "${BR_TCP6:=$(free_port)}" "${BR_TLS6:=$(free_port)}"
	export BR_UDP BR_TCP BR_TLS BR_TCP6 BR_TLS6
	cat >"$dir/presbridge.conf" <<CONF
[bridge]
state = :memory:
mappings = maps
log_level = ${BR_LOG_LEVEL:-info}

[sip]
listen = udp:127.0.0.1:$BR_UDP
listen = tcp:127.0.0.1:$BR_TCP
listen = tls:127.0.0.1:$BR_TLS
listen = tcp:[::1]:$BR_TCP6
listen = tls:[::1]:$BR_TLS6
cert = ${BR_CERT:-$CA_DIR/bridge.crt}
key = ${BR_KEY:-$CA_DIR/bridge.key}
ca = $CA_DIR/ca.crt

[xmpp]
server = 127.0.0.1:5275
secret = not-used-by-sipleg_run
tls = off

$peers
CONF
}

sip_bridge_start() {
	local name=$1 dir=$2
	shift 2
	[[ -x $SIPLEG_RUN ]] || { echo "sipleg_run missing: $SIPLEG_RUN (build it)" >&2; return 1; }
	BR_LOG=$T_DIR/$name.log
	spawn "$name" "$SIPLEG_RUN" -c "$dir/presbridge.conf" "$@"
	BR_PID=$LAST_PID
	if ! wait_alive "$BR_PID" 10 _log_has "$BR_LOG" 'sipleg_run: running with'; then
		echo "sipleg_run did not start" >&2
		return 1
	fi
}

sip_req() {
	local m=$1 r=$2 b
	shift 2
	b=$RANDOM$RANDOM$RANDOM
	printf '%s %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK%s;rport\r\n' "$m" "$r" "$b"
	printf 'Max-Forwards: 70\r\nFrom: <sip:tester@sip.test>;tag=%s\r\nTo: <%s>\r\n' "$b" "$r"
	printf 'Call-ID: %s@sip.test\r\nCSeq: 1 %s\r\n' "$b" "$m"
	local h
	for h in "$@"; do printf '%s\r\n' "$h"; done
	printf 'Content-Length: 0\r\n\r\n'
}

sip_udp() {
	timeout 5 socat -t 1 - "UDP:127.0.0.1:$2,bind=$1" 2>/dev/null || true
}

sip_tcp() {
	timeout 8 socat -t 1 - "TCP:$(_sip_host "${2:-127.0.0.1}"):$1" 2>/dev/null || true
}

_sip_host() { [[ $1 == *:* ]] && printf '[%s]' "$1" || printf '%s' "$1"; }

sip_tls() {
	local port=$1 cert=$2 host=${3:-bridge.xmpp.test} ip=${4:-127.0.0.1} opts
	opts="cafile=$CA_DIR/ca.crt,commonname=$host"
	[[ $cert == none ]] || opts+=",cert=$CA_DIR/$cert.crt,key=$CA_DIR/$cert.key"
	timeout 8 socat -t 1 - "OPENSSL:$(_sip_host "$ip"):$port,$opts" 2>/dev/null || true
}

log_count() { grep -Ec -- "$2" "$1" 2>/dev/null || true; }
