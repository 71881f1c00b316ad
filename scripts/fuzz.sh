#!/bin/bash
# Build the libFuzzer targets (fuzz/, clang, ASan+UBSan) into build-fuzz and run
# them, seeded from the golden data the unit tests use. FUZZ_BUILD_DIR picks
# another build folder.
#
#   scripts/fuzz.sh [SECONDS]                 each target for SECONDS (default 20;
#                                             CI), a fresh corpus each time
#   scripts/fuzz.sh --runs N [TARGET ...]     the long run: each target (default
#                                             all eight) for N executions at nice 19,
#                                             its corpus kept in build-fuzz/corpus-NAME
#                                             across runs; prints executions, time,
#                                             rate, edges and corpus size
#
# A crash leaves its input as build-fuzz/crash-* and fails the run: turn it into
# a regression test (fuzz/README.md). Ends with "N passed, N failed", one per
# target.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
secs=20 runs=0
if [ "${1:-}" = "--runs" ]; then
	runs=${2:?"--runs needs a number"}
	shift 2
elif [ $# -gt 0 ]; then
	secs=$1
	shift
fi
bdir=${FUZZ_BUILD_DIR:-build-fuzz}
cd "$top" || exit 1
CC=clang cmake -S . -B "$bdir" -DPB_FUZZ=ON -DPB_TESTS=OFF -DPB_WERROR=ON >/dev/null &&
	cmake --build "$bdir" -j "$(nproc)" --target fuzz_pres fuzz_msg fuzz_sip fuzz_maps fuzz_xmpp fuzz_sipbridge fuzz_s2s fuzz_s2s_stream >/dev/null ||
	{ echo "fuzz: build failed"; echo "0 passed, 1 failed"; exit 1; }

# target:seed folders
targets=(pres:tests/data/pres sip:tests/data/sip msg:tests/data/msg maps:mappings
	xmpp:tests/data/xmpp sipbridge:tests/data/sipbridge s2s:tests/data/s2s
	s2s_stream:tests/data/xstream)
pass=0 fail=0
for t in "${targets[@]}"; do
	name=${t%%:*} seeds=${t#*:}
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx -e "$name" -e "fuzz_$name"; then
		continue
	fi
	log=$bdir/fuzz_$name.log
	if [ "$runs" -gt 0 ]; then
		corpus=$top/$bdir/corpus-$name
		mkdir -p "$corpus"
		how=(-runs="$runs")
		nice=(nice -n 19)
	else
		corpus=$(mktemp -d)
		how=(-max_total_time="$secs")
		nice=()
	fi
	start=$(date +%s)
	if (cd "$bdir" && "${nice[@]}" ./"fuzz_$name" "${how[@]}" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 "$corpus" "$top/$seeds") >"$log" 2>&1; then
		n=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
		if [ "$runs" -gt 0 ]; then
			s=$(($(date +%s) - start))
			last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
			cov=$(sed -nE 's/.* cov: ([0-9]+) .*/\1/p' <<<"$last")
			corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")
			echo "PASS fuzz_$name: $n executions in $s s ($((n / (s > 0 ? s : 1)))/s)," \
				"$cov edges, $corp corpus units, no crash"
		else
			echo "PASS fuzz_$name: $n executions in $secs s, no crash"
		fi
		pass=$((pass + 1))
	else
		echo "FAIL fuzz_$name: see $log"
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /'
		fail=$((fail + 1))
	fi
	[ "$runs" -gt 0 ] || rm -rf "$corpus"
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ $((pass + fail)) -gt 0 ]
