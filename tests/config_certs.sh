#!/bin/bash
# `presbridge -n` certificate checks: each case issues the bridge a certificate
# with one flaw (tests/integration/ca.sh) and asserts the exit status and the
# file:line message that names the cause and the fix.
set -u
bin=$1
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ca="$top/tests/integration/ca.sh"
"$ca" init "$dir" >/dev/null 2>&1 || { echo "cannot create a test CA (openssl?)"; exit 1; }
issue() { "$ca" issue "$dir" "$@" >/dev/null 2>&1; }
issue good --dns bridge.xmpp.test
issue noclient --dns bridge.xmpp.test --eku serverAuth
issue noserver --dns bridge.xmpp.test --eku clientAuth
issue expired --dns bridge.xmpp.test --expired
issue future --dns bridge.xmpp.test --not-yet-valid
issue soon --dns bridge.xmpp.test --days 10
issue rogue --dns bridge.xmpp.test --ca rogue
issue other --dns other.xmpp.test
issue cnonly --cn bridge.xmpp.test
issue s2s --dns sip.test
issue s2snoclient --dns sip.test --eku serverAuth
printf 'not a certificate\n' >"$dir/empty.crt"

conf() { # conf NAME CERT KEY CA
	cat >"$dir/$1.conf" <<EOF
[bridge]
state = :memory:
mappings = $top/mappings
[sip]
listen = tls:127.0.0.1:5061
cert = $2
key = $3
ca = $4
[xmpp]
server = 127.0.0.1:5275
secret = long-enough-secret
tls = ${XMPP_TLS:-off}
${XMPP_CA:+ca = $XMPP_CA}
[peer lync]
host = ${PEER_HOST:-lync01.sip.test}
domains = sip.test
EOF
}

# [xmpp] transport = s2s with [s2s] cert/key (line 13/14): the certificate
# peers see for the hosted domain sip.test (RFC 6125 DNS-ID; both EKUs).
conf_s2s() { # conf_s2s NAME S2S-CERT S2S-KEY
	cat >"$dir/$1.conf" <<EOF
[bridge]
state = :memory:
mappings = $top/mappings
[sip]
listen = tls:127.0.0.1:5061
cert = $dir/good.crt
key = $dir/good.key
ca = $dir/ca.crt
[xmpp]
transport = s2s
[s2s]
listen = 127.0.0.1
cert = $2
key = $3
dialback_secret = a-long-enough-dialback-secret
[peer lync]
host = lync01.sip.test
domains = sip.test
EOF
}

pass=0
fail=0
# case NAME EXIT REGEX CERT KEY CA
case_() {
	local name=$1 want=$2 re=$3
	if [[ $name == s2s-* ]]; then
		conf_s2s "$name" "$4" "$5"
	else
		conf "$name" "$4" "$5" "$6"
	fi
	local out rc=0
	out=$("$bin" -c "$dir/$name.conf" -n 2>&1) || rc=$?
	if [[ $rc -eq $want ]] && grep -Eq -- "$re" <<<"$out"; then
		pass=$((pass + 1))
		echo "PASS $name"
	else
		fail=$((fail + 1))
		echo "FAIL $name: exit $rc (want $want), output:"
		sed 's/^/    /' <<<"$out"
	fi
}

D=$dir
case_ good 0 '^configuration OK$' "$D/good.crt" "$D/good.key" "$D/ca.crt"
case_ no-clientauth 1 '\.conf:6: error: cert: .* lacks the clientAuth EKU: Lync/SfB refuses it when the bridge connects \(TLS alert 43' \
	"$D/noclient.crt" "$D/noclient.key" "$D/ca.crt"
case_ no-serverauth 1 '\.conf:6: error: cert: .* lacks the serverAuth EKU' \
	"$D/noserver.crt" "$D/noserver.key" "$D/ca.crt"
case_ expired 1 '\.conf:6: error: cert: .* has expired: .*alert 45' \
	"$D/expired.crt" "$D/expired.key" "$D/ca.crt"
case_ not-yet-valid 1 '\.conf:6: error: cert: .* is not valid yet' \
	"$D/future.crt" "$D/future.key" "$D/ca.crt"
case_ expires-soon 0 '\.conf:6: warning: cert: .* expires in [0-9]+ days' \
	"$D/soon.crt" "$D/soon.key" "$D/ca.crt"
case_ unknown-ca 1 '\.conf:6: error: cert: .* does not chain to a CA in \[sip\] ca' \
	"$D/rogue.crt" "$D/rogue.key" "$D/ca.crt"
case_ key-mismatch 1 '\.conf:7: error: key: .* does not belong to the certificate' \
	"$D/good.crt" "$D/other.key" "$D/ca.crt"
case_ not-a-key 1 '\.conf:7: error: key: .* holds no unencrypted PEM private key' \
	"$D/good.crt" "$D/good.crt" "$D/ca.crt"
case_ not-a-cert 1 '\.conf:6: error: cert: .* holds no PEM certificate' \
	"$D/empty.crt" "$D/good.key" "$D/ca.crt"
case_ empty-ca 1 '\.conf:8: error: ca: .* holds no PEM certificate' \
	"$D/good.crt" "$D/good.key" "$D/empty.crt"
case_ cn-only 0 '\.conf:6: warning: cert: .* carries its name bridge.xmpp.test in the CN only: Lync/SfB matches a static route.s destination against subjectAltName' \
	"$D/cnonly.crt" "$D/cnonly.key" "$D/ca.crt"
PEER_HOST=127.0.0.1 case_ peer-host-ip 1 '\.conf:15: error: \[peer lync\] host .127.0.0.1. is an IP address: SIP certificates name servers by DNS name' \
	"$D/good.crt" "$D/good.key" "$D/ca.crt"
XMPP_TLS=direct XMPP_CA=$D/ca.crt case_ xmpp-no-name 0 '\.conf:10: warning: \[xmpp\] has no name: the server.s certificate must then carry the address 127.0.0.1' \
	"$D/good.crt" "$D/good.key" "$D/ca.crt"
case_ s2s-good 0 '^configuration OK$' "$D/s2s.crt" "$D/s2s.key"
case_ s2s-no-dns-san 1 '\.conf:13: error: \[s2s\] cert: .* does not name the hosted domain sip\.test with a DNS subjectAltName \(it names DNS:bridge\.xmpp\.test\)' \
	"$D/good.crt" "$D/good.key"
case_ s2s-no-clientauth 1 '\.conf:13: error: \[s2s\] cert: .* lacks the clientAuth EKU: peers refuse SASL EXTERNAL' \
	"$D/s2snoclient.crt" "$D/s2snoclient.key"
case_ s2s-key-mismatch 1 '\.conf:14: error: \[s2s\] key: .* does not belong to the certificate' \
	"$D/s2s.crt" "$D/good.key"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
