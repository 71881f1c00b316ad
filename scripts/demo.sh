#!/bin/sh
# The main job (README command one): install, build, and run presbridge on the
# example federation. This release checks the example configuration, mappings
# and certificates (`presbridge -n`); the live demo federation (ejabberd, a SIP
# peer and the bridge, presence and messages crossing) arrives with the SIP and
# XMPP legs.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh build
scripts/build.sh build
echo
build/presbridge -V
echo "$ presbridge -c examples/presbridge.conf -n"
build/presbridge -c examples/presbridge.conf -n
