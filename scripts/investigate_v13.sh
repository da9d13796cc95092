#!/usr/bin/env bash
# v13 device runs (docs/performance.md, v13). Usage on the device tool: OUT=$OUT bash scripts/investigate_v13.sh [run]
#   run1: how torch.compile's kernels in the timed round make ours 1-3% faster at 100-200 MB
#         (v12 runs 6-8, 11): Inductor's generated code for the reference (TORCH_LOGS=output_code,
#         its tl.load lines); then the four 100 MB shapes with fp8quant, triton and copy alone;
#         with torch.compile; with torch.compile reading inputs of its own; with torch.compile
#         and the persisting L2 lines reset before each provider's warm-up replay; with a Triton
#         kernel that only reads x with evict_last, and the same with no policy; and alone with
#         8e8 bytes of calls per graph instead of 2e8 (fewer graph boundaries per call); twice
#   (run2: the full bench of e9bcef3, python3 -m fp8quant bench, and tests/test_bench.py)
# run1 and run3 as they ran, their benches folded into probe_rounds() after run 5.
#   run3: why the 4-13 MB shapes read 0.1-0.36 us slower with graphs of 2 GiB of calls (e9bcef3's
#         full bench: 256x8192 3.10 -> 3.47 us, 256x16384 5.21 -> 5.52): those shapes and
#         16384x2048 with 2e8 bytes per graph (as before v13), with 2 GiB, and with 2 GiB whose
#         calls write output buffers rotating over 2x the L2 (--out-rotate), twice; before
#         that, tests/test_bench.py's quick-bench test alone and after the CPU-mode test
#         (it failed in e9bcef3's device call: torch._inductor.exc...)
#   run4: tests/test_bench.py in one process (the CPU-mode report no longer runs the Triton
#         interpreter in a process with a GPU); then per-call times against calls per graph at
#         three mid shapes, with and without PDL: 2e8, 8e8 and 2^31 bytes of calls per graph
#   run5: whether the v10 prefetch is what makes long PDL chains slower at mid sizes (run 4): the
#         same three shapes with 2e8 and 2^31 bytes of calls per graph, built as they are and
#         with -DFP8QUANT_EXPERIMENT_NO_PREFETCH, twice
#   (run6: float16 and float32 through the full bench, scripts/gpu_bench_all.sh's loop without
#         bfloat16, 250 s each; logs/v13/run6/)
#   run7 (prepared in v13, not run: no device time left): where a call's time goes late in a long
#         PDL chain (Next v13, item 1): the in-kernel timeline (-DFP8QUANT_EXPERIMENT_TIMELINE)
#         of the 16 calls at the start of a chain (a graph of 17 calls) and late in one of 200,
#         at 256x8192, 256x16384 and 1024x4096, with each CTA's SM (the most CTAs of a call on
#         one SM: whether late calls are placed unevenly); then the same without the prefetch
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), probe_bench(), ...
# (probe_bench() was defined here until v14 moved it to investigate_common.sh, unchanged.)
probe_rounds() {  # run, shapes, then "label|providers|probe options" sets: each set's bench, alternated twice
  local run=$1 shapes=$2 spec label provs opts
  shift 2
  for round in 1 2; do
    for spec in "$@"; do
      IFS='|' read -r label provs opts <<< "$spec"
      probe_bench "${run}_${label}_$round" "$shapes" "$provs" "$opts"
    done
  done
}
big=16384x2048,8192x4096,32768x1368,4096x8192
case "${1:-run1}" in
run1)
  python3 -m fp8quant prebuild > /dev/null
  TORCH_LOGS=output_code timeout 120 python3 - > "$OUT/run1_output_code.log" 2>&1 <<'PY'
import torch
from fp8quant.reference import per_token_quant_fp8_reference as ref
f = torch.compile(ref, dynamic=True)
for shape in ((16384, 2048), (32768, 1368)):
    f(torch.randn(*shape, device="cuda", dtype=torch.bfloat16))
torch.cuda.synchronize()
PY
  echo "[output code] $(grep -c 'tl.load' "$OUT/run1_output_code.log") tl.load lines:"
  grep -E "tl\.load|def triton_|for r0_offset|R0_BLOCK *: tl.constexpr|persistent_reduction|reduction\(" "$OUT/run1_output_code.log" | sort | uniq -c | head -30
  three=fp8quant,triton,copy
  probe_rounds run1 $big "base|$three|" "compile|$three,torch.compile|" \
    "compileown|$three,torch.compile|--own-inputs torch.compile" "compilereset|$three,torch.compile|--reset-l2" \
    "touchlast|$three,touch:evict_last|--touch evict_last" "touchnormal|$three,touch:normal|--touch normal" \
    "calls8|$three|--calls-bytes 8e8"
  (cd "$OUT" && tar czf run1_logs.tar.gz *.log json && rm -rf json *.log) ;;
run3)
  python3 -m fp8quant prebuild > /dev/null
  timeout 100 python3 -m pytest tests/test_bench.py -q -p no:cacheprovider -k quick > "$OUT/run3_test_quick_alone.log" 2>&1
  echo "[quick alone] $(tail -1 "$OUT/run3_test_quick_alone.log")"
  timeout 120 python3 -m pytest tests/test_bench.py -q -p no:cacheprovider -x --tb=long -k "cpu_mode or quick" \
    > "$OUT/run3_test_cpu_then_quick.log" 2>&1
  echo "[cpu mode, then quick] $(tail -1 "$OUT/run3_test_cpu_then_quick.log")"
  grep -E "^E  " "$OUT/run3_test_cpu_then_quick.log" | head -12
  mid=256x7168,256x8192,256x16384,1024x4096,2048x2048,16384x2048
  probe_rounds run3 $mid "old|fp8quant,triton,copy|--calls-bytes 2e8" "new|fp8quant,triton,copy|" \
    "rotate|fp8quant,triton,copy|--out-rotate"
  (cd "$OUT" && tar czf run3_logs.tar.gz *.log json && rm -rf json *.log) ;;
run4)
  python3 -m fp8quant prebuild > /dev/null
  timeout 150 python3 -m pytest tests/test_bench.py -q -p no:cacheprovider > "$OUT/run4_test_bench.log" 2>&1
  echo "[tests/test_bench.py] $(tail -1 "$OUT/run4_test_bench.log")"
  for bytes in 2e8 8e8 2147483648; do
    probe_bench run4_calls_$bytes 256x8192,256x16384,1024x4096 "fp8quant,fp8quant:nopdl,triton,copy" "--calls-bytes $bytes"
  done
  (cd "$OUT" && tar czf run4_logs.tar.gz *.log json && rm -rf json *.log) ;;
run5)
  for flags in "" -DFP8QUANT_EXPERIMENT_NO_PREFETCH; do FP8QUANT_NVCC_FLAGS="$flags" python3 -m fp8quant prebuild > /dev/null & done
  wait
  for round in 1 2; do
    for bytes in 2e8 2147483648; do
      probe_bench run5_base_${bytes}_$round 256x8192,256x16384,1024x4096 "fp8quant,copy" "--calls-bytes $bytes"
      FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_NO_PREFETCH \
        probe_bench run5_noprefetch_${bytes}_$round 256x8192,256x16384,1024x4096 "fp8quant,copy" "--calls-bytes $bytes"
    done
  done
  (cd "$OUT" && tar czf run5_logs.tar.gz *.log json && rm -rf json *.log) ;;
run7)
  TL=-DFP8QUANT_EXPERIMENT_TIMELINE NP=-DFP8QUANT_EXPERIMENT_NO_PREFETCH
  for flags in "$TL" "$TL $NP"; do FP8QUANT_NVCC_FLAGS="$flags" python3 -m fp8quant prebuild > /dev/null & done
  wait
  for flags in "$TL" "$TL $NP"; do
    for calls in 17 200; do
      echo "== timeline [$flags] $calls calls per graph"
      PYTHONPATH=$PWD FP8QUANT_NVCC_FLAGS="$flags" timeout 150 python3 scripts/timeline_probe.py \
        256x8192 256x16384 1024x4096 --calls $calls 2>&1
    done
  done > "$OUT/run7_timeline.log"
  grep -E "^==|per call" "$OUT/run7_timeline.log"
  (cd "$OUT" && tar czf run7_logs.tar.gz *.log && rm -f *.log) ;;
esac
