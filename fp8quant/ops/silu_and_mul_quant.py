"""silu_and_mul_quant_fp8: SiLU-and-mul + FP8 quantization, per token or per group, in one pass.

fp8quant/reference.py (silu_and_mul_quant_fp8_reference) defines the numbers: the unfused torch
composition. The CUDA kernels (csrc/silu_and_mul_quant.cuh per token; per group, the group kernel of
csrc/per_token_group.cuh with the producer of csrc/common/silu.cuh) and the Triton kernel
(triton/silu_and_mul_quant.py) compute silu in fp32 with their own exp; fp8quant/fused_bounds.py
bounds what that may change. Registered as ``fp8quant::silu_and_mul_quant_fp8`` and
``fp8quant::silu_and_mul_quant_fp8_out``.
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch

from .. import _checks, _cuda, _device
from .._library import QuantOp
from ..jit import EntryPoint
from ..reference import FUSED_GROUP_EPS, silu_and_mul_quant_fp8_reference
from . import per_token_group, row_quant
from .backends import resolve_backend, scale_ub_pointer_and_value
from .per_token import _as_rows

OP = "silu_and_mul_quant_fp8"

KERNEL = _cuda.register(EntryPoint(
    header="silu_and_mul_quant.cuh",
    symbol="fp8quant_silu_and_mul_quant_fp8",
    launcher="fp8quant::launch_silu_and_mul_quant",
    args_struct="fp8quant::SiluAndMulQuantArgs",
    args=(
        ("x", "const void*"), ("q", "void*"), ("scale", "void*"), ("scale_ub_ptr", "const void*"),
        ("scale_ub_value", "float"), ("group_eps", "float"), ("num_rows", "int64_t"), ("inner", "int64_t"),
        ("x_row_stride", "int64_t"), ("scale_ld", "int64_t"),
    ),
    config_struct="fp8quant::RowQuantConfig",
    config=row_quant.CONFIG,
))
# Per token, the register kernel's plan: about 2 vectors per thread, not row_quant's 4 (SiLU's math
# per element is the longer chain). Measured (H100, same run, inputs in L2): 1x3072 1.76 -> 1.38 us,
# 16x4096 1.83 -> 1.40, 64x4096 1.94 -> 1.50, 16384x3072 85.2 -> 91.4% of copy bandwidth; at I
# 14336-18432 the same plan (512 threads x 5-6 vectors either way).
SILU_VECS_PER_THREAD = 2
# Per group: the group kernel (per_token_group.cuh) with its SiLU-and-mul producer.
GROUP_KERNEL = _cuda.register(EntryPoint(
    header="per_token_group.cuh",
    symbol="fp8quant_silu_and_mul_group_quant_fp8",
    launcher="fp8quant::launch_silu_and_mul_group_quant",
    args_struct="fp8quant::GroupArgs",
    args=per_token_group.GROUP_ARGS,
    config_struct="fp8quant::GroupConfig",
    config=per_token_group.GROUP_CONFIG,
))


def _q_shape(x) -> tuple:
    return (*x.shape[:-1], x.shape[-1] // 2)


def _check(x, group_size, scale_ub, scale_ub_value, column_major, tma_aligned, ue8m0, packed, backend, enable_pdl,
           outs) -> None:
    _checks.tensor(OP, "x", x)
    _checks.rows(OP, x)
    if x.shape[-1] % 2:
        raise ValueError(f"{OP}: x's last dimension must be even (gate and up halves), got {x.shape[-1]}")
    inner = x.shape[-1] // 2
    flags = row_quant.ScaleFlags(column_major, tma_aligned, ue8m0, packed)
    row_quant.check_quant_args(OP, inner, group_size, scale_ub, scale_ub_value, flags, x.device)
    _checks.backend(OP, backend)
    _checks.optional_bool(OP, "enable_pdl", enable_pdl)
    row_quant.check_outputs(OP, outs, _q_shape(x), group_size, flags, x.device)


def _allocate(x, group_size, scale_ub, scale_ub_value, column_major, tma_aligned, ue8m0, packed, *rest):
    return row_quant.allocate(_q_shape(x), group_size, row_quant.ScaleFlags(column_major, tma_aligned, ue8m0, packed),
                              x.device)


def _run(x, group_size, scale_ub, scale_ub_value, column_major, tma_aligned, ue8m0, packed, backend, enable_pdl, outs,
         outputs_given) -> None:
    flags = row_quant.ScaleFlags(column_major, tma_aligned, ue8m0, packed)
    out, scale_out = outs
    if outputs_given:
        _checks.no_overlap(OP, (("x", x), ("scale_ub", scale_ub)), (("out", out), ("scale_out", scale_out)))
    _checks.host_scale_ub(OP, scale_ub)
    if x.numel() == 0:
        return
    ub = scale_ub if scale_ub is not None else scale_ub_value
    backend = resolve_backend(OP, x, backend, KERNEL)
    x2d = _as_rows(x)
    inner = x.shape[-1] // 2
    cuda_plan = None
    if backend == "cuda" and group_size is not None:
        per_token_group.launch_cuda(x2d, out, scale_out, group_size, FUSED_GROUP_EPS, flags.layout, ue8m0, enable_pdl,
                                    kernel=GROUP_KERNEL, hidden=inner)
        return
    if backend == "cuda":
        vec = row_quant.vector_width(inner, x2d.element_size(), (x2d.stride(0), x2d.data_ptr()), (0, out.data_ptr()))
        cuda_plan = row_quant.plan(inner, vec, x2d.element_size(), group_size, SILU_VECS_PER_THREAD)
        if row_quant.staged_pays(cuda_plan, x2d.shape[0], _device.device_info(x2d.get_device()).sm_count):
            cuda_plan = row_quant.plan(inner, vec, x2d.element_size(), group_size, staged=True)
        if cuda_plan is None:
            backend = "triton"  # rows the CUDA kernel does not hold (row_quant.plan)
    if backend == "torch":
        q, s = silu_and_mul_quant_fp8_reference(x, group_size, ub, ue8m0)
        row_quant.copy_reference(q, s, outs, group_size, flags)
    elif backend == "cuda":
        launch_cuda(x2d, out, scale_out, group_size, ub, flags.layout, ue8m0, cuda_plan, enable_pdl)
    else:
        from ..triton.silu_and_mul_quant import silu_and_mul_quant_fp8_triton

        with torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext():
            silu_and_mul_quant_fp8_triton(x2d, out.view(-1, inner), scale_out, group_size, ub, flags.layout, ue8m0,
                                          pdl=enable_pdl is not False)


def launch_cuda(x2d, q, scale, group_size, scale_ub, layout, ue8m0, plan, enable_pdl=None) -> None:
    """The register or staged kernel (per token; per group where the bench or the tests force it);
    layout: row_quant.ScaleFlags.layout (0, row-major, per token). Rows are never shared here
    (silu_and_mul_quant.cuh takes a row a CTA: per token every part would compute the whole row's
    silu for its max, which is the cost); a bulk plan (row_quant.bulk_rows with input_rows=2,
    forced) per token only."""
    if plan.ctas_per_row != 1 or (plan.bulk and group_size is not None):
        raise ValueError(f"{OP}: the SiLU kernels take a row a CTA (a bulk row load per token only), got a plan "
                         f"with ctas_per_row={plan.ctas_per_row}, bulk={plan.bulk}, group_size={group_size}")
    index = x2d.get_device()
    pdl = _device.use_pdl(index, enable_pdl)
    num_rows = x2d.shape[0]
    ub_ptr, ub_value = scale_ub_pointer_and_value(scale_ub)
    config = row_quant.launch_config(KERNEL, plan, num_rows, x2d.shape[1] * x2d.element_size(), group_size, layout,
                                     ue8m0, index, pdl)
    KERNEL(x2d.dtype, index, x2d.data_ptr(), q.data_ptr(), scale.data_ptr(), ub_ptr, ub_value, FUSED_GROUP_EPS, num_rows,
           x2d.shape[1] // 2, x2d.stride(0), scale.stride(1) if layout else 0, config)


_OP = QuantOp(
    OP,
    "Tensor x, int? group_size, Tensor? scale_ub, float? scale_ub_value, bool column_major_scales, "
    "bool tma_aligned_scales, bool scale_ue8m0, bool packed_ue8m0, str backend, bool? enable_pdl=None",
    ("out", "scale_out"),
    check=_check,
    allocate=_allocate,
    run=_run,
)


def silu_and_mul_quant_fp8(
    x: torch.Tensor,
    *,
    group_size: Optional[int] = None,
    scale_ub: float | torch.Tensor | None = None,
    column_major_scales: bool = False,
    tma_aligned_scales: bool = False,
    scale_ue8m0: bool = False,
    packed_ue8m0: bool = False,
    out: Optional[torch.Tensor] = None,
    scale_out: Optional[torch.Tensor] = None,
    backend: str = "auto",
    enable_pdl: Optional[bool] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """silu(gate) * up quantized to FP8 e4m3, in one pass; x = [gate | up] along the last dimension.

    Args:
        x: (..., 2I) float16, bfloat16 or float32; the last dimension contiguous, rows may be strided.
        group_size, scale_ub, column_major_scales, tma_aligned_scales, scale_ue8m0, packed_ue8m0:
            as for rms_norm_quant_fp8 (per token by default; per group needs I a multiple of
            group_size).
        out, scale_out: preallocated outputs (codes of shape (..., I)).
        backend, enable_pdl: as for per_token_quant_fp8. Per group the CUDA backend is the group
            kernel with a SiLU-and-mul step (any I); per token the register kernel, or the staged
            kernel for long rows past one wave of CTAs (ops/row_quant.py: staged_pays); rows
            neither holds (I over 512 x 8 vectors, or over 512 x 6 at few rows) run on Triton.

    Returns:
        (q, scales) of y = silu(gate) * up as torch computes it in x's dtype (reference.py:
        silu_and_mul_reference; the kernels' exp may differ from torch's in the last fp32 bits,
        fp8quant/fused_bounds.py says how far); q of shape (..., I).
    """
    _checks.tensor(OP, "x", x)
    ub_tensor, ub_value = row_quant.split_scale_ub(OP, scale_ub, group_size, x.device)
    if packed_ue8m0 is True:
        scale_ue8m0 = column_major_scales = tma_aligned_scales = True
    return _OP((x, group_size, ub_tensor, ub_value, column_major_scales, tma_aligned_scales, scale_ue8m0, packed_ue8m0,
                backend, enable_pdl), (out, scale_out))
