# shellcheck shell=bash
# A throwaway PostgreSQL cluster for the tests (issue 18): initdb in a scratch
# folder, a free 127.0.0.1 port, its Unix socket in the same folder, trust
# authentication (loopback only), never the system's cluster or service.
#
# Sourced (after lib.sh):
#   pg_start DIR       initdb (once) and start; sets PG_DIR, PG_PORT, PG_SOCK,
#                      PG_CONNINFO (TCP on 127.0.0.1), PG_CONNINFO_SOCK (Unix
#                      socket); the database "presbridge" exists
#   pg_stop            fast shutdown
#   pg_restart         stop and start on the same port (the cluster kept)
#   pg_psql SQL...     run SQL in database presbridge, unaligned tuples only
#   pg_kill_clients    pg_terminate_backend() every client connection of presbridge
# As a command (for ctest fixtures, scripts outside lib.sh):
#   pg.sh start DIR    prints the TCP connection string on stdout
#   pg.sh stop DIR
# Debian's postgresql package (any major version in /usr/lib/postgresql) is
# needed; initdb refuses to run as root, so the cluster runs as the user
# "postgres" the package creates (or as the caller when it is not root).

pg_bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[[ -n $d && -x $d/initdb ]] || {
		echo "pg.sh: no PostgreSQL server found (apt-get install postgresql)" >&2
		return 1
	}
	echo "$d"
}

pg_as() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_free_port() {
	if declare -F free_port >/dev/null; then
		free_port
		return
	fi
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_start() {
	local dir=$1 bin
	bin=$(pg_bindir) || return 1
	PG_DIR=$dir
	mkdir -p "$dir"
	if [[ $(id -u) -eq 0 ]]; then
		chown postgres: "$dir"
		chmod 0711 "$(dirname "$dir")" 2>/dev/null || true
	fi
	if [[ ! -f $dir/data/PG_VERSION ]]; then
		pg_as "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 \
			--no-instructions >"$dir/initdb.log" 2>&1 || {
			cat "$dir/initdb.log" >&2
			return 1
		}
	fi
	[[ -n ${PG_PORT:-} ]] || PG_PORT=$(pg_free_port)
	PG_SOCK=$dir
	pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
		-o "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=60" \
		start >/dev/null || {
		tail -20 "$dir/server.log" >&2
		return 1
	}
	if ! pg_as "$bin/psql" -h "$dir" -p "$PG_PORT" -U postgres -d postgres -tAc \
		"SELECT 1 FROM pg_database WHERE datname = 'presbridge'" | grep -q 1; then
		pg_as "$bin/createdb" -h "$dir" -p "$PG_PORT" -U postgres presbridge
	fi
	PG_CONNINFO="host=127.0.0.1 port=$PG_PORT dbname=presbridge user=postgres connect_timeout=2"
	PG_CONNINFO_SOCK="host=$dir port=$PG_PORT dbname=presbridge user=postgres"
	export PG_DIR PG_PORT PG_SOCK PG_CONNINFO PG_CONNINFO_SOCK
}

pg_stop() {
	local bin
	bin=$(pg_bindir) || return 1
	[[ -n ${PG_DIR:-} && -f $PG_DIR/data/postmaster.pid ]] || return 0
	pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

pg_restart() {
	pg_stop
	pg_start "$PG_DIR"
}

pg_psql() {
	local bin
	bin=$(pg_bindir) || return 1
	pg_as "$bin/psql" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d presbridge -v ON_ERROR_STOP=1 \
		-tAq -c "$*"
}

pg_kill_clients() {
	pg_psql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	         WHERE datname = 'presbridge' AND pid <> pg_backend_pid()"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	case ${1:-} in
	start)
		pg_start "$2" >&2
		echo "$PG_CONNINFO"
		;;
	stop)
		PG_DIR=$2
		pg_stop
		;;
	*)
		echo "usage: pg.sh start|stop DIR" >&2
		exit 2
		;;
	esac
fi
