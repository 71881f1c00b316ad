#!/bin/bash
# Test certificate authority for the integration tests (OpenSSL 3.0, Debian 12).
#
#   ca.sh init DIR
#       DIR/ca.crt, DIR/ca.key              the test CA ("presbridge test CA")
#       DIR/rogue-ca.crt, DIR/rogue-ca.key  an unrelated CA nobody trusts
#
#   ca.sh issue DIR NAME [--dns a,b] [--ip 127.0.0.1,...] [--cn CN]
#                        [--eku serverAuth,clientAuth|serverAuth|clientAuth|none]
#                        [--days N | --expired | --not-yet-valid] [--ca rogue]
#       DIR/NAME.key        RSA 2048, unencrypted PEM
#       DIR/NAME.crt        the certificate
#       DIR/NAME.chain.crt  certificate followed by its issuing CA
#       DIR/NAME.pem        key + certificate + CA (for ejabberd, socat, stunnel)
#     --dns     subjectAltName DNS entries; the first one is also the CN
#               (without --dns and --cn the CN is NAME; no --dns/--ip: no SAN at all)
#     --cn      subject CN (default: first --dns name, else NAME)
#     --eku     extendedKeyUsage (default serverAuth,clientAuth); "none" leaves the
#               extension out entirely
#     --days    validity from now (default 825)
#     --expired valid 2020-01-01 .. 2021-01-01: really expired
#     --not-yet-valid  valid from 2099
#     --ca      signing CA: "ca" (default) or "rogue"
#
# `openssl x509 -req` on OpenSSL 3.0 cannot set arbitrary validity dates (no
# -not_before/-not_after before 3.4), so every leaf is signed with `openssl ca`
# and a minimal per-CA config, which takes -startdate/-enddate.
set -euo pipefail

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//; /^set -euo/d' >&2
	exit 2
}

ca_conf() { # ca_conf CADIR -> writes CADIR/ca.cnf
	local d=$1
	cat >"$d/ca.cnf" <<EOF
[ ca ]
default_ca = test_ca

[ test_ca ]
dir              = $d
database         = \$dir/index.txt
new_certs_dir    = \$dir/newcerts
serial           = \$dir/serial
certificate      = \$dir/ca.crt
private_key      = \$dir/ca.key
default_md       = sha256
default_days     = 825
policy           = policy_any
unique_subject   = no
copy_extensions  = none
email_in_dn      = no
preserve         = yes

[ policy_any ]
organizationName = optional
commonName       = supplied
EOF
}

make_ca() { # make_ca CADIR CN
	local d=$1 cn=$2
	mkdir -p "$d/newcerts"
	: >"$d/index.txt"
	printf '1000\n' >"$d/serial"
	ca_conf "$d"
	openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 \
		-keyout "$d/ca.key" -out "$d/ca.crt" -subj "/O=presbridge tests/CN=$cn" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

cmd_init() {
	local dir=$1
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	make_ca "$dir/.ca" "presbridge test CA"
	make_ca "$dir/.rogue" "rogue test CA"
	cp "$dir/.ca/ca.crt" "$dir/ca.crt"
	cp "$dir/.ca/ca.key" "$dir/ca.key"
	cp "$dir/.rogue/ca.crt" "$dir/rogue-ca.crt"
	cp "$dir/.rogue/ca.key" "$dir/rogue-ca.key"
}

cmd_issue() {
	local dir=$1 name=$2
	shift 2
	local dns="" ips="" cn="" eku="serverAuth,clientAuth" days=825 expired=0 future=0 which=ca
	while (($#)); do
		case $1 in
		--dns) dns=$2; shift 2 ;;
		--ip) ips=$2; shift 2 ;;
		--cn) cn=$2; shift 2 ;;
		--eku) eku=$2; shift 2 ;;
		--days) days=$2; shift 2 ;;
		--expired) expired=1; shift ;;
		--not-yet-valid) future=1; shift ;;
		--ca) which=$2; shift 2 ;;
		*) echo "ca.sh issue: unknown option $1" >&2; usage ;;
		esac
	done
	dir=$(cd "$dir" && pwd)
	local cadir
	case $which in
	ca) cadir=$dir/.ca ;;
	rogue) cadir=$dir/.rogue ;;
	*) echo "ca.sh: --ca must be ca or rogue" >&2; exit 2 ;;
	esac
	[[ -f $cadir/ca.crt ]] || { echo "ca.sh: run 'ca.sh init $dir' first" >&2; exit 1; }
	if [[ -z $cn ]]; then
		if [[ -n $dns ]]; then cn=${dns%%,*}; else cn=$name; fi
	fi

	local work
	work=$(mktemp -d "$dir/.issue-$name.XXXXXX")
	local ext=$work/ext.cnf
	{
		echo "[ leaf ]"
		echo "basicConstraints = critical,CA:FALSE"
		echo "keyUsage = critical,digitalSignature,keyEncipherment"
		echo "subjectKeyIdentifier = hash"
		echo "authorityKeyIdentifier = keyid"
		if [[ $eku != none ]]; then echo "extendedKeyUsage = $eku"; fi
		local san="" x
		if [[ -n $dns ]]; then
			for x in ${dns//,/ }; do san+="${san:+,}DNS:$x"; done
		fi
		if [[ -n $ips ]]; then
			for x in ${ips//,/ }; do san+="${san:+,}IP:$x"; done
		fi
		if [[ -n $san ]]; then echo "subjectAltName = $san"; fi
	} >"$ext"

	openssl req -new -nodes -newkey rsa:2048 -sha256 -keyout "$work/key" \
		-out "$work/csr" -subj "/O=presbridge tests/CN=$cn" 2>/dev/null
	local validity=(-days "$days")
	if ((expired)); then
		validity=(-startdate 20200101000000Z -enddate 20210101000000Z)
	elif ((future)); then
		validity=(-startdate 20990101000000Z -enddate 20991231000000Z)
	fi
	if ! openssl ca -batch -notext -config "$cadir/ca.cnf" -extfile "$ext" \
		-extensions leaf "${validity[@]}" -in "$work/csr" -out "$work/crt" \
		>"$work/ca.log" 2>&1; then
		cat "$work/ca.log" >&2
		rm -rf "$work"
		exit 1
	fi
	install -m 600 "$work/key" "$dir/$name.key"
	install -m 644 "$work/crt" "$dir/$name.crt"
	cat "$dir/$name.crt" "$cadir/ca.crt" >"$dir/$name.chain.crt"
	cat "$dir/$name.key" "$dir/$name.crt" "$cadir/ca.crt" >"$dir/$name.pem"
	chmod 600 "$dir/$name.pem"
	rm -rf "$work"
}

(($# >= 2)) || usage
case $1 in
init) cmd_init "$2" ;;
issue) (($# >= 3)) || usage; shift; cmd_issue "$@" ;;
*) usage ;;
esac
