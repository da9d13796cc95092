"""Shared-memory path with row padding 0 and 16 bytes, for ncu's bank-conflict counters:
ncu --clock-control none --metrics l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_st.sum python3 scripts/ncu_bank_conflicts.py
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fp8quant import _cuda, planner  # noqa: E402

for hidden in (1368, 4096):
    x = torch.randn(4096, hidden, device="cuda", dtype=torch.bfloat16)
    q = torch.empty(x.shape, dtype=torch.float8_e4m3fn, device="cuda")
    s = torch.empty(4096, device="cuda")
    base = _cuda.plan_for(x, q, "shared")
    for pad in (0, 16):
        plan = planner.with_smem_pad(base, hidden, 2, pad)
        print(f"H={hidden} pad={pad} {plan}", flush=True)
        _cuda.launch(x, q, s, None, plan)
torch.cuda.synchronize()
