#!/bin/bash
# The test command (README, and what .ci/run calls): installs what is missing,
# builds with -Werror, then runs
#   1. the formatting check (clang-format),
#   2. unit and golden tests (ctest),
#   3. the same unit tests built with AddressSanitizer + UndefinedBehaviorSanitizer,
#   4. the integration suite: real ejabberd, Kamailio and SIPp on loopback ports,
#   5. the bridge's end-to-end suites again with the ASan+UBSan daemon,
#   6. 20 s of libFuzzer on each parser that takes peer input,
#   7. the benchmark once at a tiny size (bench/run.sh --quick): it only proves
#      the load tools and every measured path still work; its figures mean nothing.
# It ends with one line "N passed, N failed" that sums every stage.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
start=$(date +%s)

passed=0
failed=0
failures=()

# Run one stage; add the counts its runner reports, or count the stage itself.
stage() {
	local name=$1
	shift
	echo
	echo "=== $name"
	local log
	log=$(mktemp)
	"$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	local p f
	# ctest: "100% tests passed, 0 tests failed out of 12"
	if read -r p f < <(sed -nE 's/^[0-9]+% tests passed, ([0-9]+) tests? failed out of ([0-9]+)$/\2 \1/p' "$log" | tail -n1) && [ -n "$p" ]; then
		p=$((p - f))
	# our runners: "N passed, N failed"
	elif read -r p f < <(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed.*$/\1 \2/p' "$log" | tail -n1) && [ -n "$p" ]; then
		:
	elif [ "$rc" -eq 0 ]; then
		p=1 f=0
	else
		p=0 f=1
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -eq 0 ] || failures+=("$name")
	rm -f "$log"
	return "$rc"
}

if ! scripts/deps.sh test; then
	echo "0 passed, 1 failed"
	exit 1
fi

if ! stage "build (-Werror)" scripts/build.sh build; then
	echo
	echo "build failed; nothing else can run"
	echo "$passed passed, $((failed)) failed"
	exit 1
fi
stage "format (clang-format)" scripts/format.sh
stage "unit and golden tests" ctest --test-dir build --output-on-failure
if stage "build (ASan+UBSan)" scripts/build.sh build-asan -DPB_SANITIZE=ON; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		stage "unit tests under ASan+UBSan" ctest --test-dir build-asan --output-on-failure
fi
BUILD_DIR="$top/build" stage "integration (ejabberd, Prosody, Kamailio, SIPp; S2S in network namespaces)" tests/integration/run.sh
# A short fuzzing pass over every parser that takes peer input (libFuzzer).
stage "fuzz (libFuzzer, 20 s per target)" scripts/fuzz.sh 20
# The bridge's end-to-end suites and the probe once more against the sanitized
# daemon: every path a peer can drive, with leaks counted at each graceful exit.
if [ -x build-asan/presbridge ]; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		BUILD_DIR="$top/build-asan" stage "bridge end to end and --probe under ASan+UBSan" \
		tests/integration/run.sh bridge probe s2s_ejabberd s2s_prosody sip_torture control systemd pool
fi
# The benchmark at a tiny size (its own Release build in build-bench), so bench/
# cannot rot.
stage "benchmark, tiny (bench/run.sh --quick)" bench/run.sh --quick

echo
echo "=== summary ($(($(date +%s) - start)) s)"
for f in "${failures[@]}"; do
	echo "failed stage: $f"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
