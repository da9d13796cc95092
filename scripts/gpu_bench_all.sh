#!/usr/bin/env bash
# One device call: the full bfloat16 benchmark (the committed result) plus float16 and float32 on
# the shapes over 100 MB. Usage on the device tool:
#   FP8QUANT_COMMIT=<short sha> OUT=$OUT bash scripts/gpu_bench_all.sh
# Then copy $OUT/h100-80gb-hbm3.* to benchmarks/results/, the logs to benchmarks/results/logs/.
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 FP8QUANT_CACHE_DIR=${FP8QUANT_CACHE_DIR:-/tmp/fp8quant-cache}
python3 -m fp8quant prebuild > /dev/null
timeout ${BENCH_TIMEOUT:-330} python3 -m fp8quant bench --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_full.log"
grep -E "^summary" "$OUT/bench_full.log"
big=32768x1368,65536x1368,16384x2048,65536x2048,8192x4096,65536x4096,16384x5120,16384x7168,16384x8192,4096x16384,16384x16384
for dtype in float16 float32; do
  timeout 150 python3 -m fp8quant bench --dtype $dtype --shapes $big --providers fp8quant,fp8quant:nopdl,triton,copy \
    --out "$OUT/$dtype" 2>&1 | grep -v "^bench:" > "$OUT/bench_$dtype.log"
  rm -f "$OUT/$dtype"/*.csv "$OUT/$dtype"/*.png
  grep -E "^summary" "$OUT/bench_$dtype.log"
done
