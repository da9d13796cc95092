#!/usr/bin/env bash
# Round 3 of the v6 investigation: bench --quick (interleaved timing), Triton configs, launch
# variants again (run-to-run noise), GPU tests.
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 FP8QUANT_CACHE_DIR=/tmp/fp8quant-cache
python3 -m fp8quant prebuild > /dev/null 2>&1
timeout 120 python3 -m fp8quant bench --quick --out "$OUT/quick" 2>&1 | grep -v "^bench:" > "$OUT/bench_quick.log"; tail -4 "$OUT/bench_quick.log"
timeout 240 python3 scripts/triton_configs.py 2>&1 | tee "$OUT/triton_configs.log"
SHAPES=32768x1368,16384x2048,8192x4096,4096x8192,65536x4096 timeout 90 python3 scripts/kernel_variants.py 2>&1 | tee "$OUT/variants.log"
timeout 200 python3 -m pytest tests/test_gpu.py -q -x -p no:cacheprovider -n 8 > "$OUT/gpu_tests.log" 2>&1; tail -1 "$OUT/gpu_tests.log"; grep -E "^(FAILED|E  )" "$OUT/gpu_tests.log" | head
