"""`fp8quant bench`: the benchmark and accuracy report, every provider side by side.

Timing method (docs/design.md has the reasoning):
- Each provider runs G calls captured in one CUDA graph; the graph is replayed and timed with
  CUDA events (medians of 25 timed regions, 10 above 1 GB). Graph replay removes Python and
  launch gaps, so the numbers are the GPU's, and every output (and the torch reference's
  temporaries) is allocated at capture time, outside the timed region.
- The per-call time is the steady state: (time of two back-to-back replays - time of one) /
  G, which cancels the start from an idle GPU and the end, where up to an L2's worth of written
  data is still dirty and is written back after the end event (steady_state_ms). A 50 us
  busy-wait before each timed region keeps the host's graph submission out of it. The
  providers' graphs of one shape are replayed in turn (round robin), so that drift of the GPU's
  state falls on all of them alike. The copy bandwidth is measured the same way.
- Each graph holds calls moving at least 2 GiB (up to 200 calls), about what one timed region of
  the copy-bandwidth measurement moves: consecutive calls in a graph overlap one's launch with
  the previous one's end, but two replays do not, and the boundary between them measured ~3 us
  (docs/design.md). With 2e8 bytes per graph, a 100 MB call
  carried half a boundary: 34.6-35.1 us at the four 100 MB shapes against 33.6-33.8 with 7 calls.
  It also puts 1-16 MB shapes in chains of 137-200 calls (12-127 before), where a call under
  PDL costs 0.03-0.7 us more than near a chain's start (256x16384: 5.5-5.9 us against 4.9-5.1
  in 15-call graphs); decode shapes and the empty kernel were always in chains of 200.
- Before each provider's untimed warm-up replay the L2's persisting lines are reset
  (cuCtxResetPersistingL2Cache). torch.compile's kernel loads the input with evict_last in its
  max pass; those lines outlived the next provider's warm-up replay and made its timed calls
  0.8-1.3 us faster at the 100 MB shapes (inputs shared between providers); with the reset, or
  with torch.compile reading inputs of its own, they were not.
- "copy" is a device-to-device copy moving the same bytes: what plain streaming reaches at that
  size, shown for reference (not a peer).
- Inputs rotate over enough copies that the calls of one replay read at least 2x the L2 size
  (up to 64 copies). Only inputs of up to ~0.4 MB stay in L2 between two reads of the same copy
  (the 64 calls in between move their inputs and outputs through the 50 MB L2 of an H100), as
  activations do in a real decode step, which writes them just before; larger ones, the decode
  shapes of 16-256 long rows among them, are read from DRAM, which there costs 0.17-0.39 us per
  call more than the same calls with the input in L2 (1.1 us at 256x16384; docs/design.md).
- Decode shapes (up to DECODE_TOKENS[-1] tokens) are also timed a second time with their inputs
  in L2 ("median_us_l2"): the calls of a graph read two input copies in turn, so each input was
  read two calls before, as an engine's activations were just written by the kernel before
  (an engine's case). The issue's decode target does not say which of the two it means; the
  summary line gives both (docs/design.md).
- Two floors measured in the same run: the copy bandwidth (a 1 GiB device-to-device copy,
  bytes read + written) and the per-call time of an empty kernel under the same graph replay,
  launched plainly and with programmatic dependent launch (PDL, sm_90+); the launch floor is
  the cheaper of the two. Both are medians of samples spread through the run (at the start,
  every copy_sample_every(shapes) shapes, at the end): measured once at the start of a run that
  followed the GPU tests, the copy bandwidth read 2944-2946 GB/s where the same call's other runs
  read 3011-3015 (docs/design.md), and one single empty-kernel measurement read 0.18 us
  with PDL where 49 others read 0.59-0.62.
- "fp8quant" is the public call with its defaults (PDL on sm_90+, so consecutive calls in the
  graph overlap one's launch with the previous one's end; each still waits for the previous
  kernel to complete before it loads, and asks L2 for its rows before that wait, so its DRAM
  reads overlap the previous call's end: docs/design.md. In an engine the same holds
  when the kernel before the quantization launches its dependents early);
  "fp8quant:nopdl" the same call without PDL.
- Bytes per call = input read + codes written + scales written.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .. import __version__

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
# A provider whose timed rounds at one shape would take longer than this gets fewer rounds (at
# least SLOW_MIN_ROUNDS), so that a peer 10-100x slower than the copy does not set a bench's
# length. (A quick per-tensor bench spent 17-48 s per shape from 4096x4096 up on an H100; which
# provider took them, BENCH_SECONDS below will say.)
SLOW_PROVIDER_S = 2.0
SLOW_MIN_ROUNDS = 5
# Wall-clock seconds each provider took in this process (capture, warm-up and timed replays),
# reported with the results so that a bench's time can be planned.
BENCH_SECONDS: dict[str, float] = defaultdict(float)

@dataclass(frozen=True)
class Shape:
    tokens: int
    hidden: int
    group: str  # "seed", "decode", "model", "custom"
    batch: int = 0
    seq: int = 0


def reference_providers(reference: Callable, gpu: bool) -> dict:
    """The op's reference in eager torch ("torch"), and on a GPU torch.compile of it ("torch.compile")."""
    p: dict = {"torch": lambda x, out=None: (lambda: reference(x))}
    if gpu:
        compiled = torch.compile(reference, dynamic=True)
        p["torch.compile"] = lambda x, out=None: (lambda: compiled(x))
    return p


def importable(module: str, name: str):
    """`module.name` where it imports (a peer's kernel), else a string saying why it is missing."""
    try:
        return getattr(__import__(module, fromlist=[name]), name)
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        return f"not importable ({type(e).__name__})"


def copy_provider(bytes_moved: Callable[[int, int, int], int]):
    """A device-to-device copy moving an op's bytes (half read, half written): what plain streaming
    achieves at that size. A reference line, not a peer."""

    def make(x, out=None):
        nbytes = bytes_moved(*x.shape, x.element_size()) // 2
        src = x.view(-1).view(torch.uint8)[:nbytes]
        if src.numel() < nbytes:  # an op reading more than x (rms_norm_quant's residual): a source of its own
            src = torch.empty(nbytes, dtype=torch.uint8, device=x.device)
        dst = torch.empty(nbytes, dtype=torch.uint8, device=x.device) if out is None else out[:nbytes]
        return lambda: dst.copy_(src)

    return make


# ---------------------------------------------------------------------------------------------
# Timing


# GPU cycles of a busy-wait queued ahead of each timed region (~50 us at H100 clocks), so that
# the host's submission of the graph is not in it.
PRE_ROLL_CYCLES = 100_000


def _event_median_ms(fn, reps: int, repeat: int = 1, warm: bool = False) -> float:
    """Median milliseconds of `repeat` back-to-back calls of fn, over `reps` timed regions; with
    `warm`, one untimed call of fn ahead of each region."""
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if warm:
            fn()
        torch.cuda._sleep(PRE_ROLL_CYCLES)
        start.record()
        for _ in range(repeat):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _driver():
    from .._device import driver_library

    driver = driver_library()
    return driver if hasattr(driver, "cuCtxResetPersistingL2Cache") else None  # CUDA 11.0+


def reset_persisting_l2() -> None:
    """Turn every L2 line marked persisting (a load's evict_last hint) into a normal one, so that
    what one provider kept in L2 does not reach another's timed region. A no-op
    where the driver library cannot be loaded or predates the call; the GPU must be idle (lines
    marked by kernels still running would stay)."""
    driver = _driver()
    if driver is not None:
        rc = driver.cuCtxResetPersistingL2Cache()
        if rc != 0:
            raise RuntimeError(f"cuCtxResetPersistingL2Cache returned CUresult {rc}")


def steady_state_ms(fn, reps: int) -> float:
    """Milliseconds of one call of fn in a steady stream of them: the time of two back-to-back
    calls minus the time of one. The difference cancels what happens once per timed region: the
    GPU's start from idle, and the end, where up to an L2's worth (50 MB on an H100) of written
    data is still dirty in the cache and its write-back falls after the end event (with an idle
    GPU before the start event, the previous region's write-back does not fall in the region
    either). Timed singly, a graph of two 100 MB calls measured 102% of copy bandwidth where
    its steady state is 86-89% (docs/design.md)."""
    torch.cuda.synchronize()
    reset_persisting_l2()
    return _event_median_ms(fn, reps, repeat=2) - _event_median_ms(fn, reps, repeat=1)


def capture_graph(calls: list[Callable]) -> torch.cuda.CUDAGraph:
    """`calls` captured in one CUDA graph, after warm-up (JIT builds, autotuning, torch.compile)."""
    for c in calls[: min(len(calls), 3)]:
        c()
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for c in calls:
            c()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        # Every call writes outputs of its own, for every provider: ours, Triton's and the copy's
        # into the buffers run_gpu gives each call; the results of a provider that allocates
        # (torch.compile, the reference, vLLM) are kept here, as long as the graph. Dropped, the
        # capture reused one output block for every call, whose writes then stayed in L2:
        # torch.compile measured 1.96 us at 128x1368 against a memcpy's 1.86 (docs/design.md).
        g.fp8quant_outputs = [c() for c in calls]
    g.replay()
    torch.cuda.synchronize()
    return g


def graph_time_us(calls: list[Callable], reps: int) -> float:
    """Steady-state per-call microseconds of `calls` captured in one CUDA graph."""
    g = capture_graph(calls)
    ms = steady_state_ms(g.replay, reps)
    del g
    return ms * 1000.0 / len(calls)


def interleaved_time_us(graphs: dict[str, tuple[torch.cuda.CUDAGraph, int]], reps: int, seed: int = 0) -> dict[str, float]:
    """Median per-call microseconds of each (graph, calls in it), the graphs replayed in turn
    (round robin), so that a slow drift of the GPU (clocks, power) falls on every provider
    alike. Timed one after another, the first provider of a shape sometimes measured up to 2x
    slower than the same kernel timed next (docs/design.md).
    Each timed region follows an untimed replay of the same graph, so that the L2 it starts from
    (dirty outputs still to be written back, inputs) is the provider's own and not what the
    provider before it left: without it, the same kernel and plan timed through two providers
    read 87.9 vs 92.1% of copy bandwidth at 32768x1368 (docs/design.md).
    The order is shuffled in every round, seeded per shape: in a fixed order, the provider timed
    right after torch.compile's graph measured 0.3-1.1 us slower at ~100 MB than the same kernel
    and plan timed later in the round, and with one seed for every shape, "fp8quant" read 1-2%
    below its identical twin "fp8quant:registers" at 200-400 MB (docs/design.md).
    The L2's persisting lines are reset before each warm-up replay (the GPU is idle there):
    torch.compile's evict_last loads of the shared inputs made the provider after it 0.8-1.3 us
    faster at 100 MB."""
    once: dict[str, list[float]] = {name: [] for name in graphs}
    twice: dict[str, list[float]] = {name: [] for name in graphs}
    rounds = dict.fromkeys(graphs, reps)
    order = list(graphs)
    shuffle = random.Random(seed).shuffle
    for _ in range(reps):
        shuffle(order)
        for name in order:
            if len(once[name]) >= rounds[name]:
                continue
            g = graphs[name][0]
            start = time.perf_counter()
            reset_persisting_l2()
            once[name].append(_event_median_ms(g.replay, 1, repeat=1, warm=True))
            reset_persisting_l2()
            twice[name].append(_event_median_ms(g.replay, 1, repeat=2, warm=True))
            spent = time.perf_counter() - start
            BENCH_SECONDS[name] += spent
            if len(once[name]) == 1 and spent * reps > SLOW_PROVIDER_S:
                rounds[name] = max(SLOW_MIN_ROUNDS, int(SLOW_PROVIDER_S / spent))
    # the steady state, as in steady_state_ms: two replays minus one
    return {
        name: (statistics.median(twice[name]) - statistics.median(once[name])) * 1000.0 / graphs[name][1]
        for name in graphs
    }


def copy_bandwidth_gbps(nbytes: int = 2**30) -> float:
    # One copy per timed region, as in every committed result. (Four 1 GiB copies captured in a
    # graph measured 2420 GB/s against 2967 GB/s for this: D2D copies become memcpy graph nodes.)
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    ms = steady_state_ms(lambda: dst.copy_(src), 30)
    return 2 * nbytes / (ms * 1e-3) / 1e9


def empty_kernel_us(pdl: bool = False) -> float:
    from .. import _cuda

    dev = torch.cuda.current_device()
    return graph_time_us([lambda: _cuda.launch_empty(dev, pdl)] * 200, 30)


def _cuda_pdl_supported() -> bool:
    from .._device import pdl_supported

    return pdl_supported(torch.cuda.current_device())


COPY_SAMPLE_EVERY = 16  # shapes between two copy-bandwidth samples, in a long run


def copy_sample_every(num_shapes: int) -> int:
    """Shapes between two copy-bandwidth samples: every 16 in a long run, and in a short one
    often enough for at least ~5 samples (the float16 bench of 11 shapes took 2, 2961 and 3017
    GB/s, and its percentages moved with them: docs/design.md)."""
    return max(1, min(COPY_SAMPLE_EVERY, num_shapes // 4))


GRAPH_BYTES = 2**31  # bytes the calls of one graph move at least (up to MAX_CALLS_PER_GRAPH calls)
MAX_CALLS_PER_GRAPH = 200


def calls_per_graph(nbytes: int) -> int:
    """Calls captured in one graph: enough to move GRAPH_BYTES, so that the ~3 us between two
    replays (no launch overlap across them) is at most ~0.4% of a call's time, as in the copy
    bandwidth's 1 GiB copies; 200 at decode sizes, as the empty kernel's graph."""
    return max(1, min(MAX_CALLS_PER_GRAPH, math.ceil(GRAPH_BYTES / max(nbytes, 1))))


def output_buffers(calls: int, nbytes: int, l2_bytes: int) -> list[torch.Tensor]:
    """The output buffer of each call of a graph: one of its own per call (buffers reused within
    the L2 measured the same at 1-16 MB; l2_bytes is kept for such a variant)."""
    return [torch.empty(nbytes, dtype=torch.uint8, device="cuda") for _ in range(calls)]


def input_sets(tokens: int, hidden: int, dtype: torch.dtype, l2_bytes: int, seed: int = 0) -> list[torch.Tensor]:
    in_bytes = tokens * hidden * torch.finfo(dtype).bits // 8
    n = max(1, min(64, math.ceil(2 * l2_bytes / max(in_bytes, 1))))
    g = torch.Generator(device="cuda").manual_seed(seed)
    base = torch.randn(tokens, hidden, device="cuda", generator=g).to(dtype)
    return [base] + [base.roll(i, dims=-1) for i in range(1, n)]


# ---------------------------------------------------------------------------------------------
# Accuracy


@dataclass
class AccuracyRow:
    provider: str
    shape: str
    codes_differ_frac: float
    max_code_diff: float  # largest |q_provider - q_reference| in dequantized-code units
    scale_max_rel_diff: float
    exact: bool
    within: bool = False  # a fused op's codes and scales within fused_bounds.py's bounds


def compare_to_reference(q: torch.Tensor, s: torch.Tensor, ref: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, float, float, bool]:
    qa, qe = q.detach().cpu().reshape(-1), ref[0].detach().cpu().reshape(-1)
    sa, se = s.detach().cpu().float().reshape(-1), ref[1].detach().cpu().float().reshape(-1)
    differ = qa.view(torch.uint8) != qe.view(torch.uint8)
    frac = float(differ.float().mean()) if qa.numel() else 0.0
    fa, fe = qa.float(), qe.float()
    diff = (fa - fe).abs()
    diff = torch.where(torch.isnan(fa) != torch.isnan(fe), torch.full_like(diff, float("inf")), diff)
    diff = torch.where(torch.isnan(fa) & torch.isnan(fe), torch.zeros_like(diff), diff)
    max_code = float(diff.max()) if diff.numel() else 0.0
    both_nan = torch.isnan(sa) & torch.isnan(se)
    rel = ((sa - se).abs() / se.abs().clamp_min(1e-30))
    rel = torch.where(both_nan | (sa == se), torch.zeros_like(rel), rel)
    rel = torch.where(torch.isnan(rel), torch.full_like(rel, float("inf")), rel)
    scale_rel = float(rel.max()) if rel.numel() else 0.0
    return frac, max_code, scale_rel, frac == 0.0 and scale_rel == 0.0


def sqnr_db(x: torch.Tensor, q: torch.Tensor, s: torch.Tensor) -> float:
    """Signal to quantization noise of the reference against float64, over finite rows."""
    x64 = x.double().cpu()
    s64 = s.double().cpu()
    # one scale per row, or per group of x.shape[-1] // s.shape[-1] elements
    deq = q.double().cpu() * s64.repeat_interleave(x.shape[-1] // s64.shape[-1], dim=-1)
    rows = torch.isfinite(x64).all(dim=-1)
    x64, deq = x64[rows], deq[rows]
    noise = float(((x64 - deq) ** 2).sum())
    return float("inf") if noise == 0 else 10 * math.log10(float((x64**2).sum()) / noise)


def accuracy_report(suite, provs: dict, device: str, dtype: torch.dtype, quick: bool = False) -> tuple[list[AccuracyRow], dict[str, float], bool]:
    rows, sqnr, ok = [], {}, True
    for shape_name, x in suite.accuracy_inputs(device, dtype, quick).items():
        ref = suite.reference(x)
        # a fused op quantizes its producer's output: the SQNR of the reference against its float64 truth
        sqnr[shape_name] = sqnr_db(suite.truth(x) if hasattr(suite, "truth") else x, *ref)
        for name, make in provs.items():
            if isinstance(make, str) or name in ("torch", "copy") or name.endswith(getattr(suite, "ACCURACY_SKIP", ())):
                continue  # the reference itself; a copy is not a quantizer; scales the report cannot read
            try:
                q, s = _run_for_accuracy(make, x, ref[1].shape)
            except ValueError:
                continue  # a forced path that does not apply to this shape
            # a provider computing another variant of the op (a static scale) has its own reference
            own = suite.reference_for(name, x) if hasattr(suite, "reference_for") else None
            frac, max_code, scale_rel, exact = compare_to_reference(q, s, ref if own is None else own)
            # a fused op's contract allows bounded differences (fp8quant/fused_bounds.py)
            within = suite.within_contract(x, q, s, name) if hasattr(suite, "within_contract") else exact
            rows.append(AccuracyRow(name, shape_name, frac, max_code, scale_rel, exact, within))
            if name.startswith(suite.OURS) and not within:
                ok = False
    return rows, sqnr, ok


def _run_for_accuracy(make, x, scale_shape):
    """Every provider's call returns (q, scale), its scale in any shape with the reference's count."""
    q, s = make(x)()
    return q, s.reshape(scale_shape)


# ---------------------------------------------------------------------------------------------
# Reports


def _git_commit(root: Path = REPO_ROOT) -> str:
    """The commit a result belongs to: $FP8QUANT_COMMIT where set, else git's HEAD, marked
    "+changes" where tracked files differ from it. The device tool's copy carries the .git of the
    landed main under the working tree being tested, so without the mark a result could name a
    commit whose code it did not run (one H200 result had to be corrected by hand)."""
    if os.environ.get("FP8QUANT_COMMIT"):
        return os.environ["FP8QUANT_COMMIT"]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except Exception:  # noqa: BLE001
        return "unknown"
    return f"{head}+changes" if changed else head


def gpu_slug(name: str) -> str:
    slug = name.lower().replace("nvidia", "").strip()
    return "-".join(part for part in slug.replace("/", " ").split() if part)


def print_table(rows: list[dict], title: str, file=None) -> None:
    cols = ["provider", "tokens", "hidden", "median_us", "gbps", "pct_copy_bw", "speedup_vs_compile"]
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) if rows else len(c) for c in cols}
    print(title, file=file)
    print("  ".join(c.rjust(widths[c]) for c in cols), file=file)
    for r in rows:
        print("  ".join(_fmt(r.get(c)).rjust(widths[c]) for c in cols), file=file)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if r["gbps"] is not None]
    hiddens = sorted({r["hidden"] for r in rows})
    cols = 3
    nrows = math.ceil(len(hiddens) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
    provs = list(dict.fromkeys(r["provider"] for r in rows))
    for ax, h in zip(axes.flat, hiddens):
        for p in provs:
            pts = sorted((r["tokens"], r["gbps"]) for r in rows if r["hidden"] == h and r["provider"] == p)
            if pts:
                style = dict(color="grey", ls=":") if p == "copy" else {}
                ax.plot(*zip(*pts), marker="o", ms=3, label=p, lw=2 if p == "fp8quant" else 1, **style)
        ax.axhline(result["copy_bw_gbps"], color="k", ls="--", lw=1, label="copy bandwidth")
        ax.set_xscale("log", base=2)
        ax.set_title(f"hidden {h}")
        ax.set_xlabel("tokens")
        ax.set_ylabel("GB/s")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(hiddens):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6))
    fig.suptitle(f"per_token_quant_fp8, {result['dtype']}, {result['device']} ({result['commit']})")
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _progress(total: int, desc: str):
    try:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True)
    except ImportError:

        class _Counter:
            def __init__(self):
                self.n = 0

            def update(self, k=1):
                self.n += k
                print(f"\r{desc}: {self.n}/{total}", end="", file=sys.stderr, flush=True)

            def close(self):
                print(file=sys.stderr)

        return _Counter()


def decode_times_in_l2(suite, provs: dict, shape: Shape, xs: list[torch.Tensor], outs: list[torch.Tensor],
                       reps: int) -> dict[str, float]:
    """Per-call microseconds of the suite's L2_DECODE_PROVIDERS (and forced plans) at a decode shape with the inputs in L2:
    the graph's calls read xs[0] and xs[1] in turn (each input read two calls before, 0.4-16 MB
    at the decode shapes), writing the same output buffers as the main round. With the inputs
    rotating over 2x the L2, as the main round has them, a decode call reads its input from DRAM,
    0.1-0.3 us per call more for 16-256 long rows (docs/design.md)."""
    graphs, keep_alive = {}, []
    for name, make in provs.items():
        if (name not in suite.L2_DECODE_PROVIDERS and _forced_provider(suite, name) is None) or isinstance(make, str):
            continue  # forced plans are timed too: their A/B against the default is the point
        calls = [make(xs[i % min(2, len(xs))], outs[i]) for i in range(len(outs))]
        graphs[name] = (capture_graph(calls), len(calls))
        keep_alive.append(calls)
    return interleaved_time_us(graphs, reps, seed=shape.tokens * 100019 + shape.hidden)


def _forced_provider(suite, name: str):
    """A suite's forced-plan provider for `name` (fp8quant:registers:... for per-token), if it has any."""
    return suite.forced_provider(name) if hasattr(suite, "forced_provider") else None


def _expand_providers(suite, wanted: list[str]) -> list[str]:
    return suite.expand_providers(wanted) if hasattr(suite, "expand_providers") else list(wanted)


def run_gpu(suite, args) -> int:
    dtype = DTYPES[args.dtype]
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(dev)
    l2 = getattr(props, "L2_cache_size", 50 * 2**20)
    provs = suite.providers(gpu=True)
    if args.providers:
        wanted = _expand_providers(suite, args.providers)
        for name in wanted:
            if _forced_provider(suite, name) is not None:
                provs[name] = _forced_provider(suite, name)
        provs = {k: v for k, v in provs.items() if k in wanted}
    if args.shapes:
        shapes = [Shape(t, h, "custom") for t, h in args.shapes]
    elif args.tokens or args.hidden:
        shapes = [Shape(args.tokens or 4096, args.hidden or 4096, "custom")]
    else:
        shapes = suite.quick_grid() if args.quick else suite.full_grid()

    pdl = _cuda_pdl_supported()
    # The floors, sampled at the start, every sample_every shapes and at the end; each the median
    # of its samples (copy_sample_every says why for the copy; of the single empty-kernel
    # measurements of 50 benches, one read 0.18 us with PDL and 1.22 without, the 49
    # others 0.59-0.62 and 0.95-0.99: docs/design.md).
    copy_samples, empty_plain_samples, empty_pdl_samples = [], [], []

    def sample_floors() -> None:
        copy_samples.append(copy_bandwidth_gbps())
        empty_plain_samples.append(empty_kernel_us())
        if pdl:
            empty_pdl_samples.append(empty_kernel_us(pdl=True))

    sample_floors()
    pdl_note = f", {empty_pdl_samples[0]:.2f} us with PDL" if pdl else ""
    print(f"device: {props.name}; copy bandwidth {copy_samples[0]:.0f} GB/s (first sample); "
          f"empty kernel {empty_plain_samples[0]:.2f} us per call (graph){pdl_note} (first sample)")
    for name, p in provs.items():
        if isinstance(p, str):
            print(f"provider {name}: {p}")

    rows: list[dict] = []
    bar = _progress(len(shapes), "bench")
    sample_every = copy_sample_every(len(shapes))
    for index, shape in enumerate(shapes):
        if index and index % sample_every == 0:
            sample_floors()
        xs = input_sets(shape.tokens, shape.hidden, dtype, l2, seed=shape.tokens + shape.hidden)
        nbytes = suite.bytes_moved(shape.tokens, shape.hidden, xs[0].element_size())
        # Every input copy once per replay at least: with one call per graph (100-200 MB), each
        # replay re-read the same 67 MB input at 100 MB, part of it still in the 50 MB L2 (float16
        # 8192x4096 measured 109-124% of copy bandwidth; docs/design.md).
        g = max(calls_per_graph(nbytes), len(xs))
        reps = 10 if nbytes > 1e9 else 25
        graphs: dict[str, tuple[torch.cuda.CUDAGraph, int]] = {}
        keep_alive = []  # the calls hold the outputs their graph writes: alive as long as it is
        # Call i of every provider writes the same buffer, so that no provider's numbers depend
        # on where its own outputs happened to be placed: with a buffer per provider, the same
        # kernel and plan measured 85.5% through one provider and 92.5% through another at
        # 16384x2048, and the reverse order at 8192x4096, in two runs (docs/design.md).
        outs = output_buffers(g, suite.output_buffer_bytes(shape.tokens, shape.hidden, xs[0].element_size()), l2)
        times: dict[str, float] = {}
        for name, make in provs.items():
            if isinstance(make, str):
                continue
            start = time.perf_counter()
            try:
                calls = [make(xs[i % len(xs)], outs[i]) for i in range(g if name != "torch" or nbytes < 1e9 else 1)]
                if name == "torch":  # the eager reference's temporaries: timed alone, then freed
                    times[name] = graph_time_us(calls, reps)
                else:
                    graphs[name] = (capture_graph(calls), len(calls))
                    keep_alive.append(calls)
            except ValueError:
                continue  # forced path not applicable to this shape
            except torch.cuda.OutOfMemoryError:
                print(f"\n{name} {shape.tokens}x{shape.hidden}: out of memory", file=sys.stderr)
                torch.cuda.empty_cache()
                continue
            finally:
                BENCH_SECONDS[name] += time.perf_counter() - start
        times.update(interleaved_time_us(graphs, reps, seed=shape.tokens * 100003 + shape.hidden))
        del graphs
        # decode shapes, and any other the suite asks for (per-tensor: inputs that fit the L2 twice)
        in_l2 = shape.tokens <= suite.DECODE_TOKENS[-1] or getattr(suite, "time_in_l2", lambda *a: False)(
            shape.tokens, shape.hidden, xs[0].element_size(), l2)
        times_l2 = decode_times_in_l2(suite, provs, shape, xs, outs, reps) if in_l2 else {}
        del keep_alive, outs
        shape_rows = []
        for name in provs:
            if name not in times:
                continue
            us = times[name]
            shape_rows.append(dict(
                op=suite.OP, provider=name, tokens=shape.tokens, hidden=shape.hidden,
                batch=shape.batch, seq=shape.seq, group=shape.group, bytes=nbytes,
                median_us=us, gbps=nbytes / (us * 1e-6) / 1e9, pct_copy_bw=None, floor_us=None,
                median_us_l2=times_l2.get(name),
            ))
        comp = next((r["median_us"] for r in shape_rows if r["provider"] == "torch.compile"), None)
        for r in shape_rows:
            r["speedup_vs_compile"] = comp / r["median_us"] if comp else None
        rows += shape_rows
        del xs
        torch.cuda.empty_cache()
        bar.update(1)
    bar.close()
    sample_floors()
    copy_bw = statistics.median(copy_samples)
    empty_plain_us = statistics.median(empty_plain_samples)
    empty_pdl_us = statistics.median(empty_pdl_samples) if pdl else None
    # The launch floor: the cheaper of the two ways to launch an empty kernel.
    empty_us = min(empty_plain_us, empty_pdl_us or empty_plain_us)
    for r in rows:  # against the run's copy bandwidth, known now
        r["pct_copy_bw"] = 100 * r["gbps"] / copy_bw
        r["floor_us"] = max(empty_us, r["bytes"] / (copy_bw * 1e9) * 1e6)

    acc_rows, sqnr, ok = accuracy_report(suite, provs, "cuda", dtype)
    result = dict(
        op=suite.OP, device=props.name, copy_bw_gbps=copy_bw, copy_bw_samples_gbps=copy_samples, empty_kernel_us=empty_plain_us,
        empty_kernel_pdl_us=empty_pdl_us, launch_floor_us=empty_us, empty_kernel_samples_us=empty_plain_samples,
        empty_kernel_pdl_samples_us=empty_pdl_samples or None, torch=torch.__version__,
        cuda=torch.version.cuda, commit=_git_commit(), dtype=args.dtype, package=__version__,
        driver=_driver_version(), python=platform.python_version(),
        date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        command=args.command,
        missing_providers={k: v for k, v in provs.items() if isinstance(v, str)},
        rows=rows, accuracy=[asdict(r) for r in acc_rows], sqnr_db=sqnr, accuracy_ok=ok,
        variant=getattr(suite, "VARIANT", None),
        bench_seconds={k: round(v, 1) for k, v in sorted(BENCH_SECONDS.items(), key=lambda kv: -kv[1])},
    )
    BENCH_SECONDS.clear()
    out_dir = Path(args.out) if args.out else RESULTS_DIR / suite.NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = (gpu_slug(props.name) + ("" if args.dtype == "bfloat16" else f"-{args.dtype}")
            + (f"-{suite.VARIANT}" if hasattr(suite, "VARIANT") else "") + ("-quick" if args.quick else ""))
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=1))
    with open(out_dir / f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["provider"])
        w.writeheader()
        w.writerows(rows)
    try:
        plot(result, out_dir / f"{stem}.png")
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)

    print_table(rows, f"\n{suite.OP} ({args.dtype}) on {props.name}, copy bandwidth {copy_bw:.0f} GB/s "
                f"(median of {len(copy_samples)} samples, {min(copy_samples):.0f}-{max(copy_samples):.0f}); "
                f"empty kernel {empty_plain_us:.2f} us" + (f", {empty_pdl_us:.2f} with PDL" if pdl else "")
                + f" (medians of {len(empty_plain_samples)})")
    print_accuracy(acc_rows, sqnr, suite.OURS)
    print(summary_line(result, suite))
    print("bench seconds by provider: " + ", ".join(f"{k} {v:.0f}" for k, v in result["bench_seconds"].items()))
    print(f"results: {out_dir / stem}.{{json,csv,png}}")
    return 0 if ok else 1


def summary_line(result: dict, suite) -> str:
    ours = [r for r in result["rows"] if r["provider"] == "fp8quant"]
    big = [r for r in ours if r["bytes"] > 100e6]
    mid = [r for r in ours if 10e6 <= r["bytes"] <= 100e6]
    dec = [r for r in ours if r["tokens"] <= suite.DECODE_TOKENS[-1]]
    samples = result.get("copy_bw_samples_gbps") or [result["copy_bw_gbps"]]
    spread = f" (median of {len(samples)}, {min(samples):.0f}-{max(samples):.0f})" if len(samples) > 1 else ""
    variant = f" {result['variant']}" if result.get("variant") else ""
    parts = [f"summary{variant}: {result['device']} {result['dtype']} copy {result['copy_bw_gbps']:.0f} GB/s{spread}"]
    if big:
        parts.append(f">100MB min {min(r['pct_copy_bw'] for r in big):.1f}% of copy bw")
    if mid:
        parts.append(f"10-100MB min {min(r['pct_copy_bw'] for r in mid):.1f}%")
    if dec:
        parts.append(f"decode max excess over floor {_decode_verdict(dec, 'median_us')}")
        in_l2 = [r for r in dec if r.get("median_us_l2") is not None]
        if in_l2:
            parts.append(f"decode with inputs in L2 {_decode_verdict(in_l2, 'median_us_l2')}")
    parts += suite.summary_extra(result) if hasattr(suite, "summary_extra") else []
    # the op's other forms (the group op's scale layouts): the same two targets, each
    also = []
    for name in getattr(suite, "SUMMARY_ALSO", ()):
        rows = [r for r in result["rows"] if r["provider"] == name]
        far = [r["pct_copy_bw"] for r in rows if r["bytes"] > 100e6]
        near = [r for r in rows if r["tokens"] <= suite.DECODE_TOKENS[-1] and r.get("median_us_l2") is not None]
        if far or near:
            also.append(name.split(":")[-1] + (f" >100MB min {min(far):.1f}%" if far else "")
                        + (f", decode in L2 {_decode_verdict(near, 'median_us_l2')}" if near else ""))
    if also:
        parts.append("; ".join(also))
    slower = peer_wins(result, suite.PEERS)
    if slower:
        worst = max(slower, key=lambda w: w[3])
        parts.append(f"a peer faster on {len(slower)} shapes (worst {worst[0]} {worst[1]}x{worst[2]} by {worst[3]:.1f}%)")
    else:
        parts.append("no peer faster")
    within = "within the fused bounds" if hasattr(suite, "within_contract") else "exact"
    parts.append("accuracy " + (within if result["accuracy_ok"] else "MISMATCH"))
    return "; ".join(parts)


def _decode_verdict(rows: list[dict], key: str) -> str:
    """The largest excess of rows[key] over the floor and how many rows are within the decode
    target's 1 us, as "1.18 us (48 of 63 within 1 us)"."""
    excess = [r[key] - r["floor_us"] for r in rows]
    return f"{max(excess):.2f} us ({sum(e <= 1.0 for e in excess)} of {len(rows)} within 1 us)"


def peer_wins(result: dict, peers: tuple[str, ...]) -> list[tuple[str, int, int, float]]:
    """(peer, tokens, hidden, % faster) for every shape where a peer beats "fp8quant"."""
    ours = {(r["tokens"], r["hidden"]): r["median_us"] for r in result["rows"] if r["provider"] == "fp8quant"}
    wins = []
    for r in result["rows"]:
        mine = ours.get((r["tokens"], r["hidden"]))
        if r["provider"] in peers and mine is not None and r["median_us"] < mine:
            wins.append((r["provider"], r["tokens"], r["hidden"], 100 * (mine / r["median_us"] - 1)))
    return wins


def _driver_version() -> str:
    try:
        return subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True
        ).stdout.strip().splitlines()[0]
    except Exception:  # noqa: BLE001
        return "unknown"


def print_accuracy(rows: list[AccuracyRow], sqnr: dict[str, float], ours: tuple[str, ...], file=None) -> None:
    print("\naccuracy against the reference (codes compared as bytes, scales exactly)", file=file)
    print(f"{'provider':>22} {'input':>14} {'codes differ':>13} {'max code diff':>14} {'scale max rel':>14}  verdict", file=file)
    for r in rows:
        verdict = ("exact" if r.exact else "within bounds" if r.within else
                   "MISMATCH" if r.provider.startswith(ours) else "differs")
        print(f"{r.provider:>22} {r.shape:>14} {r.codes_differ_frac:>13.2e} {r.max_code_diff:>14.4g} {r.scale_max_rel_diff:>14.3e}  {verdict}", file=file)
    print("reference vs float64, dequantized SQNR: " + ", ".join(f"{k} {v:.2f} dB" for k, v in sqnr.items()), file=file)


def run_cpu(suite, args) -> int:
    """No GPU, or --cpu: the accuracy report with what runs here (the reference, Triton under its
    interpreter where no GPU is in the process), then the summary lines of the committed results."""
    interpreting = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    if torch.cuda.is_available() and not interpreting:
        # triton.jit picks the interpreter per process, when a function is decorated: interpreted
        # here, a GPU bench later in the same process (pytest on the GPU machine) would fail.
        note = "not run here: the Triton interpreter needs a process of its own (TRITON_INTERPRET=1 fp8quant bench --cpu)"
        return _run_cpu(suite, args, triton_note=note)
    # TRITON_INTERPRET for this report only: left set, it made a later torch.compile in the same
    # process run its Triton kernels under the interpreter.
    saved = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = saved if saved not in (None, "", "0") else "1"
    try:
        return _run_cpu(suite, args)
    finally:
        if saved is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = saved


def _run_cpu(suite, args, triton_note: str | None = None) -> int:
    dtype = DTYPES[args.dtype]
    provs: dict = {}
    try:
        provs.update(suite.cpu_providers() if triton_note is None else {"triton": triton_note})
    except ImportError as e:
        provs["triton"] = f"not importable ({e})"
    provs.update(args.extra_providers or {})
    variant = f" {suite.VARIANT}" if hasattr(suite, "VARIANT") else ""
    print(("accuracy report on the CPU (--cpu)" if torch.cuda.is_available()
           else "no NVIDIA GPU here: accuracy report on the CPU (triton runs under its interpreter)")
          + f", {suite.OP}{variant}, {args.dtype}")
    for name, p in provs.items():
        if isinstance(p, str):
            print(f"provider {name}: {p}")
    acc_rows, sqnr, ok = accuracy_report(suite, provs, "cpu", dtype, quick=args.quick)
    print_accuracy(acc_rows, sqnr, suite.OURS)
    results = committed_results(suite, args.dtype)
    print(f"\ncommitted GPU results ({args.dtype}; full tables in the .csv beside each):")
    for path, result in results:
        print(f"{path.relative_to(REPO_ROOT)}: {summary_line(result, suite)} (commit {result['commit']})")
    if not results:
        print(f"none under {(RESULTS_DIR / suite.NAME).relative_to(REPO_ROOT)}/")
    return 0 if ok else 1


def committed_results(suite, dtype: str) -> list[tuple[Path, dict]]:
    """The suite's committed results for one dtype: <gpu>.json for bfloat16, <gpu>-<dtype>.json else."""
    found = []
    for path in sorted((RESULTS_DIR / suite.NAME).glob("*.json")):
        result = json.loads(path.read_text())
        if (result.get("dtype") == dtype and not path.stem.endswith("-quick")
                and result.get("variant") == getattr(suite, "VARIANT", None)):
            found.append((path, result))
    return found


# ---------------------------------------------------------------------------------------------
# Command line: argparse types, so bad arguments exit 2 with one line


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _shape_list(text: str) -> list[tuple[int, int]]:
    shapes = []
    for spec in text.split(","):
        parts = spec.strip().lower().split("x")
        try:
            tokens, hidden = (int(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected TOKENSxHIDDEN[,TOKENSxHIDDEN...] (e.g. 1x4096,64x7168), got {spec!r}") from None
        if tokens < 1 or hidden < 1:
            raise argparse.ArgumentTypeError(f"tokens and hidden must be positive, got {spec!r}")
        shapes.append((tokens, hidden))
    return shapes


def _out_dir(text: str) -> str:
    parent = Path(text).resolve().parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"the parent of the output directory does not exist: {parent}")
    return text


def main(argv: list[str] | None = None, extra_providers: dict | None = None) -> int:
    from . import SUITES

    argv = sys.argv[2:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="fp8quant bench", description="The benchmark and accuracy report of one op.")
    ap.add_argument("op", nargs="?", choices=list(SUITES), default="token", help="the op's suite (default: token)")
    ap.add_argument("--dtype", choices=list(DTYPES), default="bfloat16")
    ap.add_argument("--quick", action="store_true", help="a 12-shape grid that runs in under a minute")
    ap.add_argument("--tokens", type=_positive_int, help="one shape: number of tokens")
    ap.add_argument("--hidden", type=_positive_int, help="one shape: hidden size")
    ap.add_argument("--shapes", type=_shape_list, help="comma-separated TOKENSxHIDDEN shapes instead of the grid")
    ap.add_argument("--providers", help="comma-separated subset of providers; fp8quant:registers:tN forces N threads "
                    "per row, fp8quant:registers:t* sweeps them; fp8quant:registers:tN:sS also S CTAs per "
                    "row, fp8quant:registers:tN:s* sweeps S; fp8quant:registers:tN:bB forces B-thread CTAs")
    ap.add_argument("--out", type=_out_dir, help=f"output directory (default {RESULTS_DIR}/<op>)")
    ap.add_argument("--cpu", action="store_true", help="the no-GPU report even where a GPU exists")
    ap.add_argument("--variants", help="comma-separated subset of the op's variants, each its own result file "
                    "(rmsnorm: token, token-residual, g128, g128-residual; silu: token, g128; group: "
                    "default, g64, g32), so that one op's bench can run over several device calls")
    args = ap.parse_args(argv)
    suite = SUITES[args.op]
    variants = getattr(suite, "VARIANTS", None) or [suite]
    if args.variants:
        names = [getattr(v, "VARIANT", None) or "default" for v in variants]
        wanted = [w.strip() for w in args.variants.split(",")]
        unknown = [w for w in wanted if w not in names]
        if unknown:
            ap.error(f"--variants: unknown {', '.join(unknown)} for {args.op}; known: {', '.join(names)}")
        variants = [v for v, name in zip(variants, names) if name in wanted]
    if args.providers:
        wanted = [p.strip() for p in args.providers.split(",")]
        unknown = [w for w in wanted if w not in suite.PROVIDERS and _forced_provider(suite, w) is None
                   and w not in ("fp8quant:registers:t*",) and not w.endswith(":s*")]
        if unknown:
            ap.error(f"--providers: unknown {', '.join(unknown)}; known: {', '.join(suite.PROVIDERS)} "
                     "and the forced fp8quant:registers:... forms")
        args.providers = wanted
    args.extra_providers = extra_providers
    args.command = " ".join(["fp8quant", "bench", *argv])
    rc = 0
    for variant in variants:
        rc |= run_cpu(variant, args) if args.cpu or not torch.cuda.is_available() else run_gpu(variant, args)
    return rc
