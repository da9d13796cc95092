"""per_tensor_quant_fp8 in Triton: the same contract as fp8quant/reference.py, bit for bit (runs
under TRITON_INTERPRET=1 on a machine without a GPU, as CI does). Dynamic: an amax kernel writes
one partial max per program, the quantize kernel reduces them in every program."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..ops.backends import interpreting
from ..reference import FP8_MAX, MIN_SCALE
from .common import bounded_scale, divide, gdc_launch_dependents, gdc_wait, max_nan, pdl_available, to_e4m3

BLOCK = 4096  # elements of a row per program step
MAX_PROGRAMS = 1024  # programs of the amax kernel at most: its partials fit one block of the quantize kernel


@triton.jit
def _amax_kernel(x_ptr, partials_ptr, num_rows, hidden, x_row_stride, chunks_per_row, num_programs,
                 BLOCK: tl.constexpr, USE_PDL: tl.constexpr):
    pid = tl.program_id(0)
    if USE_PDL:
        gdc_wait()
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for c in range(pid, num_rows * chunks_per_row, num_programs):
        row = c // chunks_per_row
        cols = (c % chunks_per_row) * BLOCK + tl.arange(0, BLOCK)
        x = tl.load(x_ptr + row.to(tl.int64) * x_row_stride + cols, mask=cols < hidden, other=0.0).to(tl.float32)
        acc = max_nan(acc, tl.abs(x))
    tl.store(partials_ptr + pid, tl.reduce(acc, 0, max_nan))
    if USE_PDL:
        gdc_launch_dependents()


@triton.jit
def _quant_kernel(x_ptr, q_ptr, scale_ptr, static_scale_ptr, partials_ptr, scale_ub_ptr, scale_ub_value, num_partials,
                  num_rows, hidden, x_row_stride, chunks_per_row, num_programs,
                  BLOCK: tl.constexpr, BLOCK_P: tl.constexpr, DYNAMIC: tl.constexpr, HAS_UB_PTR: tl.constexpr,
                  SOFTWARE_E4M3: tl.constexpr, USE_PDL: tl.constexpr):
    pid = tl.program_id(0)
    if USE_PDL:
        gdc_wait()
    if DYNAMIC:
        p = tl.load(partials_ptr + tl.arange(0, BLOCK_P), mask=tl.arange(0, BLOCK_P) < num_partials, other=0.0)
        amax = tl.reduce(p, 0, max_nan)
        if HAS_UB_PTR:
            ub = tl.load(scale_ub_ptr)
        else:
            ub = scale_ub_value
        scale = bounded_scale(amax, ub)
    else:
        scale = tl.load(static_scale_ptr)
    if pid == 0:
        tl.store(scale_ptr, scale)
    recip = tl.math.div_rn(1.0, scale)
    reciprocal = (scale >= 1.17549435e-38) & (scale < float("inf")) & (recip >= 1.17549435e-38)  # normal, as in per_tensor.cuh
    for c in range(pid, num_rows * chunks_per_row, num_programs):
        row = c // chunks_per_row
        cols = (c % chunks_per_row) * BLOCK + tl.arange(0, BLOCK)
        mask = cols < hidden
        x = tl.load(x_ptr + row.to(tl.int64) * x_row_stride + cols, mask=mask, other=0.0).to(tl.float32)
        y = divide(x, scale, recip, reciprocal)
        tl.store(q_ptr + row.to(tl.int64) * hidden + cols, to_e4m3(y, SOFTWARE_E4M3), mask=mask)
    if USE_PDL:
        gdc_launch_dependents()


def per_tensor_quant_fp8_triton(x2d: torch.Tensor, q2d: torch.Tensor, scale_out: torch.Tensor, scale: torch.Tensor | None,
                                scale_ub, software_e4m3: bool | None = None, pdl: bool = False) -> None:
    """x2d (rows, H) with unit last stride; q2d contiguous; scale_out (1,). Already validated."""
    if software_e4m3 is None:
        software_e4m3 = interpreting()
    pdl = pdl and pdl_available(x2d.device)
    options = dict(launch_pdl=True) if pdl else {}
    num_rows, hidden = x2d.shape
    chunks_per_row = triton.cdiv(hidden, BLOCK)
    programs = min(num_rows * chunks_per_row, MAX_PROGRAMS)
    dynamic = scale is None
    partials = torch.empty(programs if dynamic else 1, dtype=torch.float32, device=x2d.device)
    if dynamic:
        _amax_kernel[(programs,)](x2d, partials, num_rows, hidden, x2d.stride(0), chunks_per_row, programs,
                                  BLOCK=BLOCK, USE_PDL=pdl, **options)
    has_ptr = isinstance(scale_ub, torch.Tensor)
    ub_value = float("inf") if scale_ub is None or has_ptr else float(scale_ub)
    _quant_kernel[(programs,)](
        x2d, q2d, scale_out, scale if scale is not None else scale_out, partials, scale_ub if has_ptr else scale_out,
        ub_value, programs, num_rows, hidden, x2d.stride(0), chunks_per_row, programs,
        BLOCK=BLOCK, BLOCK_P=triton.next_power_of_2(programs), DYNAMIC=dynamic, HAS_UB_PTR=has_ptr,
        SOFTWARE_E4M3=software_e4m3, USE_PDL=pdl, **options,
    )


assert FP8_MAX == 448.0 and MIN_SCALE == 1.0 / (448.0 * 512.0)
