#!/bin/sh
# Configure and build presbridge into DIR (default: build). Extra arguments go to
# cmake's configure step, e.g. -DPB_SANITIZE=ON.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build}
[ $# -gt 0 ] && shift
cmake -S "$top" -B "$top/$dir" -DPB_WERROR=ON "$@" >/dev/null
cmake --build "$top/$dir" -j "$(nproc)"
