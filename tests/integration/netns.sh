# shellcheck shell=bash
# Private network + mount namespace for tests that need DNS (SRV records) or
# several servers on the same well-known port (XMPP S2S on 5269).
#
#   netns_enter "$@"       FIRST line of a t_*.sh script, BEFORE lib.sh is sourced:
#                          . "$(dirname "$0")/netns.sh"; netns_enter "$@"
#                          . "$(dirname "$0")/lib.sh"
#                          Outside a namespace (PB_NETNS unset) it re-executes the
#                          script as `unshare --net --mount --fork --kill-child=TERM --
#                          env PB_NETNS=1 bash SCRIPT ARGS...` (prints "FAIL <script>:
#                          cannot create a network namespace ..." and exits 1 if
#                          unshare does not work, e.g. not root).  Inside (PB_NETNS=1)
#                          it brings lo up and makes every mount private.
#   netns_dns RECORD...    after lib.sh: a private resolver for this namespace only.
#                          Writes $T_DIR/etc/resolv.conf ("nameserver 127.0.0.1") and
#                          $T_DIR/etc/hosts (localhost, $(hostname) as 127.0.1.1, the
#                          host: records), bind-mounts them over /etc/resolv.conf and
#                          /etc/hosts (refused unless netns_inside), starts dnsmasq on
#                          127.0.0.1:53 through spawn (log $T_DIR/dnsmasq.log, every query
#                          logged; killed at exit) and waits until it answers.  Call it
#                          before starting servers (they read resolv.conf at start).
#                          E.g.  netns_dns host:xmpp.test=127.0.0.2 \
#                                    srv:_xmpp-server._tcp.xmpp.test=xmpp.test:5269
#   netns_inside           true if this shell runs in a namespace made by netns_enter:
#                          PB_NETNS=1, network and mount namespaces other than the ones
#                          netns_enter left (PB_NETNS_PARENT, set by it) and pid 1's, and
#                          no network interface but lo.  netns_enter (inside) and
#                          netns_dns refuse to do anything otherwise, so a stray
#                          PB_NETNS=1 in the environment can never touch the machine.
#
# RECORDs:
#   host:NAME=IP[,IP...]                           A/AAAA (+PTR) records, also in /etc/hosts
#   srv:_service._tcp.DOMAIN=TARGET:PORT[:PRIO[:WEIGHT]]   one SRV record (priority and
#                                                  weight default to 0); repeat for more
#   nosrv:_service._tcp.DOMAIN                     SRV with target "." (RFC 2782: the
#                                                  service is decidedly not available)
# Any other name gets NXDOMAIN (dnsmasq --local=/#/: nothing is forwarded anywhere).
#
# Outputs: NETNS_DNS_LOG (dnsmasq's log: "query[SRV] _xmpp-server._tcp.x.test from
# 127.0.0.1" / "config ... is <SRV>" lines), NETNS_DNS_PID.
#
# Facts (Debian 12, util-linux 2.38, dnsmasq 2.90):
#   - In a fresh network namespace lo is down; after `ip link set lo up` the whole of
#     127.0.0.0/8 is local, so 127.0.0.2, 127.0.0.3, ... can be bound without adding
#     addresses: every server can have its own address with the standard port 5269.
#     Nothing of this namespace is reachable from the machine's network (no other
#     interface exists), and the machine's /etc/hosts and /etc/resolv.conf are never
#     touched: the bind mounts exist only in our mount namespace.
#   - `--srv-host=_svc._tcp.domain` without a target makes dnsmasq answer an SRV record
#     "0 0 1 ." (target root), the RFC 2782 "no such service" record.
#   - Several --host-record lines for one name give several A records.
#   - Without upstream servers dnsmasq answers REFUSED for unknown names; --local=/#/
#     turns that into NXDOMAIN, which resolvers treat as final.
#   - unshare --fork ignores SIGTERM while it waits for its child (checked), and
#     without --kill-child the child outlives a SIGKILLed unshare.  run.sh's timeout
#     signals the whole process group, so the inner bash gets SIGTERM and cleans up;
#     --kill-child=TERM covers an unshare killed on its own.
#   - Nothing outside is reachable from the namespace (no route but lo): servers in
#     it can only talk to each other.
#   - `getent -s dns hosts NAME` asks DNS only (not /etc/hosts): used to see dnsmasq up.

# getent says 2 for "not found" (dnsmasq not answering yet), which wait_alive
# would read as "the process is gone": any failure is 1 here.
_netns_dns_answers() { getent -s dns hosts "$1" >/dev/null || return 1; }

netns_enter() {
	local me
	me=$(basename "$0" .sh)
	if [[ ${PB_NETNS:-} != 1 ]]; then
		local err
		if ! err=$(unshare --net --mount --fork -- true 2>&1); then
			printf 'FAIL %s: cannot create a network namespace (unshare --net --mount): %s\n' \
				"$me" "${err:-unshare failed}"
			exit 1
		fi
		# The namespaces we leave: inside, ours must differ from them (_netns_private).
		PB_NETNS_PARENT="$(readlink /proc/self/ns/net) $(readlink /proc/self/ns/mnt)"
		exec unshare --net --mount --fork --kill-child=TERM -- \
			env PB_NETNS=1 PB_NETNS_PARENT="$PB_NETNS_PARENT" bash "$0" "$@"
	fi
	# PB_NETNS=1 alone proves nothing (it may come from the caller's environment):
	# never bring interfaces up or change mounts unless this really is our namespace.
	if ! _netns_private; then
		printf 'FAIL %s: PB_NETNS=1 but this is not a private namespace made by netns_enter (refusing to touch the network or the mounts)\n' "$me"
		exit 1
	fi
	if ! ip link set lo up; then
		printf 'FAIL %s: ip link set lo up failed in the network namespace\n' "$me"
		exit 1
	fi
	if ! mount --make-rprivate /; then
		printf 'FAIL %s: mount --make-rprivate / failed in the mount namespace\n' "$me"
		exit 1
	fi
}

# _netns_private: this process runs in network and mount namespaces other than
# those netns_enter left (PB_NETNS_PARENT) and other than pid 1's (when readable),
# and the network namespace has no interface but lo.
_netns_private() {
	[[ ${PB_NETNS:-} == 1 && -n ${PB_NETNS_PARENT:-} ]] || return 1
	local ns id other
	for ns in net mnt; do
		id=$(readlink "/proc/self/ns/$ns" 2>/dev/null) || return 1
		[[ -n $id && " $PB_NETNS_PARENT " != *" $id "* ]] || return 1
		if other=$(readlink "/proc/1/ns/$ns" 2>/dev/null); then
			[[ $id != "$other" ]] || return 1
		fi
	done
	ip -o link show 2>/dev/null |
		awk -F': ' '{ n++; if ($2 != "lo") bad = 1 } END { exit (bad || n != 1) }'
}

netns_inside() { _netns_private; }

# _netns_dns_args RECORD... : dnsmasq arguments (one per line) and hosts lines
# ("hosts IP NAME") for the records; false on a bad record.
_netns_dns_args() {
	local r name val ip target port prio weight rest
	for r in "$@"; do
		case $r in
		host:*=*)
			name=${r#host:} name=${name%%=*} val=${r#*=}
			[[ -n $name && -n $val ]] || { echo "netns_dns: bad record '$r'" >&2; return 1; }
			for ip in ${val//,/ }; do
				printf -- '--host-record=%s,%s\n' "$name" "$ip"
				printf 'hosts %s %s\n' "$ip" "$name"
			done
			;;
		srv:*=*)
			name=${r#srv:} name=${name%%=*} val=${r#*=}
			IFS=: read -r target port prio weight rest <<<"$val"
			if [[ -z $name || -z $target || ! $port =~ ^[0-9]+$ || -n $rest ||
				! ${prio:-0} =~ ^[0-9]+$ || ! ${weight:-0} =~ ^[0-9]+$ ]]; then
				echo "netns_dns: bad record '$r' (srv:_svc._tcp.DOMAIN=TARGET:PORT[:PRIO[:WEIGHT]])" >&2
				return 1
			fi
			printf -- '--srv-host=%s,%s,%s,%s,%s\n' "$name" "$target" "$port" "${prio:-0}" "${weight:-0}"
			;;
		nosrv:?*)
			printf -- '--srv-host=%s\n' "${r#nosrv:}"
			;;
		*)
			echo "netns_dns: unknown record '$r' (host:NAME=IP, srv:NAME=TARGET:PORT, nosrv:NAME)" >&2
			return 1
			;;
		esac
	done
}

netns_dns() {
	if ! netns_inside; then
		die "netns_dns: not inside a private namespace (call netns_enter first); refusing to touch /etc/hosts and /etc/resolv.conf"
	fi
	need dnsmasq getent
	local lines=() l args=() etc=$T_DIR/etc first_host=""
	mapfile -t lines < <(_netns_dns_args "$@" || echo "ERROR")
	[[ ${lines[*]:-} != *ERROR* ]] || die "netns_dns: bad records: $*"
	mkdir -p "$etc"
	printf 'nameserver 127.0.0.1\n' >"$etc/resolv.conf"
	{
		printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
		# The machine's name (the UTS namespace is shared): Erlang and others look it up.
		printf '127.0.1.1\t%s\n' "$(hostname)"
		for l in "${lines[@]}"; do
			if [[ $l == hosts\ * ]]; then
				l=${l#hosts }
				printf '%s\t%s\n' "${l%% *}" "${l#* }"
				[[ -n $first_host ]] || first_host=${l#* }
			fi
		done
	} >"$etc/hosts"
	for l in "${lines[@]}"; do
		[[ $l == --* ]] && args+=("$l")
	done
	mount --bind "$etc/resolv.conf" /etc/resolv.conf || die "netns_dns: cannot bind-mount /etc/resolv.conf"
	mount --bind "$etc/hosts" /etc/hosts || die "netns_dns: cannot bind-mount /etc/hosts"

	NETNS_DNS_LOG=$T_DIR/dnsmasq.log
	# --no-daemon: stays in the foreground, keeps its user (root: port 53), forks
	# nothing for TCP queries, writes no pid file.
	spawn dnsmasq dnsmasq --no-daemon --no-resolv --no-hosts --conf-file=/dev/null --pid-file= \
		--listen-address=127.0.0.1 --bind-interfaces --port=53 \
		--local=/#/ --log-queries --log-facility=- "${args[@]}"
	NETNS_DNS_PID=$LAST_PID
	export NETNS_DNS_LOG NETNS_DNS_PID
	if [[ -n $first_host ]]; then
		wait_alive "$NETNS_DNS_PID" 10 _netns_dns_answers "$first_host" ||
			die "netns_dns: dnsmasq does not answer for $first_host (see $NETNS_DNS_LOG)"
	else
		wait_alive "$NETNS_DNS_PID" 10 port_listening 53 udp ||
			die "netns_dns: dnsmasq did not start (see $NETNS_DNS_LOG)"
	fi
	log "dnsmasq on 127.0.0.1:53: $*"
}
