#!/bin/sh
# Configure and build presbridge into DIR (default: build; relative to the
# repository unless absolute). Extra arguments go to cmake's configure step,
# e.g. -DPB_SANITIZE=ON.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build}
[ $# -gt 0 ] && shift
case $dir in
/*) ;;
*) dir=$top/$dir ;;
esac
cmake -S "$top" -B "$dir" -DPB_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
