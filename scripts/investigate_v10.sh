#!/usr/bin/env bash
# v10 device runs (docs/performance.md, v10). Usage on the device tool: OUT=$OUT bash scripts/investigate_v10.sh [run]
#   run1: L2 prefetch before griddepcontrol.wait. GPU tests of the PDL race, every path and the
#         edge rows on the prefetching build; then the decode, 10-100 MB and >100 MB shapes that
#         miss their targets, this tree against the same tree built with
#         -DFP8QUANT_EXPERIMENT_NO_PREFETCH, alternated twice
#   run2: with the prefetch, the plans again: every threads-per-row at the 10-100 MB and >100 MB
#         shapes (fewer threads per row leave room for the next call's CTAs, see v10), and
#         every CTAs-per-row at 128-512 threads per row at the decode shapes over 1 us
#   (run3: the committed evidence at f2a687f, scripts/gpu_check.sh + gpu_bench_all.sh)
#   run4: the long rows that lost with the prefetch (float32 4096x16384 99.6% -> 95.5%) and
#         some that gained, in bf16 and fp32: as committed, without the prefetch, prefetching
#         only 4 vectors per thread, prefetching only in the first 4 x SMs CTAs (the last two
#         are build switches of commit 16965c8, gone since 69469c3: run it on a checkout of 16965c8)
#   (run5: the committed evidence at 69469c3, prefetch in the first wave only)
#   run6: the decode shapes still over 1 us: every threads per row x CTAs per row, 64-512 threads
#   (run7: the GPU tests and sanitizers at 86517a3, comments changed since 69469c3:
#         PYTEST_TIMEOUT=260 bash scripts/gpu_check.sh; run8: the same at 786d512, _cuda.use_pdl)
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), gpu_tests(), prebuild_ab()
NOPF=-DFP8QUANT_EXPERIMENT_NO_PREFETCH
case "${1:-run1}" in
run1)
  prebuild_ab $NOPF
  gpu_tests run1_tests "pdl or every_path or edge_rows or default_path"
  shapes=1x4096,4x4096,1x16384,16x8192,32x8192,64x4096,64x8192,64x16384,128x4096,128x8192,128x16384,256x4096,256x16384
  shapes=$shapes,2048x2048,1024x4096,4096x1368,1024x5120,4096x8192,8192x4096,16384x2048
  for round in 1 2; do
    bench "run1_prefetch_$round" "$shapes" "fp8quant,fp8quant:nopdl,triton,copy"
    FP8QUANT_NVCC_FLAGS=$NOPF bench "run1_noprefetch_$round" "$shapes" "fp8quant,fp8quant:nopdl,triton,copy"
  done
  (cd "$OUT" && tar czf run1_logs.tar.gz *.log json && rm -rf json) ;;
run2)
  python3 -m fp8quant prebuild > /dev/null
  bench run2_mid 2048x2048,1024x4096,256x16384,1024x2048,2048x4096,4096x2048,1024x5120,4096x1368,1024x16384,4096x4096 \
    "fp8quant,copy,fp8quant:registers:t*"
  splits="fp8quant:registers:t128:s*,fp8quant:registers:t256:s*,fp8quant:registers:t512:s*"
  bench run2_decode 32x8192,64x8192,64x16384,128x4096,128x8192,128x16384,256x4096,256x8192 "fp8quant,copy,$splits"
  bench run2_large 4096x8192,8192x4096,16384x2048,32768x1368 "fp8quant,copy,fp8quant:registers:t*"
  (cd "$OUT" && tar czf run2_logs.tar.gz *.log json && rm -rf json) ;;
run4)
  bf16=4096x8192,8192x4096,4096x16384,16384x16384,1024x4096,256x16384,128x8192,64x16384,32768x4096
  fp32=4096x16384,16384x16384,8192x4096,16384x2048,1024x4096,128x8192
  for flags in "" "$NOPF" -DFP8QUANT_EXPERIMENT_PREFETCH_VECS=4 -DFP8QUANT_EXPERIMENT_PREFETCH_FIRST_CTAS=4; do
    name=$(echo "${flags:-default}" | sed 's/-DFP8QUANT_EXPERIMENT_//; s/=/_/')
    FP8QUANT_NVCC_FLAGS=$flags BENCH_TIMEOUT=150 bench "run4_bf16_$name" $bf16 "fp8quant,triton,copy"
    FP8QUANT_NVCC_FLAGS=$flags BENCH_TIMEOUT=150 BENCH_ARGS="--dtype float32" bench "run4_fp32_$name" $fp32 "fp8quant,triton,copy"
  done
  (cd "$OUT" && tar czf run4_logs.tar.gz *.log json && rm -rf json) ;;
run6)
  python3 -m fp8quant prebuild > /dev/null
  shapes=16x16384,32x7168,32x8192,32x16384,64x5120,64x7168,64x8192,64x16384,128x4096,128x5120,128x7168,128x8192
  shapes=$shapes,128x16384,256x2048,256x4096,256x5120,256x7168,256x8192,256x16384
  splits="fp8quant:registers:t64:s*,fp8quant:registers:t128:s*,fp8quant:registers:t256:s*,fp8quant:registers:t512:s*"
  bench run6_decode "$shapes" "fp8quant,copy,$splits"
  mkdir -p "$OUT/keep"; mv "$OUT/json/run6_decode.json" "$OUT/run6_decode.log" "$OUT/keep/"; rm -rf "$OUT/json" ;;
esac
