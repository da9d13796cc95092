#!/usr/bin/env bash
# v22 device runs (docs/performance.md, v22). Usage on the device tool: OUT=$OUT bash scripts/investigate_v22.sh [run]
#   run1: the ops defined with torch.library.Library instead of custom_op (on our CPU machine a call
#         through torch.ops took ~30 -> ~19 us functional and ~50 -> ~12 us out=, meta tensors):
#         scripts/eager_launch_probe.py with old_v21 (git archive 1194317 fp8quant) and this tree,
#         alternating, three rounds; then scripts/gpu_check.sh (the new out= tests among the GPU tests).
#         run1_eager.log holds the probe's lines only: blocks of 5 shapes, 1194317's first, then this tree's.
#   run2: the full bench at this tree (the committed result when FP8QUANT_COMMIT names it).
#   run4: after run 1, the out= op's version bumps one tensor per call (torch 2.4) and tests under
#         torch.inference_mode: the GPU tests of the ops' paths (dispatcher, inference mode, opcheck,
#         torch.compile, graphs).
#   run5: float16 and float32 through the full bench at this tree (the H200 has no result of them).
#   run3: run 2 read 128x16384 and 256x8192 from L2 0.07-0.09 us slower than 3b0231b with the same
#         plans (the same kernel since a451112): three rounds of the large decode shapes from L2 and
#         DRAM, with v21's untaken one-row-per-CTA + trigger plan at 256x7168 and 256x8192.
# Carried: .fp8cache (this tree's modules and old_v21's, `python -m fp8quant prebuild --arch 90` with
# PYTHONPATH at each: the kernel sources are the same, so are the modules), old_v21 (run 1).
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), probe_bench(), ...
case "${1:-run1}" in
run1)
  eager_ab run1_eager 3 old_v21
  PYTEST_TIMEOUT=300 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4 ;;
run2)
  timeout 450 python3 -m fp8quant bench --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_full.log"
  grep -E "^(device|summary)" "$OUT/bench_full.log" ;;
run3)
  export DEADLINE_S=330 PROBE_TIMEOUT=100
  for round in 1 2 3; do
    for where in dram l2; do
      opts=""; [[ $where == l2 ]] && opts="--input-copies 2"
      probe_bench run3_large_${where}_$round 64x16384,128x8192,128x16384 fp8quant "$opts"
      probe_bench run3_256_${where}_$round 256x7168,256x8192 fp8quant,fp8quant:registers:t256:b256:e1:m51456 "$opts"
    done
  done
  (cd "$OUT" && tar czf run3_logs.tar.gz run3_*.log json && rm -rf json run3_*.log) ;;
run5)
  for dtype in float16 float32; do
    timeout 280 python3 -m fp8quant bench --dtype $dtype --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_$dtype.log"
    grep -E "^(device|summary)" "$OUT/bench_$dtype.log"
  done ;;
run4)
  PYTEST_TIMEOUT=200 gpu_tests run4_gpu_tests "inference or dispatcher or opcheck or compile or graph or current_stream" ;;
esac
