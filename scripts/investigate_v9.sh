#!/usr/bin/env bash
# v9 device runs (docs/performance.md, v9). Usage on the device tool: OUT=$OUT bash scripts/investigate_v9.sh [run]
#   run1: (a) the PDL test against a mutant without griddepcontrol.wait / gdc_wait (it must
#         fail), (b) GPU tests of every path, rows shared by CTAs included, (c) decode shapes at
#         every CTAs-per-row for 64-512 threads per row (at 583d171, the first planner rule)
#   run2: the mutant again (the PDL test rewritten after run 1's mutant passed it), the GPU
#         evidence (scripts/gpu_check.sh), every decode shape with the v9 planner
#   run3: the mutant once more (the PDL test queues both calls behind a sleep since run 2, where
#         its Triton cases passed the mutant), then the committed evidence: gpu_check.sh and
#         gpu_bench_all.sh
#   run4: the GPU tests again with more time (run 3's pytest hit its timeout in teardown, after
#         every test had run); at 100-200 MB, bf16 and fp16 alternated twice: threads per row
#         and CTA size (fp8quant:registers:tN:bB) of the 2-vector plans
#   run5: v8 (old_v8 = `git archive 88cf4f7 fp8quant`), v9 as committed at 1b458a8 (old_v9a:
#         the part's bounds read at run time in every instance) and this tree (shared rows in
#         kSplitRow instances), alternated twice, plus GPU tests of every path (RUN_TESTS=1).
#         old_v8/ and old_v9a/ are carried untracked and deleted after the run.
#   run6: is run 5's difference the kernels or where the buffers land? This tree and v8, each
#         with 0, 6 and 70 MB of GPU memory allocated before the bench starts (old_v8 carried)
#   run7: which difference between v8 and this tree costs the non-shared plans: var_a = v8 with
#         one more int32 in PerTokenParams, var_b = this tree without the kSplitRow instances
#         (both carried untracked, made by hand as docs/performance.md v9 says), alternated twice
#   run11: decode shapes with the bench as committed, then with every buffer in L2 (4 input copies,
#         8 calls per graph, so 8 output buffers; bench.input_sets/calls_per_graph patched)
#   run8: the committed evidence after PerTokenParams went back to 72 bytes: a short A/B against
#         v8 (old_v8 carried), gpu_check.sh, gpu_bench_all.sh
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench()
mutant_pdl_test() {  # the PDL race test must fail once the kernels no longer wait
  local cuh=fp8quant/csrc/per_token_quant_fp8.cuh tk=fp8quant/triton_kernels.py
  cp $cuh /tmp/cuh.orig; cp $tk /tmp/tk.orig
  sed -i 's|asm volatile("griddepcontrol.wait;" ::: "memory");|/* mutant: no wait */|' $cuh
  sed -i 's|^\( *\)gdc_wait()|\1pass  # mutant: no gdc_wait|' $tk
  echo "mutated: $(grep -c 'mutant' $cuh) CUDA, $(grep -c 'mutant' $tk) Triton"
  FP8QUANT_CACHE_DIR=/tmp/fp8quant-mutant timeout 200 python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider \
    -k pdl_waits > "$OUT/mutant_pdl.log" 2>&1
  echo "mutant: $(tail -1 "$OUT/mutant_pdl.log")"; grep -E "^FAILED" "$OUT/mutant_pdl.log" | head -8
  cp /tmp/cuh.orig $cuh; cp /tmp/tk.orig $tk
}
case "${1:-run1}" in
run1)
  mutant_pdl_test
  /usr/bin/time -f "prebuild %e s" python3 -m fp8quant prebuild | tail -1
  timeout ${PYTEST_TIMEOUT:-200} python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider -n 8 \
    -k "pdl or every_path or edge_rows or default_path" > "$OUT/tests.log" 2>&1
  tail -1 "$OUT/tests.log"; grep -E "^(FAILED|E  )" "$OUT/tests.log" | head -8
  splits="fp8quant:registers:t64:s*,fp8quant:registers:t128:s*,fp8quant:registers:t256:s*,fp8quant:registers:t512:s*"
  bench split1 "1x1368,1x2048,16x2048,1x4096,4x4096,16x4096,64x4096,1x5120,16x5120,1x7168,16x7168,32x7168,1x8192,8x8192,16x8192,32x8192,64x8192,1x16384,4x16384,8x16384,16x16384,32x16384,64x16384" \
    "fp8quant,fp8quant:nopdl,triton,copy,$splits" ;;
run2)
  mutant_pdl_test
  PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-240} bash scripts/gpu_check.sh > /dev/null 2>&1
  tail -1 "$OUT/gpu_tests.log"; grep -E "^FAILED" "$OUT/gpu_tests.log" | head -8; grep -h SUMMARY "$OUT"/sanitizer_*.log
  decode=$(python3 -c "from fp8quant import bench; print(','.join(f'{s.tokens}x{s.hidden}' for s in bench.full_grid() if s.group == 'decode'))")
  bench decode "$decode" "fp8quant,fp8quant:nopdl,triton,copy" ;;
run3)
  mutant_pdl_test
  PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-230} bash scripts/gpu_check.sh > /dev/null 2>&1
  tail -1 "$OUT/gpu_tests.log"; grep -E "^FAILED" "$OUT/gpu_tests.log" | head -8; grep -h SUMMARY "$OUT"/sanitizer_*.log
  BENCH_TIMEOUT=${BENCH_TIMEOUT:-240} OUT=$OUT bash scripts/gpu_bench_all.sh
  (cd "$OUT" && tar czf logs.tar.gz gpu_env.log gpu_tests.log sanitizer_*.log mutant_pdl.log bench_float16.log \
    bench_float32.log float16 float32 && rm -rf gpu_env.log gpu_tests.log sanitizer_*.log bench_float16.log \
    bench_float32.log float16 float32)
  mkdir -p "$OUT/json" ;;
run4)
  /usr/bin/time -f "prebuild %e s" python3 -m fp8quant prebuild | tail -1
  timeout 330 python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider -n 8 > "$OUT/gpu_tests.log" 2>&1
  tail -1 "$OUT/gpu_tests.log"; grep -E "^FAILED" "$OUT/gpu_tests.log" | head -8
  shapes=16384x2048,8192x4096,4096x8192,32768x1368,4096x16384
  forced=fp8quant:registers:t64,fp8quant:registers:t128,fp8quant:registers:t256,fp8quant:registers:t512
  forced=$forced,fp8quant:registers:t64:b256,fp8quant:registers:t128:b256,fp8quant:registers:t128:b512,fp8quant:registers:t256:b512
  for round in 1 2; do
    for dtype in bfloat16 float16; do
      BENCH_ARGS="--dtype $dtype" bench "cta_${dtype}_$round" "$shapes" "fp8quant,copy,$forced"
    done
  done ;;
run5)
  if [ "${RUN_TESTS:-1}" = 1 ]; then
    timeout 200 python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider -n 8 \
      -k "pdl or every_path or edge_rows or default_path" > "$OUT/tests.log" 2>&1
    tail -1 "$OUT/tests.log"; grep -E "^(FAILED|E  )" "$OUT/tests.log" | head -8
  fi
  shapes=128x1368,128x8192,256x4096,256x7168,1024x2048,1024x4096,2048x2048,4096x1368,4096x4096,1x16384,16x16384,1x4096,8x2048
  for round in 1 2; do
    bench "new$round" "$shapes" "fp8quant,copy"
    (cd old_v9a && bench "v9a$round" "$shapes" "fp8quant,copy")
    (cd old_v8 && bench "v8$round" "$shapes" "fp8quant,copy")
  done ;;
run6)
  shapes=128x8192,1024x2048,1024x4096,2048x2048,4096x1368
  padded_bench() {  # name, MB allocated first
    timeout 120 python3 -c "import sys, torch; pad = torch.empty($2 * 2**20 + 1, dtype=torch.uint8, device='cuda'); \
from fp8quant import bench; sys.exit(bench.main(['--shapes', '$shapes', '--providers', 'fp8quant,copy', '--out', '$OUT/$1']))" \
      2>&1 | grep -v "^bench:" > "$OUT/$1.log"
    mkdir -p "$OUT/json"; mv "$OUT/$1"/*.json "$OUT/json/$1.json" 2>/dev/null; rm -rf "$OUT/$1"; echo "[$1] $(grep -E '^summary' "$OUT/$1.log")"
  }
  for pad in 0 6 70; do
    padded_bench "new_pad$pad" $pad
    (cd old_v8 && padded_bench "v8_pad$pad" $pad)
  done ;;
run7)
  shapes=128x8192,1024x2048,1024x4096,2048x2048,4096x1368
  for round in 1 2; do
    bench "new$round" "$shapes" "fp8quant,copy"
    for v in old_v8 var_a var_b; do (cd $v && bench "${v}_$round" "$shapes" "fp8quant,copy"); done
  done ;;
run11)
  python3 -m fp8quant prebuild > /dev/null
  shapes=16x8192,32x8192,64x4096,64x8192,64x16384,128x1368,128x4096,128x8192,128x16384,256x2048,256x4096,256x8192,256x16384
  bench decode_as_committed "$shapes" "fp8quant,triton,copy"
  timeout 150 python3 -c "import sys; from fp8quant import bench; sets = bench.input_sets; \
bench.input_sets = lambda *a, **k: sets(*a, **k)[:4]; bench.calls_per_graph = lambda nbytes: 8; \
sys.exit(bench.main(['--shapes', '$shapes', '--providers', 'fp8quant,triton,copy', '--out', '$OUT/decode_in_l2']))" \
    2>&1 | grep -v "^bench:" > "$OUT/decode_in_l2.log"
  mkdir -p "$OUT/json"; mv "$OUT/decode_in_l2"/*.json "$OUT/json/decode_in_l2.json"; rm -rf "$OUT/decode_in_l2"
  grep -E "^summary" "$OUT/decode_in_l2.log" ;;
run8)
  python3 -m fp8quant prebuild > /dev/null
  shapes=128x8192,1024x4096,2048x2048,1x16384
  bench ab_new "$shapes" "fp8quant,copy"; (cd old_v8 && bench ab_v8 "$shapes" "fp8quant,copy")
  PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-260} bash scripts/gpu_check.sh > /dev/null 2>&1
  tail -1 "$OUT/gpu_tests.log"; grep -E "^FAILED" "$OUT/gpu_tests.log" | head -8; grep -h SUMMARY "$OUT"/sanitizer_*.log
  BENCH_TIMEOUT=${BENCH_TIMEOUT:-240} OUT=$OUT bash scripts/gpu_bench_all.sh
  (cd "$OUT" && tar czf logs.tar.gz gpu_env.log gpu_tests.log sanitizer_*.log bench_float16.log bench_float32.log \
    float16 float32 ab_new.log ab_v8.log && rm -rf gpu_env.log gpu_tests.log sanitizer_*.log bench_float16.log \
    bench_float32.log float16 float32 ab_new.log ab_v8.log) ;;
esac
tar czf "$OUT/json.tar.gz" -C "$OUT" json && rm -rf "$OUT/json"
