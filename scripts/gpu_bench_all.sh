#!/usr/bin/env bash
# One device call: the full benchmark in bfloat16 (the committed result), then in float16 and
# float32 (history files). Usage on the device tool:
#   FP8QUANT_COMMIT=<short sha> OUT=$OUT bash scripts/gpu_bench_all.sh
# Then copy $OUT/h100-80gb-hbm3.* to benchmarks/results/, the logs to benchmarks/results/logs/.
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 FP8QUANT_CACHE_DIR=${FP8QUANT_CACHE_DIR:-/tmp/fp8quant-cache}
python3 -m fp8quant prebuild > /dev/null
timeout ${BENCH_TIMEOUT:-330} python3 -m fp8quant bench --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_full.log"
grep -E "^summary" "$OUT/bench_full.log"
# float16 and float32 through the same bench as bfloat16 (every shape, every provider): on 11
# large shapes with 4 providers, the 100 MB shapes read ~3% slower in both bfloat16 and float16
# than in the full bench of the same call (docs/performance.md, v11 run 4).
for dtype in float16 float32; do
  timeout ${BENCH_TIMEOUT:-330} python3 -m fp8quant bench --dtype $dtype \
    --out "$OUT/$dtype" 2>&1 | grep -v "^bench:" > "$OUT/bench_$dtype.log"
  rm -f "$OUT/$dtype"/*.csv "$OUT/$dtype"/*.png
  grep -E "^summary" "$OUT/bench_$dtype.log"
done
