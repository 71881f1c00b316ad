#!/bin/bash
# presbridge under systemd (issue 17): the unit file passes `systemd-analyze
# verify`, and the daemon speaks systemd's service protocol (sd_notify(3)) to a
# stand-in notification socket: READY=1 with a STATUS= summary once both legs are
# up or retrying (here the XMPP server is absent: retrying), WATCHDOG=1 at half
# WATCHDOG_USEC from its event loop, STOPPING=1 on SIGTERM; and when stderr is
# the journal (JOURNAL_STREAM names it) each line carries its syslog priority.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/bridge/pres.sh"
need systemd-analyze man python3

# --- the unit file as cmake configured it, ExecStart pointed at this build
unit=$BUILD_DIR/presbridge.service
[[ -f $unit ]] || die "$unit missing (cmake configures it)"
mkdir -p "$T_DIR/unit" "$T_DIR/man/man5" "$T_DIR/man/man8"
cp "$REPO_DIR"/man/*.5 "$T_DIR/man/man5/"
cp "$REPO_DIR"/man/*.8 "$T_DIR/man/man8/"
sbin=$(sed -n 's|^ExecStart=\([^ ]*\)/presbridge .*|\1|p' "$unit")
sed "s|$sbin/presbridge|$BUILD_DIR/presbridge|g" "$unit" >"$T_DIR/unit/presbridge.service"
check "unit: systemd-analyze verify is clean" \
	bash -c "out=\$(MANPATH='$T_DIR/man' systemd-analyze verify '$T_DIR/unit/presbridge.service' 2>&1); echo \"\$out\"; [ -z \"\$out\" ]"
for k in Type=notify ExecReload= ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
	NoNewPrivileges=yes StateDirectory=presbridge CapabilityBoundingSet=CAP_NET_BIND_SERVICE \
	RestrictAddressFamilies= SystemCallFilter=@system-service User=presbridge WatchdogSec=; do
	check "unit: sets $k" grep -q "^$k" "$unit"
done

# --- the protocol
pres_setup
EJ_COMPONENT_PORT=$(free_port) EJ_COMPONENT_SECRET=unused EJ_DOMAIN=xmpp.test \
	pres_conf "$T_DIR/sd.conf" tcp "$(free_port)"
sed -i 's/^log_level = .*/log_level = info/' "$T_DIR/sd.conf"
spawn notify python3 "$IT_DIR/sd_notify_listen.py" "$T_DIR/notify.sock" "$T_DIR/notify.txt"
wait_until 5 test -S "$T_DIR/notify.sock" || die "notification socket not bound"

: >"$T_DIR/sd.log"
js=$(stat -c '%d:%i' "$T_DIR/sd.log")
NOTIFY_SOCKET=$T_DIR/notify.sock WATCHDOG_USEC=1000000 JOURNAL_STREAM=$js \
	spawn sd "$BUILD_DIR/presbridge" -c "$T_DIR/sd.conf"
BR=$LAST_PID
check "READY=1 sent once the legs are up or retrying" \
	wait_until 10 grep -q '^READY=1|STATUS=running; XMPP 0 of 1 links up; SIP 0 connections; 0 subscriptions, 0 IM sessions$' "$T_DIR/notify.txt"
sleep 2.2
n=$(grep -c '^WATCHDOG=1$' "$T_DIR/notify.txt")
check "WATCHDOG=1 every 500 ms with WATCHDOG_USEC=1000000 (got $n in about 2.5 s)" \
	test "$n" -ge 4 -a "$n" -le 8
check "journal: info lines carry priority 6" grep -q '^<6>info  daemon: presbridge .* running with ' "$T_DIR/sd.log"
check "journal: the XMPP side's failure is a warning or error (4 or 3)" \
	grep -Eq '^<[34]>(warn |error) xmpp' "$T_DIR/sd.log"
check "journal: no line without a priority" \
	bash -c "! grep -v '^<[3467]>' '$T_DIR/sd.log'"
kill -HUP "$BR"
check "SIGHUP reloads" wait_log "$T_DIR/sd.log" 'reloaded ' 5
kill -TERM "$BR"
check "STOPPING=1 on SIGTERM" wait_until 5 grep -q '^STOPPING=1|STATUS=stopping' "$T_DIR/notify.txt"
_gone() { ! alive "$1"; }
wait_until 10 _gone "$BR"
rc=0
wait "$BR" 2>/dev/null || rc=$?
check "exits 0 after the goodbye (status $rc)" test "$rc" -eq 0

# --- without NOTIFY_SOCKET nothing changes: plain lines with a time stamp
spawn plain "$BUILD_DIR/presbridge" -c "$T_DIR/sd.conf"
check "outside systemd: time-stamped lines" \
	wait_log "$T_DIR/plain.log" 'Z info  daemon: presbridge .* running' 10
kill -TERM "$LAST_PID"
finish
