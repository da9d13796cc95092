#!/usr/bin/env bash
# v18 device runs (docs/performance.md, v18). Usage on the device tool: OUT=$OUT bash scripts/investigate_v18.sh [run]
#   run1: the next call let launch at the kernel's entry (-DFP8QUANT_EXPERIMENT_EARLY_TRIGGER) with
#         the grids in flight bounded by what an SM holds. v12 run 2 let every call of a graph
#         launch at entry and found the decode shapes up to 0.6 us slower (all the graph's calls
#         resident, prefetching 5-147 us ahead), 256x2048 and the 10-13 MB shapes 0.13-0.17 us
#         faster; v12 run 9's version for big grids issued the 8-vector loads late (256x16384
#         5.05 -> 5.65 us), so the idea was never timed where it should help: the 10-100 MB and
#         128-256-row shapes, whose loads after the wait still wait for DRAM (v11 run 8: the call
#         after next is placed only once the next call's wait returns). With two calls' CTAs
#         filling an SM (shared memory reserved: 90000 bytes where a call has one CTA per SM,
#         50000 where it has two), the call after next is placed as this call's CTAs exit. The
#         plain build against the early-trigger build, each with and without the reservation,
#         twice; the late-load check passes on the switch's build (tests/test_kernel_build.py).
#   run2: run 1: at entry with the reservation 0.1-0.2 us faster at grids of 128 and 256 CTAs of
#         up to 16 KiB of input, and at grids a wave holds; slower with larger CTAs and grids
#         under the SM count. planner.pdl_trigger_at_entry, the kernel's flag (one predicated
#         instruction each side of the wait), the reservation computed from the SM's shared
#         memory. On the H100: the device's shared memory per SM as the package reads it; the
#         PDL, graph and default-path GPU tests; the PDL race test against a mutant without the
#         waits (the CUDA mutant prebuilt in .fp8cache-mutant, carried); then the new plans
#         against the same plans without the trigger (fp8quant:registers:e0), from DRAM and with
#         the inputs in L2 (decode shapes), twice.
#   run3: the mutant passed 5 of run 2's 6 PDL race cases. Candidates with the trigger at entry,
#         under the mutant and as built, three times each.
#   run4: the full bench at a451112 (history/v18-a451112.json); run5: scripts/gpu_check.sh there;
#   run6: float16 and float32 through the full bench (the committed float16/float32 results).
#   run7: the trigger after the prefetch: old, a451112's and this kernel on small decode shapes;
#   run8: the final code's full bench and GPU evidence in one call.
#   run9: the trigger at entry with one CTA per SM at grids of 32-64 CTAs (forced).
#   run8 ran after run 9, on the final planner (grids of 60-66 with one CTA per SM added).
# run1's switch (-DFP8QUANT_EXPERIMENT_EARLY_TRIGGER) is in d2d8dcb's kernel only; 9683818 replaced it
# with the planner's flag. The bfloat16 modules of both builds come prebuilt in $FP8QUANT_CACHE_DIR (carried: built here with
# `python -m fp8quant prebuild --arch 90`, with and without the switch's FP8QUANT_NVCC_FLAGS).
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), probe_bench(), ...
case "${1:-run1}" in
run1)
  early=-DFP8QUANT_EXPERIMENT_EARLY_TRIGGER
  one_per_sm=128x4096,128x5120,128x7168,128x8192,128x16384,256x7168,256x8192,256x16384  # grids of 128
  two_per_sm=256x1368,256x2048,256x4096,256x5120                                          # grids of 256
  others=1024x4096,2048x2048,512x8192,16384x2048,1x4096,16x16384,32x16384,64x8192,64x16384
  for round in 1 2; do
    probe_bench run1_plain_$round $one_per_sm,$two_per_sm,$others fp8quant,copy ""
    FP8QUANT_NVCC_FLAGS=$early probe_bench run1_early_one_$round $one_per_sm fp8quant,fp8quant:registers:m90000 ""
    FP8QUANT_NVCC_FLAGS=$early probe_bench run1_early_two_$round $two_per_sm fp8quant,fp8quant:registers:m50000 ""
    FP8QUANT_NVCC_FLAGS=$early probe_bench run1_early_others_$round $others fp8quant ""
    if (( round == 1 )); then  # the reservation alone (v14 run 6: no change at 256x7168-16384)
      probe_bench run1_plain_one_m_$round $one_per_sm fp8quant:registers:m90000 ""
      probe_bench run1_plain_two_m_$round $two_per_sm fp8quant:registers:m50000 ""
    fi
  done
  (cd "$OUT" && tar czf run1_logs.tar.gz *.log json && rm -rf json *.log) ;;
run2)
  python3 -c "from fp8quant import _cuda; print(_cuda.device_info(0))" | tee "$OUT/run2_device_info.log"
  PYTEST_TIMEOUT=200 gpu_tests run2_gpu_tests "pdl or graph or default_path_bit_exact or device_info"
  mutate_waits
  FP8QUANT_CACHE_DIR=$PWD/.fp8cache-mutant timeout 150 python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider \
    -k pdl_waits > "$OUT/run2_mutant_pdl.log" 2>&1
  echo "mutant: $(tail -1 "$OUT/run2_mutant_pdl.log")"; grep -E "^FAILED" "$OUT/run2_mutant_pdl.log" | head -8
  restore_waits
  decode=32x4096,64x1368,64x2048,64x4096,128x1368,128x2048,128x4096,128x5120,128x7168,128x8192
  decode=$decode,256x1368,256x2048,256x4096,256x5120
  mid=512x2048,512x4096,1024x2048,1024x4096,2048x2048,4096x1368,1024x5120,1024x7168,1024x8192,2048x4096
  large=16384x2048,8192x4096,65536x4096,16384x7168
  for round in 1 2; do
    probe_bench run2_dram_$round $decode,$mid,$large fp8quant,fp8quant:registers:e0 ""
    probe_bench run2_l2_$round $decode fp8quant,fp8quant:registers:e0 "--input-copies 2"
  done
  (cd "$OUT" && tar czf run2_logs.tar.gz *.log json && rm -rf json *.log) ;;
run3)
  # The mutant passed 5 of run 2's 6 PDL race cases (only CUDA at 8 x 2^18 failed): the test as
  # v9 left it no longer catches a missing wait at 4 x 16384 nor in Triton. Candidates with the
  # trigger at entry and grids of several waves (call 2 starts when call 1's last wave does, and
  # writes over the row that wave reads), under the mutant and as built, three times each.
  race_test_against_mutant run3_mutant 3
  for i in 1 2 3; do
    timeout 150 python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider -k pdl_waits > "$OUT/run3_plain_$i.log" 2>&1
    echo "as built $i: $(tail -1 "$OUT/run3_plain_$i.log")"
  done ;;
run7)
  # run 4 against a714872: the 1-16-row shapes 0.02-0.06 us slower (Triton drifted +0.015 median),
  # most at t128x4/s4 and t256x4/s4. In a451112's SASS the trigger's predicated PREEXIT came
  # before the prefetch and waited for its flag's constant load. The kernel as v17 left it
  # (old_v17 = git archive 6496d32 fp8quant), a451112's (cur_a451) and this tree's (the trigger
  # after the prefetch), alternated twice, fp8quant and triton, inputs from DRAM; the trees
  # carried untracked, each tree's modules prebuilt in the cache.
  shapes=1x4096,2x1368,2x7168,4x7168,8x4096,2x8192,16x4096,1x16384,32x16384,64x8192,128x4096,256x2048,1024x4096
  for round in 1 2; do
    for tree in old_v17 cur_a451 .; do
      name=run7_$(basename $(realpath $tree))_$round
      PYTHONPATH=$PWD/$tree BENCH_TIMEOUT=120 BENCH_CMD="python3 scripts/bench_probe_providers.py" bench $name $shapes fp8quant,triton
      python3 - "$OUT/json/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for shape in dict.fromkeys((x["tokens"], x["hidden"]) for x in r["rows"]):
    cells = [f"{x['provider']} {x['median_us']:.3f}" for x in r["rows"] if (x["tokens"], x["hidden"]) == shape]
    print(f"  {shape[0]}x{shape[1]}: " + ", ".join(cells))
PY
    done
  done
  (cd "$OUT" && tar czf run7_logs.tar.gz *.log json && rm -rf json *.log) ;;
run9)
  # Run 4's misses from DRAM include grids of 64 CTAs (64x7168 1.04 us over, 64x8192 1.09,
  # 64x16384 1.19) and 32 (32x16384 1.18, 16x16384 1.05; from L2 32x16384 1.006). The trigger at
  # entry with one CTA per SM (174080 bytes reserved, midway between half and all of an SM's
  # shared memory): two calls' 64 CTAs then fill 128 of the 132 SMs. 32x16384 and 16x16384 also
  # with their rows shared by 2 CTAs (t512:s2, 64 CTAs). From DRAM and from L2, twice; the kernel
  # is a451112's (the trigger forced through fp8quant:registers:...:e1).
  shapes=64x5120,64x7168,64x8192,64x16384,32x16384,16x16384
  provs=fp8quant,fp8quant:registers:e1:m174080,fp8quant:registers:t512:s2:e1:m174080
  for round in 1 2; do
    probe_bench run9_dram_$round $shapes $provs ""
    probe_bench run9_l2_$round $shapes $provs "--input-copies 2"
  done
  (cd "$OUT" && tar czf run9_logs.tar.gz *.log json && rm -rf json *.log) ;;
run8)  # the final code: the full bench (the committed result), then scripts/gpu_check.sh
  timeout 330 python3 -m fp8quant bench --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_full.log"
  grep -E "^(device|summary)" "$OUT/bench_full.log"
  PYTEST_TIMEOUT=250 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -3 ;;
run4)  # the committed result: the full bench as the device call ran it
  timeout 450 python3 -m fp8quant bench --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_full.log"
  grep -E "^(device|summary)" "$OUT/bench_full.log" ;;
run5)  # the GPU evidence of the final code (scripts/gpu_check.sh)
  PYTEST_TIMEOUT=420 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4 ;;
run6)  # float16 and float32 through the full bench (their plans changed with bf16's)
  for dtype in float16 float32; do
    timeout 280 python3 -m fp8quant bench --dtype $dtype --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_$dtype.log"
    grep -E "^(device|summary)" "$OUT/bench_$dtype.log"
  done ;;
esac
