"""silu_and_mul_quant_fp8 in Triton: one program per row of x = [gate | up], read once; silu in
fp32 as csrc/silu_and_mul_quant.cuh computes it (g / (1 + exp(-g)), IEEE division), each step
rounded to the input dtype, the quantization bit for bit the reference's."""

from __future__ import annotations

import triton
import triton.language as tl

from ..ops.backends import interpreting
from .common import gdc_launch_dependents, gdc_wait, pdl_available, round_to
from .row_quant import launch_args, quantize_row

try:  # libdevice's expf (2 ulp) on the GPU: tl.exp lowers to ex2.approx of x * log2(e), whose
    # error grows with |x| (about 2^-19 relative at x = -20)
    from triton.language.extra.cuda.libdevice import exp as _accurate_exp
except ImportError:  # pragma: no cover
    _accurate_exp = None


@triton.jit
def _exp(x, INTERPRET: tl.constexpr):
    if INTERPRET:
        return tl.exp(x)
    else:
        return _accurate_exp(x)


@triton.jit
def _silu_and_mul_quant_fp8_kernel(
    x_ptr, q_ptr, s_ptr, ub_ptr, ub_value, inner, x_row_stride, scale_ld, group_eps,
    BLOCK: tl.constexpr, GROUP: tl.constexpr, LAYOUT: tl.constexpr, UE8M0: tl.constexpr,
    HAS_UB_PTR: tl.constexpr, SOFTWARE_E4M3: tl.constexpr, INTERPRET: tl.constexpr, USE_PDL: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < inner
    if USE_PDL:
        gdc_wait()
        gdc_launch_dependents()
    gate = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=0.0)
    up = tl.load(x_ptr + row * x_row_stride + inner + cols, mask=mask, other=0.0)
    g = gate.to(tl.float32)
    activated = round_to(tl.math.div_rn(g, 1.0 + _exp(-g, INTERPRET)), gate.dtype, INTERPRET).to(tl.float32)
    y = round_to(activated * up.to(tl.float32), gate.dtype, INTERPRET).to(tl.float32)
    if HAS_UB_PTR:
        ub = tl.load(ub_ptr)
    else:
        ub = ub_value
    quantize_row(y, row, cols, mask, q_ptr, s_ptr, ub, inner, scale_ld, group_eps, BLOCK, GROUP, LAYOUT, UE8M0,
                 SOFTWARE_E4M3)


def silu_and_mul_quant_fp8_triton(x2d, q2d, scale_out, group_size, scale_ub, layout, ue8m0, software_e4m3=None,
                                  pdl=False) -> None:
    """x2d (rows, 2I) with unit last stride; q2d (rows, I) contiguous; scale_out in its layout. Validated."""
    from ..reference import FUSED_GROUP_EPS

    interpret = interpreting()
    if software_e4m3 is None:
        software_e4m3 = interpret
    pdl = pdl and pdl_available(x2d.device)
    num_rows, inner = x2d.shape[0], x2d.shape[1] // 2
    ub_ptr, ub_value, has_ptr, scale_ld, group = launch_args(q2d, scale_out, group_size, scale_ub, layout)
    block = max(triton.next_power_of_2(inner), group)
    _silu_and_mul_quant_fp8_kernel[(num_rows,)](
        x2d, q2d, scale_out, ub_ptr, ub_value, inner, x2d.stride(0), scale_ld, FUSED_GROUP_EPS,
        BLOCK=block, GROUP=group, LAYOUT=layout, UE8M0=ue8m0, HAS_UB_PTR=has_ptr,
        SOFTWARE_E4M3=software_e4m3, INTERPRET=interpret, USE_PDL=pdl, num_warps=max(1, min(16, block // 512)),
        **(dict(launch_pdl=True) if pdl else {}),
    )
