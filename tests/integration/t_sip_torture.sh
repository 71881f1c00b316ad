#!/bin/bash
# RFC 4475 torture messages (tests/data/sip/rfc4475) sent to a running presbridge
# over UDP and TCP: each gets the outcome its RFC section states (the table is in
# sip/torture.py), and the daemon still answers an OPTIONS after each one (no
# crash, no hang). Each message goes to a fresh daemon, as the RFC's messages are
# independent: several share a branch and sent-by, which RFC 3261 section 17.2.3
# would match to one transaction. The XMPP side is down (a closed port): the
# outcomes are about the SIP leg's parsing and validation, and what a request
# needs from XMPP is answered without it.
. "$(dirname "$0")/lib.sh"

need python3
[[ -x $BUILD_DIR/presbridge ]] || die "$BUILD_DIR/presbridge missing (build it, or set BUILD_DIR)"
DATA=$REPO_DIR/tests/data/sip/rfc4475
DRIVER=$IT_DIR/sip/torture.py
mkdir -p "$T_DIR/maps"
cp "$REPO_DIR/mappings/presence.map" "$T_DIR/maps/"
printf 'sip   sip.test   sip.test\nxmpp  xmpp.test  xmpp.test\n' >"$T_DIR/maps/domains.map"

conf() {
	cat >"$T_DIR/presbridge.conf" <<CONF
[bridge]
state = :memory:
mappings = $T_DIR/maps
log_level = debug

[sip]
listen = udp:127.0.0.1:$BR_UDP
listen = tcp:127.0.0.1:$BR_TCP

[xmpp]
server = 127.0.0.1:$(free_port)
secret = the-xmpp-side-is-down
tls = off
name = xmpp.test

[peer lync]
host = lync.sip.test
address = 127.0.0.1
transport = udp
domains = sip.test
trusted = yes
CONF
}

one() { # one NAME TRANSPORT
	local name=$1 tp=$2 out rc=0 log
	BR_UDP=$(free_port) BR_TCP=$(free_port)
	conf
	log=$T_DIR/br-$name-$tp.log
	spawn "br-$name-$tp" "$BUILD_DIR/presbridge" -c "$T_DIR/presbridge.conf"
	local pid=$LAST_PID
	if ! wait_alive "$pid" 15 _log_has "$log" 'sip: listening on tcp'; then
		fail "RFC 4475 $name over $tp" "presbridge did not start (see $log)"
		return
	fi
	out=$(python3 "$DRIVER" "$DATA" "$name" "$tp" "$([[ $tp == udp ]] && echo "$BR_UDP" || echo "$BR_TCP")" 2>&1) || rc=$?
	if ! alive "$pid"; then
		fail "RFC 4475 $name over $tp" "presbridge died: $out"
		track_log "$log"
		return
	fi
	stop_pid "$pid"
	# Under ASan+UBSan (BUILD_DIR=build-asan): a report, leaks at the graceful
	# exit included, fails the message that caused it.
	if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
		track_log "$log"
		fail "RFC 4475 $name over $tp" "sanitizer report: $(grep -Em1 'Sanitizer|runtime error:' "$log")"
		return
	fi
	if ((rc == 0)); then
		pass "${out#ok: }"
	else
		track_log "$log"
		fail "RFC 4475 $name over $tp" "${out#FAIL: }"
	fi
}

for f in "$DATA"/*.dat; do
	n=$(basename "$f" .dat)
	for tp in udp tcp; do
		one "$n" "$tp"
	done
done
finish
