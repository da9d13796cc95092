"""per_token_group_quant_fp8 in Triton: the same contract as fp8quant/reference.py, bit for bit
(runs under TRITON_INTERPRET=1 on a machine without a GPU, as CI does)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..ops.backends import interpreting, tensor_vector_width
from ..reference import FP8_MAX
from .common import (
    all_finite, divide, gdc_launch_dependents, gdc_wait, max_nan, pdl_available, store_group_scales, to_e4m3, ue8m0_round_up,
)

# Elements per program, and warps: see docs/design.md "per_token_group_quant_fp8".
ELEMENTS_PER_PROGRAM = 2048
NUM_WARPS = 4


@triton.jit
def _per_token_group_quant_fp8_kernel(
    x_ptr, q_ptr, s_ptr, num_rows, hidden_vecs, x_row_stride_vecs, scale_ld, eps,
    VEC: tl.constexpr, GROUP: tl.constexpr, GROUPS_PER_PROGRAM: tl.constexpr, LAYOUT: tl.constexpr,
    UE8M0: tl.constexpr, SOFTWARE_E4M3: tl.constexpr, USE_PDL: tl.constexpr,
):
    # A program takes GROUPS_PER_PROGRAM consecutive groups of the tensor seen as num_rows x groups
    # (crossing rows), so that no lane is masked off but at the tensor's end, whatever H is.
    hidden = hidden_vecs * VEC
    x_row_stride = x_row_stride_vecs * VEC
    groups = hidden // GROUP
    flat = tl.program_id(0).to(tl.int64) * GROUPS_PER_PROGRAM + tl.arange(0, GROUPS_PER_PROGRAM)
    valid = flat < num_rows * groups.to(tl.int64)
    row = flat // groups
    g = flat - row * groups
    offs = tl.arange(0, GROUP)[None, :]
    mask = valid[:, None] & (offs < GROUP)
    if USE_PDL:
        gdc_wait()
        gdc_launch_dependents()
    x = tl.load(x_ptr + (row * x_row_stride + g * GROUP)[:, None] + offs, mask=mask, other=0.0).to(tl.float32)
    amax = tl.reduce(tl.abs(x), 1, max_nan)
    amax = tl.maximum(amax, eps, propagate_nan=tl.PropagateNan.ALL)
    scale = tl.math.div_rn(amax, 448.0)
    if UE8M0:
        scale = ue8m0_round_up(scale)
    recip = tl.math.div_rn(1.0, scale)
    y = divide(x, scale[:, None], recip[:, None], all_finite(scale))
    tl.store(q_ptr + (row * hidden + g * GROUP)[:, None] + offs, to_e4m3(y, SOFTWARE_E4M3), mask=mask)
    store_group_scales(s_ptr, row, g, scale, valid, groups, scale_ld, LAYOUT)


def per_token_group_quant_fp8_triton(x2d: torch.Tensor, q2d: torch.Tensor, scale: torch.Tensor, group_size: int,
                                     eps: float, layout: int, ue8m0: bool, software_e4m3: bool | None = None,
                                     pdl: bool = False, elements_per_program: int = ELEMENTS_PER_PROGRAM,
                                     num_warps: int = NUM_WARPS) -> None:
    """x2d (rows, H) with unit last stride; q2d contiguous; scale in the layout (0 row-major, 1
    column-major, 2 packed UE8M0) with its column stride. Already validated.
    elements_per_program and num_warps are there for the bench's forced variants."""
    if software_e4m3 is None:
        software_e4m3 = interpreting()
    pdl = pdl and pdl_available(x2d.device)
    num_rows, hidden = x2d.shape
    total_groups = num_rows * (hidden // group_size)
    per_program = max(1, elements_per_program // group_size)
    vec = tensor_vector_width(x2d, q2d)
    grid = (triton.cdiv(total_groups, per_program),)
    _per_token_group_quant_fp8_kernel[grid](
        x2d, q2d, scale, num_rows, hidden // vec, x2d.stride(0) // vec, scale.stride(1) if layout else 0, eps,
        VEC=vec, GROUP=group_size, GROUPS_PER_PROGRAM=per_program, LAYOUT=layout, UE8M0=ue8m0,
        SOFTWARE_E4M3=software_e4m3, USE_PDL=pdl, num_warps=num_warps, **(dict(launch_pdl=True) if pdl else {}),
    )


assert FP8_MAX == 448.0
