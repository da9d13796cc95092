#!/usr/bin/env bash
# Round 2 of the v6 investigation: launch-shape variants and the evict-first load experiment.
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 FP8QUANT_CACHE_DIR=/tmp/fp8quant-cache
python3 -m fp8quant prebuild > /dev/null 2>&1
python3 scripts/kernel_variants.py 2>&1 | tee "$OUT/variants_default.log"
FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_EVICT_FIRST python3 scripts/kernel_variants.py 2>&1 | tee "$OUT/variants_evict_first.log"
