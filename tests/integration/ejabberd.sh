# shellcheck shell=bash
# A private ejabberd 23.01 (Debian package) for one test.  Source after lib.sh.
#
#   ejabberd_start DIR    start it with everything under DIR, register users, wait
#   ejabberd_stop         SIGTERM, wait; nothing of ours is left afterwards
#   ejctl ARGS...         run ejabberdctl against our node (e.g. ejctl registered_users xmpp.test)
#
# Inputs (env, all optional):
#   CA_DIR                  test CA folder (ca.sh init); default $T_DIR/certs (created)
#   EJ_DOMAIN               XMPP domain (default xmpp.test)
#   EJ_COMPONENT_DOMAIN     component (bridge) domain (default sip.test)
#   EJ_COMPONENT_SECRET     XEP-0114 secret (default s3cret)
#   EJ_USERS                "user:password ..." (default "alice:alicepw bob:bobpw carol:carolpw")
#   EJ_C2S_CERT             PEM (key+cert+chain) for c2s (default: $CA_DIR/xmpp.pem, issued
#                           for DNS xmpp.test if missing)
#   EJ_COMPONENT_CERT       PEM for the component listener (default: same as c2s)
#   EJ_COMPONENT_TLS        true (direct TLS, default) | false (plain TCP)
#   EJ_LOGLEVEL             ejabberd loglevel (default info; debug shows every stanza)
#   EJ_EXTRA_YAML           file appended to ejabberd.yml (extra top-level options)
# Server-to-server (optional; without EJ_S2S_PORT there is no S2S at all: s2s_access none):
#   EJ_S2S_PORT             port of an ejabberd_s2s_in listener (5269 for federation tests
#                           in a netns.sh namespace, where peers find it through SRV/A records)
#   EJ_S2S_ADDR             its address (default 127.0.0.1; e.g. 127.0.0.2 in a namespace);
#                           outgoing S2S connections are bound to it as well
#   EJ_S2S_TLS              required (default) | optional  (s2s_use_starttls)
#   EJ_S2S_CERT             PEM for S2S (default: the c2s one).  It must name EJ_DOMAIN:
#                           ejabberd picks the certificate of a domain among all certfiles
#                           by its names.  Also the client certificate of outgoing S2S.
#   EJ_S2S_CA               CAs trusted for peers' certificates (default $CA_DIR/ca.crt)
#   EJ_S2S_DIALBACK         1: load mod_s2s_dialback (XEP-0220); otherwise (default) only
#                           SASL EXTERNAL (a valid peer certificate) authenticates a peer
#   EJ_S2S_RETRY            s2s_max_retry_delay in seconds after a failed outgoing attempt
#                           (default 2; ejabberd's own default is 300)
# Outputs (exported):
#   EJ_C2S_PORT EJ_COMPONENT_PORT EJ_DIST_PORT EJ_EPMD_PORT EJ_DIR EJ_PID EJ_NODE
#   EJ_DOMAIN EJ_COMPONENT_DOMAIN EJ_COMPONENT_SECRET EJ_USERS EJ_LOG (ejabberd.log)
#   EJ_S2S_PORT EJ_S2S_ADDR (only with S2S)
#
# Facts (Debian 12): with ERL_DIST_PORT set, ejabberdctl passes
# "-erl_epmd_port PORT -start_epmd false" to erl, so neither the node nor the
# ejabberdctl clients use epmd at all.  ERL_EPMD_PORT is still pointed at a free
# port so that nothing can ever talk to (or start) the system's epmd on 4369.
# There is no mod_presence in ejabberd: presence is handled by the core and mod_roster.
#
# S2S facts (ejabberd 23.01, seen against Prosody 0.12):
#   - There is no s2s_certfile any more: the certificate for EJ_DOMAIN is taken from
#     certfiles by its names, for s2s_in (TLS server) and s2s_out (client certificate).
#     Peers are checked against s2s_cafile (falls back to ca_file).
#   - Peers are found with Erlang's own resolver for SRV (inet_res; inetrc points it
#     at /etc/resolv.conf): _xmpps-server._tcp.D, then _xmpp-server._tcp.D; the
#     target's address then comes from getaddrinfo (glibc: /etc/hosts, then DNS).
#     Without an SRV record, D itself on outgoing_s2s_port.
#   - outgoing_s2s_ipv4_address binds outgoing connections (the peer sees EJ_S2S_ADDR).
#   - Outbound, an untrusted peer certificate ends the connection ("Peer certificate
#     rejected: ...") unless mod_s2s_dialback is loaded ("Retrying with s2s dialback
#     authentication").  A peer that offers no SASL mechanism (Prosody does so when
#     it does not trust our certificate) gives "Failed outbound s2s EXTERNAL
#     authentication ... Peer provided no SASL mechanisms", then dialback if loaded.
#   - Inbound, SASL EXTERNAL is offered even when the peer's certificate cannot be
#     verified; the <auth/> then gets <failure/> with the reason as text ("self
#     signed certificate in certificate chain"), and a peer may go on with dialback.
#   - Log lines (EJ_LOG, written a little later than the events: use wait_log):
#     "Accepted outbound s2s EXTERNAL authentication A -> B (ip)",
#     "Accepted inbound s2s EXTERNAL authentication B -> A (ip)", the same with
#     "dialback", and "Failed ... authentication" / "Failed to establish outbound".

EJ_PID=""

_ej_env() {
	env HOME="$EJ_DIR" ERL_EPMD_PORT="$EJ_EPMD_PORT" "$@"
}

ejctl() {
	_ej_env "$EJ_DIR/ejabberdctl" --config-dir "$EJ_DIR/conf" --spool "$EJ_DIR/spool" \
		--logs "$EJ_DIR/logs" "$@"
}

_ej_write_config() {
	local conf=$EJ_DIR/conf c2s_cert=$1 comp_cert=$2
	local certfiles="  - \"$c2s_cert\"" s2s_listen="" s2s_opts="s2s_access: none" s2s_mods=""
	if [[ -n ${EJ_S2S_PORT:-} ]]; then
		[[ $EJ_S2S_CERT == "$c2s_cert" ]] || certfiles+=$'\n'"  - \"$EJ_S2S_CERT\""
		s2s_listen="  -
    port: $EJ_S2S_PORT
    ip: \"$EJ_S2S_ADDR\"
    module: ejabberd_s2s_in
    max_stanza_size: 524288"
		s2s_opts="s2s_access: all
s2s_use_starttls: ${EJ_S2S_TLS:-required}
s2s_cafile: \"$EJ_S2S_CA\"
s2s_protocol_options: 'TLS_OPTIONS'
s2s_dns_timeout: 3
s2s_dns_retries: 1
s2s_max_retry_delay: ${EJ_S2S_RETRY:-2}
outgoing_s2s_timeout: 5
outgoing_s2s_port: 5269"
		if [[ $EJ_S2S_ADDR =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
			s2s_opts+=$'\n'"outgoing_s2s_ipv4_address: \"$EJ_S2S_ADDR\""
		fi
		if [[ ${EJ_S2S_DIALBACK:-0} == 1 ]]; then
			s2s_mods="  mod_s2s_dialback: {}"
		fi
	fi
	cat >"$conf/ejabberdctl.cfg" <<EOF
ERLANG_NODE=$EJ_NODE
ERL_DIST_PORT=$EJ_DIST_PORT
ERL_OPTIONS="-kernel inet_dist_use_interface {127,0,0,1} -env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_PID_PATH=$EJ_DIR/ejabberd.pid
EJABBERD_CONFIG_PATH=$conf/ejabberd.yml
CONTRIB_MODULES_PATH=$EJ_DIR/contrib
CONTRIB_MODULES_CONF_DIR=$conf/modules.d
EJABBERD_BYPASS_WARNINGS=true
EOF
	cat >"$conf/inetrc" <<'EOF'
{lookup,["file","native"]}.
{host,{127,0,0,1}, ["localhost"]}.
{file, resolv, "/etc/resolv.conf"}.
EOF
	cat >"$conf/ejabberd.yml" <<EOF
# Generated by tests/integration/ejabberd.sh
loglevel: ${EJ_LOGLEVEL:-info}
log_rotate_count: 0
hosts:
  - "$EJ_DOMAIN"
certfiles:
$certfiles
ca_file: "$CA_DIR/ca.crt"
define_macro:
  'TLS_OPTIONS':
    - "no_sslv3"
    - "no_tlsv1"
    - "no_tlsv1_1"
    - "no_compression"
c2s_protocol_options: 'TLS_OPTIONS'
listen:
  -
    port: $EJ_C2S_PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    starttls_required: true
    protocol_options: 'TLS_OPTIONS'
  -
    port: $EJ_COMPONENT_PORT
    ip: "127.0.0.1"
    module: ejabberd_service
    tls: ${EJ_COMPONENT_TLS:-true}
    certfile: "$comp_cert"
    protocol_options: 'TLS_OPTIONS'
    max_stanza_size: 524288
    hosts:
      "$EJ_COMPONENT_DOMAIN":
        password: "$EJ_COMPONENT_SECRET"
$s2s_listen
auth_method: internal
auth_password_format: scram
$s2s_opts
acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  register:
    deny: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
modules:
  mod_admin_extra: {}
  mod_disco: {}
  mod_ping: {}
  mod_roster:
    versioning: false
$s2s_mods
EOF
	if [[ -n ${EJ_EXTRA_YAML:-} ]]; then
		cat "$EJ_EXTRA_YAML" >>"$conf/ejabberd.yml"
	fi
}

ejabberd_start() {
	need /usr/sbin/ejabberdctl erl ss
	EJ_DIR=$1
	mkdir -p "$EJ_DIR/conf/modules.d" "$EJ_DIR/spool" "$EJ_DIR/logs" "$EJ_DIR/contrib"
	EJ_DIR=$(cd "$EJ_DIR" && pwd)
	: "${CA_DIR:=$T_DIR/certs}"
	[[ -f $CA_DIR/ca.crt ]] || "$IT_DIR/ca.sh" init "$CA_DIR"
	: "${EJ_DOMAIN:=xmpp.test}" "${EJ_COMPONENT_DOMAIN:=sip.test}"
	: "${EJ_COMPONENT_SECRET:=s3cret}"
	: "${EJ_USERS:=alice:alicepw bob:bobpw carol:carolpw}"
	local c2s_cert=${EJ_C2S_CERT:-$CA_DIR/xmpp.pem}
	if [[ -z ${EJ_C2S_CERT:-} && ! -f $c2s_cert ]]; then
		"$IT_DIR/ca.sh" issue "$CA_DIR" xmpp --dns "$EJ_DOMAIN" --eku serverAuth,clientAuth
	fi
	local comp_cert=${EJ_COMPONENT_CERT:-$c2s_cert}
	if [[ -n ${EJ_S2S_PORT:-} ]]; then
		: "${EJ_S2S_ADDR:=127.0.0.1}" "${EJ_S2S_CERT:=$c2s_cert}" "${EJ_S2S_CA:=$CA_DIR/ca.crt}"
		export EJ_S2S_PORT EJ_S2S_ADDR
	fi

	EJ_C2S_PORT=$(free_port)
	EJ_COMPONENT_PORT=$(free_port)
	EJ_DIST_PORT=$(free_port)
	EJ_EPMD_PORT=$(free_port)
	EJ_NODE="ejabberd-test-$$-$RANDOM@localhost"
	EJ_LOG=$EJ_DIR/logs/ejabberd.log
	export CA_DIR EJ_DIR EJ_DOMAIN EJ_COMPONENT_DOMAIN EJ_COMPONENT_SECRET EJ_USERS \
		EJ_C2S_PORT EJ_COMPONENT_PORT EJ_DIST_PORT EJ_EPMD_PORT EJ_NODE EJ_LOG

	sed 's/^INSTALLUSER=.*/INSTALLUSER=/' /usr/sbin/ejabberdctl >"$EJ_DIR/ejabberdctl"
	chmod 755 "$EJ_DIR/ejabberdctl"
	_ej_write_config "$c2s_cert" "$comp_cert"
	# $T_DIR/ejabberd.log (console output, shown on failure) has the same lines as
	# $EJ_LOG; error.log has only errors.
	track_log "$EJ_DIR/logs/error.log"

	log "starting ejabberd $EJ_NODE: c2s $EJ_C2S_PORT, component $EJ_COMPONENT_PORT${EJ_S2S_PORT:+, s2s $EJ_S2S_ADDR:$EJ_S2S_PORT}"
	spawn ejabberd env HOME="$EJ_DIR" ERL_EPMD_PORT="$EJ_EPMD_PORT" "$EJ_DIR/ejabberdctl" --config-dir "$EJ_DIR/conf" \
		--spool "$EJ_DIR/spool" --logs "$EJ_DIR/logs" foreground
	EJ_PID=$LAST_PID
	export EJ_PID
	if ! wait_alive "$EJ_PID" 30 _ej_ready; then
		echo "ejabberd did not open ports $EJ_C2S_PORT/$EJ_COMPONENT_PORT${EJ_S2S_PORT:+/$EJ_S2S_ADDR:$EJ_S2S_PORT} in 30s" >&2
		return 1
	fi
	_ej_register_users
}

_ej_ready() {
	_port_open 127.0.0.1 "$EJ_C2S_PORT" tcp && _port_open 127.0.0.1 "$EJ_COMPONENT_PORT" tcp &&
		{ [[ -z ${EJ_S2S_PORT:-} ]] || _port_open "$EJ_S2S_ADDR" "$EJ_S2S_PORT" tcp; }
}

# Register all EJ_USERS.  Each ejabberdctl call boots an Erlang VM (~0.5 s), so
# they run in parallel.
_ej_register_users() {
	local up user pw rc=0 pids=()
	for up in $EJ_USERS; do
		user=${up%%:*} pw=${up#*:}
		ejctl register "$user" "$EJ_DOMAIN" "$pw" >>"$EJ_DIR/ctl.log" 2>&1 &
		pids+=($!)
	done
	for up in "${pids[@]}"; do
		wait "$up" || rc=1
	done
	if ((rc)); then
		cat "$EJ_DIR/ctl.log" >&2
		return 1
	fi
}

# ejabberd_stop: SIGTERM to the node (graceful), wait for it; kill leftovers.
# Only beam.smp gets the signal first, so that the ejabberdctl shell above it
# outlives it and reaps it (no orphaned zombie left to init).
ejabberd_stop() {
	[[ -n ${EJ_PID:-} ]] || return 0
	local beam
	beam=$(cat "$EJ_DIR/ejabberd.pid" 2>/dev/null || true)
	if [[ $beam =~ ^[0-9]+$ && $(ps -o pgid= -p "$beam" 2>/dev/null | tr -d ' ') == "$EJ_PID" ]]; then
		kill -TERM "$beam" 2>/dev/null || true
		wait_until 10 _ej_stopped || true
	fi
	stop_pid "$EJ_PID" 5
	_ej_kill_epmd
	EJ_PID=""
}

_ej_stopped() { ! pgrp_alive "$EJ_PID"; }

# An epmd on our private port can only be ours: kill it by pid.
_ej_kill_epmd() {
	local pid
	for pid in $(ss -Hltnp "sport = :$EJ_EPMD_PORT" 2>/dev/null |
		grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
		if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == epmd ]]; then
			kill "$pid" 2>/dev/null || true
		fi
	done
}
