"""The quantizing half of the fused Triton kernels (rms_norm_quant, silu_and_mul_quant): a
program's row y (float32 values already rounded to the input dtype, BLOCK wide, masked past the
row's end) to codes and scales, per token or per group, bit for bit the reference's."""

from __future__ import annotations

import triton
import triton.language as tl

from .common import all_finite, bounded_scale, divide, is_finite, max_nan, store_group_scales, to_e4m3, ue8m0_round_up


@triton.jit
def _codes(y, scale, all_finite, SOFTWARE_E4M3: tl.constexpr):
    return to_e4m3(divide(y, scale, tl.math.div_rn(1.0, scale), all_finite), SOFTWARE_E4M3)


@triton.jit
def quantize_row(y, row, cols, mask, q_ptr, s_ptr, ub, row_len, scale_ld, group_eps, BLOCK: tl.constexpr,
                 GROUP: tl.constexpr, LAYOUT: tl.constexpr, UE8M0: tl.constexpr, SOFTWARE_E4M3: tl.constexpr):
    if GROUP == 0:
        scale = bounded_scale(tl.reduce(tl.abs(y), 0, max_nan), ub)
        tl.store(q_ptr + row * row_len + cols, _codes(y, scale, is_finite(scale), SOFTWARE_E4M3), mask=mask)
        tl.store(s_ptr + row, scale)
    else:
        groups = tl.reshape(y, (BLOCK // GROUP, GROUP))
        amax = tl.maximum(tl.reduce(tl.abs(groups), 1, max_nan), group_eps, propagate_nan=tl.PropagateNan.ALL)
        scale = tl.math.div_rn(amax, 448.0)
        if UE8M0:
            scale = ue8m0_round_up(scale)
        codes = tl.reshape(_codes(groups, scale[:, None], all_finite(scale), SOFTWARE_E4M3), (BLOCK,))
        tl.store(q_ptr + row * row_len + cols, codes, mask=mask)
        g = tl.arange(0, BLOCK // GROUP)
        store_group_scales(s_ptr, row, g, scale, g < row_len // GROUP, row_len // GROUP, scale_ld, LAYOUT)


def launch_args(q2d, scale_out, group_size, scale_ub, layout):
    """(scale_ub pointer or a dummy, scale_ub value, HAS_UB_PTR, scale column stride, GROUP);
    layout: ops/row_quant.py ScaleFlags.layout."""
    import torch

    has_ptr = isinstance(scale_ub, torch.Tensor)
    value = float("inf") if scale_ub is None or has_ptr else float(scale_ub)
    return (scale_ub if has_ptr else scale_out, value, has_ptr, scale_out.stride(1) if layout else 0,
            group_size or 0)
