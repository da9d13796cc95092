#!/usr/bin/env bash
# v22 device runs (docs/performance.md, v22). Usage on the device tool: OUT=$OUT bash scripts/investigate_v22.sh [run]
#   run1: the ops defined with torch.library.Library instead of custom_op (on our CPU machine a call
#         through torch.ops took ~30 -> ~19 us functional and ~50 -> ~12 us out=, meta tensors):
#         scripts/eager_launch_probe.py with old_v21 (git archive 1194317 fp8quant) and this tree,
#         alternating, three rounds; then scripts/gpu_check.sh (the new out= tests among the GPU tests).
#   run2: the full bench at this tree (the committed result when FP8QUANT_COMMIT names it).
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
esac
