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
Options (v14 runs 3-4): --calls 17,200 (calls per graph, at least the input copies), --outputs
bench,exact,padded and --methods "steady;round;round+copy;round+copy,noreset" (subsets of the
above, the methods separated by ';'); --smid: the module is built with
-DFP8QUANT_EXPERIMENT_SMID, and after the timing each line adds where the CTAs of the graph's
last call ran (the most on one SM, the SMs used);
--provider NAME: a forced plan of the bench (e.g. fp8quant:registers:t128:b512, v15 Next item 3)
instead of the public call.
"""

from __future__ import annotations

import collections
import ctypes
import sys

import torch

from fp8quant import _cuda, bench
from fp8quant.per_token_quant_fp8 import per_token_quant_fp8

TWO_MIB = 2 * 2**20
SMID_CTAS = 4096  # kSmidCtas in per_token_quant_fp8.cuh: the CTAs whose SM the SMID build notes


def outputs(kind: str, calls: int, tokens: int, hidden: int, element_size: int) -> list:
    if kind == "exact":
        return [(torch.empty(tokens, hidden, dtype=torch.float8_e4m3fn, device="cuda"),
                 torch.empty(tokens, 1, dtype=torch.float32, device="cuda")) for _ in range(calls)]
    nbytes = bench.output_buffer_bytes(tokens, hidden, element_size)
    if kind == "padded":
        nbytes = -(-nbytes // TWO_MIB) * TWO_MIB
    return bench.output_buffers(calls, nbytes, torch.cuda.get_device_properties(0).L2_cache_size)


def last_call_placement(grid: int) -> str:
    lib = _cuda.load(torch.bfloat16, torch.cuda.current_device())
    buf = (ctypes.c_uint * SMID_CTAS)()
    lib.fp8quant_smid_read.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    if lib.fp8quant_smid_read(ctypes.addressof(buf), ctypes.sizeof(buf)):
        raise RuntimeError("fp8quant_smid_read failed (module built without -DFP8QUANT_EXPERIMENT_SMID?)")
    per_sm = collections.Counter(buf[: min(grid, SMID_CTAS)])
    hist = collections.Counter(per_sm.values())
    return (f"; last call: most CTAs on one SM {max(per_sm.values())}, SMs used {len(per_sm)}, "
            f"SMs by CTAs held {dict(sorted(hist.items()))}")


def probe(tokens: int, hidden: int, calls_set=(17, 200), kinds=("bench", "exact", "padded"),
          methods=("steady", "round", "round+copy", "round+copy,noreset"), smid: bool = False,
          provider: str | None = None) -> None:
    forced = bench.forced_provider(provider) if provider else None
    if provider and forced is None:
        raise SystemExit(f"--provider {provider!r} is not a forced plan of the bench (bench.forced_provider)")
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    xs = bench.input_sets(tokens, hidden, torch.bfloat16, l2, seed=tokens + hidden)
    esize = xs[0].element_size()
    reset = bench.reset_persisting_l2
    for calls in calls_set:
        n = max(calls, len(xs))
        with_copy = any(m.startswith("round+copy") for m in methods)
        copy_outs = outputs("bench", n, tokens, hidden, esize) if with_copy else []
        copy_graph = bench.capture_graph([bench._copy_provider(xs[i % len(xs)], copy_outs[i]) for i in range(n)]) if with_copy else None
        for kind in kinds:
            outs = outputs(kind, n, tokens, hidden, esize)

            def call(i):
                x = xs[i % len(xs)]
                if forced is not None:
                    return forced(x, outs[i] if kind != "exact" else None)
                q, s = outs[i] if kind == "exact" else bench._outputs(x, outs[i])
                return lambda: per_token_quant_fp8(x, out=q, scale_out=s)

            calls_ = [call(i) for i in range(n)]
            g = bench.capture_graph(calls_)
            cells, copy_us = {}, None
            if "steady" in methods:
                cells["steady"] = bench.steady_state_ms(g.replay, 25) * 1000.0 / n
            if "round" in methods:
                cells["round"] = bench.interleaved_time_us({"q": (g, n)}, 25)["q"]
            if with_copy:
                both = {"q": (g, n), "copy": (copy_graph, n)}
                timed = bench.interleaved_time_us(both, 25)
                cells["round+copy"], copy_us = timed["q"], timed["copy"]
                if "round+copy,noreset" in methods:
                    bench.reset_persisting_l2 = lambda: None
                    try:
                        cells["round+copy,noreset"] = bench.interleaved_time_us(both, 25)["q"]
                    finally:
                        bench.reset_persisting_l2 = reset
            where = ""
            if smid:
                g.replay()
                torch.cuda.synchronize()
                x0 = xs[0]
                q0 = torch.empty(x0.shape, dtype=torch.float8_e4m3fn, device="cuda")
                plan = getattr(calls_[-1], "plan", None) or _cuda.plan_for(x0, q0, pdl=_cuda.use_pdl(0, None))
                where = last_call_placement(plan.grid)
            label = f" {provider}" if provider else ""
            print(f"{tokens}x{hidden}{label} calls {n:3d} outputs {kind:6s}: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in cells.items())
                  + (f" (copy {copy_us:.2f})" if copy_us is not None else "") + where, flush=True)
            del g, outs, calls_
        del copy_graph, copy_outs
        torch.cuda.empty_cache()


def main(argv: list[str]) -> None:
    options = {}
    for flag in ("--calls", "--outputs", "--methods"):
        if flag in argv:
            k = argv.index(flag)
            options[flag] = argv[k + 1].split(",") if flag != "--methods" else argv[k + 1].split(";")
            argv = argv[:k] + argv[k + 2 :]
    smid = "--smid" in argv
    argv = [a for a in argv if a != "--smid"]
    provider = None
    if "--provider" in argv:
        k = argv.index("--provider")
        provider, argv = argv[k + 1], argv[:k] + argv[k + 2 :]
    kwargs = dict(smid=smid, provider=provider)
    if "--calls" in options:
        kwargs["calls_set"] = tuple(int(c) for c in options["--calls"])
    if "--outputs" in options:
        kwargs["kinds"] = tuple(options["--outputs"])
    if "--methods" in options:
        kwargs["methods"] = tuple(options["--methods"])
    for spec in argv or ["256x8192", "256x16384"]:
        t, h = (int(v) for v in spec.split("x"))
        probe(t, h, **kwargs)


if __name__ == "__main__":
    main(sys.argv[1:])
