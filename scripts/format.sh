#!/bin/sh
# Check (or with --fix, apply) clang-format on every C file we own. Works in a
# git checkout (tracked files) and in an unpacked tarball (every C file under
# the source folders).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if command -v git >/dev/null 2>&1 && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	files=$(git ls-files '*.c' '*.h')
else
	dirs=
	for d in src include tests bench; do
		[ -d "$d" ] && dirs="$dirs $d"
	done
	# shellcheck disable=SC2086
	files=$(find $dirs -name '*.[ch]' | sort)
fi
[ -n "$files" ] || exit 0
if [ "${1:-}" = --fix ]; then
	# shellcheck disable=SC2086
	clang-format -i $files
else
	# shellcheck disable=SC2086
	clang-format --dry-run --Werror $files
	echo "format: $(echo "$files" | wc -l) files clean"
fi
