#!/usr/bin/env bash
# v19 device runs (docs/performance.md, v19). Usage on the device tool: OUT=$OUT bash scripts/investigate_v19.sh [run]
#   run1: (a) the PDL race test at PDL_RACE_TRIALS trials per case, as built and three times
#         against the mutant without the waits (v18 run 3: at 5 trials a case failed its mutant
#         in some runs only); (b) the host time of eager calls (scripts/eager_launch_probe.py),
#         the launch helper that opts in to shared memory once per instance and device against
#         9155eb5's, which called cudaFuncSetAttribute before every launch over 48 KiB, twice;
#         (c) plans for the decode misses: 256x7168 and 256x8192 with one row per CTA (16 KiB
#         CTAs, grid 256) under the trigger at entry and two CTAs per SM reserved, against the
#         planner's two rows per CTA without it (v18 run 1 timed only two rows with the
#         trigger); 32x16384 and 16x16384 (grids of 32) under the trigger with one CTA per SM,
#         unshared and with rows shared by 2 (v18 run 9, two rounds: 32x16384 gains both ways,
#         16x16384 loses 0.04 us from DRAM), three rounds, from DRAM and from L2.
#   run2: run 1: the race test failed its mutant in 6, 8 and 8 of 8 cases (v18: some runs only);
#         eager calls took ~100 us of host time (torch.ops ~35 us of it on our CPU), and opting in
#         once changed nothing within the noise (reverted); 32x16384 with two CTAs per row and
#         the trigger 1.68 / 1.49 us against 1.72 / 1.55 (DRAM / L2). The final code: the public
#         call skipping the dispatcher (eager probe, against old_v18 = 9155eb5, twice), the
#         planner's split for the trigger (pdl_split_for_trigger) at 32x16384 against the old
#         plan forced (t512:s1:e0), from DRAM and from L2, twice; then scripts/gpu_check.sh.
#   run3: the H200's full bench at 3b0231b, as one device call ran it (the committed benchmarks/results/h200.*):
#         FP8QUANT_CACHE_DIR=$PWD/.fp8cache timeout 450 python3 -m fp8quant bench --out $OUT (not a case
#         below; set FP8QUANT_COMMIT next time: the device copy's .git named the landed main).
#   run4: run 2 left ~50 us per eager call; cProfile (scripts/eager_profile.py, first run at 83066e5) ranked the overlap
#         check first (6 spans per call). Each span once; the eager A/B against old_v18, the profile
#         again, then scripts/gpu_check.sh: the final code's GPU evidence.
# Carried: .fp8cache (this tree's modules and old_v18's, `python -m fp8quant prebuild --arch 90`
# with PYTHONPATH at each), .fp8cache-mutant (the modules with the waits removed), old_v18
# (git archive 9155eb5 fp8quant).
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), probe_bench(), ...
case "${1:-run1}" in
run1)
  timeout 150 python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider -k pdl_waits > "$OUT/run1_race_built.log" 2>&1
  echo "race test as built: $(tail -1 "$OUT/run1_race_built.log")"
  race_test_against_mutant run1_race_mutant 3
  eager_ab run1_eager 2 old_v18
  export DEADLINE_S=560 PROBE_TIMEOUT=100
  two_rows=256x7168,256x8192  # from DRAM only: from L2 they are 0.38-0.75 us over the floor
  one_row=fp8quant,fp8quant:registers:t256:b256:e1:m51456
  grids_of_32=32x16384,16x16384
  one_per_sm=fp8quant,fp8quant:registers:e1:m174080,fp8quant:registers:t512:s2:e1:m174080
  for round in 1 2 3; do
    probe_bench run1_rows_dram_$round $two_rows $one_row ""
    probe_bench run1_g32_dram_$round $grids_of_32 $one_per_sm ""
    probe_bench run1_g32_l2_$round $grids_of_32 $one_per_sm "--input-copies 2"
  done
  (cd "$OUT" && tar czf run1_logs.tar.gz *.log json && rm -rf json *.log) ;;
run2)
  eager_ab run2_eager 2 old_v18
  export DEADLINE_S=200 PROBE_TIMEOUT=80
  for round in 1 2; do
    probe_bench run2_split_dram_$round 32x16384 fp8quant,fp8quant:registers:t512:s1:e0,triton ""
    probe_bench run2_split_l2_$round 32x16384 fp8quant,fp8quant:registers:t512:s1:e0,triton "--input-copies 2"
  done
  PYTEST_TIMEOUT=300 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4
  (cd "$OUT" && tar czf run2_logs.tar.gz run2_*.log json && rm -rf json run2_*.log) ;;
run4)
  eager_ab run4_eager 2 old_v18
  PYTHONPATH=$PWD timeout 100 python3 scripts/eager_profile.py > "$OUT/run4_eager_profile.log" 2>&1
  sed -n 1,20p "$OUT/run4_eager_profile.log"
  PYTEST_TIMEOUT=300 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4 ;;
esac
