"""Why the bench times a call late in a long PDL chain slower than the timeline probe does
(docs/performance.md, v14 run 2).

v14 run 1: scripts/timeline_probe.py (its own graph, timed with bench.steady_state_ms, outputs of
exactly the codes' size) read 256x8192 at 2.95-3.01 us and 256x16384 at 5.05-5.20 in graphs of
17 and of 200 calls alike, where the bench (bench.interleaved_time_us, round robin with the copy
provider, the persisting L2 lines reset before each warm-up replay, outputs of
bench.output_buffer_bytes, i.e. the copy's destination size) reads 3.47 and 5.58-5.65 in graphs
of 200 calls, and 3.02 and 4.92 in graphs of 15 (v13 run 4). This times the public call (the
module as built, FP8QUANT_NVCC_FLAGS as set) at each shape in each combination of:
  calls per graph   17, 200
  outputs           "bench": views into one uint8 buffer per call of output_buffer_bytes, as the
                    bench gives them; "exact": a code tensor and a scale tensor per call, as the
                    timeline probe allocates them; "padded": as "bench", each buffer rounded up
                    to 2 MiB
  timing            "steady": bench.steady_state_ms on the graph alone; "round": bench.interleaved_time_us
                    on it alone; "round+copy": with the copy provider's graph in the round, as the
                    bench does; "round+copy,noreset": the same without the persisting-L2 reset
    python3 scripts/chain_probe.py 256x8192 256x16384
"""

from __future__ import annotations

import sys

import torch

from fp8quant import bench
from fp8quant.per_token_quant_fp8 import per_token_quant_fp8

TWO_MIB = 2 * 2**20


def outputs(kind: str, calls: int, tokens: int, hidden: int, element_size: int) -> list:
    if kind == "exact":
        return [(torch.empty(tokens, hidden, dtype=torch.float8_e4m3fn, device="cuda"),
                 torch.empty(tokens, 1, dtype=torch.float32, device="cuda")) for _ in range(calls)]
    nbytes = bench.output_buffer_bytes(tokens, hidden, element_size)
    if kind == "padded":
        nbytes = -(-nbytes // TWO_MIB) * TWO_MIB
    return [torch.empty(nbytes, dtype=torch.uint8, device="cuda") for _ in range(calls)]


def probe(tokens: int, hidden: int) -> None:
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    xs = bench.input_sets(tokens, hidden, torch.bfloat16, l2, seed=tokens + hidden)
    esize = xs[0].element_size()
    reset = bench.reset_persisting_l2
    for calls in (17, 200):
        n = max(calls, len(xs))
        copy_outs = outputs("bench", n, tokens, hidden, esize)
        copy_graph = bench.capture_graph([bench._copy_provider(xs[i % len(xs)], copy_outs[i]) for i in range(n)])
        for kind in ("bench", "exact", "padded"):
            outs = outputs(kind, n, tokens, hidden, esize)

            def call(i):
                x = xs[i % len(xs)]
                q, s = outs[i] if kind == "exact" else bench._outputs(x, outs[i])
                return lambda: per_token_quant_fp8(x, out=q, scale_out=s)

            g = bench.capture_graph([call(i) for i in range(n)])
            cells = {"steady": bench.steady_state_ms(g.replay, 25) * 1000.0 / n}
            cells["round"] = bench.interleaved_time_us({"q": (g, n)}, 25)["q"]
            both = {"q": (g, n), "copy": (copy_graph, n)}
            timed = bench.interleaved_time_us(both, 25)
            cells["round+copy"], copy_us = timed["q"], timed["copy"]
            bench.reset_persisting_l2 = lambda: None
            try:
                cells["round+copy,noreset"] = bench.interleaved_time_us(both, 25)["q"]
            finally:
                bench.reset_persisting_l2 = reset
            print(f"{tokens}x{hidden} calls {n:3d} outputs {kind:6s}: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in cells.items()) + f" (copy {copy_us:.2f})", flush=True)
            del g, outs
        del copy_graph, copy_outs
        torch.cuda.empty_cache()


def main(argv: list[str]) -> None:
    for spec in argv or ["256x8192", "256x16384"]:
        t, h = (int(v) for v in spec.split("x"))
        probe(t, h)


if __name__ == "__main__":
    main(sys.argv[1:])
