#!/usr/bin/env bash
# v21 device runs (docs/performance.md, v21). Usage on the device tool: OUT=$OUT bash scripts/investigate_v21.sh [run]
#   run1: the decode shapes whose grids hold at most half the SMs and do not take the trigger at
#         entry (1-16 rows of 5120-16384 shared by 2-4 CTAs, 64x16384), with the trigger forced
#         and one CTA per SM reserved (fp8quant:registers:e1:m174080), against the planner: the
#         H100 measured 16x16384 1.59 -> 1.43 us from L2 that way (v18 run 9), and since v19
#         decode is judged from L2, where 16x16384 stood 0.99 us over its floor in the committed
#         H100 run. Then 32x16384 (0.95-0.97 over from L2 on the H100 at HEAD's plan, t512:s2:e1)
#         against rows shared by 4 (two CTAs per SM reserved), unshared, and t256:s2.
#         From DRAM and from L2, two rounds.
#   run2: run 1 (H200): the trigger with one CTA per SM made 2x8192, 8x5120, 8x7168 and 8x8192
#         (grids of 8-32, CTAs reading 10-16 KiB) 0.07-0.08 us faster from DRAM and from L2, the
#         32 KiB CTAs of 2-8x16384 0.02 slower both ways, 16x16384 0.10 slower from DRAM and 0.06
#         faster from L2, 64x16384 +0.04 / -0.02; 32x16384's plan (t512:s2:e1) the fastest of
#         four. The planner's new rule (planner.small_grid_takes_trigger: grids of at most half
#         the SMs take the trigger with one CTA per SM where their CTAs read at most 16 KiB, or
#         quantize 16-32 KiB of rows of at most 32 KiB; 768 plans of each device change, 28 of
#         the bench's bf16 decode shapes) against its plans without it (fp8quant:registers:e0,
#         v20's plans exactly), once, from DRAM and from L2: the bench's 28 shapes and grids of
#         40-56 (12-40 rows of 8192); 16x16384 also with rows shared by 4 (grid 64) and unshared
#         (grid 16), twice; 256x7168 and 256x8192 one row per CTA with the trigger (v19 run 1),
#         once. Then the GPU tests of the default paths, PDL and graphs. (That rule was never
#         committed: run at HEAD, run2 times the final rule; its e0 plans are v20's but at 16x16384.)
#   run3: run 2 (H200): the rule gained 0.06-0.08 us at 2-8 rows of 5120-8192 both ways, 0-0.03 at
#         1368-4096, 0.05-0.09 at grids of 40-56 from L2 (20x8192 and 28x8192 0.03-0.04 slower from
#         DRAM); a single row of 5120-8192 0.01-0.02 slower, 64x16384 mixed; 16x16384 fastest with
#         rows shared by four and the trigger (1.58 / 1.38 against v20's 1.60 / 1.44). The final
#         rule (two rows or more, CTAs that read at most 16 KiB; 15-16 rows of 16-32 KiB to four
#         CTAs) against v20's plans, once from DRAM and from L2; then scripts/gpu_check.sh.
# Carried: .fp8cache (this tree's modules, `python -m fp8quant prebuild --arch 90`).
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), probe_bench(), ...
case "${1:-run1}" in
run1)
  export DEADLINE_S=520 PROBE_TIMEOUT=150
  small=2x8192,8x8192,8x5120,8x7168,2x16384,4x16384,8x16384,16x16384,16x2048,64x16384
  provs32=fp8quant,fp8quant:registers:t512:s4:e1:m96256,fp8quant:registers:t512:s1:e1:m174080,fp8quant:registers:t256:s2:e1:m174080
  for round in 1 2; do
    probe_bench run1_small_dram_$round $small fp8quant,fp8quant:registers:e1:m174080 ""
    probe_bench run1_small_l2_$round $small fp8quant,fp8quant:registers:e1:m174080 "--input-copies 2"
    probe_bench run1_32_dram_$round 32x16384 $provs32 ""
    probe_bench run1_32_l2_$round 32x16384 $provs32 "--input-copies 2"
  done
  (cd "$OUT" && tar czf run1_logs.tar.gz run1_*.log json && rm -rf json run1_*.log) ;;
run2)
  export DEADLINE_S=330 PROBE_TIMEOUT=150
  small=1x1368,2x1368,4x1368,8x1368,16x1368,1x2048,2x2048,4x2048,8x2048,16x2048,1x4096,2x4096,4x4096,8x4096
  small=$small,1x5120,2x5120,4x5120,8x5120,1x7168,2x7168,4x7168,8x7168,1x8192,2x8192,4x8192,8x8192,64x16384
  provs16=fp8quant,fp8quant:registers:e0,fp8quant:registers:t512:s4:e1:m174080,fp8quant:registers:t512:s1:e1:m174080
  for where in dram l2; do
    opts=""; [[ $where == l2 ]] && opts="--input-copies 2"
    probe_bench run2_16_${where} 16x16384 $provs16 "$opts"
    probe_bench run2_small_${where} $small fp8quant,fp8quant:registers:e0 "$opts"
  done
  for where in dram l2; do
    opts=""; [[ $where == l2 ]] && opts="--input-copies 2"
    probe_bench run2_16_${where}_2 16x16384 $provs16 "$opts"
    probe_bench run2_mid_${where} 12x8192,20x8192,28x8192,40x8192 fp8quant,fp8quant:registers:e0 "$opts"
  done
  probe_bench run2_256_dram 256x7168,256x8192 fp8quant,fp8quant:registers:t256:b256:e1:m51456 ""
  PYTEST_TIMEOUT=120 gpu_tests run2_gpu_tests "pdl or graph or default_path_bit_exact"
  (cd "$OUT" && tar czf run2_logs.tar.gz run2_*.log json && rm -rf json run2_*.log) ;;
run3)
  export DEADLINE_S=100 PROBE_TIMEOUT=90
  for where in dram l2; do
    opts=""; [[ $where == l2 ]] && opts="--input-copies 2"
    probe_bench run3_split_${where} 15x16384,16x16384 fp8quant,fp8quant:registers:t512:s2 "$opts"
    probe_bench run3_small_${where} 1x8192,2x8192,8x8192,20x8192,8x4096 fp8quant,fp8quant:registers:e0 "$opts"
  done
  (cd "$OUT" && tar czf run3_logs.tar.gz run3_*.log json && rm -rf json run3_*.log)
  PYTEST_TIMEOUT=210 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4 ;;
esac
