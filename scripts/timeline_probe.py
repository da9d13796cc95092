"""Where a decode-size call's time goes, from inside the kernel (docs/performance.md, v11 run 8).

Run on the device with the module built with the timeline switch:
    FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_TIMELINE python3 scripts/timeline_probe.py 128x8192 ...
Each shape runs as the bench runs it (calls on rotating input copies captured in one CUDA graph,
the public call with its defaults, so PDL on sm_90), replayed a few times; then thread 0 of every
CTA reports, for the last 16 calls, %globaltimer (ns, one clock for all SMs) and clock64 (its SM's
cycles) at: entry, after griddepcontrol.wait, after its loads (the abs-max, which waits for them),
after the row's max, after its stores were issued, and its SM (%smid). Printed per shape: medians
over the calls, with the most CTAs of one call on one SM and the SMs a call used.
`--copies N` rotates over N input copies instead of the bench's count (2: the inputs stay in L2).
`--calls N` captures N calls per graph (at least 17 and the input copies) instead of the bench's
count, so that the 16 recorded calls are the start of a PDL chain (17) or late in a long one
(200); v13 runs 3-5 found a call late in a long chain 0.2-0.7 us slower at 1-16 MB.
`--out-copies N` (v14): the calls write N output buffers in turn instead of one each, so that a
long chain touches no more memory than a short one.
Also per call (v14): the SM clock the CTAs ran at (their clock64 cycles over their %globaltimer
nanoseconds, entry to stores), and how many of the call's CTAs shared the SM of the CTA that
finished last.
"""

from __future__ import annotations

import collections
import ctypes
import statistics
import sys

import torch

from fp8quant import _cuda, bench
from fp8quant.per_token_quant_fp8 import per_token_quant_fp8

MARKS, CALLS, CTAS = 5, 16, 1024
RECORD = 2 * MARKS + 1  # globaltimer and clock64 per mark, then %smid
SM_GHZ = 1.98  # the H100's SM clock as found (docs/performance.md)


def read_timeline(dtype: torch.dtype) -> list[list[list[int]]]:
    lib = _cuda.load(dtype, torch.cuda.current_device())
    buf = (ctypes.c_ulonglong * (CALLS * CTAS * RECORD))()
    lib.fp8quant_timeline_read.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    err = lib.fp8quant_timeline_read(ctypes.addressof(buf), ctypes.sizeof(buf))
    if err:
        raise RuntimeError(f"fp8quant_timeline_read: error {err} (module built without the switch?)")
    flat = list(buf)
    step = CTAS * RECORD
    return [[flat[c * step + b * RECORD : c * step + (b + 1) * RECORD] for b in range(CTAS)] for c in range(CALLS)]


def probe(tokens: int, hidden: int, dtype: torch.dtype = torch.bfloat16, copies: int | None = None,
          calls_per_graph: int | None = None, out_copies: int | None = None) -> None:
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    xs = bench.input_sets(tokens, hidden, dtype, l2, seed=tokens + hidden)
    xs = xs[:copies] if copies else xs
    nbytes = bench.bytes_moved(tokens, hidden, xs[0].element_size())
    n = max(calls_per_graph or bench.calls_per_graph(nbytes), len(xs), CALLS + 1)
    outs = [(torch.empty(tokens, hidden, dtype=torch.float8_e4m3fn, device="cuda"),
             torch.empty(tokens, 1, dtype=torch.float32, device="cuda")) for _ in range(min(n, out_copies or n))]
    calls = [lambda i=i: per_token_quant_fp8(xs[i % len(xs)], out=outs[i % len(outs)][0], scale_out=outs[i % len(outs)][1])
             for i in range(n)]
    g = bench.capture_graph(calls)
    per_call_us = bench.steady_state_ms(g.replay, 20) * 1000.0 / n
    g.replay()
    torch.cuda.synchronize()
    plan = _cuda.plan_for(xs[0], outs[0][0], pdl=_cuda.use_pdl(0, None))  # the public call's plan
    ctas = min(plan.grid, CTAS)
    raw = read_timeline(dtype)
    # Each CTA index keeps its own count of calls (shapes before this one moved them apart), so
    # its 16 records are put in time order on their own: the k-th of every CTA is one call.
    by_cta = [sorted((raw[c][b] for c in range(CALLS)), key=lambda r: r[0]) for b in range(ctas)]
    tl = [[by_cta[b][k] for b in range(ctas)] for k in range(CALLS)]
    slots = list(range(CALLS))
    rows = []
    for k, c in enumerate(slots):
        t = [tl[c][b] for b in range(ctas)]
        g_ = lambda m: [r[m] for r in t]  # globaltimer, ns
        clk = lambda m0, m1: [(r[MARKS + m1] - r[MARKS + m0]) / SM_GHZ for r in t]  # ns on the SM
        row = dict(
            entry_to_wait=statistics.median(clk(0, 1)),
            wait_spread=max(g_(1)) - min(g_(1)),
            loads=statistics.median(clk(1, 2)), loads_max=max(clk(1, 2)),
            row_max=statistics.median(clk(2, 3)),
            quantize_store=statistics.median(clk(3, 4)), quantize_store_max=max(clk(3, 4)),
            span=max(g_(4)) - min(g_(1)),
            most_ctas_on_one_sm=max(collections.Counter(r[2 * MARKS] for r in t).values()),
            sms_used=len({r[2 * MARKS] for r in t}),
            sm_mhz=1000.0 * sum(r[MARKS + 4] - r[MARKS] for r in t) / max(1, sum(r[4] - r[0] for r in t)),
            ctas_on_last_ctas_sm=collections.Counter(r[2 * MARKS] for r in t)[max(t, key=lambda r: r[4])[2 * MARKS]],
        )
        if k + 1 < len(slots):
            nxt = [tl[slots[k + 1]][b] for b in range(ctas)]
            row["end_to_next_wait"] = min(r[1] for r in nxt) - max(g_(4))
            row["period"] = min(r[1] for r in nxt) - min(g_(1))
            row["next_entry_before_end"] = max(g_(4)) - min(r[0] for r in nxt)
        rows.append(row)
    med = {key: statistics.median(r[key] for r in rows if key in r) for key in rows[0].keys() | rows[-2].keys()}
    stamps = sorted({r[m] for r in tl[slots[-1]][:ctas] for m in range(MARKS)})
    resolution = min((b - a for a, b in zip(stamps, stamps[1:])), default=0)
    print(f"{tokens}x{hidden} {plan.name} grid {plan.grid}, {len(xs)} input copies, {len(outs)} output buffers: "
          f"{per_call_us:.2f} us per call (graph of {n}); "
          f"medians over {len(rows)} calls, ns: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(med.items()))
          + f"; smallest nonzero globaltimer step seen {resolution} ns", flush=True)


def main(argv: list[str]) -> None:
    options = {"--copies": None, "--calls": None, "--out-copies": None}
    for flag in options:
        if flag in argv:
            k = argv.index(flag)
            options[flag] = int(argv[k + 1])
            argv = argv[:k] + argv[k + 2 :]
    copies, calls, out_copies = options["--copies"], options["--calls"], options["--out-copies"]
    for spec in argv or ["1x4096", "1x16384", "64x8192", "128x8192", "256x4096", "256x16384", "128x1368"]:
        t, h = (int(v) for v in spec.split("x"))
        probe(t, h, copies=copies, calls_per_graph=calls, out_copies=out_copies)


if __name__ == "__main__":
    main(sys.argv[1:])
