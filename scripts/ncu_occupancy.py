"""One call of each backend per shape, for ncu's occupancy and DRAM counters:
ncu --clock-control none --metrics launch__registers_per_thread,launch__occupancy_limit_registers,\
sm__warps_active.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,\
gpu__time_duration.sum python3 scripts/ncu_occupancy.py [TOKENSxHIDDEN ...]
The shapes' order and each plan are printed, so the report's kernels can be matched to them.
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fp8quant import _cuda, per_token_quant_fp8  # noqa: E402

shapes = sys.argv[1:] or ["65536x4096", "32768x1368", "16384x8192", "4096x8192"]
for spec in shapes:
    tokens, hidden = map(int, spec.split("x"))
    x = torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16)
    q = torch.empty(x.shape, dtype=torch.float8_e4m3fn, device="cuda")
    s = torch.empty(tokens, 1, device="cuda")
    for backend in ("cuda", "triton"):
        per_token_quant_fp8(x, out=q, scale_out=s, backend=backend)  # warm-up / JIT
        torch.cuda.synchronize()
        print(f"{spec} {backend} {_cuda.plan_for(x, q, pdl=_cuda.use_pdl(0, None)).name if backend == 'cuda' else ''}", flush=True)
        per_token_quant_fp8(x, out=q, scale_out=s, backend=backend)
    torch.cuda.synchronize()
