# shellcheck shell=bash
# A private Prosody 0.12 (Debian package) for one test, e.g. the far side of an
# XMPP federation (S2S) test.  Source after lib.sh.
#
#   prosody_start DIR     start it with everything under DIR (config, data, log, pid),
#                         its users written in advance; wait until c2s and s2s listen
#   prosody_stop          SIGTERM, wait; nothing of ours is left afterwards
#   prosody_xmppc_start NAME JID PASSWORD [XMPPC ARGS...]
#                         xmpp.sh's xmppc_start against this Prosody's c2s, i.e.
#                         XMPPC_HOST=$PR_C2S_ADDR XMPPC_PORT=$PR_C2S_PORT xmppc_start ...
#                         (the client checks the certificate against the JID's domain)
#
# Inputs (env, all optional):
#   CA_DIR           test CA folder (ca.sh init); default $T_DIR/certs (created)
#   PR_DOMAIN        the VirtualHost (default xmpp.test)
#   PR_USERS         "user:password ..." (default "alice:alicepw bob:bobpw carol:carolpw")
#   PR_CERT          PEM with key + certificate (+ CA), as ca.sh writes NAME.pem, used for
#                    c2s and S2S (in and out).  Default $CA_DIR/prosody.pem, issued for DNS
#                    PR_DOMAIN (serverAuth,clientAuth) if missing.
#   PR_CA            CAs trusted for S2S peers' certificates (default $CA_DIR/ca.crt)
#   PR_C2S_ADDR      c2s address (default 127.0.0.1); PR_C2S_PORT is a free_port
#   PR_S2S_ADDR      s2s address (default 127.0.0.1), PR_S2S_PORT (default 5269)
#   PR_S2S_TLS_PORT  also a direct-TLS s2s listener (XEP-0368) on PR_S2S_ADDR:PORT
#                    (s2s_direct_tls_ports); default none
#   PR_SECURE        s2s_secure_auth: true (default: a peer must present a certificate
#                    valid for its domain, i.e. SASL EXTERNAL) | false (dialback accepted)
#   PR_DIALBACK      1: load mod_dialback (XEP-0220) | 0.  Default 0 with PR_SECURE=true,
#                    1 with PR_SECURE=false.
#   PR_S2S_TLS       s2s_require_encryption: true (default) | false
#   PR_LOGLEVEL      debug | info (default) | warn ...; debug logs every stanza
#   PR_EXTRA_CFG     file appended to the global section of the config (Lua)
#   PR_COMPONENT     an external component (XEP-0114, mod_component) of this domain:
#                    a Component section with component_secret PR_COMPONENT_SECRET
#                    (default s3cret), its plain-TCP listener on 127.0.0.1:PR_COMPONENT_PORT
#                    (a free_port); default none
#   PR_MUX_TLS       1: also load mod_net_multiplex with a direct-TLS listener
#                    (ssl_ports, ssl_interfaces) on 127.0.0.1:PR_MUX_TLS_PORT (a
#                    free_port), Prosody's way to take a component over direct TLS;
#                    default 0
#   PR_DNS_JITTER    1: keep the resolver's random delay of up to 1 s before every DNS
#                    query (see Facts); default: a test plugin (mod_test_dns_nojitter,
#                    written into DIR/plugins) switches it off
# Outputs (exported): PR_DIR PR_PID PR_LOG (prosody.log) PR_CONFIG PR_DOMAIN PR_USERS
#   PR_C2S_ADDR PR_C2S_PORT PR_S2S_ADDR PR_S2S_PORT, with PR_COMPONENT also
#   PR_COMPONENT_SECRET PR_COMPONENT_PORT, with PR_MUX_TLS=1 PR_MUX_TLS_PORT
#
# Facts (Debian 12, Prosody 0.12.3):
#   - As root, Prosody's mod_posix refuses to run ("Danger, Will Robinson!") unless
#     `run_as_root = true`; `prosody --config FILE -F` with `daemonize = false` then
#     stays in the foreground as root.  (prosodyctl would try to switch to the
#     "prosody" user first; it is not used here.)
#   - Users are written straight into data_path in Prosody's own format
#     (DATA/<host, each non-alphanumeric byte as %xx>/accounts/<user>.dat holding
#     `return { ["password"] = "..."; };`) with authentication = "internal_plain",
#     which saves starting one prosodyctl per user.
#   - Without lua-unbound (not installed: it is only recommended) Prosody uses its
#     own Lua resolver (net.dns), which reads the nameservers of /etc/resolv.conf and
#     happily asks 127.0.0.1 about *.test (netns.sh's dnsmasq).  With lua-unbound,
#     libunbound reportedly refuses .test (RFC 6761 local zone) and localhost
#     resolvers; the `unbound` option written below is meant to undo both (not tried
#     here: lua-unbound is not installed; the option is ignored without it).
#   - The legacy resolver (net/dns.lua) waits a random 0-1 s (`jitter`) before sending
#     each query.  An outgoing S2S connection makes three (SRV _xmpps-server,
#     SRV _xmpp-server, A; AAAA is off: use_ipv6 = false), so up to 3 s before it even
#     connects.  Nothing in the config changes that; mod_test_dns_nojitter sets
#     jitter/retry_jitter to false in the resolver class (as net.dns does itself
#     for its own default resolver).
#   - Peer certificates are checked against ssl.cafile (plus /etc/ssl/certs, Prosody's
#     default capath).  A peer certificate is "valid" when its chain is valid and it
#     names the peer's domain (SAN dNSName, or SRV-ID/xmppAddr); then Prosody offers
#     SASL EXTERNAL on incoming S2S streams, and it uses SASL EXTERNAL itself on
#     outgoing ones when the peer offers it (log: "Accepting SASL EXTERNAL identity
#     from X" for incoming).  Seen with ejabberd 23.01 as the peer:
#     . PR_SECURE=true, peer certificate not trusted: "Forbidding insecure connection
#       to/from X because its certificate is not trusted", stream error not-authorized
#       ("Your server's certificate is not trusted"), in both directions.
#     . PR_SECURE=false, not trusted: no SASL mechanism is offered to the peer
#       (ejabberd: "Peer provided no SASL mechanisms; most likely it doesn't accept
#       our certificate"); with dialback on both sides dialback is used instead.
#     . Outgoing, Prosody tries EXTERNAL whenever offered; if ejabberd answers
#       <failure/> ("SASL EXTERNAL with X failed: ...") it falls back to dialback
#       when mod_dialback is loaded, else the connection fails.
#   - Outgoing S2S connections are not bound to PR_S2S_ADDR (their source is 127.0.0.1).
#   - mod_component (0.12.3) answers a stream header for a domain without a Component
#     section with a stream header whose id is empty, then <host-unknown/> ("X does
#     not match any configured external components"); a wrong secret with
#     <not-authorized/>; a second login for a connected component with <conflict/>
#     ("Component already connected", component_conflict_resolve = "kick_new").
#   - The component port (component_ports, component_interfaces; loopback by
#     default) speaks plain TCP only. mod_net_multiplex offers two services: the
#     plain one ("ports", "interfaces") and the direct-TLS one, config prefix "ssl"
#     ("ssl_ports", "ssl_interfaces", TLS settings from "ssl_ssl" or the global
#     ssl); both hand a connection whose first bytes look like a component stream
#     header to mod_component.  Its interfaces fall back to the global
#     "interfaces", then to every address: set ssl_interfaces.

PR_PID=""

_pr_write_config() {
	local secure=${PR_SECURE:-true} dialback=$1 mods
	mods='"roster"; "saslauth"; "tls"; "disco"; "ping";'
	((dialback)) && mods+=' "dialback";'
	[[ ${PR_MUX_TLS:-0} == 1 ]] && mods+=' "net_multiplex";'
	if [[ ${PR_DNS_JITTER:-0} != 1 ]]; then
		mods+=' "test_dns_nojitter";'
		cat >"$PR_DIR/plugins/mod_test_dns_nojitter.lua" <<'EOF'
-- Generated by tests/integration/prosody.sh: no random delay before DNS queries.
local resolver_class = getmetatable(require "net.dns".resolver());
if resolver_class.jitter ~= false then
	resolver_class.jitter, resolver_class.retry_jitter = false, false;
	module:log("info", "DNS query jitter switched off (test server)");
end
EOF
	fi
	cat >"$PR_CONFIG" <<EOF
-- Generated by tests/integration/prosody.sh
run_as_root = true
daemonize = false
pidfile = "$PR_DIR/prosody.pid"
data_path = "$PR_DIR/data"
certificates = "$PR_DIR/certs" -- empty: the certificate is given by ssl below
log = { { levels = { min = "${PR_LOGLEVEL:-info}" }; to = "file"; filename = "$PR_LOG" } }
plugin_paths = { "$PR_DIR/plugins" }
modules_enabled = { $mods }
interfaces = { "$PR_C2S_ADDR" }
c2s_interfaces = { "$PR_C2S_ADDR" }
c2s_ports = { $PR_C2S_PORT }
c2s_direct_tls_ports = { }
s2s_interfaces = { "$PR_S2S_ADDR" }
s2s_ports = { $PR_S2S_PORT }
s2s_direct_tls_ports = { ${PR_S2S_TLS_PORT:-} }
s2s_direct_tls_interfaces = { "$PR_S2S_ADDR" }
use_ipv6 = false
authentication = "internal_plain"
storage = "internal"
allow_registration = false
c2s_require_encryption = true
s2s_require_encryption = ${PR_S2S_TLS:-true}
s2s_secure_auth = $secure
s2s_timeout = 10
ssl = {
	certificate = "$PR_CERT";
	key = "$PR_CERT";
	cafile = "$PR_CA";
}
unbound = {
	options = { ["local-zone"] = "test. transparent"; ["do-not-query-localhost"] = "no" };
}
EOF
	if [[ -n ${PR_COMPONENT:-} ]]; then
		cat >>"$PR_CONFIG" <<EOF
component_ports = { $PR_COMPONENT_PORT }
component_interfaces = { "127.0.0.1" }
EOF
	fi
	if [[ ${PR_MUX_TLS:-0} == 1 ]]; then
		cat >>"$PR_CONFIG" <<EOF
ssl_ports = { $PR_MUX_TLS_PORT }
ssl_interfaces = { "127.0.0.1" }
EOF
	fi
	if [[ -n ${PR_EXTRA_CFG:-} ]]; then
		cat "$PR_EXTRA_CFG" >>"$PR_CONFIG"
	fi
	cat >>"$PR_CONFIG" <<EOF

VirtualHost "$PR_DOMAIN"
EOF
	if [[ -n ${PR_COMPONENT:-} ]]; then
		cat >>"$PR_CONFIG" <<EOF

Component "$PR_COMPONENT"
	component_secret = $(_pr_lua_str "$PR_COMPONENT_SECRET")
EOF
	fi
}

# _pr_encode STRING: datamanager's path encoding (every non-alphanumeric byte as %xx).
_pr_encode() {
	local s=$1 out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		if [[ $c == [A-Za-z0-9] ]]; then
			out+=$c
		else
			out+=$(printf '%%%02x' "'$c")
		fi
	done
	printf '%s\n' "$out"
}

# _pr_lua_str STRING: a Lua string literal.
_pr_lua_str() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

_pr_write_users() {
	local dir up user pw
	dir=$PR_DIR/data/$(_pr_encode "$PR_DOMAIN")/accounts
	mkdir -p "$dir"
	for up in $PR_USERS; do
		user=${up%%:*} pw=${up#*:}
		printf 'return {\n\t["password"] = %s;\n};\n' "$(_pr_lua_str "$pw")" \
			>"$dir/$(_pr_encode "$user").dat"
	done
}

prosody_start() {
	need prosody ss
	PR_DIR=$1
	mkdir -p "$PR_DIR/data" "$PR_DIR/certs" "$PR_DIR/plugins"
	PR_DIR=$(cd "$PR_DIR" && pwd)
	: "${CA_DIR:=$T_DIR/certs}"
	[[ -f $CA_DIR/ca.crt ]] || "$IT_DIR/ca.sh" init "$CA_DIR"
	: "${PR_DOMAIN:=xmpp.test}" "${PR_USERS:=alice:alicepw bob:bobpw carol:carolpw}"
	: "${PR_C2S_ADDR:=127.0.0.1}" "${PR_S2S_ADDR:=127.0.0.1}" "${PR_S2S_PORT:=5269}"
	: "${PR_CA:=$CA_DIR/ca.crt}"
	if [[ -z ${PR_CERT:-} ]]; then
		PR_CERT=$CA_DIR/prosody.pem
		[[ -f $PR_CERT ]] ||
			"$IT_DIR/ca.sh" issue "$CA_DIR" prosody --dns "$PR_DOMAIN" --eku serverAuth,clientAuth
	fi
	local dialback=${PR_DIALBACK:-}
	if [[ -z $dialback ]]; then
		if [[ ${PR_SECURE:-true} == true ]]; then dialback=0; else dialback=1; fi
	fi
	PR_C2S_PORT=$(free_port)
	if [[ -n ${PR_COMPONENT:-} ]]; then
		: "${PR_COMPONENT_SECRET:=s3cret}"
		PR_COMPONENT_PORT=$(free_port)
		export PR_COMPONENT PR_COMPONENT_SECRET PR_COMPONENT_PORT
	fi
	if [[ ${PR_MUX_TLS:-0} == 1 ]]; then
		PR_MUX_TLS_PORT=$(free_port)
		export PR_MUX_TLS_PORT
	fi
	PR_LOG=$PR_DIR/prosody.log
	PR_CONFIG=$PR_DIR/prosody.cfg.lua
	export CA_DIR PR_DIR PR_DOMAIN PR_USERS PR_C2S_ADDR PR_C2S_PORT PR_S2S_ADDR PR_S2S_PORT \
		PR_LOG PR_CONFIG
	_pr_write_config "$dialback"
	_pr_write_users
	track_log "$PR_LOG"

	log "starting prosody for $PR_DOMAIN: c2s $PR_C2S_ADDR:$PR_C2S_PORT, s2s $PR_S2S_ADDR:$PR_S2S_PORT"
	# HOME: Prosody expands ~ in paths with it; keep it out of the real one.
	spawn prosody env HOME="$PR_DIR" prosody --config "$PR_CONFIG" -F
	PR_PID=$LAST_PID
	export PR_PID
	if ! wait_alive "$PR_PID" 20 _pr_ready; then
		echo "prosody did not open $PR_C2S_ADDR:$PR_C2S_PORT and $PR_S2S_ADDR:$PR_S2S_PORT in 20s" >&2
		return 1
	fi
}

_pr_ready() {
	_port_open "$PR_C2S_ADDR" "$PR_C2S_PORT" tcp && _port_open "$PR_S2S_ADDR" "$PR_S2S_PORT" tcp &&
		{ [[ -z ${PR_COMPONENT:-} ]] || _port_open 127.0.0.1 "$PR_COMPONENT_PORT" tcp; } &&
		{ [[ ${PR_MUX_TLS:-0} != 1 ]] || _port_open 127.0.0.1 "$PR_MUX_TLS_PORT" tcp; }
}

prosody_xmppc_start() {
	XMPPC_HOST=$PR_C2S_ADDR XMPPC_PORT=$PR_C2S_PORT xmppc_start "$@"
}

# prosody_stop: SIGTERM (Prosody shuts down cleanly), wait, KILL if needed.
prosody_stop() {
	[[ -n ${PR_PID:-} ]] || return 0
	stop_pid "$PR_PID" 10
	PR_PID=""
}
