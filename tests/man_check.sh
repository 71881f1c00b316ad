#!/bin/sh
# Lint every man page under DIR (default: the repository's man/): groff in mdoc
# mode with all warnings must print nothing, the .Dt line must name the file, and
# every .Xr to a presbridge page must point at a page that exists.
set -u
dir=${1:-$(cd "$(dirname "$0")/.." && pwd)/man}
command -v groff >/dev/null || { echo "man_check: groff is missing (package groff-base)"; exit 1; }
fail=0
n=0
for page in "$dir"/*.[1-9]; do
	[ -e "$page" ] || continue
	n=$((n + 1))
	base=$(basename "$page")
	name=${base%.*}
	sec=${base##*.}
	out=$(groff -mdoc -ww -z -Tutf8 "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "FAIL $base: groff warnings:"
		echo "$out" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
	dt=$(sed -n 's/^\.Dt \([^ ]*\) \([0-9]\).*/\1 \2/p' "$page")
	want="$(echo "$name" | tr '[:lower:]' '[:upper:]') $sec"
	if [ "$dt" != "$want" ]; then
		echo "FAIL $base: .Dt says '$dt', expected '$want'"
		fail=$((fail + 1))
	fi
	sed -n 's/^\.Xr \(presbridge[^ ]*\) \([0-9]\).*/\1.\2/p' "$page" | while read -r ref; do
		[ -e "$dir/$ref" ] || echo "FAIL $base: .Xr $ref names no page in $dir"
	done | grep . && fail=$((fail + 1))
done
[ "$n" -gt 0 ] || { echo "man_check: no pages in $dir"; exit 1; }
echo "man_check: $n pages, $fail problems"
[ "$fail" -eq 0 ]
