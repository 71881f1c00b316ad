#!/bin/bash
# xdns (src/xmpp/xdns.c) against a real DNS server: dnsmasq on loopback serves SRV
# records (RFC 6120 section 3.2.1, XEP-0368), A/AAAA and NXDOMAIN, and
# xdns_query prints what one xdns_resolve gives. The resolver is named
# explicitly, so the system's resolver configuration is neither used nor touched.
#
# Env: XDNS_QUERY  the xdns_query binary (default $BUILD_DIR/tests/integration/xdns_query)
. "$(dirname "$0")/lib.sh"
need dnsmasq socat

XQ=${XDNS_QUERY:-$BUILD_DIR/tests/integration/xdns_query}
[[ -x $XQ ]] || die "$XQ missing: cmake --build $BUILD_DIR --target xdns_query"

P=$(free_port)
# --local=/test/: answer .test from these records alone (NXDOMAIN, NODATA);
# without it dnsmasq, having no upstream, answers REFUSED.
# --srv-host with no target publishes the target "." (checked below). dnsmasq
# rotates the records of a name from one answer to the next, so repeated
# queries show that the order of the targets is xdns's, not the answer's.
spawn dnsmasq dnsmasq --no-resolv --no-hosts --conf-file=/dev/null \
	--keep-in-foreground --listen-address=127.0.0.1 --bind-interfaces \
	--port="$P" --pid-file= --local=/test/ \
	--srv-host=_xmpp-server._tcp.two.test,xmpp1.two.test,5269,10,0 \
	--srv-host=_xmpp-server._tcp.two.test,xmpp2.two.test,5270,20,0 \
	--host-record=xmpp1.two.test,127.0.0.11 \
	--host-record=xmpp2.two.test,::12 \
	--srv-host=_xmpps-server._tcp.both.test,tls.both.test,5223,5,0 \
	--srv-host=_xmpp-server._tcp.both.test,plain.both.test,5269,10,0 \
	--host-record=tls.both.test,127.0.0.21 \
	--host-record=plain.both.test,127.0.0.22 \
	--srv-host=_xmpps-server._tcp.mixed.test,tls.mixed.test,5223,20,0 \
	--srv-host=_xmpp-server._tcp.mixed.test,plain.mixed.test,5269,10,0 \
	--host-record=tls.mixed.test,127.0.0.23 \
	--host-record=plain.mixed.test,127.0.0.24 \
	--srv-host=_xmpp-server._tcp.w.test,heavy.w.test,5270,10,65535 \
	--srv-host=_xmpp-server._tcp.w.test,zero.w.test,5269,10,0 \
	--host-record=zero.w.test,127.0.0.25 \
	--host-record=heavy.w.test,127.0.0.26 \
	--host-record=plain.test,127.0.0.30,::30 \
	--srv-host=_xmpp-server._tcp.none.test \
	--host-record=none.test,127.0.0.40 \
	--srv-host=_xmpps-server._tcp.notls.test \
	--host-record=notls.test,127.0.0.50 \
	--srv-host=_xmpp-server._tcp.dangling.test,gone.dangling.test,5269,0,0
DNSMASQ=$LAST_PID
wait_port 127.0.0.1 "$P" 10 udp || die "dnsmasq did not start on 127.0.0.1:$P"

# xq NAME SERVERS DOMAIN [ARGS...]: run xdns_query, output in $T_DIR/NAME.out
xq() {
	local name=$1
	shift
	"$XQ" "$@" >"$T_DIR/$name.out" 2>"$T_DIR/$name.err"
}

# same NAME: the status and target lines of NAME.out are exactly stdin
same() {
	local want got
	want=$(cat)
	got=$(grep -E '^(status|target) ' "$T_DIR/$1.out")
	if [[ $got == "$want" ]]; then
		return 0
	fi
	printf 'got:\n%s\nwant:\n%s\nfull output:\n' "$got" "$want" >&2
	cat "$T_DIR/$1.out" >&2
	return 1
}

# has NAME REGEX: NAME.out has a line matching REGEX
has() {
	grep -Eq -- "$2" "$T_DIR/$1.out" || {
		echo "no line matching '$2' in:" >&2
		cat "$T_DIR/$1.out" >&2
		return 1
	}
}

S=127.0.0.1:$P

# repeat N NAME CHECK FIRST_SRV: run CHECK NAME1..NAME<N> (each makes its own
# query) and require that some answer listed FIRST_SRV first, i.e. that the
# order of the targets is not simply the answer's.
repeat() {
	local n=$1 name=$2 fn=$3 first=$4 i seen=0
	for ((i = 1; i <= n; i++)); do
		"$fn" "$name$i" || return 1
		[[ $(grep -m1 '^srv ' "$T_DIR/$name$i.out") == "$first" ]] && seen=1
	done
	((seen)) || { echo "no answer listed '$first' first in $n queries" >&2; return 1; }
}

# RFC 6120 section 3.2.1 steps 4-7: lower priority first, whatever order the
# answer holds; each target's A and AAAA records.
two_ok() {
	xq "$1" "$S" two.test && same "$1" <<'EOF'
status 0 ok
target xmpp1.two.test 127.0.0.11 5269 starttls srv
target xmpp2.two.test ::12 5270 starttls srv
EOF
}
check "two SRV records: priority 10 before 20 (AAAA-only target), 6 queries" \
	repeat 6 two two_ok "srv _xmpp-server._tcp 20 0 5270 xmpp2.two.test"
check "two: both SRV records reported" has two1 '^srv _xmpp-server._tcp 10 0 5269 xmpp1.two.test$'
check "two: _xmpps-server NXDOMAIN said in why" has two1 '^why _xmpps-server._tcp.two.test: no such name'

# XEP-0368 section 3: _xmpps-server records are direct TLS, mixed by priority.
xq both "$S" both.test
check "xmpps (prio 5) and xmpp (prio 10): direct TLS first" same both <<'EOF'
status 0 ok
target tls.both.test 127.0.0.21 5223 tls srv
target plain.both.test 127.0.0.22 5269 starttls srv
EOF
xq mixed "$S" mixed.test
check "xmpp (prio 10) before xmpps (prio 20): one set, not xmpps first" same mixed <<'EOF'
status 0 ok
target plain.mixed.test 127.0.0.24 5269 starttls srv
target tls.mixed.test 127.0.0.23 5223 tls srv
EOF
xq nodirect "$S" both.test --no-direct
check "--no-direct: _xmpps-server not asked" same nodirect <<'EOF'
status 0 ok
target plain.both.test 127.0.0.22 5269 starttls srv
EOF
check "--no-direct: no xmpps line" bash -c "! grep -q xmpps '$T_DIR/nodirect.out'"

# RFC 2782 weights: within a priority a weight-0 record comes first only when the
# random number is 0 (here 1 in 65536), also when the answer lists it first.
heavy_first() {
	xq "$1" "$S" w.test || return 1
	[[ $(grep -m1 '^target ' "$T_DIR/$1.out") == "target heavy.w.test 127.0.0.26 5270 starttls srv" ]] ||
		{ cat "$T_DIR/$1.out" >&2; return 1; }
}
check "weight 65535 before weight 0 within a priority, 6 queries" \
	repeat 6 w heavy_first "srv _xmpp-server._tcp 10 0 5269 zero.w.test"

# RFC 6120 section 3.2.2: no SRV records: the domain's A and AAAA on 5269.
xq plain "$S" plain.test
check "no SRV: fallback to A and AAAA on 5269" has plain '^status 0 ok$'
check "fallback: IPv4 target" has plain '^target plain.test 127.0.0.30 5269 starttls fallback$'
check "fallback: IPv6 target" has plain '^target plain.test ::30 5269 starttls fallback$'
check "fallback: exactly two targets" test "$(grep -c '^target ' "$T_DIR/plain.out")" = 2

# RFC 6120 section 3.2.1 step 3: a single "." target: no service, and no
# fallback although none.test has an A record.
xq none "$S" none.test
check "dnsmasq: --srv-host without target publishes \".\"" has none '^srv _xmpp-server._tcp [0-9]+ [0-9]+ [0-9]+ \.$'
check "target \".\": EHOSTUNREACH, no fallback" same none <<'EOF'
status -113 EHOSTUNREACH
EOF

# XEP-0368 section 5: "." on _xmpps-server, nothing on _xmpp-server: no fallback.
xq notls "$S" notls.test
check "xmpps \".\" and no xmpp records: ENOENT, no A/AAAA fallback" same notls <<'EOF'
status -2 ENOENT
EOF
check "notls: why names the rule" has notls 'forbids the A/AAAA fallback'

xq nx "$S" nx.test
check "nonexistent domain: ENOENT after SRV and A/AAAA" same nx <<'EOF'
status -2 ENOENT
EOF
check "nx: the fallback lookup said in why" has nx 'nx.test: no such name'

xq dangling "$S" dangling.test
check "SRV target without address: ENOENT, no fallback (RFC 6120 3.2.1 step 8)" same dangling <<'EOF'
status -2 ENOENT
EOF
check "dangling: why names the target" has dangling 'gone.dangling.test: no such name'

# Resolver failures are reported, not taken for "no records".
Q=$(free_port)
spawn silent socat -u "UDP-RECV:$Q,bind=127.0.0.1" /dev/null
wait_port 127.0.0.1 "$Q" 10 udp || die "socat did not bind 127.0.0.1:$Q"
timed_out() {
	local t0=${EPOCHREALTIME/[.,]/} t1
	xq silent "127.0.0.1:$Q" plain.test --timeout 700 || return 1
	t1=${EPOCHREALTIME/[.,]/}
	same silent <<<"status -110 ETIMEDOUT" || return 1
	(((t1 - t0) >= 650000 && (t1 - t0) < 3000000)) ||
		{ echo "took $(((t1 - t0) / 1000)) ms" >&2; return 1; }
}
check "silent DNS server: ETIMEDOUT at the bound (700 ms), no fallback" timed_out

R=$(free_port)
refused() {
	local t0=${EPOCHREALTIME/[.,]/} t1
	xq refused "127.0.0.1:$R" plain.test || return 1
	t1=${EPOCHREALTIME/[.,]/}
	same refused <<<"status -5 EIO" || return 1
	(((t1 - t0) < 3000000)) || { echo "took $(((t1 - t0) / 1000)) ms" >&2; return 1; }
}
check "no DNS server on the port: EIO at once" refused

check "xdns_query: nothing on stderr" bash -c "! cat '$T_DIR'/*.err | grep -q ."
check "dnsmasq still running" alive "$DNSMASQ"

snap=$(snapshot_procs)
stop_all
# shellcheck disable=SC2086
check_nothing_left $snap
finish
