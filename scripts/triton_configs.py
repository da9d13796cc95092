"""Triton configuration sweep (device machine): elements per program x warps, per hidden size,
timed round robin against the current rule (fp8quant/triton_kernels.py::triton_config).
SHAPES, ELEMENTS (per program) and WARPS narrow the sweep.
Prints, per shape, microseconds and % of copy bandwidth for each config and the best one.
"""
import os
import sys
from pathlib import Path

import torch
import triton

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fp8quant import bench, triton_kernels as tk  # noqa: E402

SHAPES = os.environ.get("SHAPES", "8192x1368,65536x1368,8192x2048,65536x2048,4096x4096,32768x4096,4096x5120,16384x5120,2048x7168,16384x7168,2048x8192,16384x8192,1024x16384,8192x16384")
copy_bw = bench.copy_bandwidth_gbps()
print(f"copy {copy_bw:.0f} GB/s", flush=True)


def launcher(x, q, s, cfg):
    rows, hidden = x.shape
    grid = (triton.cdiv(rows, cfg["ROWS"]),)
    cfg = dict(cfg)
    vec = cfg.pop("VEC", 8)

    def call():
        tk._per_token_quant_fp8_kernel[grid](
            x, q, s, s, float("inf"), rows, hidden // vec, x.stride(0) // vec, VEC=vec, HAS_UB_PTR=False,
            SOFTWARE_E4M3=False, **cfg)
    return call


for spec in SHAPES.split(","):
    tokens, hidden = map(int, spec.split("x"))
    xs = bench.input_sets(tokens, hidden, torch.bfloat16, 50 * 2**20)
    nbytes = bench.bytes_moved(tokens, hidden, 2)
    g = bench.calls_per_graph(nbytes)
    block = triton.next_power_of_2(hidden)
    configs = {"rule": tk.triton_config(hidden, tokens)}
    configs["rule-vec1"] = dict(configs["rule"], VEC=1)  # lengths in elements: no alignment known
    for elements in map(int, os.environ.get("ELEMENTS", "2048,4096,8192,16384").split(",")):
        rows = max(1, elements // block)
        for warps in map(int, os.environ.get("WARPS", "4,8,16").split(",")):
            if rows * block >= elements and rows * block <= 32768:
                configs[f"e{rows * block}w{warps}"] = dict(ROWS=rows, BLOCK=block, SINGLE_PASS=True, num_warps=warps)
    graphs, keep = {}, []
    for name, cfg in configs.items():
        outs = [(torch.empty(xs[0].shape, dtype=torch.float8_e4m3fn, device="cuda"), torch.empty(tokens, device="cuda")) for _ in range(g)]
        calls = [launcher(xs[i % len(xs)], *outs[i], cfg) for i in range(g)]
        graphs[name] = (bench.capture_graph(calls), g)
        keep.append(outs)
    times = bench.interleaved_time_us(graphs, 20)
    best = min((v, k) for k, v in times.items() if not k.startswith("rule"))
    pct = lambda us: 100 * nbytes / (us * 1e-6) / 1e9 / copy_bw  # noqa: E731
    print(f"[{spec}] rule {configs['rule']} {times['rule']:.2f}us/{pct(times['rule']):.1f}% | best {best[1]} {best[0]:.2f}us/{pct(best[0]):.1f}% | "
          + " ".join(f"{k}:{pct(v):.1f}" for k, v in times.items() if k != "rule"), flush=True)
    del graphs, keep, xs
    torch.cuda.empty_cache()
