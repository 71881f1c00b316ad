# shellcheck shell=bash
# The bridge's configuration for the benchmark's tools (bench/run.sh and
# scripts/soak.sh -D bench): one trusted Lync peer (loadgen) over TCP, the sink
# as XMPP server without TLS, the state in a file, no subscription limits.
#   bench_bridge_conf TOP SIP_PORT XMPP_PORT PEER_PORT  (on stdout)
bench_bridge_conf() {
	cat <<EOF_CONF
[bridge]
state = state/presbridge.db
mappings = $1/mappings
log_level = warn
max_subscriptions = 0
max_subscriptions_per_user = 0

[sip]
listen = tcp:127.0.0.1:$2

[xmpp]
server = 127.0.0.1:$3
secret = bench-secret
tls = off

[peer lync]
host = lync.sip.test
address = 127.0.0.1:$4
transport = tcp
domains = sip.test
trusted = yes
im = page
EOF_CONF
}
