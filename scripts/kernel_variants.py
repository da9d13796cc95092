"""Launch-shape variants of the register kernel, timed side by side (round robin) with Triton and
a copy of the same bytes. Run twice to compare builds, e.g.
  python3 scripts/kernel_variants.py
  FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_EVICT_FIRST python3 scripts/kernel_variants.py
Prints one line per shape: microseconds per call and % of the copy bandwidth.
"""
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fp8quant import _cuda, bench  # noqa: E402

SHAPES = os.environ.get("SHAPES", "32768x1368,16384x2048,8192x4096,4096x8192,4096x16384,65536x4096,16384x8192,1x4096,256x16384")
tag = os.environ.get("FP8QUANT_NVCC_FLAGS", "") or "default build"
copy_bw = bench.copy_bandwidth_gbps()
print(f"{tag}: copy {copy_bw:.0f} GB/s", flush=True)
for spec in SHAPES.split(","):
    tokens, hidden = map(int, spec.split("x"))
    xs = bench.input_sets(tokens, hidden, torch.bfloat16, 50 * 2**20)
    nbytes = bench.bytes_moved(tokens, hidden, 2)
    g = bench.calls_per_graph(nbytes)
    q = torch.empty(xs[0].shape, dtype=torch.float8_e4m3fn, device="cuda")
    s = torch.empty(tokens, device="cuda")
    base = _cuda.plan_for(xs[0], q)
    plans = {"planner": base}
    if base.staging == "registers":
        for block in (128, 512):
            if block >= base.threads_per_row and block != base.block_threads:
                plans[f"block{block}"] = replace(base, block_threads=block, grid=math.ceil(tokens / (block // base.threads_per_row)))
    graphs, keep_alive = {}, []
    for name, plan in plans.items():
        outs = [(torch.empty_like(q), torch.empty_like(s)) for _ in range(g)]
        calls = [lambda i=i, plan=plan: _cuda.launch(xs[i % len(xs)], outs[i][0], outs[i][1], None, plan) for i in range(g)]
        graphs[name] = (bench.capture_graph(calls), g)
        keep_alive.append(outs)
    for name in ("triton", "copy"):
        make = bench.providers(True)[name]
        calls = [make(xs[i % len(xs)]) for i in range(g)]
        graphs[name] = (bench.capture_graph(calls), g)
        keep_alive.append(calls)
    times = bench.interleaved_time_us(graphs, 25)
    print(f"[{spec}] {base.name} " + " ".join(f"{k} {v:.2f}us/{100 * nbytes / (v * 1e-6) / 1e9 / copy_bw:.1f}%" for k, v in times.items()), flush=True)
    del graphs, keep_alive, xs
    torch.cuda.empty_cache()
