#!/usr/bin/env bash
# One device call (about 9 minutes on an H100 in v14): GPU tests, compute-sanitizer, full benchmark.
# Usage on the device tool:  FP8QUANT_COMMIT=<short sha> bash scripts/gpu_evidence.sh
# Then copy $OUT/h100-80gb-hbm3.* to benchmarks/results/ and $OUT/*.log to benchmarks/results/logs/.
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-420} bash "$(dirname "$0")/gpu_check.sh" > /dev/null 2>&1
rc=$?
tail -1 "$OUT/gpu_tests.log"; grep -E "^(FAILED|E  )" "$OUT/gpu_tests.log" | head -8
grep -hE "SUMMARY|launches" "$OUT"/sanitizer_*.log
timeout ${BENCH_TIMEOUT:-200} python3 -m fp8quant bench --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_full.log"
grep -E "^summary" "$OUT/bench_full.log"
exit $rc
