#!/usr/bin/env bash
# v17 device runs (docs/performance.md, v17). Usage on the device tool: OUT=$OUT bash scripts/investigate_v17.sh [run]
#   run1: where a line sits in L2 (v15 runs 6-11 left it open): scripts/l2_prefetch_probe.cu's
#         `lines` mode times each 128-byte line's first load and 4 more after warm-ups by nothing,
#         prefetch.global.L2, a real load, and a store (an engine's activations are written by the
#         kernel before), read by the same CTA index and by another (row + 64); the SASS of the
#         timed loop first (it came back empty: cuobjdump's -fun wants the mangled name). Then
#         the bench's new second round at the decode shapes (inputs in L2), through
#         tests/test_bench.py on the GPU and a bench of the 63 decode shapes.
#   run2: run 1: prefetched lines read ~200 cycles slower than loaded or written ones for about
#         half the lines (a bimodal first load; repeats all ~280 cycles), written lines like
#         loaded ones (~30% slow when another CTA index reads them). The probe's touch modes (is
#         a line near as a whole once one sector was loaded), then the full bench (python3 -m
#         fp8quant bench --out $OUT), the committed result.
#   run3: run 2 (the committed result): with inputs in L2 only 32x16384 is over 1 us (1.07). The
#         few-long-row shapes whose rows v11 stopped sharing between CTAs (reads over 1 MiB, timed
#         from DRAM) with shared rows forced (t512/t256 x 2/4 CTAs per row), from DRAM and with the
#         inputs in L2 (bench_probe_providers.py --input-copies 2), twice.
#   run4: run 3: no plan brings 32x16384 within 1 us from L2 (t512:s2 1.63 us, 1.03 over). The
#         full bench on an H200 (kind nvidia-h200: the same sm_90 modules, 132 SMs, HBM3e): how
#         the H100's planner and targets carry over to the other Hopper part the device lends.
#   run5: run 4 (H200, copy 4226 GB/s): >100 MB 78.8-104.5%. Every 1368-wide input reads 79-80%
#         (Triton too), 7168 94.7-95.6% and 65536x8192 101.3% (Triton 95.0-97.2% and 104.1%); the
#         rest 100-104.5%. Other plans at those shapes on the H200, twice.
#   run6: run 5 (H200): 1368 at t64 x 3 0.79x the planner's time (32768x1368 31.9-32.0 us against
#         40.4 at t128 x 2), 7168 at t256 x 4 0.93x (81.2 against 87.4), 65536x8192 t256 x 4 369.9
#         against 374.6 (Triton 366.9): the H100's two-vector preference (v8, v10) loses on the
#         H200. The 30 grid shapes of 4 MiB or more where the planner takes 2 vectors per thread,
#         against the same rows at 3-4 vectors (t64 for 1368 and 2048, t128 for 4096, t256 for
#         7168 and 8192), on the H200, twice.
#   run7: run 6: on the H200 the two-vector plans lose at 1368 (t64 x 3 0.78x), 7168 and 8192 (t256
#         x 4 0.92-0.98x) and win at 2048 and 4096. planner.TWO_VECTORS_LARGE_MAX_DRAM_PER_SM (32
#         GB/s of peak DRAM bandwidth per SM; H100 SXM 25, H200 37): beyond it large inputs keep
#         the mid-size preferences. On the H200: the device's bandwidth as the package reads it,
#         the GPU tests of the default path, then the full bench.
#   run8: the GPU evidence of the final code on the H100 (scripts/gpu_check.sh), its bandwidth
#         as the package reads it (the H100's plans must not change).
#   run9: run 7 (H200, the bandwidth rule): >100 MB min 97.6%, but Triton ahead at 7 shapes of
#         0.8 GB+ by 0.02-1.04% (65536x8192 366.7 vs 370.6 us; 262144x4096, 524288x2048 and
#         524288x4096 0.6%), where its programs hold 8-16 vectors per thread. Our plans with 8
#         vectors (t32 at 2048, t64 at 4096, t128 at 8192) and 2 rows per CTA against the
#         planner's, on the H200, twice.
#   run10: the bandwidth rule's plans that no run measured, on the H200: float32 rows of 4096
#         (t256 x 4 instead of t512 x 2) and bf16 rows of 3584 (t128 x 4 instead of t256 x 2, a
#         2/3-filled two-vector plan) against the H100's plans, twice.
#   run11: the few-long-row decode shapes take the shared-row rule's threads per row (at least
#         128, rows in at most 5 vectors: t512 x 4 at 16384) even where v11's 1 MiB bound leaves
#         their rows unshared (32x16384, 64x16384, 32-64 x 7168-8192); the few-rows rule would give
#         256 x 8 at 16384. Fewer threads per row, one CTA each, against the planner's, from DRAM
#         and from L2, twice, on the H100.
#   run12: the float16 full bench on the H100 at the final code (float16's committed evidence was
#         v14's 4bf8d71; the same kernel and 16-bit plans since, now with the L2 decode round).
# The bfloat16 modules come prebuilt in $FP8QUANT_CACHE_DIR (carried: built here with
# `python -m fp8quant prebuild --arch 90`, the same nvcc 13.0).
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), probe_bench(), ...
case "${1:-run1}" in
run1)
  nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/l2probe scripts/l2_prefetch_probe.cu || exit 1
  cuobjdump -sass -fun lines_measure_kernel /tmp/l2probe | grep -E "CS2R|LDG|STS|S2UR" | head -12 > "$OUT/run1_sass.log"
  cat "$OUT/run1_sass.log"
  timeout 120 /tmp/l2probe lines 2>&1 | tee "$OUT/run1_lines.log"
  PYTEST_TIMEOUT=240 timeout 240 python3 -m pytest tests/test_bench.py -q -p no:cacheprovider > "$OUT/run1_test_bench.log" 2>&1
  echo "[test_bench] $(tail -1 "$OUT/run1_test_bench.log")"
  decode=$(python3 -c "from fp8quant import bench; print(','.join(f'{s.tokens}x{s.hidden}' for s in bench.full_grid() if s.group == 'decode'))")
  BENCH_TIMEOUT=300 bench run1_decode "$decode" fp8quant,fp8quant:nopdl,triton,torch.compile,copy
  (cd "$OUT" && tar czf run1_logs.tar.gz *.log json && rm -rf json *.log) ;;
run3)
  shapes=16x16384,32x8192,32x16384,64x8192,64x16384
  provs=fp8quant,fp8quant:registers:t512:s2,fp8quant:registers:t512:s4,fp8quant:registers:t256:s2
  provs=$provs,fp8quant:registers:t256:s4,fp8quant:registers:t512,copy
  for round in 1 2; do
    probe_bench run3_dram_$round $shapes $provs ""
    probe_bench run3_l2_$round $shapes $provs "--input-copies 2"
  done
  (cd "$OUT" && tar czf run3_logs.tar.gz *.log json && rm -rf json *.log) ;;
run4)  # the full bench on the H200, its log beside its results
  timeout 560 python3 -m fp8quant bench --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_full_h200.log"
  grep -E "^(device|summary)" "$OUT/bench_full_h200.log" ;;
run5)  # on the H200
  shapes=32768x1368,131072x1368,16384x7168,65536x7168,65536x8192
  provs=fp8quant,triton,copy,fp8quant:registers:t32,fp8quant:registers:t64,fp8quant:registers:t64:b64
  provs=$provs,fp8quant:registers:t64:b256,fp8quant:registers:t128:b256,fp8quant:registers:t256
  provs=$provs,fp8quant:registers:t128
  for round in 1 2; do probe_bench run5_$round $shapes $provs ""; done
  (cd "$OUT" && tar czf run5_logs.tar.gz *.log json && rm -rf json *.log) ;;
run6)  # on the H200
  two=1024x2048,1024x4096,2048x2048,2048x4096,4096x2048,4096x4096,8192x2048,8192x4096,16384x2048
  two=$two,16384x4096,32768x1368,32768x2048,32768x4096,65536x1368,65536x2048,65536x4096,131072x1368
  two=$two,131072x2048,131072x4096,262144x1368,262144x2048,262144x4096,524288x1368,524288x2048
  two=$two,524288x4096,4096x8192,16384x7168,16384x8192,65536x7168,65536x8192
  provs=fp8quant,fp8quant:registers:t64,fp8quant:registers:t128,fp8quant:registers:t256,triton,copy
  for round in 1 2; do PROBE_TIMEOUT=250 DEADLINE_S=300 probe_bench run6_$round $two $provs ""; done
  (cd "$OUT" && tar czf run6_logs.tar.gz *.log json && rm -rf json *.log) ;;
run9)  # on the H200
  big=131072x2048,262144x2048,524288x2048,131072x4096,262144x4096,524288x4096,65536x8192,16384x8192
  provs=fp8quant,triton,fp8quant:registers:t32,fp8quant:registers:t64,fp8quant:registers:t128
  provs=$provs,fp8quant:registers:t32:b64,fp8quant:registers:t64:b64,fp8quant:registers:t128:b128
  for round in 1 2; do PROBE_TIMEOUT=250 DEADLINE_S=300 probe_bench run9_$round $big $provs ""; done
  (cd "$OUT" && tar czf run9_logs.tar.gz *.log json && rm -rf json *.log) ;;
run10)  # on the H200
  for round in 1 2; do
    BENCH_ARGS="--dtype float32" probe_bench run10_f32_$round 16384x4096,65536x4096,131072x4096 \
      fp8quant,fp8quant:registers:t512,triton,copy ""
    probe_bench run10_3584_$round 20000x3584,65536x3584 fp8quant,fp8quant:registers:t256,triton,copy ""
  done
  (cd "$OUT" && tar czf run10_logs.tar.gz *.log json && rm -rf json *.log) ;;
run11)  # on the H100
  shapes=8x16384,16x16384,32x16384,64x16384,32x7168,64x7168,32x8192,64x8192
  provs=fp8quant,fp8quant:registers:t512:s1,fp8quant:registers:t256:s1,fp8quant:registers:t128:s1
  provs=$provs,fp8quant:registers:t256:s2,copy
  for round in 1 2; do
    probe_bench run11_dram_$round $shapes $provs ""
    probe_bench run11_l2_$round $shapes $provs "--input-copies 2"
  done
  (cd "$OUT" && tar czf run11_logs.tar.gz *.log json && rm -rf json *.log) ;;
run12)  # on the H100
  timeout 420 python3 -m fp8quant bench --dtype float16 --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_float16.log"
  grep -E "^(device|summary)" "$OUT/bench_float16.log" ;;
run7)  # on the H200
  python3 -c "from fp8quant import _cuda, planner; i = _cuda.device_info(0); print(i, i.dram_bytes_per_s_per_sm / 1e9, 'GB/s per SM')" \
    | tee "$OUT/run7_device_info.log"
  PYTEST_TIMEOUT=200 gpu_tests run7_gpu_tests "device_info or default_path_bit_exact or pdl_rows_per_cta"
  timeout 380 python3 -m fp8quant bench --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_full_h200.log"
  grep -E "^(device|summary)" "$OUT/bench_full_h200.log" ;;
run8)  # on the H100
  python3 -c "from fp8quant import _cuda, planner; i = _cuda.device_info(0); print(i, i.dram_bytes_per_s_per_sm / 1e9, 'GB/s per SM')" \
    | tee "$OUT/run8_device_info.log"
  PYTEST_TIMEOUT=420 OUT=$OUT bash "$(dirname "${BASH_SOURCE[0]}")/gpu_check.sh" | tail -4 ;;
run2)  # the probe's touch modes, then the committed result: the full bench as the device call ran it
  nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/l2probe scripts/l2_prefetch_probe.cu || exit 1
  timeout 60 /tmp/l2probe lines 2>&1 > "$OUT/run2_lines.log"; tail -13 "$OUT/run2_lines.log"
  timeout 520 python3 -m fp8quant bench --out "$OUT" 2>&1 | grep -v "^bench:" > "$OUT/bench_full.log"
  grep -E "^(device|summary)" "$OUT/bench_full.log" ;;
esac
