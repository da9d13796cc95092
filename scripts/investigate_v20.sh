#!/usr/bin/env bash
# v20 device runs (docs/performance.md, v20). Usage on the device tool: OUT=$OUT bash scripts/investigate_v20.sh [run]
#   run1: the eager path's own costs (v19 left ~50 us of host time per eager call): the overlap
#         check only for outputs the caller gave, no views or device guard on the CUDA path,
#         torch's current stream by its raw handle, the launch shape cached per plan, "auto"
#         decided once per dtype and device. scripts/eager_launch_probe.py with old_v19
#         (git archive 47a8eac fp8quant) and this tree, alternating, three rounds; the profile of
#         this tree (out= given, then fresh outputs); then scripts/gpu_check.sh (the new stream
#         test among the GPU tests).
#   run2: run 1: the public call 58 -> 34 us (out= given), 72 -> 36 (fresh outputs), medians of
#         three rounds. The contiguous tensors' span without the sum over dimensions; the eager
#         probe against old_v20 (git archive 269e461 fp8quant, run 1's tree), three rounds, with
#         torch.neg(x, out=) as the host's yardstick. Then the H200's mid sizes under the trigger at entry (v19 run 3: 0.5-1.7% slower than v17,
#         which had no trigger): the planner against its plan without the trigger
#         (fp8quant:registers:e0), two rounds, from DRAM.
#   run3: run 2: without the trigger 1024x4096 and 2048x2048 were 0.06-0.10 us faster on the H200,
#         larger grids even. The planner's new rule (no trigger at entry where a call's threads
#         fill 90% of the SMs', on GPUs past TWO_VECTORS_LARGE_MAX_DRAM_PER_SM) against its plans
#         with the trigger forced (fp8quant:registers:e1), two rounds, from DRAM; 512x4096 keeps
#         the trigger under both (a control).
#         Outcome: mixed (1024x4096, 2048x2048, 8192x2048 0.04-0.07 us faster, 1024x8192,
#         4096x1368, 16384x2048 0.06-0.10 slower); the rule was reverted (6afe72a's planner
#         is needed to rerun this case).
#   run4: the final code (the eager path in one form; the planner v19's again): the eager probe
#         against old_v19, three rounds, then scripts/gpu_check.sh.
# Carried: .fp8cache (this tree's modules and old_v19's, `python -m fp8quant prebuild --arch 90`
# with PYTHONPATH at each), old_v19 (runs 1 and 4); run 2: old_v20 and its modules instead.
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), probe_bench(), ...
case "${1:-run1}" in
run1)
  eager_ab run1_eager 3 old_v19
  for mode in "" --fresh; do
    PYTHONPATH=$PWD timeout 60 python3 scripts/eager_profile.py $mode > "$OUT/run1_eager_profile${mode/--/_}.log" 2>&1
    sed -n 1,16p "$OUT/run1_eager_profile${mode/--/_}.log"
  done
  PYTEST_TIMEOUT=300 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4 ;;
run2)
  eager_ab run2_eager 3 old_v20
  export DEADLINE_S=400 PROBE_TIMEOUT=150
  mid=1024x4096,2048x2048,2048x4096,4096x2048,4096x4096,8192x2048
  for round in 1 2; do
    probe_bench run2_mid_$round $mid fp8quant,fp8quant:registers:e0 ""
  done
  (cd "$OUT" && tar czf run2_logs.tar.gz run2_*.log json && rm -rf json run2_*.log) ;;
run3)
  export DEADLINE_S=500 PROBE_TIMEOUT=200
  shapes=512x4096,1024x4096,1024x5120,1024x7168,1024x8192,2048x2048,2048x4096,4096x1368,4096x2048,4096x4096,8192x2048,8192x4096,16384x2048
  for round in 1 2; do
    probe_bench run3_fill_$round $shapes fp8quant,fp8quant:registers:e1 ""
  done
  (cd "$OUT" && tar czf run3_logs.tar.gz run3_*.log json && rm -rf json run3_*.log) ;;
run4)
  eager_ab run4_eager 3 old_v19
  PYTEST_TIMEOUT=300 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4 ;;
esac
