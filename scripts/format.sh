#!/bin/sh
# Check (or with --fix, apply) clang-format on every C file we own.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src include tests bench -name '*.[ch]')
[ -n "$files" ] || exit 0
if [ "${1:-}" = --fix ]; then
	# shellcheck disable=SC2086
	clang-format -i $files
else
	# shellcheck disable=SC2086
	clang-format --dry-run --Werror $files
fi
