# shellcheck shell=bash
# SIPp (Debian package sip-tester, no TLS support) helpers.  Source after lib.sh.
#
#   sipp_run NAME SCENARIO TRANSPORT HOST:PORT [SIPP ARGS...]
#       Run one SIPp scenario in the foreground (at most SIPP_TIMEOUT s, default 15) and
#       return SIPp's exit code (0: every call succeeded).  SCENARIO is a path or a
#       file name in tests/integration/sipp/.  TRANSPORT: udp | tcp | tls.
#       tls: a socat TLS client (with a client certificate) is put in front of SIPp,
#       which then speaks plain TCP to it; the proxy is stopped afterwards.
#       Keywords passed by default (extra args come first, and SIPp keeps the first
#       value of a keyword, so `-key ruri bob@sip.test` overrides):
#         -key ruri HOST:PORT   -key from sipp@sip.test   -key body "hello from SIPp"
#       Files: $T_DIR/sipp-NAME.log (screen/stats), .msg (every message), .err
#       (unexpected messages).
#   sipp_start NAME SCENARIO TRANSPORT [HOST:PORT] [SIPP ARGS...]
#       Same, in the background (e.g. a UAS: omit HOST:PORT, or pass ""): sets
#       SIPP_PORT (the port SIPp listens on, UDP or TCP), SIPP_TLS_PORT (TLS
#       front-end port when TRANSPORT is tls) and LAST_PID.  `sipp_wait PID [SECS]`
#       returns its exit code.
#   tls_client_proxy NAME HOST:PORT   plain TCP on 127.0.0.1:$PROXY_PORT -> TLS to HOST:PORT
#   tls_server_proxy NAME PORT        TLS on 127.0.0.1:$PROXY_PORT -> plain TCP 127.0.0.1:PORT
#       Both use socat; set LAST_PID and PROXY_PORT.  The proxy log
#       ($T_DIR/NAME.log) records TLS failures (socat -d -d).
#
# SIPP_LOCAL_PORT (env, optional): the port SIPp listens on, instead of a free one
# chosen here (a peer address the bridge must find again after a restart).
#
# TLS settings (env, optional):
#   SIPP_TLS_CERT SIPP_TLS_KEY  our certificate (default $CA_DIR/sipp.crt/.key, issued if
#                               missing: DNS sipp.sip.test, serverAuth+clientAuth);
#                               SIPP_TLS_CERT=none: present no certificate
#   SIPP_TLS_CA                 trust anchors (default $CA_DIR/ca.crt)
#   SIPP_TLS_NAME               name the server's certificate must carry, client side
#                               (default sip.test); SIPP_TLS_NAME=none: no check
#                               (the chain is still verified)
#   SIPP_TLS_VERIFY             server side: require and verify a client certificate
#                               (1, default) or not (0)
#
# SIPp binds, besides its SIP port, a control port (-cp, default 8888, on 0.0.0.0) and
# RTP echo ports (-mp, default 6000 and 6002): all three are always given free ports.

SIPP_DIR=${SIPP_DIR:-$IT_DIR/sipp}
SIPP_PORT=""
SIPP_TLS_PORT=""
PROXY_PORT=""

_sipp_scenario() {
	if [[ -f $1 ]]; then
		printf '%s\n' "$1"
	elif [[ -f $SIPP_DIR/$1 ]]; then
		printf '%s\n' "$SIPP_DIR/$1"
	else
		echo "sipp: no scenario $1" >&2
		return 1
	fi
}

_sipp_tls_defaults() {
	need socat openssl
	: "${CA_DIR:=$T_DIR/certs}"
	[[ -f $CA_DIR/ca.crt ]] || "$IT_DIR/ca.sh" init "$CA_DIR"
	if [[ -z ${SIPP_TLS_CERT:-} ]]; then
		SIPP_TLS_CERT=$CA_DIR/sipp.crt
		SIPP_TLS_KEY=$CA_DIR/sipp.key
		[[ -f $SIPP_TLS_CERT ]] || "$IT_DIR/ca.sh" issue "$CA_DIR" sipp \
			--dns sipp.sip.test --eku serverAuth,clientAuth
	fi
	: "${SIPP_TLS_CA:=$CA_DIR/ca.crt}" "${SIPP_TLS_NAME:=sip.test}" "${SIPP_TLS_VERIFY:=1}"
}

_sipp_cert_opts() {
	if [[ $SIPP_TLS_CERT != none ]]; then
		printf ',cert=%s,key=%s' "$SIPP_TLS_CERT" "$SIPP_TLS_KEY"
	fi
}

# Wait until a forked socat listener is accepting.
_proxy_wait() {
	if ! wait_alive "$LAST_PID" 5 port_listening "$PROXY_PORT" tcp; then
		echo "socat ($1) did not listen on $PROXY_PORT" >&2
		return 1
	fi
}

tls_client_proxy() {
	local name=$1 target=$2 check
	_sipp_tls_defaults
	PROXY_PORT=$(free_port)
	if [[ $SIPP_TLS_NAME == none ]]; then
		check=",verify=1"
	else
		check=",verify=1,commonname=$SIPP_TLS_NAME"
	fi
	spawn "$name" socat -d -d "TCP-LISTEN:$PROXY_PORT,bind=127.0.0.1,reuseaddr,fork" \
		"OPENSSL:$target$(_sipp_cert_opts),cafile=$SIPP_TLS_CA$check"
	_proxy_wait "$name"
}

tls_server_proxy() {
	local name=$1 port=$2 verify
	_sipp_tls_defaults
	if [[ $SIPP_TLS_CERT == none ]]; then
		echo "tls_server_proxy needs a certificate" >&2
		return 1
	fi
	verify=$([[ $SIPP_TLS_VERIFY == 1 ]] && echo 1 || echo 0)
	PROXY_PORT=$(free_port)
	spawn "$name" socat -d -d \
		"OPENSSL-LISTEN:$PROXY_PORT,bind=127.0.0.1,reuseaddr,fork$(_sipp_cert_opts),cafile=$SIPP_TLS_CA,verify=$verify" \
		"TCP:127.0.0.1:$port"
	_proxy_wait "$name"
}

# A media port P with P and P+2 both free (SIPp binds both).
_sipp_media_port() {
	local p
	while :; do
		p=$(free_port)
		_port_in_use $((p + 2)) || break
	done
	printf '%s\n' "$((p + 2))" >>"$T_PORTS_FILE"
	printf '%s\n' "$p"
}

# _sipp_cmd NAME SCENARIO T REMOTE RURI ARGS... -> fills _SIPP_ARGV
# REMOTE: where SIPp sends (the TLS proxy for tls); RURI: the default -key ruri
# (the real target).
_sipp_cmd() {
	local name=$1 scen=$2 t=$3 target=$4 ruri=$5
	shift 5
	need sipp
	scen=$(_sipp_scenario "$scen")
	local mp
	mp=$(_sipp_media_port)
	SIPP_PORT=${SIPP_LOCAL_PORT:-$(free_port)}
	_SIPP_ARGV=(sipp -sf "$scen" -nd -nostdin -i 127.0.0.1 -mi 127.0.0.1 -p "$SIPP_PORT"
		-cp "$(free_port)" -mp "$mp" -t "$t"
		-trace_msg -message_file "$T_DIR/sipp-$name.msg"
		-trace_err -error_file "$T_DIR/sipp-$name.err"
		"$@")
	if [[ -n $target ]]; then
		_SIPP_ARGV+=(-key ruri "$ruri" -key from sipp@sip.test -key body "hello from SIPp"
			"$target")
	fi
	track_log "$T_DIR/sipp-$name.msg"
	track_log "$T_DIR/sipp-$name.err"
}

sipp_run() {
	local name=$1 scen=$2 transport=$3 target=$4 rc=0 proxy="" ruri=$4
	shift 4
	local t=u1
	case $transport in
	udp) t=u1 ;;
	tcp) t=t1 ;;
	tls)
		t=t1
		tls_client_proxy "tlsproxy-$name" "$target" || return 1
		proxy=$LAST_PID
		target=127.0.0.1:$PROXY_PORT
		;;
	*) echo "sipp_run: transport must be udp, tcp or tls" >&2; return 2 ;;
	esac
	_sipp_cmd "$name" "$scen" "$t" "$target" "$ruri" -m 1 -timeout "${SIPP_TIMEOUT:-15}s" \
		-timeout_error "$@"
	local logf=$T_DIR/sipp-$name.log
	track_log "$logf"
	# SIPp is a direct child here: timeout kills it if the scenario hangs.
	timeout -k 2 "$((${SIPP_TIMEOUT:-15} + 5))" "${_SIPP_ARGV[@]}" </dev/null >"$logf" 2>&1 || rc=$?
	if [[ -n $proxy ]]; then
		stop_pid "$proxy" 2
	fi
	return "$rc"
}

sipp_start() {
	local name=$1 scen=$2 transport=$3 target=${4:-} ruri=${4:-}
	shift 3
	(($#)) && shift
	local t=u1 proxy_target=""
	case $transport in
	udp) t=u1 ;;
	tcp) t=t1 ;;
	tls)
		t=t1
		if [[ -n $target ]]; then
			tls_client_proxy "tlsproxy-$name" "$target" || return 1
			target=127.0.0.1:$PROXY_PORT
		fi
		proxy_target=1
		;;
	*) echo "sipp_start: transport must be udp, tcp or tls" >&2; return 2 ;;
	esac
	_sipp_cmd "$name" "$scen" "$t" "$target" "$ruri" "$@"
	local port=$SIPP_PORT
	SIPP_TLS_PORT=""
	if [[ -n $proxy_target ]]; then
		tls_server_proxy "tlsfront-$name" "$port" || return 1
		SIPP_TLS_PORT=$PROXY_PORT
		export SIPP_TLS_PORT
	fi
	spawn "sipp-$name" "${_SIPP_ARGV[@]}"
	SIPP_PORT=$port
	# Wait until SIPp has bound its SIP port.
	if ! wait_alive "$LAST_PID" 5 port_listening "$SIPP_PORT" "$([[ $t == u1 ]] && echo udp || echo tcp)"; then
		echo "sipp ($name) did not bind port $SIPP_PORT" >&2
		return 1
	fi
}

# sipp_wait PID [SECS]: wait for a background SIPp to finish; its exit code.
sipp_wait() {
	local pid=$1 rc=0
	if ! wait_until "${2:-30}" _not_running "$pid"; then
		echo "sipp $pid still running after ${2:-30}s" >&2
		stop_pid "$pid" 2
		return 124
	fi
	wait "$pid" || rc=$?
	return "$rc"
}

_not_running() { ! pgrp_alive "$1"; }
