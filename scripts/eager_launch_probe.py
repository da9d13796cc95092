"""Host time of an eager call (no graph) of per_token_quant_fp8, per shape (docs/performance.md,
v19 run 1).

Until v19 the launch helper called cudaFuncSetAttribute before every launch of a plan with more
than 48 KiB of dynamic shared memory; since v18 those are the plans that reserve shared memory to
bound the calls in flight (planner.pdl_trigger_at_entry: grids of 60-66, 128 and 256 CTAs on the
H100). v19 opts in once per instance and device. A queue of eager calls is bound by the host
when the host takes longer per call than the GPU, so the wall time of many calls, synchronized
once at the end, divided by their number, is the host's time per call there. Printed per shape:
the plan, its shared memory, and us per call for the public call (validation, the custom op,
the launch) and for _cuda.launch alone (ctypes and the C++ launch helper), each the median of
--repeats batches of --calls calls.
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
        helper = us_per_call(lambda: _cuda.launch(x, q, s.view(-1), None, plan, pdl), args.calls, args.repeats)
        print(f"{tokens}x{hidden}: {plan.name}, smem {plan.smem_bytes} B: public call {public:.2f} us, "
              f"_cuda.launch {helper:.2f} us", flush=True)


if __name__ == "__main__":
    main()
