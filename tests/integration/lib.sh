# shellcheck shell=bash
# Common helpers for presbridge integration tests.  Source it first:
#
#   . "$(dirname "$0")/lib.sh"
#
# It gives every test:
#   T_NAME        test name (script basename without .sh)
#   T_DIR         private scratch folder, removed at exit unless KEEP=1
#   IT_DIR        this folder (tests/integration), REPO_DIR the repository root
#   BUILD_DIR     absolute build folder (env BUILD_DIR, default "build")
#   XMPPC         path of the xmppc test client
#   free_port                  print a currently unused 127.0.0.1 port (TCP and UDP)
#   need CMD...                die with a clear message if a command is missing
#   spawn NAME CMD...          start CMD in its own session, output to $T_DIR/NAME.log;
#                              sets LAST_PID; killed (whole process group) at exit
#   track_pid PID / track_log FILE
#   stop_pid PID [SECS]        TERM the process group, wait, KILL if needed
#   stop_all                   stop_pid every tracked process, newest first
#   alive PID / pgrp_alive PID
#   snapshot_procs / leftovers SNAPSHOT...   what is still alive (false if nothing)
#   check_nothing_left SNAPSHOT...           the teardown check on leftovers (PASS/FAIL)
#   wait_port HOST PORT SECS [tcp|udp]
#   wait_until SECS CMD...     poll CMD until it succeeds
#   wait_log FILE REGEX SECS   poll until FILE contains REGEX (grep -E)
#   pass NAME / fail NAME REASON / check NAME CMD... / die REASON
#   finish                     print the test's summary, exit 0 or 1
#   log MSG                    timestamped message on stderr
# At exit every process started through spawn/track_pid is killed (process group
# first), logs are shown (tail) if anything failed, and T_DIR is removed.
#
# LIB_STYLE=demo (scripts/demo.sh, which narrates what crossed itself): a passing
# check prints nothing, a failing one "FAILED NAME: reason"; log lines have no
# time stamp; if anything failed, T_DIR is kept and its logs are listed instead
# of shown.

set -Eeuo pipefail
set +m
PATH=$PATH:/usr/sbin:/sbin

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$IT_DIR/../.." && pwd)
T_NAME=$(basename "$0" .sh)

BUILD_DIR=${BUILD_DIR:-build}
if [[ $BUILD_DIR != /* ]]; then
	if [[ -d $PWD/$BUILD_DIR ]]; then
		BUILD_DIR=$PWD/$BUILD_DIR
	else
		BUILD_DIR=$REPO_DIR/$BUILD_DIR
	fi
fi
XMPPC=${XMPPC:-$BUILD_DIR/tests/integration/xmppc}
export BUILD_DIR XMPPC IT_DIR REPO_DIR

T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/presbridge-$T_NAME.XXXXXX")
export T_DIR
T_PIDS=()      # processes to kill at exit (each the leader of its own group)
T_LOGS=()      # logs to show on failure
T_PORTS_FILE=$T_DIR/.ports   # ports handed out by free_port (it runs in $(...) subshells)
: >"$T_PORTS_FILE"
T_PASSED=0
T_FAILED=0
T_ERR=""
T_FINISHED=0
LAST_PID=""

LIB_STYLE=${LIB_STYLE:-test}
log() {
	if [[ $LIB_STYLE == demo ]]; then
		printf '   %s\n' "$*" >&2
	else
		printf '[%s %s] %s\n' "$(date +%H:%M:%S.%3N)" "$T_NAME" "$*" >&2
	fi
}
# die REASON: one FAIL line for the test as a whole, and stop it.
die() {
	fail "$T_NAME" "$*"
	finish
}

pass() {
	T_PASSED=$((T_PASSED + 1))
	[[ $LIB_STYLE == demo ]] || printf 'PASS %s\n' "$1"
}

fail() {
	T_FAILED=$((T_FAILED + 1))
	if [[ $LIB_STYLE == demo ]]; then
		printf 'FAILED %s: %s\n' "$1" "${2:-failed}"
	else
		printf 'FAIL %s: %s\n' "$1" "${2:-failed}"
	fi
}

# check NAME CMD... : PASS if CMD succeeds, else FAIL with its exit code.
check() {
	local name=$1 rc=0
	shift
	"$@" || rc=$?
	if ((rc == 0)); then
		pass "$name"
	else
		fail "$name" "'$*' exited with $rc"
	fi
	return 0
}

# ---------------------------------------------------------------- ports

_port_in_use() {
	# Any TCP or UDP socket (listening or connected) bound to this local port.
	ss -Htuan 2>/dev/null | awk -v p="$1" '
		{ n = split($5, a, ":"); if (a[n] == p) { found = 1; exit } }
		END { exit !found }'
}

# The kernel's ephemeral range (outgoing connections) is avoided when at least
# 2000 ports of 20000-60000 lie outside it (Debian default 32768-60999 leaves
# 20000-32767), so a port cannot be taken by some connect() before we bind it.
_port_ranges() {
	local lo=0 hi=0
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	local below=$((lo > 20000 ? (lo > 60001 ? 40001 : lo - 20000) : 0))
	local above=$((hi < 60000 ? (hi < 19999 ? 40001 : 60000 - hi) : 0))
	if ((lo > 0 && below + above >= 2000)); then
		T_PORT_LO=$lo T_PORT_HI=$hi
	else
		T_PORT_LO=0 T_PORT_HI=0
	fi
}
_port_ranges

# free_port: print a port on 127.0.0.1 that is free right now for TCP and UDP,
# random in 20000-60000 (outside the ephemeral range), never one already handed
# out to this test.
free_port() {
	local port i
	for ((i = 0; i < 500; i++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
		((port >= T_PORT_LO && port <= T_PORT_HI)) && continue
		grep -qx "$port" "$T_PORTS_FILE" && continue
		_port_in_use "$port" && continue
		printf '%s\n' "$port" >>"$T_PORTS_FILE"
		printf '%s\n' "$port"
		return 0
	done
	echo "free_port: no free port found" >&2
	return 1
}

# need CMD...: stop the test with a clear message if a command is missing.
need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			die "command '$c' not found: install the packages of scripts/packages-test.txt"
	done
}

# ---------------------------------------------------------------- processes

# Every process we start is remembered with its kernel start time, so that a pid
# reused by someone else after our process ended is never signalled.
declare -gA T_START=()

_starttime() { # _starttime PID: field 22 of /proc/PID/stat (after "pid (comm) ")
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	# shellcheck disable=SC2086
	set -- $st
	printf '%s\n' "${20}"
}

# spawn NAME CMD... : run CMD in a new session (so its pid is its process group),
# stdin from /dev/null (or $SPAWN_STDIN), stdout+stderr to $T_DIR/NAME.log.
# File descriptors listed in T_CLOSE_FDS (e.g. FIFO ends the test writes to) are
# closed in the child.  Sets LAST_PID.
T_CLOSE_FDS=""
spawn() {
	local name=$1
	shift
	local logf=$T_DIR/$name.log
	(
		for f in $T_CLOSE_FDS; do
			exec {f}>&-
		done
		exec setsid "$@"
	) <"${SPAWN_STDIN:-/dev/null}" >>"$logf" 2>&1 &
	LAST_PID=$!
	track_pid "$LAST_PID"
	T_LOGS+=("$logf")
}

# track_pid PID: kill PID (and its process group, if it leads one) at exit.
track_pid() {
	T_START[$1]=$(_starttime "$1" || echo gone)
	T_PIDS+=("$1")
}
track_log() { T_LOGS+=("$1"); }

# alive PID: PID exists and is not a zombie.
alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $st && $st != Z* ]]
}

# _ours PID: PID is the process we started (same start time), or it is gone (then
# processes still in process group PID are ours: Linux does not reuse a pid while
# a group carries its number).
_ours() {
	local st
	st=$(_starttime "$1") || return 0
	[[ $st == "${T_START[$1]:-}" ]]
}

_signal() {
	local sig=$1 pid=$2
	_ours "$pid" || return 0
	kill "-$sig" -- "-$pid" 2>/dev/null || true
	kill "-$sig" "$pid" 2>/dev/null || true
}

# pgrp_alive PID: is our process PID, or any process of its group, still running?
# Zombies do not count (they only wait to be reaped).
pgrp_alive() {
	_ours "$1" || return 1
	ps -e -o pid=,pgid=,stat= 2>/dev/null |
		awk -v g="$1" '($1 == g || $2 == g) && $3 !~ /^Z/ { f = 1 } END { exit !f }'
}

# _family PID: "pid:starttime" of PID, the members of its process group and all
# their descendants (some programs, e.g. Erlang's erl_child_setup, call setsid()
# and so leave the group).
_family() {
	_ours "$1" || return 0
	ps -e -o pid=,ppid=,pgid= 2>/dev/null | awk -v g="$1" '
		{ pid[NR] = $1; ppid[NR] = $2; pgid[NR] = $3 }
		END {
			for (i = 1; i <= NR; i++) if (pid[i] == g || pgid[i] == g) in_set[pid[i]] = 1
			do {
				added = 0
				for (i = 1; i <= NR; i++)
					if (!(pid[i] in in_set) && (ppid[i] in in_set)) { in_set[pid[i]] = 1; added = 1 }
			} while (added)
			for (p in in_set) print p
		}' | while read -r p; do
		st=$(_starttime "$p") && printf '%s:%s\n' "$p" "$st"
	done
}

# stop_pid PID [SECS]: SIGTERM to the process group, wait up to SECS (default 5)
# for it and every descendant (also those that left the group) to end, then
# SIGKILL whatever is left.  PID is forgotten afterwards.
stop_pid() {
	local pid=$1 secs=${2:-5} i e fam
	[[ -n $pid ]] || return 0
	mapfile -t fam < <(_family "$pid")
	_signal TERM "$pid"
	# Descendants outside the group usually end with their parent; they only get
	# signals (KILL) if they are still there after SECS.
	for ((i = 0; i < secs * 20; i++)); do
		pgrp_alive "$pid" || procs_alive "${fam[@]}" >/dev/null || break
		sleep 0.05
	done
	if pgrp_alive "$pid" || procs_alive "${fam[@]}" >/dev/null; then
		log "pid $pid did not stop after ${secs}s, sending SIGKILL"
		_signal KILL "$pid"
		for e in "${fam[@]}"; do
			_same_proc "$e" && kill -KILL "${e%%:*}" 2>/dev/null
		done
	fi
	wait "$pid" 2>/dev/null || true
	_forget "$pid"
	return 0
}

# _same_proc PID:STARTTIME: that very process still exists.
_same_proc() { [[ $(_starttime "${1%%:*}" 2>/dev/null) == "${1#*:}" ]]; }

# stop_all: stop every process still tracked, the most recent first.
stop_all() {
	local pids=("${T_PIDS[@]}") i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop_pid "${pids[i]}" 5
	done
}

_forget() {
	local i
	for i in "${!T_PIDS[@]}"; do
		[[ ${T_PIDS[i]} == "$1" ]] && unset 'T_PIDS[i]'
	done
	T_PIDS=("${T_PIDS[@]}")
	unset 'T_START[$1]'
}

# snapshot_procs: print "pid:starttime" of every running process we started, with
# their process groups and descendants (for a later `procs_alive`/`leftovers`).
snapshot_procs() {
	local pid
	for pid in "${T_PIDS[@]}"; do
		_family "$pid"
	done | sort -u
}

# procs_alive SNAPSHOT...: print the processes of a snapshot that still exist
# (same pid and start time, not zombies); false if none.
procs_alive() {
	local e pid found=1
	for e in "$@"; do
		pid=${e%%:*}
		if _same_proc "$e" && alive "$pid"; then
			ps -o pid=,pgid=,args= -p "$pid" 2>/dev/null | cut -c1-160
			found=0
		fi
	done
	return "$found"
}

# leftovers [SNAPSHOT...]: print what this test started and is still running:
# processes of the snapshot, tracked processes, and any process whose command line
# mentions $T_DIR.  False if none.  (Ports are not checked: with tests running in
# parallel another test may rightly be using a port we used before.)
leftovers() {
	local pid found=1
	procs_alive "$@" && found=0
	for pid in "${T_PIDS[@]}"; do
		if pgrp_alive "$pid"; then
			pgrep -a -g "$pid" 2>/dev/null | cut -c1-160 || true
			found=0
		fi
	done
	if pgrep -af -- "$T_DIR" 2>/dev/null | grep -v "^$$ " | cut -c1-160 | grep .; then
		found=0
	fi
	return "$found"
}

# check_nothing_left [SNAPSHOT...]: the teardown check: PASS if leftovers finds
# nothing (SNAPSHOT: snapshot_procs, taken before the stops), else FAIL naming
# what still runs.
check_nothing_left() {
	local left
	if left=$(leftovers "$@"); then
		fail "teardown: nothing of ours left running" "still there: $left"
	else
		pass "teardown: nothing of ours left running ($# processes checked)"
	fi
}

# ---------------------------------------------------------------- waiting

# _usecs SECS: SECS (e.g. 2 or 0.5) in microseconds.
_usecs() {
	local int=${1%.*} frac=000000
	[[ $1 == *.* ]] && frac=${1#*.}000000
	printf '%s\n' $((10#${int:-0} * 1000000 + 10#${frac:0:6}))
}

# wait_until SECS CMD... : poll CMD every 50 ms until it succeeds or SECS pass
# (SECS may have decimals).
wait_until() {
	local secs=$1
	shift
	local end=$((${EPOCHREALTIME/[.,]/} + $(_usecs "$secs")))
	local rc
	while :; do
		rc=0
		"$@" || rc=$?
		((rc == 0)) && return 0
		[[ ${1:-} == _alive_and && $rc == 2 ]] && return 1
		((${EPOCHREALTIME/[.,]/} >= end)) && return 1
		sleep 0.05
	done
}

# wait_alive PID SECS CMD... : like wait_until, but give up at once if PID exits.
wait_alive() {
	local pid=$1
	shift
	wait_until "$1" _alive_and "$pid" "${@:2}" && return 0
	alive "$pid" || log "process $pid exited"
	return 1
}
_alive_and() {
	local pid=$1
	shift
	alive "$pid" || return 2
	"$@"
}

_port_open() {
	local host=$1 port=$2 proto=$3
	if [[ $proto == udp ]]; then
		ss -Hlun "sport = :$port" 2>/dev/null | grep -q .
	else
		# shellcheck disable=SC2016 # expanded by the inner bash
		timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
	fi
}

# port_listening PORT [tcp|udp]: some socket is listening on (bound to) PORT.
port_listening() {
	if [[ ${2:-tcp} == udp ]]; then
		ss -Hlun "sport = :$1" 2>/dev/null | grep -q .
	else
		ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
	fi
}

# wait_port HOST PORT SECS [tcp|udp]: wait until something accepts TCP
# connections (or has a UDP socket bound) on HOST:PORT.
wait_port() {
	wait_until "$3" _port_open "$1" "$2" "${4:-tcp}"
}

_log_has() { [[ -f $1 ]] && grep -Eq -- "$2" "$1"; }

# wait_log FILE REGEX SECS
wait_log() { wait_until "$3" _log_has "$1" "$2"; }

# ---------------------------------------------------------------- exit

dump_logs() {
	local f
	for f in "${T_LOGS[@]}"; do
		[[ -s $f ]] || continue
		printf '\n----- %s (last 40 lines) -----\n' "$f" >&2
		tail -n 40 "$f" >&2 || true
	done
	printf '\n' >&2
}

_on_err() { [[ -n $T_ERR ]] || T_ERR="${2##*/}: '$3' exited with $1"; }

_cleanup() {
	local rc=$?
	set +e
	trap - ERR
	if ((rc != 0 && !T_FINISHED)); then
		fail "$T_NAME" "aborted (exit $rc${T_ERR:+, $T_ERR})"
	fi
	stop_all
	if [[ $LIB_STYLE == demo && -z ${SHOW_LOGS:-} ]]; then
		if ((T_FAILED > 0)); then
			KEEP=1
			printf '\nThe logs of every server are kept in %s:\n' "$T_DIR" >&2
			find "$T_DIR" -name '*.log' -size +0 -printf '  %P\n' 2>/dev/null | sort >&2
		fi
	elif ((T_FAILED > 0)) || [[ -n ${SHOW_LOGS:-} ]]; then
		dump_logs
	fi
	if [[ ${KEEP:-0} == 1 ]]; then
		log "kept scratch folder $T_DIR"
	else
		rm -rf "$T_DIR"
	fi
	if ((rc == 0 && T_FAILED > 0)); then
		rc=1
	fi
	exit "$rc"
}

trap '_on_err "$?" "${BASH_SOURCE[0]:-$0}:$LINENO" "$BASH_COMMAND"' ERR
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# finish: print the summary of this test script and exit (1 if any check failed).
finish() {
	T_FINISHED=1
	log "$T_PASSED passed, $T_FAILED failed"
	((T_FAILED == 0)) && exit 0
	exit 1
}
