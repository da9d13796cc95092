"""per_token_quant_fp8 in Triton: the same contract as fp8quant/reference.py, bit for bit.

The version to read and change without leaving Python. It also runs under the Triton
interpreter (TRITON_INTERPRET=1) on a machine without a GPU, which is how CI exercises real
kernel logic (tests/test_triton_interpreter.py says what the interpreter computes exactly).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from ..ops.backends import interpreting, tensor_vector_width
from ..reference import FP8_MAX, MIN_SCALE
from .common import all_finite, bounded_scale, divide, gdc_launch_dependents, gdc_wait, max_nan, pdl_available, to_e4m3


@triton.jit
def _per_token_quant_fp8_kernel(
    x_ptr,
    q_ptr,
    scale_ptr,
    scale_ub_ptr,
    scale_ub_value,
    num_rows,
    hidden_vecs,
    x_row_stride_vecs,
    VEC: tl.constexpr,
    HAS_UB_PTR: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
    SINGLE_PASS: tl.constexpr,
    SOFTWARE_E4M3: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    # The row length and stride arrive in units of VEC elements (the widest access, up to 16
    # bytes, that divides both and the base addresses): multiplied back by a constexpr, Triton
    # knows every row starts VEC-aligned and every mask is constant over VEC elements, so it
    # emits VEC-wide loads and stores. Passed as plain element counts, H=1368 (not a multiple of
    # 16, Triton's only integer specialization) got scalar accesses: 43-47% of copy bandwidth.
    hidden = hidden_vecs * VEC
    x_row_stride = x_row_stride_vecs * VEC
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    row_mask = rows < num_rows
    x_rows = x_ptr + rows[:, None] * x_row_stride
    q_rows = q_ptr + rows[:, None] * hidden
    cols = tl.arange(0, BLOCK)
    if USE_PDL:
        # Launched with PDL, this program may start before the previous kernel in the stream has
        # finished: wait for it before touching memory, then let the next kernel be scheduled
        # (as the CUDA kernels do: csrc/common/pdl.cuh, grid_dependency_wait).
        gdc_wait()
        gdc_launch_dependents()

    if SINGLE_PASS:
        # The whole row in registers: one read from global memory.
        mask = row_mask[:, None] & (cols[None, :] < hidden)
        x = tl.load(x_rows + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        amax = tl.reduce(tl.abs(x), 1, max_nan)
    else:
        amax = tl.zeros([ROWS], dtype=tl.float32)
        for start in range(0, hidden, BLOCK):
            mask = row_mask[:, None] & (start + cols[None, :] < hidden)
            xb = tl.load(x_rows + start + cols[None, :], mask=mask, other=0.0).to(tl.float32)
            amax = max_nan(amax, tl.reduce(tl.abs(xb), 1, max_nan))

    if HAS_UB_PTR:
        ub = tl.load(scale_ub_ptr)
    else:
        ub = scale_ub_value
    scale = bounded_scale(amax, ub)
    tl.store(scale_ptr + rows, scale, mask=row_mask)
    recip = tl.math.div_rn(1.0, scale)
    finite = all_finite(scale)

    if SINGLE_PASS:
        q = to_e4m3(divide(x, scale[:, None], recip[:, None], finite), SOFTWARE_E4M3)
        tl.store(q_rows + cols[None, :], q, mask=mask)
    else:
        for start in range(0, hidden, BLOCK):
            mask = row_mask[:, None] & (start + cols[None, :] < hidden)
            xb = tl.load(x_rows + start + cols[None, :], mask=mask, other=0.0).to(tl.float32)
            q = to_e4m3(divide(xb, scale[:, None], recip[:, None], finite), SOFTWARE_E4M3)
            tl.store(q_rows + start + cols[None, :], q, mask=mask)


# Rows up to this many elements are held whole (one global read); longer ones loop twice.
SINGLE_PASS_MAX = 32768
TWO_PASS_BLOCK = 8192
# Configs measured on an H100 (bfloat16, % of copy bandwidth; docs/design.md): 4 warps won at every
# large shape (65536x1368 89.7% vs 74.0% with 8; 16384x5120 91.6 vs 81.7); rows padded to at most
# 2048 do better two to a 4096-element program (65536x1368 90.6 vs 89.7%) with 2 warps (94.5 vs
# 92.3%), longer ones with 8192 elements (32768x4096 101.3 vs 99.7%).
SHORT_ROW_BLOCK = 2048
ELEMENTS_PER_PROGRAM_SHORT_ROWS = 4096
ELEMENTS_PER_PROGRAM = 8192
NUM_WARPS_SHORT_ROWS = 2
NUM_WARPS = 4
# ... but not for a handful of rows, where a program's latency is the call's: 1x1368 1.60 us
# with 2 warps, 1.50 with 4.
SHORT_ROWS_MIN_ROWS_FOR_2_WARPS = 1024


@functools.lru_cache(maxsize=1024)
def triton_config(hidden: int, num_rows: int) -> dict:
    """ROWS, BLOCK, SINGLE_PASS and num_warps for a shape."""
    block = triton.next_power_of_2(hidden)
    single = block <= SINGLE_PASS_MAX
    if not single:
        block = TWO_PASS_BLOCK
    short = block <= SHORT_ROW_BLOCK
    elements = ELEMENTS_PER_PROGRAM_SHORT_ROWS if short else ELEMENTS_PER_PROGRAM
    rows = max(1, min(elements // block, triton.next_power_of_2(num_rows)))
    two_warps = short and num_rows >= SHORT_ROWS_MIN_ROWS_FOR_2_WARPS
    return dict(ROWS=rows, BLOCK=block, SINGLE_PASS=single, num_warps=NUM_WARPS_SHORT_ROWS if two_warps else NUM_WARPS)


def per_token_quant_fp8_triton(
    x2d: torch.Tensor,
    q2d: torch.Tensor,
    scale1d: torch.Tensor,
    scale_ub: float | torch.Tensor | None,
    software_e4m3: bool | None = None,
    pdl: bool = False,
) -> None:
    """x2d (rows, H) with unit last stride; q2d contiguous; scale1d (rows,). Already validated.

    software_e4m3: convert to e4m3 in integer arithmetic instead of the conversion instruction
    (default: only under the interpreter; the GPU tests run both ways).
    pdl: programmatic dependent launch, where pdl_available() says this Triton and GPU have it."""
    if software_e4m3 is None:
        software_e4m3 = interpreting()
    pdl = pdl and pdl_available(x2d.device)
    launch_options = dict(launch_pdl=True) if pdl else {}
    num_rows, hidden = x2d.shape
    cfg = triton_config(hidden, num_rows)
    vec = tensor_vector_width(x2d, q2d)
    has_ptr = isinstance(scale_ub, torch.Tensor)
    ub_value = float("inf") if scale_ub is None or has_ptr else float(scale_ub)
    grid = (triton.cdiv(num_rows, cfg["ROWS"]),)
    _per_token_quant_fp8_kernel[grid](
        x2d,
        q2d,
        scale1d,
        scale_ub if has_ptr else scale1d,  # a valid pointer that is never read
        ub_value,
        num_rows,
        hidden // vec,
        x2d.stride(0) // vec,
        VEC=vec,
        HAS_UB_PTR=has_ptr,
        SOFTWARE_E4M3=software_e4m3,
        USE_PDL=pdl,
        **cfg,
        **launch_options,
    )



assert FP8_MAX == 448.0 and MIN_SCALE == 1.0 / (448.0 * 512.0)  # the constants in the kernel
