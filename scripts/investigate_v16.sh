#!/usr/bin/env bash
# v16 device runs (docs/performance.md, v16). Usage on the device tool: OUT=$OUT bash scripts/investigate_v16.sh [run]
#   run1: v15 run 11: a row the TMA copied to shared memory reads as fast as one real loads brought
#         (937 cycles; prefetched 1459). The register kernel with thread 0 copying the CTA's rows to
#         dynamic shared memory by one cp.async.bulk before the wait, instead of the prefetch
#         (-DFP8QUANT_EXPERIMENT_TMA_WARM, 19ee62c's switch; the shared memory given by the forced
#         plans' :mBYTES), against the plain build with the same forced plans (each the planner's
#         own plan but for the shared memory), at the decode shapes over 1 us from DRAM in fbd408b's
#         run, twice, alternated. In the TMA build the planner's own plan (no shared memory) has
#         neither copy nor prefetch: the "fp8quant" column there is the kernel without either.
#   run2: run 1: TMA_WARM slower everywhere (0.01-0.41 us); the switch taken out again. The
#         10-100 MB shapes at 83-87% (1024x4096, 2048x2048, 4096x1368, 1024x5120) run one wave of
#         CTAs that fills every SM's threads (t256 x 2 vectors: 1024 CTAs of 256 threads, 7-8 per
#         SM), so under PDL the next call's CTAs, and their prefetch, start only as this call's
#         exit. Fewer threads per row, more vectors per thread (t64 x 8 at 4096, t32 x 8 at 2048)
#         leave room for the next call's CTAs beside this call's: the forced plans against the
#         planner's, twice. Then where the CTAs of 3 rows per CTA sit late in a chain of 200
#         against 2 and 4 (v15 Next item 3; SMID build, chain_probe.py --provider)
#   run3: run 2: fewer threads per row lose at every mid size (1024x4096 t64 5.2-6.1 us against
#         5.06-5.08), but 4096x1368 reads 6.43-6.45 us with 4 or 8 rows of t64 per CTA (256 or 512
#         threads) against 6.68-6.69 with the planner's 2 (128 threads). The CTA size at 1368 from
#         256 to 65536 rows, twice. And in chains of 200, 4 rows per CTA (grid 67-70) were as fast
#         as or faster than 2 (3.24-3.40 us) where 3 lag (265x8192 3.58, 280x8192 3.69; 10-13 SMs
#         holding 2): k = 2, 3, 4 at t128 over 265-370 rows of 12-16 KiB, bf16 and float32, twice
#   run4: run 3: at 1368 no CTA size wins everywhere (4096x1368 6.43 us with 4-8 rows of t64
#         per CTA against 6.69, but 2048x1368 4.20-4.36 against 3.88-3.92): left. Two rows per
#         CTA were as fast as or faster than three up to 310 rows of 16 KiB (265x8192 3.24-3.25
#         against 3.51-3.54) and lost from 340 rows in float32: planner.PDL_TWO_ROWS_MAX_CTAS_PER_SM
#         (k = 2 instead of 3 where the 2-row grid is at most 1.2 x SMs: 265-316 rows on an H100,
#         at the planner's threads per row, 256 at 16 KiB; 32 KiB rows packed two per CTA there
#         too). The new planner against the old 3 rows (t128:b384), 2 rows at t128 and one row
#         per CTA, twice; then the GPU evidence (scripts/gpu_check.sh)
#   run5: run 4: two rows per CTA at the planner's t256 lost to two at t128 (float32 316x4096
#         3.40-3.54 us against 3.18), and two rows of 24-32 KiB lost to one (300x12288 5.92-5.94
#         against 5.15-5.19): the rule now takes 2 rows at the threads per row of 3 (t128), and
#         only where 3 rows fit (rows of 12-16 KiB). The final planner against 3 rows and 2 rows
#         at t128 forced, twice; then the GPU evidence again (scripts/gpu_check.sh)
#   run6: run 5: two rows at t128 0.2-0.3 us ahead of three at 265-316 bf16 rows of 16 KiB, even
#         at 12-14 KiB, but float32 300x4096 and 316x4096 0.05-0.17 us behind: the rule now for
#         16-bit elements only. The GPU evidence of the final planner (scripts/gpu_check.sh), then
#         one round of the planner against 3 and 2 rows at t128 (the float32 shapes now 3 rows)
#   run7: the full bench at 63ba623 (python3 -m fp8quant bench --out $OUT; the committed result)
#   run8: run 7: our Triton kernel ahead at 4 shapes of 1 GB+ by 0.01-0.16%. Loads with an L2
#         evict-first policy and no L1 allocation (-DFP8QUANT_EXPERIMENT_EVICT_FIRST, a switch
#         since v5, not measured since the bench's method changed) against the plain build and
#         Triton at those shapes, twice, alternated; then 2 rows per CTA against 3 at 317-352
#         bf16 rows (the two-row rule's bound, Next item 3), twice
#   run9: run 8: evict-first loads 2.1-2.3% slower at the 1 GB+ shapes (dropped again); two rows
#         per CTA as fast as three or faster up to 352 bf16 rows (340x8192 3.74-3.75 against
#         3.97-4.01): PDL_TWO_ROWS_MAX_CTAS_PER_SM = 4/3 (265-352 rows). The GPU evidence of that
#         planner (scripts/gpu_check.sh), then one round of it against 3 rows at 340-353 rows
# The bfloat16 modules come prebuilt in $FP8QUANT_CACHE_DIR (carried: built here with
# `python -m fp8quant prebuild --arch 90`, plain and with the flag, the same nvcc 13.0).
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), probe_bench(), ...
case "${1:-run1}" in
run1)
  # Forced plans, each the planner's own but for the shared memory: t256:b256 (one row per CTA,
  # 4-16 KiB rows), t512:b512 (32x and 64x16384), t256:b512 (2 rows per CTA: 256x7168, 256x8192,
  # 256x16384), t128:b128 (256x2048), t512:s2 (16x16384, rows shared by 2 CTAs). A forced plan
  # runs at every shape it can (the other cells are not the planner's plan: read the matching one).
  shapes=128x4096,128x5120,128x7168,128x8192,64x8192,64x7168,256x4096,256x5120,128x16384
  shapes=$shapes,32x16384,64x16384,256x7168,256x8192,256x16384,256x2048,16x16384
  provs=fp8quant,fp8quant:registers:t256:b256:m32896,fp8quant:registers:t512:b512:m32896
  provs=$provs,fp8quant:registers:t256:b512:m65664,fp8quant:registers:t128:b128:m4224
  provs=$provs,fp8quant:registers:t512:s2:m32896,copy
  for round in 1 2; do
    probe_bench run1_plain_$round $shapes $provs ""
    FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_TMA_WARM probe_bench run1_tma_$round $shapes $provs ""
  done
  (cd "$OUT" && tar czf run1_logs.tar.gz *.log json && rm -rf json *.log) ;;
run2)
  shapes=1024x4096,2048x2048,4096x1368,1024x5120,1024x7168,2048x4096,4096x2048,256x16384
  provs=fp8quant,fp8quant:registers:t32:b128,fp8quant:registers:t32:b256,fp8quant:registers:t64:b128
  provs=$provs,fp8quant:registers:t64:b256,fp8quant:registers:t64:b512,fp8quant:registers:t128:b128
  provs=$provs,fp8quant:registers:t128:b512,copy
  for round in 1 2; do probe_bench run2_$round $shapes $provs ""; done
  for prov in fp8quant:registers:t128:b256 fp8quant:registers:t128:b384 fp8quant:registers:t128:b512; do
    (( SECONDS > ${DEADLINE_S:-480} )) && break
    PYTHONPATH=$PWD FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_SMID timeout 100 python3 scripts/chain_probe.py \
      265x8192 280x8192 270x8192 --calls 17,200 --outputs bench --methods steady --smid --provider $prov \
      2>&1 | tee -a "$OUT/run2_chain.log"
  done
  (cd "$OUT" && tar czf run2_logs.tar.gz *.log json && rm -rf json *.log) ;;
run3)
  shapes=256x1368,512x1368,1024x1368,2048x1368,4096x1368,8192x1368,16384x1368,32768x1368,65536x1368
  provs=fp8quant,fp8quant:registers:t64:b128,fp8quant:registers:t64:b256,fp8quant:registers:t64:b512
  provs=$provs,fp8quant:registers:t32:b128,fp8quant:registers:t32:b256,fp8quant:registers:t128:b256,copy
  for round in 1 2; do probe_bench run3_1368_$round $shapes $provs ""; done
  rows=265x8192,275x8192,285x8192,295x8192,310x8192,320x8192,340x8192,352x8192,360x8192,370x8192
  rows=$rows,270x7168,300x7168,340x7168,270x6144,300x6144,340x6144
  provs=fp8quant,fp8quant:registers:t128:b256,fp8quant:registers:t128:b384,fp8quant:registers:t128:b512,copy
  for round in 1 2; do
    probe_bench run3_rows_$round $rows $provs ""
    BENCH_ARGS="--dtype float32" probe_bench run3_rows_f32_$round 270x4096,300x4096,340x4096,360x4096 $provs ""
  done
  (cd "$OUT" && tar czf run3_logs.tar.gz *.log json && rm -rf json *.log) ;;
run4)
  rows=265x8192,280x8192,295x8192,310x8192,316x8192,317x8192,330x8192,270x7168,310x7168,270x6144
  rows=$rows,310x6144,265x16384,300x16384,316x16384,300x12288
  provs=fp8quant,fp8quant:registers:t128:b384,fp8quant:registers:t128:b256,fp8quant:registers:t256:b256,copy
  for round in 1 2; do
    probe_bench run4_rows_$round $rows $provs ""
    BENCH_ARGS="--dtype float32" probe_bench run4_rows_f32_$round 270x4096,300x4096,316x4096 $provs ""
  done
  PYTEST_TIMEOUT=420 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4
  (cd "$OUT" && tar czf run4_logs.tar.gz *.log json && rm -rf json run4_*.log) ;;
run5)
  rows=265x8192,280x8192,295x8192,310x8192,316x8192,317x8192,270x7168,310x7168,270x6144,310x6144
  provs=fp8quant,fp8quant:registers:t128:b384,fp8quant:registers:t128:b256,copy
  for round in 1 2; do
    probe_bench run5_rows_$round $rows $provs ""
    BENCH_ARGS="--dtype float32" probe_bench run5_rows_f32_$round 270x4096,300x4096,316x4096 $provs ""
  done
  PYTEST_TIMEOUT=420 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4
  (cd "$OUT" && tar czf run5_logs.tar.gz run5_*.log json && rm -rf json run5_*.log) ;;
run6)
  PYTEST_TIMEOUT=420 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4
  provs=fp8quant,fp8quant:registers:t128:b384,fp8quant:registers:t128:b256,copy
  probe_bench run6_rows 265x8192,316x8192,317x8192,310x6144 $provs ""
  BENCH_ARGS="--dtype float32" probe_bench run6_rows_f32 270x4096,300x4096,316x4096 $provs ""
  (cd "$OUT" && tar czf run6_logs.tar.gz run6_*.log json && rm -rf json run6_*.log) ;;
run7)  # the committed result (63ba623): the full bench as the device call ran it
  timeout 450 python3 -m fp8quant bench --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_full.log"
  grep -E "^(device|summary)" "$OUT/bench_full.log" ;;
run8)
  big=65536x16384,262144x4096,524288x2048,524288x4096,32768x8192
  for round in 1 2; do
    probe_bench run8_plain_$round $big fp8quant,triton,copy ""
    FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_EVICT_FIRST probe_bench run8_evict_$round $big fp8quant,triton,copy ""
  done
  rows=317x8192,324x8192,332x8192,340x8192,346x8192,352x8192,330x7168,350x7168,330x6144,350x6144
  for round in 1 2; do
    probe_bench run8_rows_$round $rows fp8quant,fp8quant:registers:t128:b384,fp8quant:registers:t128:b256,copy ""
  done
  (cd "$OUT" && tar czf run8_logs.tar.gz run8_*.log json && rm -rf json run8_*.log) ;;
run9)
  PYTEST_TIMEOUT=420 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4
  probe_bench run9_rows 340x8192,352x8192,353x8192,340x7168 fp8quant,fp8quant:registers:t128:b384,copy ""
  (cd "$OUT" && tar czf run9_logs.tar.gz run9_*.log json && rm -rf json run9_*.log) ;;
esac
