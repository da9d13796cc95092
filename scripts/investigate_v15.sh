#!/usr/bin/env bash
# v15 device runs (docs/performance.md, v15). Usage on the device tool: OUT=$OUT bash scripts/investigate_v15.sh [run]
#   run1: planner.pdl_rows_per_cta (k = ceil(rows / SMs) rows of 12 KiB or more per CTA under PDL,
#         t128 where k > 2; v14 run 9 measured 4 rows at 384 and 512 rows): the GPU tests of the
#         packed plans and of PDL and graphs; then the public call against the old plan (one row
#         per CTA, t256:b256) and against 4 rows per CTA (t128:b512) at 265-528 rows of 12-16 KiB,
#         twice, and float32 at 300-512 rows of 4096; then our CUDA kernel against our Triton one at
#         the three 1 GB+ shapes where Triton was ahead in fbd408b's run (by 0.01-0.22%), with the
#         CUDA kernel at Triton's vectors per thread (8; 16 at 16384 is past the kernel's 8)
#   run2: run 1 found 4 rows per CTA (grid 67) 0.3 us faster than the rule's 3 (grid 89) at 265x8192,
#         and the same within 0.07 us at the other shapes: whether grids of about half the SMs
#         (2-4 rows per CTA, t128 or t256) also help the decode shapes of 128 and 256 rows of 8-16
#         KiB that the rule gives grids of 128 (one row each at 128 rows, two at 256), and the
#         10 KiB and 8 KiB rows at 256, twice
#   run3: run 2: no (the 128-row shapes 0.05-0.42 us slower with 2-4 rows per CTA; the 256-row ones
#         within 0.05 us), but 265x8192 is 0.3 us slower at the rule's 3 rows per CTA (grid 89) than
#         at 2 (t128:b256, grid 133) or 4 (grid 67). Which rows per CTA win across 140-528 rows of
#         12-16 KiB: 2, 3 and 4 rows at t128 against the planner, twice
#   run4: run 3: 2 rows per CTA at t128 were best or within 0.05 us at 140-350 rows (grids of
#         70-175), 3 rows 0.25-0.4 us slower at grids of 77, 89 and 94, 4 rows best at 450
#         (4.71-4.78 vs 4.96-5.13) and 0.1-0.3 slower at 330-350. Where 2 rows give way to 4:
#         360-528 rows, 12-16 KiB, bfloat16 and float32 (4096), and 12 KiB rows at 200-256, twice
#   run5: the GPU evidence of the final planner (scripts/gpu_check.sh: every GPU test, memcheck and
#         racecheck), then where the CTAs of the rule's 3-row plans sit late in a chain of 200
#         (SMID build, chain_probe.py): 265x8192 and 280x8192 (3 rows 0.25-0.3 us slower than 2
#         or 4 in runs 3-4) against 270x8192 and 300x8192 (3 rows as fast as the others)
#   run6: whether a prefetched line survives a kernel boundary in L2 (the decode lead in Next item
#         1): scripts/l2_prefetch_probe.cu, standalone (no torch, no PDL), per-line load latency
#         after a warm kernel that prefetches, bulk-prefetches or really loads a 2 MiB region
#   run7: run 6: prefetched lines do land in L2 and survive the boundary (412-419 cycles per
#         dependent load against 785 from DRAM; 320 for lines a real load from the same SM brought).
#         Whether they still land when the prefetch competes with DRAM traffic: l2probe stress
#   run8: run 7: they land beside a 256 MiB DRAM stream too (416-420 cycles). Whether a prefetched
#         row reads as fast as one a real load brought when all its loads are in flight at once
#         (l2probe bulk: cycles per CTA for 16 KiB), the register kernel's pattern
#   run9: run 8: a prefetched 16 KiB row takes 1417 cycles per CTA with every load in flight, one a
#         real load brought 894 (1023 read from another SM), from DRAM 3350: the production
#         kernel's DRAM-vs-L2 gap (v11 run 8: 674 vs 407 ns). Whether prefetch.global.L1 (a read
#         by the SM, through L2) brings lines as a real load does, read with .nc and .cg loads
#   run10: run 9: prefetch.global.L1 is no better (1431-1460 cycles); only a real load (any kind:
#         nc, cg, sys) brings a line so that a row reads in ~900. The register kernel with a real
#         4-byte ld.global.cg per 32-byte sector before the wait instead of the prefetch, its value
#         kept until after the row's max (-DFP8QUANT_EXPERIMENT_TOUCH_CG), against the plain build,
#         alternated twice, at the 16 decode shapes over 1 us and 4 controls; its PDL and graph
#         tests
#   run11: l2probe bulk with the row warmed into shared memory by the TMA (cp.async.bulk) or by
#         cp.async.cg: whether either brings lines as a real load does (Next item 1)
#   run12: run 11: a row the TMA copied to shared memory reads as a loaded one. The register kernel
#         with thread 0 copying the CTA's rows to dynamic shared memory by cp.async.bulk before the
#         wait instead of the prefetch (-DFP8QUANT_EXPERIMENT_TMA_WARM; the shared memory given by
#         the forced plans' :m32896), against the plain build with the same forced plans; in the
#         TMA build the planner's own plan (no shared memory) has neither copy nor prefetch
# run12 was prepared but not run (the session's device time was spent); its TMA_WARM switch is in
# 19ee62c's kernel source only, taken out of main until it is measured.
# The TOUCH_CG switch was taken out of the kernel after run 10 (0.0-0.6 us slower everywhere; docs
# v15): run 10 needs the source of its commit (86d389c). The kernel's source is 890cd02's again
# but for one comment (2b8387d; the same SASS).
# The bfloat16 modules may come prebuilt in $FP8QUANT_CACHE_DIR (carried: built here with
# `python -m fp8quant prebuild --arch 90`, the same nvcc 13.0 and so the same cache key).
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), probe_bench(), ...
case "${1:-run1}" in
run1)
  PYTEST_TIMEOUT=200 gpu_tests run1_tests "pdl_rows_per_cta or pdl or graph or edge_rows"
  rows=265x8192,300x7168,384x6144,384x7168,384x8192,396x8192,400x8192,512x7168,512x8192,528x8192
  for round in 1 2; do
    probe_bench run1_rows_$round $rows fp8quant,fp8quant:registers:t256:b256,fp8quant:registers:t128:b512,copy ""
  done
  BENCH_ARGS="--dtype float32" probe_bench run1_rows_f32 300x4096,384x4096,512x4096 \
    fp8quant,fp8quant:registers:t256:b256,copy ""
  for round in 1 2; do
    probe_bench run1_big16384_$round 65536x16384 fp8quant,triton,fp8quant:registers:t256,copy ""
    probe_bench run1_big4096_$round 262144x4096 fp8quant,triton,fp8quant:registers:t128,fp8quant:registers:t64,copy ""
    probe_bench run1_big2048_$round 524288x2048 fp8quant,triton,fp8quant:registers:t64,fp8quant:registers:t32,copy ""
  done
  (cd "$OUT" && tar czf run1_logs.tar.gz *.log json && rm -rf json *.log) ;;
run2)
  shapes=128x5120,128x7168,128x8192,200x8192,256x4096,256x5120,256x7168,256x8192,265x8192,300x7168
  provs=fp8quant,fp8quant:registers:t128:b512,fp8quant:registers:t128:b256,fp8quant:registers:t256:b512,copy
  for round in 1 2; do probe_bench run2_$round $shapes $provs ""; done
  (cd "$OUT" && tar czf run2_logs.tar.gz *.log json && rm -rf json *.log) ;;
run3)
  shapes=140x8192,170x8192,230x8192,265x8192,270x8192,280x8192,300x8192,330x8192,350x8192,265x7168,280x7168,265x6144,450x8192
  provs=fp8quant,fp8quant:registers:t128:b256,fp8quant:registers:t128:b384,fp8quant:registers:t128:b512,copy
  for round in 1 2; do probe_bench run3_$round $shapes $provs ""; done
  (cd "$OUT" && tar czf run3_logs.tar.gz *.log json && rm -rf json *.log) ;;
run4)
  shapes=360x8192,384x8192,396x8192,420x8192,480x8192,512x8192,384x7168,512x7168,384x6144,512x6144,200x6144,256x6144
  provs=fp8quant,fp8quant:registers:t128:b256,fp8quant:registers:t128:b512,copy
  for round in 1 2; do
    probe_bench run4_$round $shapes $provs ""
    BENCH_ARGS="--dtype float32" probe_bench run4_f32_$round 200x4096,256x4096,300x4096,384x4096,450x4096,512x4096 $provs ""
  done
  (cd "$OUT" && tar czf run4_logs.tar.gz *.log json && rm -rf json *.log) ;;
run5)
  PYTEST_TIMEOUT=420 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4
  PYTHONPATH=$PWD FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_SMID timeout 120 python3 scripts/chain_probe.py \
    265x8192 280x8192 270x8192 300x8192 --calls 17,200 --outputs bench --methods steady --smid 2>&1 | tee "$OUT/run5_chain.log"
  (cd "$OUT" && tar czf run5_logs.tar.gz run5_chain.log) ;;
run6)
  nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/l2probe scripts/l2_prefetch_probe.cu && \
    timeout 120 /tmp/l2probe 2>&1 | tee "$OUT/run6_l2probe.log" ;;
run7)
  nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/l2probe scripts/l2_prefetch_probe.cu && \
    timeout 120 /tmp/l2probe stress 2>&1 | tee "$OUT/run7_l2probe_stress.log" ;;
run8)
  nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/l2probe scripts/l2_prefetch_probe.cu && \
    timeout 120 /tmp/l2probe bulk 2>&1 | tee "$OUT/run8_l2probe_bulk.log" ;;
run9)
  nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/l2probe scripts/l2_prefetch_probe.cu && \
    timeout 120 /tmp/l2probe bulk 2>&1 | tee "$OUT/run9_l2probe_bulk.log" ;;
run10)
  shapes=16x16384,32x16384,64x16384,128x16384,256x16384,64x7168,64x8192,128x4096,128x5120,128x7168,128x8192
  shapes=$shapes,256x2048,256x4096,256x5120,256x7168,256x8192,1x4096,8x8192,2048x2048,16384x2048
  for round in 1 2; do
    probe_bench run10_plain_$round $shapes fp8quant,copy ""
    FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_TOUCH_CG probe_bench run10_touch_$round $shapes fp8quant,copy ""
  done
  FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_TOUCH_CG PYTEST_TIMEOUT=150 gpu_tests run10_touch_tests "pdl or graph or edge_rows"
  (cd "$OUT" && tar czf run10_logs.tar.gz *.log json && rm -rf json *.log) ;;
run11)
  nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/l2probe scripts/l2_prefetch_probe.cu && \
    timeout 120 /tmp/l2probe bulk 2>&1 | tee "$OUT/run11_l2probe_bulk.log" ;;
run12)
  shapes=128x4096,128x5120,128x7168,128x8192,64x8192,256x4096,256x5120,128x16384,64x16384,32x16384,256x8192
  provs=fp8quant,fp8quant:registers:t256:b256:m32896,fp8quant:registers:t512:b512:m32896,fp8quant:registers:t256:b512:m32896,copy
  for round in 1 2; do
    probe_bench run12_plain_$round $shapes $provs ""
    FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_TMA_WARM probe_bench run12_tma_$round $shapes $provs ""
  done
  (cd "$OUT" && tar czf run12_logs.tar.gz *.log json && rm -rf json *.log) ;;
esac
