"""rms_norm_quant_fp8 in Triton: one program per row, the row in registers (read once), the
residual written once; the norm as csrc/rms_norm_quant.cuh computes it (fp32 sum of squares,
correctly rounded sqrt and division), the quantization bit for bit the reference's."""

from __future__ import annotations

import triton
import triton.language as tl

from ..ops.backends import interpreting
from .common import gdc_launch_dependents, gdc_wait, pdl_available, round_to
from .row_quant import launch_args, quantize_row


@triton.jit
def _rms_norm_quant_fp8_kernel(
    x_ptr, res_ptr, w_ptr, q_ptr, s_ptr, ub_ptr, ub_value, hidden, x_row_stride, res_row_stride, scale_ld, eps, group_eps,
    BLOCK: tl.constexpr, GROUP: tl.constexpr, LAYOUT: tl.constexpr, UE8M0: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
    HAS_UB_PTR: tl.constexpr, SOFTWARE_E4M3: tl.constexpr, INTERPRET: tl.constexpr, USE_PDL: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < hidden
    if USE_PDL:
        gdc_wait()
        gdc_launch_dependents()
    x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=0.0)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0)
    if HAS_RESIDUAL:
        r = tl.load(res_ptr + row * res_row_stride + cols, mask=mask, other=0.0)
        h = round_to(x.to(tl.float32) + r.to(tl.float32), x.dtype, INTERPRET)
        tl.store(res_ptr + row * res_row_stride + cols, h, mask=mask)
    else:
        h = x
    hf = h.to(tl.float32)
    mean = tl.math.div_rn(tl.sum(hf * hf, 0), hidden.to(tl.float32))
    inv_rms = tl.math.div_rn(1.0, tl.math.sqrt_rn(mean + eps))
    normalized = round_to(hf * inv_rms, x.dtype, INTERPRET).to(tl.float32)
    y = round_to(normalized * w.to(tl.float32), x.dtype, INTERPRET).to(tl.float32)
    if HAS_UB_PTR:
        ub = tl.load(ub_ptr)
    else:
        ub = ub_value
    quantize_row(y, row, cols, mask, q_ptr, s_ptr, ub, hidden, scale_ld, group_eps, BLOCK, GROUP, LAYOUT, UE8M0,
                 SOFTWARE_E4M3)


def rms_norm_quant_fp8_triton(x2d, res2d, weight, q2d, scale_out, eps, group_size, scale_ub, layout, ue8m0,
                              software_e4m3=None, pdl=False) -> None:
    """x2d, res2d (rows, H) with unit last stride; q2d contiguous; scale_out in its layout. Validated."""
    from ..reference import FUSED_GROUP_EPS

    interpret = interpreting()
    if software_e4m3 is None:
        software_e4m3 = interpret
    pdl = pdl and pdl_available(x2d.device)
    num_rows, hidden = x2d.shape
    ub_ptr, ub_value, has_ptr, scale_ld, group = launch_args(q2d, scale_out, group_size, scale_ub, layout)
    block = max(triton.next_power_of_2(hidden), group)
    _rms_norm_quant_fp8_kernel[(num_rows,)](
        x2d, x2d if res2d is None else res2d, weight, q2d, scale_out, ub_ptr, ub_value, hidden, x2d.stride(0),
        0 if res2d is None else res2d.stride(0), scale_ld, eps, FUSED_GROUP_EPS,
        BLOCK=block, GROUP=group, LAYOUT=layout, UE8M0=ue8m0, HAS_RESIDUAL=res2d is not None,
        HAS_UB_PTR=has_ptr, SOFTWARE_E4M3=software_e4m3, INTERPRET=interpret, USE_PDL=pdl, num_warps=max(1, min(16, block // 512)),
        **(dict(launch_pdl=True) if pdl else {}),
    )

