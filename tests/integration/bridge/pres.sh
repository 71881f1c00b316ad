# shellcheck shell=bash
# presbridge as a whole (both legs) for the bridge's end-to-end tests.  Source
# after lib.sh, ejabberd.sh and sipp.sh.
#
#   pres_setup [COMMAND...]
#       what every bridge test needs first: socat, sipp and the COMMANDs installed,
#       a test CA in $T_DIR/certs (CA_DIR) with certificates for ejabberd
#       (xmpp.test), the bridge (bridge.xmpp.test) and SIPp's TLS front ends
#       (sipp.sip.test), all with both EKUs, and a built presbridge
#   pres_conf FILE TRANSPORT PEER_PORT [STATE]
#       write a configuration: listeners udp/tcp/tls on free ports (BR_TCP, BR_TLS),
#       the XMPP link to the ejabberd of ejabberd_start, one [peer lync] reached over
#       TRANSPORT (udp | tcp | tls) at 127.0.0.1:PEER_PORT (host sipp.sip.test, the name
#       SIPp's TLS front ends present), state STATE (default :memory:)
#       With BR_S2S_ADDR set, the XMPP leg is server-to-server instead: [xmpp]
#       transport = s2s, [s2s] listen $BR_S2S_ADDR:5269 with $CA_DIR/s2s.crt
#       (issue it for sip.test), auth ${BR_S2S_AUTH:-external, dialback}, extra
#       [s2s] lines from BR_S2S_EXTRA (one key = value a line) and extra sections
#       from BR_S2S_PEERS.
#   pres_bridge_start NAME FILE   start it, wait for the component link (or, with
#                                 BR_S2S_ADDR, for its S2S listener); sets BR_PID, BR_LOG
#   pres_target TRANSPORT         where SIPp reaches the bridge: 127.0.0.1:$BR_UDP,
#                                 $BR_TCP or $BR_TLS
#
# PB_TEST_STORE=postgresql (the *_pg runs of the bridge suites, issue 18): every
# pres_conf writes [store] backend = postgresql instead of using STATE. The first
# one starts a scratch PostgreSQL for the test (pg.sh, in $T_DIR/pg; stopped at
# exit); each STATE is a database of its own: the same STATE path the same
# database (a restarted bridge finds its rows), :memory: a new, empty one each time.
#   pres_pg_start              start that cluster (also for tests that want it
#                              anyway, t_pool.sh); sets what pg_start sets
#   pres_pg_track              hand its postmaster to stop_all (again after pg_restart)
#   pres_pg_db STATE           print the database name for STATE (creating it)
#   pres_pg_rows STATE TABLE   print the row count of TABLE in STATE's database

pres_setup() {
	need socat sipp "$@"
	export CA_DIR=$T_DIR/certs
	"$IT_DIR/ca.sh" init "$CA_DIR"
	local c
	for c in "xmpp xmpp.test" "bridge bridge.xmpp.test" "sipp sipp.sip.test"; do
		set -- $c
		"$IT_DIR/ca.sh" issue "$CA_DIR" "$1" --dns "$2" --eku serverAuth,clientAuth
	done
	[[ -x $BUILD_DIR/presbridge ]] || die "$BUILD_DIR/presbridge missing (build it, or set BUILD_DIR)"
}

pres_conf() {
	local file=$1 tp=$2 peer_port=$3 state=${4:-:memory:} store=""
	: "${BR_TCP:=$(free_port)}" "${BR_TLS:=$(free_port)}" "${BR_UDP:=$(free_port)}"
	if [[ ${PB_TEST_STORE:-sqlite} == postgresql ]]; then
		_pres_pg_db "$state" || return 1
		store="[store]
backend = postgresql
conninfo = host=127.0.0.1 port=$PG_PORT dbname=$PRES_PG_DB user=postgres connect_timeout=2
"
	fi
	cat >"$file" <<EOF
[bridge]
state = $state
mappings = $REPO_DIR/mappings
log_level = ${BR_LOG_LEVEL:-debug}

$store
[sip]
listen = udp:127.0.0.1:$BR_UDP
listen = tcp:127.0.0.1:$BR_TCP
listen = tls:127.0.0.1:$BR_TLS
cert = $CA_DIR/bridge.crt
key = $CA_DIR/bridge.key
ca = $CA_DIR/ca.crt

$(_pres_xmpp_conf)

[peer lync]
host = sipp.sip.test
address = 127.0.0.1:$peer_port
transport = $tp
domains = sip.test
trusted = yes
im = ${BR_IM:-page}
EOF
}

_pres_xmpp_conf() {
	if [[ -z ${BR_S2S_ADDR:-} ]]; then
		cat <<EOF
[xmpp]
server = 127.0.0.1:$EJ_COMPONENT_PORT
secret = $EJ_COMPONENT_SECRET
tls = direct
ca = $CA_DIR/ca.crt
name = $EJ_DOMAIN
EOF
		return
	fi
	cat <<EOF
[xmpp]
transport = s2s

[s2s]
listen = $BR_S2S_ADDR:5269
cert = ${BR_S2S_CERT:-$CA_DIR/s2s.crt}
key = ${BR_S2S_KEY:-$CA_DIR/s2s.key}
ca = ${BR_S2S_CA:-$CA_DIR/ca.crt}
dialback_secret = ${BR_S2S_SECRET:-a-test-dialback-secret-of-32-chars}
auth = ${BR_S2S_AUTH:-external, dialback}
${BR_S2S_EXTRA:-}
${BR_S2S_PEERS:-}
EOF
}

pres_bridge_start() {
	local name=$1 conf=$2 ready='component link up'
	[[ -n ${BR_S2S_ADDR:-} ]] && ready='s2s: listening for XMPP servers'
	BR_LOG=$T_DIR/$name.log
	spawn "$name" "$BUILD_DIR/presbridge" -c "$conf"
	BR_PID=$LAST_PID
	wait_alive "$BR_PID" 15 _log_has "$BR_LOG" "$ready"
}

pres_target() {
	case $1 in
	tls) printf '127.0.0.1:%s\n' "$BR_TLS" ;;
	udp) printf '127.0.0.1:%s\n' "$BR_UDP" ;;
	*) printf '127.0.0.1:%s\n' "$BR_TCP" ;;
	esac
}

pres_pg_start() {
	[[ -n ${PG_DIR:-} && -f $PG_DIR/data/postmaster.pid ]] && return 0
	. "$IT_DIR/pg.sh"
	pg_start "$T_DIR/pg" >/dev/null || return 1
	# The cluster is pg_ctl's daemon, not one of spawn's processes: a fast
	# shutdown before lib.sh's own cleanup, whose exit status it keeps.
	trap _pres_pg_exit EXIT
	pres_pg_track
	PRES_PG_MEM=${PRES_PG_MEM:-0}
}

# pres_pg_track: let stop_all (and so a test's teardown check) stop the cluster
# too; pg_ctl's postmaster leads a session of its own. Again after pg_restart.
pres_pg_track() {
	local pid
	pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || return 0
	[[ -n $pid ]] && track_pid "$pid"
	return 0
}

_pres_pg_exit() {
	local rc=$?
	set +e # (exit 1) below must not end the trap before _cleanup
	pg_stop
	(exit "$rc")
	_cleanup
}

# _pres_pg_db STATE: PRES_PG_DB = its database, created if new (in the test's
# own shell: the cluster and the :memory: counter must outlive the call).
_pres_pg_db() {
	local state=$1 db
	pres_pg_start || { echo "PostgreSQL did not start" >&2; return 1; }
	if [[ $state == :memory: ]]; then
		PRES_PG_MEM=$((PRES_PG_MEM + 1))
		db=mem_$PRES_PG_MEM
	else
		db=st_$(printf '%s' "$state" | md5sum | cut -c1-12)
	fi
	if [[ -z $(pg_psql "SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
		pg_psql "CREATE DATABASE $db" || return 1
	fi
	PRES_PG_DB=$db
}

pres_pg_db() { _pres_pg_db "$1" && printf '%s\n' "$PRES_PG_DB"; }

pres_pg_rows() {
	local db
	db=$(pres_pg_db "$1") || return 1
	pg_as "$(pg_bindir)/psql" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d "$db" -tAq \
		-c "SELECT count(*) FROM $2"
}
