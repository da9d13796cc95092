#!/usr/bin/env bash
# v11 device runs (docs/performance.md, v11). Usage on the device tool: OUT=$OUT bash scripts/investigate_v11.sh [run]
#   run1: fewer instructions per element (the negated residual instead of copysign, no overflow
#         check in rows whose amax is within scale_ub). GPU tests of the exact division, the edge
#         rows, every path and the PDL race on this build; then the decode shapes over 1 us,
#         256x16384, some mid and >100 MB shapes (bf16, and fp16 over 100 MB): this tree
#         against the same tree built with -DFP8QUANT_EXPERIMENT_V10_DIVISION (v10's
#         per-element code), alternated three times (run1 and run7 need that switch, gone since
#         542b937: run them on a checkout of 542b937)
#   run2: the first wave also prefetching the rows of the next 1 or 2 waves
#         (-DFP8QUANT_EXPERIMENT_PREFETCH_WAVES=2 or 3) at the 10-100 MB and >100 MB shapes, bf16
#         and fp16, three rounds; and every threads-per-row at the two shapes nearest 97%
#         (the switch is gone since: run it on a checkout of db6aa29)
#   (run3: the committed evidence at aaaff50, scripts/gpu_check.sh + gpu_bench_all.sh; its
#         pytest stopped at the 260 s timeout)
#   run4: the decode shapes over 1 us in run 3 with the v11 kernel: every threads per row
#         (128-512) x CTAs per row; and the >100 MB shapes of the float16 bench in bfloat16 and
#         float16 alternated twice (same shapes, providers and order), to tell the dtype from
#         the call's state (run 3: float16 100 MB shapes 95.3-95.7%, bfloat16 98.1-98.3%)
#   (run5: scripts/gpu_check.sh at d7a73a7; run6: scripts/gpu_bench_all.sh at d7a73a7, the
#         committed result)
#   run7: the shapes that read ~1% slower than v10's committed run in runs 3 and 6 (large
#         1368-wide, 16384x2048, 16384x5120) and the two nearest their targets: this tree
#         against -DFP8QUANT_EXPERIMENT_V10_DIVISION, alternated three times
#   run8: the in-kernel timeline of decode calls (scripts/timeline_probe.py, the module built
#         with -DFP8QUANT_EXPERIMENT_TIMELINE), and the same shapes through the bench as built
#   run9: why the 100 MB shapes read ~3% slower in an 11-shape bench than in the full one (run 4):
#         the 11 large shapes with the 4 providers of v10's float16 bench, then with the full
#         bench's providers, alternated twice
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), gpu_tests(), prebuild_ab()
V10=-DFP8QUANT_EXPERIMENT_V10_DIVISION
case "${1:-run1}" in
run1)
  prebuild_ab $V10
  gpu_tests run1_tests "division or scale_ub or pdl or every_path or edge_rows or default_path"
  decode=16x16384,32x7168,32x8192,32x16384,64x5120,64x7168,64x8192,64x16384,128x4096,128x5120,128x7168,128x8192
  decode=$decode,128x16384,256x2048,256x4096,256x5120,256x7168,256x8192,256x16384,1x4096,1x16384,128x1368
  large=2048x2048,1024x4096,4096x1368,4096x8192,8192x4096,16384x2048,4096x16384,32768x1368
  for round in 1 2 3; do
    bench "run1_new_$round" "$decode,$large" "fp8quant,triton,copy"
    FP8QUANT_NVCC_FLAGS=$V10 bench "run1_v10_$round" "$decode,$large" "fp8quant,triton,copy"
  done
  for round in 1 2; do
    BENCH_ARGS="--dtype float16" bench "run1_f16_new_$round" 4096x8192,8192x4096,16384x2048,4096x16384 "fp8quant,copy"
    FP8QUANT_NVCC_FLAGS=$V10 BENCH_ARGS="--dtype float16" bench "run1_f16_v10_$round" 4096x8192,8192x4096,16384x2048,4096x16384 "fp8quant,copy"
  done
  (cd "$OUT" && tar czf run1_logs.tar.gz *.log json && rm -rf json) ;;
run2)
  for w in 1 2 3; do
    FP8QUANT_NVCC_FLAGS=$([ $w = 1 ] || echo -DFP8QUANT_EXPERIMENT_PREFETCH_WAVES=$w) python3 -m fp8quant prebuild > /dev/null
  done
  shapes=4096x8192,8192x4096,16384x2048,4096x16384,32768x1368,2048x2048,1024x4096,4096x1368,256x16384,1024x16384,4096x4096
  for round in 1 2 3; do
    for w in 1 2 3; do
      flags=$([ $w = 1 ] || echo -DFP8QUANT_EXPERIMENT_PREFETCH_WAVES=$w)
      FP8QUANT_NVCC_FLAGS=$flags bench "run2_waves${w}_$round" "$shapes" "fp8quant,copy"
      FP8QUANT_NVCC_FLAGS=$flags BENCH_ARGS="--dtype float16" bench "run2_f16_waves${w}_$round" 4096x8192,8192x4096,16384x2048,4096x16384 "fp8quant,copy"
    done
  done
  bench run2_tpr 4096x8192,4096x16384 "fp8quant,copy,fp8quant:registers:t*"
  # At most 8 files come back from the device: only the tarball stays.
  (cd "$OUT" && tar czf run2_logs.tar.gz *.log json && rm -rf json *.log) ;;
run4)
  python3 -m fp8quant prebuild > /dev/null
  decode=16x16384,32x7168,32x8192,32x16384,64x5120,64x7168,64x8192,64x16384,128x4096,128x5120,128x7168
  decode=$decode,128x8192,128x16384,256x2048,256x4096,256x5120,256x8192,8x16384,256x7168,256x16384
  splits="fp8quant:registers:t128:s*,fp8quant:registers:t256:s*,fp8quant:registers:t512:s*"
  BENCH_TIMEOUT=240 bench run4_decode "$decode" "fp8quant,copy,$splits"
  big=32768x1368,65536x1368,16384x2048,65536x2048,8192x4096,65536x4096,16384x5120,16384x7168,16384x8192,4096x16384,16384x16384
  for round in 1 2; do
    for dtype in bfloat16 float16; do
      BENCH_ARGS="--dtype $dtype" bench "run4_${dtype}_$round" "$big" "fp8quant,fp8quant:nopdl,triton,copy"
    done
  done
  (cd "$OUT" && tar czf run4_logs.tar.gz *.log json && rm -rf json *.log) ;;
run7)
  python3 -m fp8quant prebuild > /dev/null
  FP8QUANT_NVCC_FLAGS=$V10 python3 -m fp8quant prebuild > /dev/null
  shapes=131072x1368,262144x1368,524288x1368,16384x2048,16384x5120,256x16384,4096x16384
  for round in 1 2 3; do
    bench "run7_new_$round" "$shapes" "fp8quant,triton,copy"
    FP8QUANT_NVCC_FLAGS=$V10 bench "run7_v10_$round" "$shapes" "fp8quant,triton,copy"
  done
  (cd "$OUT" && tar czf run7_logs.tar.gz *.log json && rm -rf json *.log) ;;
run8)
  shapes="1x4096 1x16384 16x16384 64x8192 128x8192 256x4096 256x16384 128x1368"
  FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_TIMELINE python3 -m fp8quant prebuild > /dev/null
  for round in 1 2; do
    PYTHONPATH=$PWD FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_TIMELINE timeout 120 python3 scripts/timeline_probe.py $shapes \
      2>&1 | tee "$OUT/run8_timeline_$round.log"
  done
  python3 -m fp8quant prebuild > /dev/null
  bench run8_bench "$(echo $shapes | tr ' ' ,)" "fp8quant,copy" ;;
run9)
  python3 -m fp8quant prebuild > /dev/null
  big=32768x1368,65536x1368,16384x2048,65536x2048,8192x4096,65536x4096,16384x5120,16384x7168,16384x8192,4096x16384,16384x16384
  for round in 1 2; do
    bench "run9_four_$round" "$big" "fp8quant,fp8quant:nopdl,triton,copy"
    bench "run9_all_$round" "$big" ""  # an empty --providers: the full bench's set
  done
  (cd "$OUT" && tar czf run9_logs.tar.gz *.log json && rm -rf json *.log) ;;
esac
