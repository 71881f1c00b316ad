# shellcheck shell=bash
# Long-lived XMPP test clients (xmppc --keep-going) driven through a FIFO.
# Source after lib.sh and ejabberd.sh (uses EJ_C2S_PORT, CA_DIR, XMPPC).
# The server is 127.0.0.1:$EJ_C2S_PORT unless XMPPC_HOST / XMPPC_PORT say otherwise
# (e.g. `XMPPC_HOST=$PR_C2S_ADDR XMPPC_PORT=$PR_C2S_PORT xmppc_start bob ...` for
# prosody.sh's server, see prosody_xmppc_start); XMPPC_CA (default $CA_DIR/ca.crt)
# is the CA the server certificate must chain to (checked against the JID's domain).
# Trailing XMPPC ARGS (--host, --port, --ca, --direct-tls...) override all of these.
#
#   xmppc_start NAME JID PASSWORD [XMPPC ARGS...]   log in; false if it cannot
#   xmppc_send NAME XML                              send a raw stanza
#   xmppc_expect NAME PATTERN [SECS]                 true when a stanza matches
#   xmppc_absent NAME PATTERN [SECS]                 true if none matches in SECS (default 1)
#   xmppc_cmd NAME LINE                              any xmppc command (sleep, flush...)
#   xmppc_stop NAME                                  quit; returns xmppc's exit code
#   xmppc_log NAME                                   path of its output (RECV lines, errors)
#   xmppc_run JID PASSWORD <<EOF ... EOF             one-shot script on stdin (exit code)
#
# PATTERN: substrings joined by "&&", matched against the stanza as xmppc prints it
# (double-quoted attributes in any order), e.g. '<presence&&from="bob@sip.test/'.
# Each received stanza satisfies at most one expect (see xmppc.c).
# A failed xmppc_expect prints the unmatched stanzas into the client's log.

declare -gA XMPPC_FD=() XMPPC_PID=()

xmppc_log() { printf '%s\n' "$T_DIR/xmppc-$1.log"; }

xmppc_start() {
	local name=$1 jid=$2 pw=$3
	shift 3
	local fifo=$T_DIR/xmppc-$name.in fd logf
	logf=$(xmppc_log "$name")
	mkfifo "$fifo"
	exec {fd}<>"$fifo"
	XMPPC_FD[$name]=$fd
	T_CLOSE_FDS+=" $fd"
	SPAWN_STDIN=$fifo spawn "xmppc-$name" "$XMPPC" --keep-going --jid "$jid" --password "$pw" \
		--host "${XMPPC_HOST:-127.0.0.1}" --port "${XMPPC_PORT:-$EJ_C2S_PORT}" \
		--ca "${XMPPC_CA:-$CA_DIR/ca.crt}" "$@"
	XMPPC_PID[$name]=$LAST_PID
	if ! wait_alive "$LAST_PID" 15 _log_has "$logf" '^CONNECTED '; then
		echo "xmppc $name ($jid) did not log in; see $logf" >&2
		return 1
	fi
}

xmppc_cmd() {
	local name=$1
	shift
	printf '%s\n' "$*" >&"${XMPPC_FD[$name]}"
}

xmppc_send() {
	local name=$1
	shift
	xmppc_cmd "$name" "send $*"
}

_xmppc_results() { grep -cE '^(OK|FAILED) (expect|absent) ' "$1" || true; }

# _xmppc_wait NAME KIND PATTERN SECS
_xmppc_wait() {
	local name=$1 kind=$2 pattern=$3 secs=$4 logf before
	logf=$(xmppc_log "$name")
	before=$(_xmppc_results "$logf")
	xmppc_cmd "$name" "$kind $pattern $secs"
	if ! wait_alive "${XMPPC_PID[$name]}" "$((${secs%.*} + 10))" _xmppc_settled "$logf" "$before"; then
		echo "xmppc $name: no answer to '$kind $pattern'" >&2
		return 1
	fi
	[[ $(grep -E '^(OK|FAILED) (expect|absent) ' "$logf" | sed -n "$((before + 1))p") == OK* ]]
}

_xmppc_settled() { (($(_xmppc_results "$1") > $2)); }

xmppc_expect() { _xmppc_wait "$1" expect "$2" "${3:-10}"; }
xmppc_absent() { _xmppc_wait "$1" absent "$2" "${3:-1}"; }

xmppc_stop() {
	local name=$1 pid rc=0
	pid=${XMPPC_PID[$name]:-}
	[[ -n $pid ]] || return 0
	xmppc_cmd "$name" quit 2>/dev/null || true
	if ! wait_until 5 _xmppc_gone "$pid"; then
		stop_pid "$pid" 2
		rc=124
	else
		wait "$pid" 2>/dev/null || rc=$?
		_forget "$pid"
	fi
	local fd=${XMPPC_FD[$name]}
	exec {fd}>&-
	T_CLOSE_FDS=${T_CLOSE_FDS/ $fd/}
	unset 'XMPPC_FD[$name]' 'XMPPC_PID[$name]'
	return "$rc"
}

_xmppc_gone() { ! alive "$1"; }

# xmppc_run JID PASSWORD [XMPPC ARGS...] < script : one-shot client; prints its
# output; returns its exit code.
xmppc_run() {
	local jid=$1 pw=$2
	shift 2
	"$XMPPC" --jid "$jid" --password "$pw" --host "${XMPPC_HOST:-127.0.0.1}" \
		--port "${XMPPC_PORT:-$EJ_C2S_PORT}" --ca "${XMPPC_CA:-$CA_DIR/ca.crt}" "$@"
}
