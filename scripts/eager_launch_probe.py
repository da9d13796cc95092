"""Host time of an eager call (no graph) of per_token_quant_fp8, per shape (docs/performance.md,
v19 runs 1-2; v20).

A queue of eager calls is bound by the host when the host takes longer per call than the GPU, so
the wall time of many calls, synchronized once at the end, divided by their number, is the
host's time per call there. Printed per shape: the plan, its shared memory, and us per call for
the public call with out= and scale_out= given, the public call allocating its outputs (v20), for
the registered op called through torch.ops (the dispatcher; the public
call's path before v19, and still its path under torch.compile or a dispatch mode; out= and,
since v22, the functional op) and for
_cuda.launch alone (ctypes and the C++ launch helper), each the median of --repeats batches of
--calls calls. Run 1 compared the launch helper opting in to shared memory once against every
launch (no difference within the noise), run 2 the public call skipping the dispatcher, v20 the
eager path's own costs (the overlap check only for given outputs, no views or device guard, the
stream's raw handle, cached launch shapes and "auto" decisions), v22 the ops defined with
torch.library.Library instead of custom_op.
The last column, torch.neg(x, out=), is a native torch op's eager call on the same input, as the
host's yardstick (the host's speed drifts between processes by about +-15%).
    PYTHONPATH=<package tree> python3 scripts/eager_launch_probe.py [--calls 2000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fp8quant import _cuda, per_token_quant_fp8
from fp8quant.reference import FP8_DTYPE

# Plans with a reservation over 48 KiB (128x4096: 96256 bytes; 256x2048: 51456; 64x8192: 174080)
# and without one (1x4096, 4096x1368).
SHAPES = [(128, 4096), (256, 2048), (64, 8192), (1, 4096), (4096, 1368)]


def us_per_call(call, calls: int, repeats: int) -> float:
    call()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    pdl = _cuda.use_pdl(0, None)
    for tokens, hidden in SHAPES:
        x = torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16)
        q = torch.empty(tokens, hidden, device="cuda", dtype=FP8_DTYPE)
        s = torch.empty(tokens, 1, device="cuda", dtype=torch.float32)
        plan = _cuda.plan_for(x, q, pdl=pdl)
        public = us_per_call(lambda: per_token_quant_fp8(x, out=q, scale_out=s), args.calls, args.repeats)
        fresh = us_per_call(lambda: per_token_quant_fp8(x), args.calls, args.repeats)
        op = us_per_call(
            lambda: torch.ops.fp8quant.per_token_quant_fp8_out(x, q, s, None, None, "auto", None),
            args.calls, args.repeats,
        )
        op_functional = us_per_call(
            lambda: torch.ops.fp8quant.per_token_quant_fp8(x, None, None, "auto", None), args.calls, args.repeats
        )
        helper = us_per_call(lambda: _cuda.launch(x, q, s.view(-1), None, plan, pdl), args.calls, args.repeats)
        neg = torch.empty_like(x)
        native = us_per_call(lambda: torch.neg(x, out=neg), args.calls, args.repeats)
        print(f"{tokens}x{hidden}: {plan.name}, smem {plan.smem_bytes} B: public call {public:.2f} us, "
              f"fresh outputs {fresh:.2f} us, torch.ops {op:.2f} us, torch.ops functional {op_functional:.2f} us, "
              f"_cuda.launch {helper:.2f} us, "
              f"torch.neg(x, out=) {native:.2f} us", flush=True)


if __name__ == "__main__":
    main()
