#!/usr/bin/env bash
# A performance investigation in one device call: build, the GPU tests (-x), a benchmark sweep of
# SHAPES x PROVIDERS, then ncu's occupancy/DRAM counters for our kernel and Triton's.
# Usage on the device tool: FP8QUANT_COMMIT=<sha> bash scripts/perf_sweep.sh
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 FP8QUANT_CACHE_DIR=${FP8QUANT_CACHE_DIR:-/tmp/fp8quant-cache}
SHAPES=${SHAPES:-1024x1368,8192x1368,32768x1368,131072x1368,4096x2048,16384x2048,131072x2048,2048x4096,8192x4096,65536x4096,1024x5120,4096x5120,16384x5120,1024x7168,4096x7168,16384x7168,1024x8192,4096x8192,16384x8192,256x16384,1024x16384,4096x16384,16384x16384}
PROVIDERS=${PROVIDERS:-fp8quant,triton,copy,fp8quant:shared,fp8quant:registers:t*}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
/usr/bin/time -f "prebuild %e s" python3 -m fp8quant prebuild 2>&1 | tail -1
if [ -z "${SKIP_TESTS:-}" ]; then
  timeout ${PYTEST_TIMEOUT:-200} python3 -m pytest tests/test_gpu.py -x -q -p no:cacheprovider -n 8 > "$OUT/gpu_tests.log" 2>&1
  tail -1 "$OUT/gpu_tests.log"; grep -E "^(FAILED|E  )" "$OUT/gpu_tests.log" | head -8
fi
timeout ${BENCH_TIMEOUT:-300} python3 -m fp8quant bench --shapes "$SHAPES" --providers "$PROVIDERS" --out "$OUT/sweep" \
  2>&1 | grep -v "^bench:" > "$OUT/sweep.log"
grep -E "^(device|summary)" "$OUT/sweep.log"
python3 - "$OUT/sweep" <<'PY'
import json, sys, glob, collections
r = json.load(open(glob.glob(sys.argv[1] + "/*.json")[0]))
t = collections.defaultdict(dict)
for row in r["rows"]:
    t[(row["tokens"], row["hidden"])][row["provider"]] = row["pct_copy_bw"]
for (m, h), p in t.items():
    tprs = {k.rsplit(":t", 1)[1]: v for k, v in p.items() if ":t" in k}
    best = max(tprs, key=tprs.get) if tprs else "-"
    print(f"{m}x{h}: ours {p.get('fp8quant', 0):.1f} triton {p.get('triton', 0):.1f} copy {p.get('copy', 0):.1f} "
          f"shared {p.get('fp8quant:shared', 0):.1f} | " + " ".join(f"t{k}:{v:.1f}" for k, v in tprs.items()) + f" | best t{best}")
PY
if [ -z "${SKIP_NCU:-}" ]; then
  timeout 120 ncu --clock-control none --metrics launch__registers_per_thread,launch__occupancy_limit_registers,sm__warps_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,gpu__time_duration.sum \
    python3 scripts/ncu_occupancy.py > "$OUT/ncu_occupancy.log" 2>&1
  grep -E "^[0-9]+x|per_token|registers_per|occupancy_limit|warps_active|dram__|duration" "$OUT/ncu_occupancy.log" | grep -v "==PROF==" | head -80
fi
