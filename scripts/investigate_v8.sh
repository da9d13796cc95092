#!/usr/bin/env bash
# v8 device runs (docs/performance.md, v8). Usage on the device tool: OUT=$OUT bash scripts/investigate_v8.sh [run]
#   run1: the split-row (cluster) and PDL paths tested, then timed: decode at every threads-per-row
#         x CTAs-per-row (fp8quant:registers:t*:c*, removed after this run), mid/large with and
#         without PDL (at commit 5176a2e)
#   run2: where a kernel lets the next one launch (at its start, the default, or after its
#         stores: -DFP8QUANT_EXPERIMENT_LATE_TRIGGER, a flag of commits a318511..9604156), two
#         builds alternated twice
#   run3: the v7 package (commit 0c10959: `git archive 0c10959 fp8quant | tar -x -C old_v7`, carried)
#         against this one at ~100 MB, alternated three times (RUN_TESTS=0)
#   run4: every threads-per-row at 100-800 MB, twice (RUN_TESTS=0)
#   run5: GPU tests after the warp kernels moved to redux.sync; threads per row at H=1368/5120/7168
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"; OUT=$(realpath "$OUT")
export PYTHONUNBUFFERED=1 FP8QUANT_CACHE_DIR=${FP8QUANT_CACHE_DIR:-/tmp/fp8quant-cache}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
/usr/bin/time -f "prebuild %e s" python3 -m fp8quant prebuild | tail -1
if [ "${RUN_TESTS:-1}" = 1 ]; then
  timeout ${PYTEST_TIMEOUT:-240} python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider -n 8 \
    -k "pdl or every_path or edge_rows or graph or compile or opcheck or default_path or scale_ub or strided or division or 2_31" \
    > "$OUT/tests.log" 2>&1
  tail -1 "$OUT/tests.log"; grep -E "^(FAILED|E  )" "$OUT/tests.log" | head -8
fi
bench() {  # name, shapes, providers
  timeout ${BENCH_TIMEOUT:-200} python3 -m fp8quant bench --shapes "$2" --providers "$3" --out "$OUT/$1" \
    ${BENCH_ARGS:-} 2>&1 | grep -v "^bench:" > "$OUT/$1.log"
  mkdir -p "$OUT/json"; mv "$OUT/$1"/*.json "$OUT/json/$1.json" 2>/dev/null; rm -rf "$OUT/$1"
  echo "[$1]"; grep -E "^(device|summary)" "$OUT/$1.log"
}
case "${1:-run2}" in
run1)
  bench decode "1x4096,1x5120,1x7168,1x8192,1x16384,8x16384,16x8192,16x16384,32x16384,64x8192,64x16384,128x8192,128x16384,256x16384" \
    "fp8quant,fp8quant:nopdl,triton,copy,fp8quant:registers:t*:c*"
  bench mid "256x16384,1024x4096,2048x2048,4096x1368,4096x4096,8192x2048,8192x4096,16384x2048,4096x8192,32768x1368" \
    "fp8quant,fp8quant:nopdl,triton,copy" ;;
run2)
  shapes="1x4096,1x16384,64x16384,128x16384,256x16384,1024x4096,4096x1368,4096x4096,8192x4096,16384x2048,4096x8192,32768x1368,65536x4096"
  for round in 1 2; do
    bench "early$round" "$shapes" "fp8quant,fp8quant:nopdl,copy"
    FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_LATE_TRIGGER bench "late$round" "$shapes" "fp8quant,fp8quant:nopdl,copy"
  done ;;
run3)
  shapes="8192x4096,16384x2048,4096x8192,32768x1368,4096x4096,1x4096,4096x1368"
  (cd old_v7 && /usr/bin/time -f "old prebuild %e s" python3 -m fp8quant prebuild | tail -1)
  for round in 1 2 3; do
    bench "new$round" "$shapes" "fp8quant,fp8quant:nopdl,copy"
    (cd old_v7 && bench "old$round" "$shapes" "fp8quant,copy")
  done ;;
run4)  # threads per row (vectors per thread) at 100-800 MB: the last wave's fill
  bench tpr1 "8192x4096,16384x2048,4096x8192,32768x2048,16384x4096,65536x4096,32768x1368,16384x8192" \
    "fp8quant,fp8quant:registers:t64,fp8quant:registers:t128,fp8quant:registers:t256,fp8quant:registers:t512,triton,copy"
  bench tpr2 "8192x4096,16384x2048,4096x8192,32768x2048,16384x4096,65536x4096,32768x1368,16384x8192" \
    "fp8quant,fp8quant:registers:t64,fp8quant:registers:t128,fp8quant:registers:t256,fp8quant:registers:t512,triton,copy" ;;
run5)  # warp kernels on redux.sync (tests), and threads per row where 2 vectors waste slots
  shapes="4096x1368,8192x1368,16384x1368,32768x1368,65536x1368,131072x1368,16384x5120,65536x5120,16384x7168"
  for round in 1 2; do
    bench "waste$round" "$shapes" \
      "fp8quant,fp8quant:registers:t64,fp8quant:registers:t128,fp8quant:registers:t256,fp8quant:registers:t512,copy"
  done ;;
esac
tar czf "$OUT/json.tar.gz" -C "$OUT" json && rm -rf "$OUT/json"
