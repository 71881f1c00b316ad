#!/bin/bash
# Run the integration tests: every tests/integration/t_*.sh (or only those whose
# name contains one of the arguments), one after the other.
#
#   BUILD_DIR=build tests/integration/run.sh [NAME...]
#
# Env: BUILD_DIR  build folder (default "build"; xmppc is $BUILD_DIR/tests/integration/xmppc,
#                 brought up to date with `cmake --build $BUILD_DIR --target xmppc`)
#      XMPPC      use this xmppc binary instead (nothing is built)
#      IT_TIMEOUT seconds allowed per test script (default 300)
#      KEEP=1     keep each test's scratch folder;  SHOW_LOGS=1  always show server logs
#
# Every check prints "PASS name" or "FAIL name: reason"; a script that fails
# without printing a FAIL line counts as one failed check.  The last line is
# "N passed, N failed" (checks), and the exit status is 1 if anything failed.
set -uo pipefail

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$IT_DIR/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
if [[ $BUILD_DIR != /* ]]; then
	if [[ -d $PWD/$BUILD_DIR ]]; then
		BUILD_DIR=$PWD/$BUILD_DIR
	else
		BUILD_DIR=$REPO_DIR/$BUILD_DIR
	fi
fi
export BUILD_DIR

# Bring xmppc up to date (a no-op when it is); a failure shows up in t_smoke.
if [[ -z ${XMPPC:-} && -f $BUILD_DIR/CMakeCache.txt ]]; then
	cmake --build "$BUILD_DIR" --target xmppc >"${TMPDIR:-/tmp}/presbridge-xmppc-build.$$.log" 2>&1 ||
		cat "${TMPDIR:-/tmp}/presbridge-xmppc-build.$$.log" >&2
	rm -f "${TMPDIR:-/tmp}/presbridge-xmppc-build.$$.log"
fi

tests=()
for t in "$IT_DIR"/t_*.sh; do
	[[ -f $t ]] || continue
	name=$(basename "$t" .sh)
	if (($#)); then
		sel=0
		for pat in "$@"; do
			[[ $name == *"$pat"* ]] && sel=1
		done
		((sel)) || continue
	fi
	tests+=("$t")
done

passed=0
failed=0
start_all=$SECONDS
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	echo "== $name" >&2
	out=$(mktemp "${TMPDIR:-/tmp}/presbridge-run.XXXXXX")
	t0=${EPOCHREALTIME/[.,]/}
	rc=0
	timeout -k 15 "${IT_TIMEOUT:-300}" bash "$t" </dev/null 2>&1 | tee "$out" || rc=${PIPESTATUS[0]}
	t1=${EPOCHREALTIME/[.,]/}
	p=$(grep -c '^PASS ' "$out")
	f=$(grep -c '^FAIL ' "$out")
	if ((rc != 0 && f == 0)); then
		if ((rc == 124 || rc == 137)); then
			echo "FAIL $name: timed out after ${IT_TIMEOUT:-300}s"
		else
			echo "FAIL $name: exited with status $rc"
		fi
		f=1
	fi
	rm -f "$out"
	passed=$((passed + p))
	failed=$((failed + f))
	printf '== %s: %d passed, %d failed (%d.%01ds)\n' "$name" "$p" "$f" \
		$(((t1 - t0) / 1000000)) $((((t1 - t0) / 100000) % 10)) >&2
done
if ((${#tests[@]} == 0)); then
	echo "FAIL run.sh: no test matched" >&2
	failed=1
fi
echo "== ${#tests[@]} script(s) in $((SECONDS - start_all))s" >&2
echo "$passed passed, $failed failed"
((failed == 0))
