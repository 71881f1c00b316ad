# shellcheck shell=bash
# presbridge as the subject of an XMPP-leg test.  Source after lib.sh and
# ejabberd.sh (the defaults point at the ejabberd that ejabberd_start started).
#
#   bridge_conf FILE [KEY=VALUE...]   write a presbridge configuration. KEYs and defaults:
#                                       server=127.0.0.1:$EJ_COMPONENT_PORT  secret=$EJ_COMPONENT_SECRET
#                                       tls=direct  ca=$CA_DIR/ca.crt  name=$EJ_DOMAIN
#                                       log_level=trace  sip=udp:127.0.0.1:<free port>
#                                     mappings: the repository's mappings/ (component sip.test)
#   bridge_start NAME FILE            run presbridge -c FILE in the background, output to
#                                     $T_DIR/NAME.log (BRIDGE_LOG); sets BRIDGE_PID
#   bridge_stop PID [SECS]            SIGTERM, wait up to SECS (default 5); returns its exit
#                                     status, 124 if it had to be killed
#   bridge_cpu_ticks PID              utime + stime of PID in clock ticks (/proc/PID/stat)
#   ejabberd_restart                  start the ejabberd that ejabberd_stop stopped again,
#                                     same folder, node, ports and users
#   count_lines FILE REGEX            number of lines of FILE matching REGEX (grep -E)

# Outputs of bridge_start, read by the test that sources this file.
# shellcheck disable=SC2034
BRIDGE_PID="" BRIDGE_LOG=""

bridge_conf() {
	local file=$1 kv
	shift
	local -A v=(
		[server]="127.0.0.1:${EJ_COMPONENT_PORT:-5275}"
		[secret]="${EJ_COMPONENT_SECRET:-s3cret}"
		[tls]=direct
		[ca]="$CA_DIR/ca.crt"
		[name]="${EJ_DOMAIN:-xmpp.test}"
		[log_level]=trace
		[sip]=""
	)
	for kv in "$@"; do
		v[${kv%%=*}]=${kv#*=}
	done
	# The SIP leg is not under test; it only needs a listen line the loader accepts.
	[[ -n ${v[sip]} ]] || v[sip]="udp:127.0.0.1:$(free_port)"
	cat >"$file" <<EOF
; written by tests/integration/xmpp/bridge.sh
[bridge]
state = :memory:
mappings = $REPO_DIR/mappings
log_level = ${v[log_level]}

[sip]
listen = ${v[sip]}

[xmpp]
server = ${v[server]}
secret = ${v[secret]}
tls = ${v[tls]}
ca = ${v[ca]}
name = ${v[name]}
EOF
}

bridge_start() {
	local name=$1 conf=$2
	[[ -x $BUILD_DIR/presbridge ]] || die "$BUILD_DIR/presbridge missing: build the presbridge target"
	spawn "$name" "$BUILD_DIR/presbridge" -c "$conf"
	# shellcheck disable=SC2034
	BRIDGE_PID=$LAST_PID BRIDGE_LOG=$T_DIR/$name.log
}

_bridge_gone() { ! alive "$1"; }

bridge_stop() {
	local pid=$1 secs=${2:-5} rc=0
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_until "$secs" _bridge_gone "$pid"; then
		stop_pid "$pid" 2
		return 124
	fi
	wait "$pid" 2>/dev/null || rc=$?
	_forget "$pid"
	return "$rc"
}

bridge_cpu_ticks() {
	local st
	st=$(cat "/proc/$1/stat") || return 1
	st=${st##*) }
	# shellcheck disable=SC2086
	set -- $st
	# Fields 14 and 15 of the file; field 3 (state) is $1 here.
	printf '%s\n' $((${12} + ${13}))
}

_ej_ports_open() {
	_port_open 127.0.0.1 "$EJ_C2S_PORT" tcp && _port_open 127.0.0.1 "$EJ_COMPONENT_PORT" tcp
}

ejabberd_restart() {
	log "restarting ejabberd $EJ_NODE on ports $EJ_C2S_PORT/$EJ_COMPONENT_PORT"
	spawn ejabberd-restarted env HOME="$EJ_DIR" ERL_EPMD_PORT="$EJ_EPMD_PORT" \
		"$EJ_DIR/ejabberdctl" --config-dir "$EJ_DIR/conf" --spool "$EJ_DIR/spool" \
		--logs "$EJ_DIR/logs" foreground
	EJ_PID=$LAST_PID
	export EJ_PID
	wait_alive "$EJ_PID" 30 _ej_ports_open
}

count_lines() {
	local n
	n=$(grep -cE -- "$2" "$1" 2>/dev/null) || true
	printf '%s\n' "${n:-0}"
}
