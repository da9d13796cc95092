"""`fp8quant bench` with probes of what the other providers of a run change for ours
(docs/performance.md, v12 runs 7-11 and v13):
  --idle CYCLES   one more provider, "idle": a busy-wait kernel of CYCLES GPU cycles per call
                  (torch.cuda._sleep), no memory traffic; left out of the accuracy report
  --untimed NAME  provider NAME is built and its graph captured (and replayed once) as usual,
                  but left out of the timed round
  --torch-in-round  one more provider, "torch:round": the eager torch reference captured in a
                  graph and timed in the round like the others (the bench times "torch" alone,
                  before the round, and frees its temporaries)
  --own-inputs NAME  provider NAME reads copies of the inputs of its own (one clone per input
                  copy) instead of the ones every other provider reads
  --reset-l2      cuCtxResetPersistingL2Cache before each untimed warm-up replay of the round
                  (the bench itself does it since v13),
                  so that no L2 line a provider marked persisting reaches the next one's region
  --touch POLICY  one more provider, "touch:POLICY": a Triton kernel that only reads x, a row
                  at a time in 1024-element chunks, with tl.load(eviction_policy=POLICY)
                  ("evict_last", "evict_first" or "normal"), and writes each row's max |x|; left
                  out of the accuracy report
  --calls-bytes N  calls per graph max(1, min(200, N // bytes per call)) instead of
                  bench.calls_per_graph (2e8 // bytes until v13; the input copies still all read)
  --out-rotate    the calls of a graph write output buffers rotating over at least 2x the L2
                  size (as the inputs do) instead of one buffer per call
  --input-copies N  the calls read N input copies in turn instead of the bench's (enough for 2x
                  the L2, up to 64): with 2, decode inputs stay in L2 between two reads, as an
                  engine's activations, written just before, are (v14)
    python3 scripts/bench_probe_providers.py [options above] [fp8quant bench arguments]
"""

from __future__ import annotations

import math
import sys

import torch

from fp8quant import bench


def _touch_provider(policy: str):
    import triton
    import triton.language as tl

    @triton.jit
    def touch_rows(x_ptr, amax_ptr, hidden, stride, BLOCK: tl.constexpr, POLICY: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, hidden, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            v = tl.load(x_ptr + row * stride + cols, mask=cols < hidden, other=0.0, eviction_policy=POLICY)
            acc = tl.maximum(acc, tl.abs(v.to(tl.float32)))
        tl.store(amax_ptr + row, tl.max(acc, axis=0))

    def make(x, out=None):
        amax = torch.empty(x.shape[0], dtype=torch.float32, device=x.device)
        p = "" if policy == "normal" else policy
        return lambda: touch_rows[(x.shape[0],)](x, amax, x.shape[1], x.stride(0), BLOCK=1024, POLICY=p)

    return make


def main(argv: list[str]) -> int:
    idle_cycles, untimed, torch_in_round, own, reset_l2, touch, calls_bytes = None, None, False, None, False, None, None
    out_rotate, input_copies = False, None
    while argv and argv[0].startswith("--") and argv[0] in (
            "--idle", "--untimed", "--torch-in-round", "--own-inputs", "--reset-l2", "--touch", "--calls-bytes", "--out-rotate",
            "--input-copies"):
        flag, argv = argv[0], argv[1:]
        if flag == "--torch-in-round":
            torch_in_round = True
            continue
        if flag == "--reset-l2":
            reset_l2 = True
            continue
        if flag == "--out-rotate":
            out_rotate = True
            continue
        value, argv = argv[0], argv[1:]
        if flag == "--idle":
            idle_cycles = int(value)
        elif flag == "--untimed":
            untimed = value
        elif flag == "--own-inputs":
            own = value
        elif flag == "--touch":
            touch = value
        elif flag == "--input-copies":
            input_copies = int(value)
        else:
            calls_bytes = int(float(value))
    plain_providers, plain_accuracy, plain_round = bench.providers, bench.accuracy_report, bench.interleaved_time_us
    plain_event_median = bench._event_median_ms
    not_quantizers = ("idle", f"touch:{touch}")

    def providers(gpu: bool):
        p = plain_providers(gpu)
        if idle_cycles is not None:
            p["idle"] = lambda x, out=None: (lambda: torch.cuda._sleep(idle_cycles))
        if torch_in_round:
            p["torch:round"] = p["torch"]
        if touch is not None:
            p[f"touch:{touch}"] = _touch_provider(touch)
        if own is not None and own in p:
            clones: dict[tuple, torch.Tensor] = {}  # one per input copy of the current shape
            make_own = p[own]

            def make(x, out=None):
                key = (x.data_ptr(), tuple(x.shape), x.dtype)
                if key not in clones:
                    if any(k[1:] != key[1:] for k in clones):
                        clones.clear()  # a new shape: the old clones go
                    clones[key] = x.clone()
                return make_own(clones[key], out)

            p[own] = make
        return p

    def event_median_ms(fn, reps, repeat=1, warm=False):
        if reset_l2 and warm:
            torch.cuda.synchronize()
            bench.reset_persisting_l2()
        return plain_event_median(fn, reps, repeat, warm)

    bench.providers = providers
    bench.accuracy_report = lambda provs, *a: plain_accuracy({k: v for k, v in provs.items() if k not in not_quantizers}, *a)
    bench.interleaved_time_us = lambda graphs, *a, **k: plain_round({n: g for n, g in graphs.items() if n != untimed}, *a, **k)
    bench._event_median_ms = event_median_ms
    if out_rotate:
        plain_outputs = bench.output_buffers

        def output_buffers(calls, nbytes, l2_bytes):
            distinct = plain_outputs(min(calls, math.ceil(2 * l2_bytes / max(nbytes, 1))), nbytes, l2_bytes)
            return [distinct[i % len(distinct)] for i in range(calls)]

        bench.output_buffers = output_buffers
    if input_copies is not None:
        plain_inputs = bench.input_sets
        bench.input_sets = lambda *a, **k: plain_inputs(*a, **k)[:input_copies]
    if calls_bytes is not None:
        bench.calls_per_graph = lambda nbytes: max(1, min(200, calls_bytes // max(nbytes, 1)))
    return bench.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
