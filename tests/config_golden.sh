#!/bin/sh
# Golden tests for `presbridge -n`: every folder under DIR holds presbridge.conf and
# `expected`, whose first line is "exit N" and the rest the exact output. The
# binary runs from inside the folder so the paths it prints are stable.
# Set UPDATE=1 to rewrite the expected files (then review the diff by hand).
set -u
bin=$1
dir=$2
pass=0
fail=0
for case in "$dir"/*/; do
	name=$(basename "$case")
	[ -f "$case/presbridge.conf" ] || [ -f "$case/args" ] || continue
	args="-c presbridge.conf -n"
	[ -f "$case/args" ] && args=$(cat "$case/args")
	# shellcheck disable=SC2086 # args is a word list by design
	out=$(cd "$case" && "$bin" $args 2>&1)
	rc=$?
	got=$(printf 'exit %s\n%s' "$rc" "$out")
	if [ "${UPDATE:-0}" = 1 ]; then
		printf '%s\n' "$got" >"$case/expected"
	fi
	want=$(cat "$case/expected" 2>/dev/null)
	if [ "$got" = "$want" ]; then
		pass=$((pass + 1))
		echo "PASS $name"
	else
		fail=$((fail + 1))
		echo "FAIL $name"
		printf '%s\n' "$want" >"${TMPDIR:-/tmp}/golden.want.$$"
		printf '%s\n' "$got" | diff -u "${TMPDIR:-/tmp}/golden.want.$$" - | sed 's/^/    /'
		rm -f "${TMPDIR:-/tmp}/golden.want.$$"
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
