#!/bin/bash
# The pool (issue 18): three bridges on 127.0.0.2, .3 and .4 sharing one scratch
# PostgreSQL ([store] backend = postgresql, [pool] lease = 3), one ejabberd (the
# bridge as its component), lyncpool.py as the Lync front end (UDP) of all of them.
# Each node reaches PostgreSQL through its own socat relay, so that one node alone
# can be cut off (the relay frozen with SIGSTOP: its connections hang).
#   - start: exactly one node is active, the others standby;
#   - load: 100 Lync watchers of bob, 100 Lync presentities alice watches, 5 IM
#     sessions, all through the active node;
#   - kill -9 of the active node: one standby (of two: the claim is exactly once)
#     takes over within lease + 0.5 s; every watcher dialog gets a NOTIFY with the
#     new Contact (RFC 6665 section 3.2), every subscription toward Lync an in-dialog
#     SUBSCRIBE with it (section 3.1), every IM session a BYE; presence then flows
#     both ways exactly once per dialog; the rows are all the survivor's;
#   - the killed node comes back as standby, the rows stay where they are;
#   - PostgreSQL restarts while presence changes flow: nothing is lost;
#   - the active node is cut off from PostgreSQL: it fences itself (log, SIP port
#     closed) before the standby takes over, and sends nothing afterwards; back
#     in touch with the database it rejoins as standby;
#   - SIGTERM of the active node: the lease is released, the once fenced node,
#     now the only standby, takes over at once and serves; then it stops too
#     (under ASan+UBSan: no sanitizer report in any node's log).
# The measured figures are printed as "FIGURE name value" lines.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/ejabberd.sh"
. "$IT_DIR/xmpp.sh"
. "$IT_DIR/sipp.sh"
. "$IT_DIR/bridge/pres.sh"

pres_setup python3
[[ -x $XMPPC ]] || die "$XMPPC missing (build the xmppc target, or set BUILD_DIR)"
LEASE=3
LEASE_MS=$((LEASE * 1000 + 500))
W=100  # Lync watchers of bob
L=100  # Lync presentities alice watches
S=5    # IM sessions

pres_pg_start || die "PostgreSQL did not start"
ejabberd_start "$T_DIR/ejabberd"
xmppc_start bob bob@xmpp.test/desk bobpw || die "bob cannot log in"
xmppc_start alice alice@xmpp.test/desk alicepw || die "alice cannot log in"
xmppc_send bob '<presence><status>start</status></presence>'
xmppc_send alice '<presence/>'

figure() { printf 'FIGURE %s %s\n' "$1" "$2"; }
now_ms() { printf '%s\n' $((${EPOCHREALTIME/[.,]/} / 1000)); }

# ---------------------------------------------------------------- lyncpool.py
LP_PORT=$(free_port)
LP_LOG=$T_DIR/lyncpool.log
mkfifo "$T_DIR/lyncpool.in"
exec {LP_FD}<>"$T_DIR/lyncpool.in"
T_CLOSE_FDS+=" $LP_FD"
SPAWN_STDIN=$T_DIR/lyncpool.in spawn lyncpool python3 -u "$IT_DIR/lyncpool.py" --port "$LP_PORT"
wait_alive "$LAST_PID" 10 _log_has "$LP_LOG" '^READY ' || die "lyncpool.py did not start"

lp() { printf '%s\n' "$*" >&"$LP_FD"; }
# lp_ask PREFIX COMMAND...: send a query, print its answer line (the next PREFIX line).
lp_ask() {
	local pre=$1 n
	shift
	n=$(grep -c "^$pre " "$LP_LOG" || true)
	lp "$@"
	wait_until 5 _lp_more "$pre" "$n" || return 1
	grep "^$pre " "$LP_LOG" | sed -n "$((n + 1))p"
}
_lp_more() { (($(grep -c "^$1 " "$LP_LOG" || true) > $2)); }
# lp_dialogs KIND FILTER... : distinct dialogs with a matching event (count's dialogs=)
lp_dialogs() { lp_ask COUNT count "$@" | sed -n 's/.* dialogs=\([0-9]*\).*/\1/p'; }
lp_events() { lp_ask COUNT count "$@" | awk '{ print $2 }'; }
lp_last_ms() { lp_ask COUNT count "$@" | sed -n 's/.* last=\([0-9]*\).*/\1/p'; }
# lp_wait SECS WANT KIND FILTER...: until WANT distinct dialogs had a matching event
lp_wait() {
	local secs=$1 want=$2
	shift 2
	wait_until "$secs" _lp_atleast "$want" "$@" || {
		log "lyncpool: $(lp_dialogs "$@") of $want dialogs for: $*"
		return 1
	}
}
_lp_atleast() { (($(lp_dialogs "${@:2}") >= $1)); }
# lp_exactly WANT_EVENTS WANT_DIALOGS KIND FILTER...
lp_exactly() {
	local got
	got=$(lp_ask COUNT count "${@:3}")
	[[ $got == "COUNT $1 dialogs=$2 "* ]] || {
		log "lyncpool: want $1 events in $2 dialogs, got '$got' for: ${*:3}"
		return 1
	}
}
lp_mark() { lp_ask MARK mark "$1" >/dev/null; }

# ---------------------------------------------------------------- the nodes
declare -A N_ADDR N_PORT N_PID N_LOG N_RELAY N_RPORT N_RUN
NODES="a b c"
i=2
for n in $NODES; do
	N_ADDR[$n]=127.0.0.$i
	N_PORT[$n]=$(free_port)
	N_RPORT[$n]=$(free_port)
	N_RUN[$n]=0
	i=$((i + 1))
done

relay_start() { # relay_start NODE: the node's own way to PostgreSQL
	local n=$1
	spawn "relay-$n" socat "TCP-LISTEN:${N_RPORT[$n]},bind=127.0.0.1,reuseaddr,fork" \
		"TCP:127.0.0.1:$PG_PORT"
	N_RELAY[$n]=$LAST_PID
	wait_alive "$LAST_PID" 5 port_listening "${N_RPORT[$n]}" tcp
}

node_conf() { # node_conf NODE: its configuration file
	local n=$1 f=$T_DIR/node-$1.conf
	cat >"$f" <<EOF
[bridge]
mappings = $REPO_DIR/mappings
log_level = ${BR_LOG_LEVEL:-info}

[store]
backend = postgresql
conninfo = host=127.0.0.1 port=${N_RPORT[$n]} dbname=$POOL_DB user=postgres connect_timeout=2

[pool]
node = $n
lease = $LEASE

[sip]
listen = udp:${N_ADDR[$n]}:${N_PORT[$n]}
cert = $CA_DIR/bridge.crt
key = $CA_DIR/bridge.key
ca = $CA_DIR/ca.crt

[xmpp]
server = 127.0.0.1:$EJ_COMPONENT_PORT
secret = $EJ_COMPONENT_SECRET
tls = direct
ca = $CA_DIR/ca.crt
name = $EJ_DOMAIN

[peer lync]
host = sipp.sip.test
address = 127.0.0.1:$LP_PORT
transport = udp
domains = sip.test
trusted = yes
im = session
EOF
	printf '%s\n' "$f"
}

node_start() { # node_start NODE: start it (a new log each time); do not wait
	local n=$1
	N_RUN[$n]=$((N_RUN[$n] + 1))
	spawn "node-$n-${N_RUN[$n]}" "$BUILD_DIR/presbridge" -c "$(node_conf "$n")"
	N_PID[$n]=$LAST_PID
	N_LOG[$n]=$T_DIR/node-$n-${N_RUN[$n]}.log
}
node_role() { # node_role NODE: active | standby | fenced | "" (its latest pool line)
	grep -Eo "pool: (node $1 is (active|standby)|fenced)" "${N_LOG[$1]}" 2>/dev/null |
		tail -n 1 | sed -E 's/.* is //; s/pool: fenced/fenced/'
}
# log_ms FILE REGEX: wall-clock ms of the first line of FILE matching REGEX
log_ms() {
	local stamp
	stamp=$(grep -Em1 -- "$2" "$1" | cut -d' ' -f1) || return 1
	[[ -n $stamp ]] || return 1
	date -u -d "$stamp" +%s%3N
}
_gone() { ! alive "$1"; }
log_ms_last() { # log_ms_last FILE REGEX: the same, of the last such line
	local stamp
	stamp=$(grep -E -- "$2" "$1" | tail -n 1 | cut -d' ' -f1) || return 1
	[[ -n $stamp ]] || return 1
	date -u -d "$stamp" +%s%3N
}
sip_bound() { # sip_bound NODE: its UDP SIP socket exists
	ss -Hlun 2>/dev/null | awk -v a="${N_ADDR[$1]}:${N_PORT[$1]}" '$4 == a { f = 1 } END { exit !f }'
}
rows() { pg_psql "SELECT count(*) FROM $1${2:+ WHERE $2}"; }
owners() { pg_psql "SELECT coalesce(string_agg(DISTINCT owner, ','), '-') FROM $1"; }

# ================================================================ start
POOL_DB=presbridge
for n in $NODES; do
	relay_start "$n" || die "the relay of node $n did not start"
done
for n in $NODES; do
	node_start "$n"
done
roles_known() {
	local n
	for n in $NODES; do
		[[ -n $(node_role "$n") ]] || return 1
	done
}
check "start: every node names its role within 15 s" wait_until 15 roles_known
ACTIVE=""
STANDBYS=()
for n in $NODES; do
	case $(node_role "$n") in
	active) ACTIVE+=$n ;;
	standby) STANDBYS+=("$n") ;;
	esac
done
check "start: exactly one node is active ($ACTIVE), the others standby (${STANDBYS[*]})" \
	test "${#ACTIVE}" -eq 1 -a "${#STANDBYS[@]}" -eq 2
[[ ${#ACTIVE} -eq 1 ]] || die "no single active node"
check "start: the active node links to ejabberd" \
	wait_log "${N_LOG[$ACTIVE]}" 'component link up' 15
standby_quiet() { # no standby listens on SIP or links to XMPP
	local n
	for n in "${STANDBYS[@]}"; do
		sip_bound "$n" && { log "standby $n listens on SIP"; return 1; }
		_log_has "${N_LOG[$n]}" 'component link up' && { log "standby $n linked to XMPP"; return 1; }
	done
	return 0
}
check "start: the standbys neither listen on SIP nor link to XMPP" standby_quiet
check "start: the active node listens on SIP" wait_until 5 sip_bound "$ACTIVE"
A=${N_ADDR[$ACTIVE]}:${N_PORT[$ACTIVE]}

# ================================================================ load
# 100 Lync users watch bob through the active node; bob approves each.
lp_mark load
lp watch w "$W" bob@xmpp.test "$A"
asked() { (($(grep '^RECV <presence' "$(xmppc_log bob)" | grep 'type="subscribe"' |
	grep -o 'from="w[0-9]*@sip.test' | sort -u | wc -l) >= W)); }
check "load: bob is asked to authorize $W Lync watchers" wait_until 30 asked
for ((k = 1; k <= W; k++)); do
	xmppc_send bob "<presence type=\"subscribed\" to=\"w$k@sip.test\"/>"
done
check "load: $W watcher dialogs answered 200 by the active node" \
	lp_wait 30 "$W" RESP method=SUBSCRIBE code=200 "src=$A" since load
check "load: $W watcher dialogs get NOTIFY active, open" \
	lp_wait 30 "$W" NOTIFY state=active basic=open since load
# alice watches 100 Lync users: the bridge subscribes to lyncpool as notifier.
for ((k = 1; k <= L; k++)); do
	xmppc_send alice "<presence type=\"subscribe\" to=\"l$k@sip.test\"/>"
done
check "load: the bridge subscribes to $L Lync presentities" \
	lp_wait 30 "$L" SUBSCRIBE new=1 "src=$A" since load
alice_sees() { # alice_sees NOTE: presence with <status>NOTE</status> from L distinct l*
	local got
	got=$(grep '^RECV <presence' "$(xmppc_log alice)" | grep -F "<status>$1</status>" |
		grep -o 'from="l[0-9]*@sip.test' | sort -u | wc -l)
	((got >= L))
}
check "load: alice sees the $L Lync users' presence" wait_until 30 alice_sees initial
# 5 IM sessions opened by Lync users toward bob.
for ((k = 1; k <= S; k++)); do
	lp invite "s$k" "im$k" bob@xmpp.test "$A" "hello%20$k"
done
check "load: $S IM sessions established (INVITE 200)" \
	lp_wait 20 "$S" RESP method=INVITE code=200 since load
bob_msgs() { (($(grep '^RECV <message' "$(xmppc_log bob)" | grep -c '<body>hello [0-9]</body>') >= S)); }
check "load: bob gets the sessions' $S first messages" wait_until 20 bob_msgs
SUBS_BEFORE=$(rows pb_sub)
IMS_BEFORE=$(rows pb_im)
figure rows.pb_sub "$SUBS_BEFORE"
figure rows.pb_im "$IMS_BEFORE"
check "load: $((W + L)) subscription rows and $S IM rows, all the active node's" \
	test "$SUBS_BEFORE" -eq $((W + L)) -a "$IMS_BEFORE" -eq "$S" -a "$(owners pb_sub)" = "$ACTIVE"

# ================================================================ kill -9
DEAD=$ACTIVE
lp_mark kill
T_KILL=$(now_ms)
kill -9 "${N_PID[$DEAD]}"
some_active() {
	local n
	for n in "${STANDBYS[@]}"; do
		[[ $(node_role "$n") == active ]] && return 0
	done
	return 1
}
check "kill -9: a standby takes over" wait_until 15 some_active
sleep "$LEASE" # a second winner would show by now
WINNERS=()
for n in "${STANDBYS[@]}"; do
	[[ $(node_role "$n") == active ]] && WINNERS+=("$n")
done
check "kill -9: exactly one of the two standbys won (${WINNERS[*]})" test "${#WINNERS[@]}" -eq 1
SURV=${WINNERS[0]:-}
[[ -n $SURV ]] || die "no survivor"
T_TAKE=$(log_ms "${N_LOG[$SURV]}" "pool: node $SURV is active") || T_TAKE=0
TAKEOVER_MS=$((T_TAKE - T_KILL))
figure takeover.kill_to_log_ms "$TAKEOVER_MS"
check "kill -9: the survivor $SURV took over within lease + 0.5 s (${TAKEOVER_MS} ms)" \
	test "$TAKEOVER_MS" -gt 0 -a "$TAKEOVER_MS" -le "$LEASE_MS"
check "kill -9: the log names what was taken over" \
	_log_has "${N_LOG[$SURV]}" "pool: node $SURV is active \\(epoch [0-9]+\\); took over $((W + L)) subscriptions and $S IM sessions from $DEAD in [0-9]+ ms"
B=${N_ADDR[$SURV]}:${N_PORT[$SURV]}
check "kill -9: each of the $W watcher dialogs gets a NOTIFY with the survivor's Contact (RFC 6665 3.2)" \
	lp_wait 15 "$W" NOTIFY "src=$B" "contact~sip:$B" since kill
check "kill -9: each of the $L subscriptions toward Lync is refreshed in its dialog with the survivor's Contact (RFC 6665 3.1)" \
	lp_wait 15 "$L" SUBSCRIBE new=0 "src=$B" "contact~sip:$B" since kill
check "kill -9: each of the $S IM sessions gets a BYE from the survivor" \
	lp_wait 15 "$S" BYE "src=$B" since kill
L1=$(lp_last_ms NOTIFY "src=$B" since kill)
L2=$(lp_last_ms SUBSCRIBE new=0 "src=$B" since kill)
L3=$(lp_last_ms BYE "src=$B" since kill)
LAST=$L1
((L2 > LAST)) && LAST=$L2
((L3 > LAST)) && LAST=$L3
figure takeover.kill_to_last_refresh_ms $((LAST - T_KILL))
check "kill -9: the survivor refreshed the subscriptions toward Lync, never made new ones" \
	lp_exactly 0 0 SUBSCRIBE new=1 since kill
check "kill -9: no request was out of order (RFC 3261 12.2.2)" lp_exactly 0 0 OUT-OF-ORDER since kill
check "kill -9: nothing reached a dialog lyncpool did not know" lp_exactly 0 0 NO-DIALOG since kill

lp_mark chg1
xmppc_send bob '<presence><show>away</show><status>after-takeover</status></presence>'
check "kill -9: bob's change reaches all $W watchers" \
	lp_wait 15 "$W" NOTIFY note=after-takeover "src=$B" since chg1
sleep 1
check "kill -9: ... exactly once each (no duplicate, none from another node)" \
	lp_exactly "$W" "$W" NOTIFY note=after-takeover since chg1
lp_mark ref1
lp refresh 'w*'
check "kill -9: each watcher's SUBSCRIBE refresh reaches the survivor (200 from $B)" \
	lp_wait 15 "$W" RESP method=SUBSCRIBE code=200 "src=$B" since ref1
lp_mark chg2
lp pres-all l open after-takeover-l
check "kill -9: each Lync presentity's change reaches alice" wait_until 20 alice_sees after-takeover-l
check "kill -9: no row of the dead node $DEAD left" \
	test "$(rows pb_sub "owner = '$DEAD'")" -eq 0 -a "$(rows pb_im "owner = '$DEAD'")" -eq 0
check "kill -9: the $((W + L)) subscription rows are still there, all the survivor's" \
	test "$(rows pb_sub)" -eq "$SUBS_BEFORE" -a "$(owners pb_sub)" = "$SURV"
im_gone() { [[ $(rows pb_im) -eq 0 ]]; }
check "kill -9: the ended IM sessions are gone" wait_until 5 im_gone

# ================================================================ rejoin
node_start "$DEAD"
check "rejoin: the killed node $DEAD comes back as standby" \
	wait_alive "${N_PID[$DEAD]}" 15 _log_has "${N_LOG[$DEAD]}" "pool: node $DEAD is standby; the active node is $SURV"
sleep 1
check "rejoin: the rows stay with $SURV" \
	test "$(owners pb_sub)" = "$SURV" -a "$(rows pb_sub)" -eq "$SUBS_BEFORE"
check "rejoin: $SURV is still the active node" test "$(node_role "$SURV")" = active

# ================================================================ PostgreSQL restarts
lp_mark pgr
T_PGR=$(now_ms)
pg_restart >"$T_DIR/pg-restart.log" 2>&1 &
PGR=$!
for k in 1 2 3 4 5 6; do # presence changes while it stops and starts again
	xmppc_send bob "<presence><status>pg-$k</status></presence>"
	sleep 0.25
done
wait "$PGR" || die "PostgreSQL did not restart: $(cat "$T_DIR/pg-restart.log")"
pres_pg_track
figure pg_restart.down_ms $(($(now_ms) - T_PGR))
xmppc_send bob '<presence><status>pg-final</status></presence>'
lp pres-all l open pg-final-l
current_active() {
	local n
	for n in $NODES; do
		[[ $(node_role "$n") == active ]] && alive "${N_PID[$n]}" && printf '%s\n' "$n"
	done
	return 0
}
one_active() { [[ $(current_active | wc -l) -eq 1 ]]; }
check "PostgreSQL restart: one node is active afterwards ($(current_active | tr '\n' ' '))" \
	wait_until 15 one_active
PG_RECONNECT_RE='(store|pool): .*connected (again|to the database again)'
reconnected() { # every node logs its reconnection (after the restart: its last log)
	local n
	for n in $NODES; do
		grep -Eq "$PG_RECONNECT_RE" "${N_LOG[$n]}" || return 1
	done
}
check "PostgreSQL restart: every node logs its reconnection" wait_until 15 reconnected
last_state() { [[ $(lp_ask LASTIS lastis NOTIFY note=pg-final w) == "LASTIS $W of $W" ]]; }
check "PostgreSQL restart: every watcher's last NOTIFY carries bob's last state" wait_until 20 last_state
check "PostgreSQL restart: alice gets every Lync user's last state" wait_until 20 alice_sees pg-final-l
check "PostgreSQL restart: the row counts are unchanged" \
	wait_until 10 test "$(rows pb_sub)" -eq "$SUBS_BEFORE"

# ================================================================ cut off
X=$(current_active | head -n 1)
[[ -n $X ]] || die "no active node before the cut-off"
XA=${N_ADDR[$X]}:${N_PORT[$X]}
# The moment X's SIP socket goes away, as a poll every 20 ms sees it.
(
	for ((k = 0; k < 1000; k++)); do
		sip_bound "$X" || { now_ms >"$T_DIR/x-closed"; exit 0; }
		sleep 0.02
	done
) &
track_pid $!
lp_mark cut
T_CUT=$(now_ms)
kill -STOP -- "-${N_RELAY[$X]}"
xmppc_send bob '<presence><status>during-cut</status></presence>'
new_active() {
	local n
	for n in $NODES; do
		[[ $n != "$X" && $(node_role "$n") == active ]] && alive "${N_PID[$n]}" && return 0
	done
	return 1
}
check "cut off: node $X logs that it fenced itself" wait_log "${N_LOG[$X]}" 'pool: fenced' 10
check "cut off: a standby takes over" wait_until 15 new_active
Y=$(current_active | grep -vx "$X" | head -n 1) || true
YA=${N_ADDR[$Y]:-}:${N_PORT[$Y]:-}
T_FENCE=$(log_ms "${N_LOG[$X]}" 'pool: fenced') || T_FENCE=0
T_Y=$(log_ms "${N_LOG[$Y]}" "pool: node $Y is active.*from $X") || T_Y=0
figure cutoff.cut_to_fence_ms $((T_FENCE - T_CUT))
figure cutoff.cut_to_takeover_ms $((T_Y - T_CUT))
figure cutoff.fence_before_takeover_ms $((T_Y - T_FENCE))
check "cut off: $X fenced itself before $Y took over" test "$T_FENCE" -gt 0 -a "$T_FENCE" -lt "$T_Y"
check "cut off: $X no longer listens on SIP" wait_until 5 test -s "$T_DIR/x-closed"
T_CLOSED=$(cat "$T_DIR/x-closed" 2>/dev/null || echo 0)
figure cutoff.cut_to_sip_closed_ms $((T_CLOSED - T_CUT))
check "cut off: $X closed its SIP port before $Y took over" test "$T_CLOSED" -gt 0 -a "$T_CLOSED" -lt "$T_Y"
silent_after() { # silent_after ADDR MS: no request or response from ADDR after MS
	local kind last
	for kind in NOTIFY SUBSCRIBE BYE RESP; do
		last=$(lp_last_ms "$kind" "src=$1" since cut)
		((last < $2)) || { log "a $kind came from $1 at $last, after $2"; return 1; }
	done
}
check "cut off: nothing came from $X after $Y took over" silent_after "$XA" "$T_Y"
figure cutoff.during_cut_notifies_from_fenced "$(lp_events NOTIFY note=during-cut "src=$XA" since cut)"
figure cutoff.during_cut_notifies_from_new "$(lp_events NOTIFY note=during-cut "src=$YA" since cut)"
lp_mark after
xmppc_send bob '<presence><status>after-cut</status></presence>'
check "cut off: bob's next change reaches all $W watchers from $Y" \
	lp_wait 15 "$W" NOTIFY note=after-cut "src=$YA" since after
sleep 1
check "cut off: ... exactly once each, never from both nodes" \
	lp_exactly "$W" "$W" NOTIFY note=after-cut since after
kill -CONT -- "-${N_RELAY[$X]}"
check "cut off: once PostgreSQL is reachable again, $X rejoins as standby" \
	wait_log "${N_LOG[$X]}" "pool: node $X is standby; the active node is $Y" 15
check "cut off: the rows are all $Y's" test "$(owners pb_sub)" = "$Y" -a "$(rows pb_sub)" -eq "$SUBS_BEFORE"

# ================================================================ SIGTERM
# The third node stops (a standby: it just leaves); then the active node Y
# releases the lease on SIGTERM and X, the once fenced node, its only standby,
# takes over at once, without waiting for the lease to run out, and serves.
for n in $NODES; do
	[[ $n == "$X" || $n == "$Y" ]] || stop_pid "${N_PID[$n]}" 10
done
T_TERM=$(now_ms)
kill -TERM "${N_PID[$Y]}"
x_active_again() { [[ $(node_role "$X") == active ]]; }
check "SIGTERM: $Y logs that it released the lease" wait_log "${N_LOG[$Y]}" 'pool: lease released' 5
check "SIGTERM: $X, once fenced, takes over" wait_until 10 x_active_again
T_Z=$(log_ms_last "${N_LOG[$X]}" "pool: node $X is active") || T_Z=0
((T_Z > T_TERM)) || T_Z=0 # (an earlier term as the active node)
((T_Z == 0)) || figure sigterm.handover_ms $((T_Z - T_TERM))
check "SIGTERM: the handover took less than the lease (${LEASE}s)" \
	test "$T_Z" -gt 0 -a $((T_Z - T_TERM)) -lt $((LEASE * 1000))
check "SIGTERM: $Y exits" wait_until 10 _gone "${N_PID[$Y]}"
served() { # no node took the lease without being able to serve
	! grep -h 'took the lease but cannot serve' "$T_DIR"/node-*.log
}
check "SIGTERM: $X could serve (it loaded the rows)" served
check "SIGTERM: $X is still running" alive "${N_PID[$X]}"
lp_mark term
xmppc_send bob '<presence><status>after-term</status></presence>'
check "SIGTERM: bob's next change reaches all $W watchers from $X" \
	lp_wait 15 "$W" NOTIFY note=after-term "src=$XA" since term
# Two takeovers in a row: each node resumes above every CSeq the other sent
# (the saved CSeq is a ceiling, RFC 3261 12.2.2); once it was not, and Lync's
# 500s ended every subscription.
check "SIGTERM: no request was out of order after two takeovers (RFC 3261 12.2.2)" \
	lp_exactly 0 0 OUT-OF-ORDER since cut

# ---- --probe names the database, its schema and the pool's members
"$BUILD_DIR/presbridge" -c "$T_DIR/node-$Y.conf" --probe >"$T_DIR/probe.txt" 2>&1 || true
probe_has() { grep -qE "$1" "$T_DIR/probe.txt" || { log "probe output lacks: $1"; return 1; }; }
check "probe: the database is reached (PostgreSQL, connect time)" \
	probe_has '^\[store\] PostgreSQL at 127\.0\.0\.1:.* node '"$Y"
check "probe: ... with its schema version" probe_has 'ok +schema version [0-9]+'
check "probe: ... and the node that holds the lease" probe_has "ok +node $X is active \\(epoch [0-9]+\\); $((W + L)) subscriptions"
check "probe: ... and every member of the pool with its role" \
	probe_has "pool member $X at udp:${N_ADDR[$X]}:${N_PORT[$X]}: active"
check "probe: ... the stopped node as stopped" probe_has "pool member $Y at .*: stopped"

# ---- the last node stops as a lone bridge does
stop_pid "${N_PID[$X]}" 10
if grep -q __asan_init "$BUILD_DIR/presbridge"; then # scripts/test.sh's sanitized run
	no_sanitizer_report() { ! grep -El 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T_DIR"/node-*.log; }
	check "ASan+UBSan: no report in any node's log (leaks counted at each graceful exit)" \
		no_sanitizer_report
fi

finish
