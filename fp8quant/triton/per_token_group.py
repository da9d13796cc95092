"""per_token_group_quant_fp8 in Triton: the same contract as fp8quant/reference.py, bit for bit
(runs under TRITON_INTERPRET=1 on a machine without a GPU, as CI does)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..ops.backends import interpreting, tensor_vector_width
from ..reference import FP8_MAX
from .common import divide_finite, gdc_launch_dependents, gdc_wait, max_nan, pdl_available, to_e4m3, ue8m0_round_up

# Elements per program: 4096 (32 groups of 128), at least one group.
ELEMENTS_PER_PROGRAM = 4096


@triton.jit
def _per_token_group_quant_fp8_kernel(
    x_ptr, q_ptr, s_ptr, num_rows, hidden_vecs, x_row_stride_vecs, scale_ld, eps,
    VEC: tl.constexpr, GROUP: tl.constexpr, GROUPS_PER_PROGRAM: tl.constexpr, LAYOUT: tl.constexpr,
    UE8M0: tl.constexpr, SOFTWARE_E4M3: tl.constexpr, USE_PDL: tl.constexpr,
):
    hidden = hidden_vecs * VEC
    x_row_stride = x_row_stride_vecs * VEC
    groups = hidden // GROUP
    blocks_per_row = tl.cdiv(groups, GROUPS_PER_PROGRAM)
    pid = tl.program_id(0).to(tl.int64)
    row = pid // blocks_per_row
    first_group = (pid % blocks_per_row) * GROUPS_PER_PROGRAM
    g = first_group + tl.arange(0, GROUPS_PER_PROGRAM)
    cols = g[:, None] * GROUP + tl.arange(0, GROUP)[None, :]
    mask = (g < groups)[:, None] & (cols < hidden)
    if USE_PDL:
        gdc_wait()
        gdc_launch_dependents()
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=0.0).to(tl.float32)
    amax = tl.reduce(tl.abs(x), 1, max_nan)
    amax = tl.maximum(amax, eps, propagate_nan=tl.PropagateNan.ALL)
    scale = tl.math.div_rn(amax, 448.0)
    if UE8M0:
        scale = ue8m0_round_up(scale)
    finite = (scale == scale) & (scale != float("inf"))
    recip = tl.math.div_rn(1.0, scale)
    y = tl.where(finite[:, None], divide_finite(x, scale[:, None], recip[:, None]), tl.math.div_rn(x, scale[:, None]))
    tl.store(q_ptr + row * hidden + cols, to_e4m3(y, SOFTWARE_E4M3), mask=mask)
    gmask = g < groups
    if LAYOUT == 0:
        tl.store(s_ptr + row * groups + g, scale, mask=gmask)
    elif LAYOUT == 1:
        tl.store(s_ptr + g * scale_ld + row, scale, mask=gmask)
    else:
        exps = (scale.to(tl.int32, bitcast=True) >> 23).to(tl.uint8)
        byte_ptr = s_ptr.to(tl.pointer_type(tl.uint8), bitcast=True)
        tl.store(byte_ptr + ((g // 4) * scale_ld + row) * 4 + g % 4, exps, mask=gmask)
        # the bytes of the last word that no group fills
        pad = (g >= groups) & (g < (groups + 3) // 4 * 4)
        tl.store(byte_ptr + ((g // 4) * scale_ld + row) * 4 + g % 4, tl.zeros_like(exps), mask=pad)


def per_token_group_quant_fp8_triton(x2d: torch.Tensor, q2d: torch.Tensor, scale: torch.Tensor, group_size: int,
                                     eps: float, layout: int, ue8m0: bool, software_e4m3: bool | None = None,
                                     pdl: bool = False) -> None:
    """x2d (rows, H) with unit last stride; q2d contiguous; scale in the layout (0 row-major, 1
    column-major, 2 packed UE8M0) with its column stride. Already validated."""
    if software_e4m3 is None:
        software_e4m3 = interpreting()
    pdl = pdl and pdl_available(x2d.device)
    num_rows, hidden = x2d.shape
    groups = hidden // group_size
    per_program = max(1, min(ELEMENTS_PER_PROGRAM // group_size, triton.next_power_of_2(groups)))
    if layout == 2:  # a program covers whole packed words, the bytes past the last group included
        per_program = max(per_program, 4)
    vec = tensor_vector_width(x2d, q2d)
    grid = (num_rows * triton.cdiv(groups, per_program),)
    _per_token_group_quant_fp8_kernel[grid](
        x2d, q2d, scale, num_rows, hidden // vec, x2d.stride(0) // vec, scale.stride(1) if layout else 0, eps,
        VEC=vec, GROUP=group_size, GROUPS_PER_PROGRAM=per_program, LAYOUT=layout, UE8M0=ue8m0,
        SOFTWARE_E4M3=software_e4m3, USE_PDL=pdl, **(dict(launch_pdl=True) if pdl else {}),
    )


assert FP8_MAX == 448.0
