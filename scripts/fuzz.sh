#!/bin/bash
# Build the libFuzzer targets (fuzz/, clang, ASan+UBSan) into build-fuzz and run
# each for SECONDS (default 20; FUZZ_BUILD_DIR picks another build folder), seeded from the golden data the unit tests use.
# A crash leaves its input as build-fuzz/crash-* and fails the run: turn it into
# a regression test. Ends with "N passed, N failed", one per target.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-20}
bdir=${FUZZ_BUILD_DIR:-build-fuzz}
cd "$top" || exit 1
CC=clang cmake -S . -B "$bdir" -DPB_FUZZ=ON -DPB_TESTS=OFF -DPB_WERROR=ON >/dev/null &&
	cmake --build "$bdir" -j "$(nproc)" --target fuzz_pres fuzz_msg fuzz_sip fuzz_maps fuzz_xmpp fuzz_sipbridge >/dev/null ||
	{ echo "fuzz: build failed"; echo "0 passed, 1 failed"; exit 1; }

# target:seed folders
targets=(pres:tests/data/pres sip:tests/data/sip msg:tests/data/msg maps:mappings
	xmpp:tests/data/xmpp sipbridge:tests/data/sipbridge)
pass=0 fail=0
for t in "${targets[@]}"; do
	name=${t%%:*} seeds=${t#*:}
	corpus=$(mktemp -d)
	log=$bdir/fuzz_$name.log
	if (cd "$bdir" && ./"fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 "$corpus" "$top/$seeds") >"$log" 2>&1; then
		runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
		echo "PASS fuzz_$name: $runs executions in $secs s, no crash"
		pass=$((pass + 1))
	else
		echo "FAIL fuzz_$name: see $log"
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /'
		fail=$((fail + 1))
	fi
	rm -rf "$corpus"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
