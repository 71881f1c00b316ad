#!/bin/sh
# Install the Debian 12 packages presbridge needs: `deps.sh build` for building and
# unit tests, `deps.sh demo` adds the servers of the demo federation and the
# integration harness (ejabberd, Kamailio, SIPp, socat: packages-demo.txt),
# `deps.sh test` adds what only the tests need (fuzzing: packages-test.txt),
# `deps.sh bench` adds the profilers for bench/ (packages-bench.txt; bench/run.sh
# runs it).
# Nothing is installed when everything is already there.
#
# Servers installed here must never start as system services: the tests start
# private instances on free loopback ports. On a systemd host the units are masked
# before installing; everywhere a policy-rc.d refuses service starts for the
# duration of the install.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
lists="$here/packages-build.txt"
case ${1:-build} in
build) ;;
demo) lists="$lists $here/packages-demo.txt" ;;
test) lists="$lists $here/packages-demo.txt $here/packages-test.txt" ;;
bench) lists="$lists $here/packages-demo.txt $here/packages-bench.txt" ;;
*)
	echo "usage: deps.sh [build|demo|test|bench]" >&2
	exit 2
	;;
esac

# shellcheck disable=SC2002,SC2086 # the lists are one package a line
wanted=$(cat $lists 2>/dev/null | sed 's/#.*//' | tr -s ' \t\n' '\n' | sed '/^$/d' | sort -u)
missing=
for p in $wanted; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "deps: all $(echo "$wanted" | wc -l) packages present"
	exit 0
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing:$missing"

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	for unit in ejabberd.service kamailio.service prosody.service dnsmasq.service epmd.service epmd.socket; do
		$SUDO systemctl mask "$unit" >/dev/null 2>&1 || true
	done
fi
created_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	created_policy=1
fi
cleanup() { [ -z "$created_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq; then
	echo "deps: 'apt-get update' failed: check the network or /etc/apt/sources.list" >&2
	exit 1
fi
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y -qq --no-install-recommends $missing; then
	echo "deps: could not install:$missing" >&2
	echo "deps: run 'apt-get install$missing' by hand to see why" >&2
	exit 1
fi
# Debian starts epmd with ejabberd on some setups even with services masked.
echo "deps: done"
