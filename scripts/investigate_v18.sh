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
# The bfloat16 modules of both builds come prebuilt in $FP8QUANT_CACHE_DIR (carried: built here with
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
esac
