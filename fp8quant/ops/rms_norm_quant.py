"""rms_norm_quant_fp8: (add +) RMSNorm + FP8 quantization, per token or per group, in one pass.

fp8quant/reference.py (rms_norm_quant_fp8_reference) defines the numbers: the unfused torch
composition. The CUDA kernel (csrc/rms_norm_quant.cuh) and the Triton kernel
(triton/rms_norm_quant.py) compute the norm in fp32 with their own summation order and rsqrt;
fp8quant/fused_bounds.py bounds what that may change. Registered as ``fp8quant::rms_norm_quant_fp8``
and ``fp8quant::rms_norm_quant_fp8_out`` (residual declared written).
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch

from .. import _checks, _cuda, _device
from .._library import QuantOp
from ..jit import EntryPoint
from ..reference import FUSED_GROUP_EPS, rms_norm_quant_fp8_reference
from . import row_quant
from .backends import resolve_backend, scale_ub_pointer_and_value
from .per_token import _as_rows

OP = "rms_norm_quant_fp8"

KERNEL = _cuda.register(EntryPoint(
    header="rms_norm_quant.cuh",
    symbol="fp8quant_rms_norm_quant_fp8",
    launcher="fp8quant::launch_rms_norm_quant",
    args_struct="fp8quant::RmsNormQuantArgs",
    args=(
        ("x", "const void*"), ("residual", "void*"), ("weight", "const void*"), ("q", "void*"), ("scale", "void*"),
        ("scale_ub_ptr", "const void*"), ("scale_ub_value", "float"), ("eps", "float"), ("group_eps", "float"),
        ("num_rows", "int64_t"), ("hidden", "int64_t"), ("x_row_stride", "int64_t"), ("residual_row_stride", "int64_t"),
        ("scale_ld", "int64_t"),
    ),
    config_struct="fp8quant::RowQuantConfig",
    config=row_quant.CONFIG,
))


def _check(x, weight, eps, residual, group_size, scale_ub, scale_ub_value, column_major, tma_aligned, ue8m0, packed,
           backend, enable_pdl, outs) -> None:
    _checks.tensor(OP, "x", x)
    _checks.rows(OP, x)
    hidden = x.shape[-1]
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{OP}: weight must be a torch.Tensor, got {type(weight).__name__}")
    if weight.shape != (hidden,) or weight.dtype != x.dtype or weight.device != x.device or weight.stride() != (1,):
        raise ValueError(
            f"{OP}: weight must be a contiguous tensor of shape ({hidden},), dtype {x.dtype} on {x.device} (x's), "
            f"got {_checks.describe(weight)}"
        )
    if isinstance(eps, bool) or not isinstance(eps, float):
        raise TypeError(f"{OP}: eps must be a float, got {type(eps).__name__}")
    if not (0.0 < eps <= _checks.FLOAT32_MAX):
        raise ValueError(f"{OP}: eps must be finite and positive, got {eps!r}")
    if residual is not None:
        if not isinstance(residual, torch.Tensor):
            raise TypeError(f"{OP}: residual must be None or a torch.Tensor, got {type(residual).__name__}")
        if residual.shape != x.shape or residual.dtype != x.dtype or residual.device != x.device:
            raise ValueError(
                f"{OP}: residual must have x's shape {tuple(x.shape)}, dtype {x.dtype} and device {x.device}, "
                f"got {_checks.describe(residual)}"
            )
        _checks.rows(OP, residual, "residual")
    flags = row_quant.ScaleFlags(column_major, tma_aligned, ue8m0, packed)
    row_quant.check_quant_args(OP, hidden, group_size, scale_ub, scale_ub_value, flags, x.device)
    _checks.backend(OP, backend)
    _checks.optional_bool(OP, "enable_pdl", enable_pdl)
    row_quant.check_outputs(OP, outs, tuple(x.shape), group_size, flags, x.device)


def _allocate(x, weight, eps, residual, group_size, scale_ub, scale_ub_value, column_major, tma_aligned, ue8m0, packed,
              *rest):
    return row_quant.allocate(tuple(x.shape), group_size, row_quant.ScaleFlags(column_major, tma_aligned, ue8m0, packed),
                              x.device)


def _run(x, weight, eps, residual, group_size, scale_ub, scale_ub_value, column_major, tma_aligned, ue8m0, packed,
         backend, enable_pdl, outs, outputs_given) -> None:
    flags = row_quant.ScaleFlags(column_major, tma_aligned, ue8m0, packed)
    out, scale_out = outs
    written = (("out", out), ("scale_out", scale_out))
    # residual is written too: it may not overlap x, weight or the outputs.
    _checks.no_overlap(OP, (("x", x), ("weight", weight), ("scale_ub", scale_ub)),
                       written + ((("residual", residual),) if residual is not None else ()))
    _checks.host_scale_ub(OP, scale_ub)
    if x.numel() == 0:
        return
    ub = scale_ub if scale_ub is not None else scale_ub_value
    backend = resolve_backend(OP, x, backend, KERNEL)
    x2d = _as_rows(x)
    cuda_plan = None
    if backend == "cuda":
        cuda_plan = _auto_plan(x2d, residual, weight, out, group_size)
        if cuda_plan is None:
            backend = "triton"  # rows the CUDA kernel does not hold (row_quant.plan)
    if backend == "torch":
        q, s, h = rms_norm_quant_fp8_reference(x, weight, eps, residual, group_size, ub, ue8m0)
        if residual is not None:
            residual.copy_(h)
        row_quant.copy_reference(q, s, outs, group_size, flags)
    elif backend == "cuda":
        launch_cuda(x2d, residual, weight, out, scale_out, eps, group_size, ub, flags.layout, ue8m0, cuda_plan, enable_pdl)
    else:
        from ..triton.rms_norm_quant import rms_norm_quant_fp8_triton

        with torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext():
            rms_norm_quant_fp8_triton(x2d, None if residual is None else _as_rows(residual), weight,
                                      out.view(-1, x.shape[-1]), scale_out, eps, group_size, ub, flags.layout, ue8m0,
                                      pdl=enable_pdl is not False)


def _plan_for(x2d, residual, weight, out, group_size, target_vecs_per_thread: int = row_quant.TARGET_VECS_PER_THREAD,
              staged: bool = False) -> Optional[row_quant.RowPlan]:
    """row_quant.plan for this call's vector width; staged: the staged kernel's at about
    target_vecs_per_thread vectors per thread."""
    vec = _vector_width(x2d, residual, weight, out)
    if staged:
        return row_quant.plan(x2d.shape[1], vec, x2d.element_size(), group_size, staged=True,
                              staged_vecs_per_thread=target_vecs_per_thread)
    return row_quant.plan(x2d.shape[1], vec, x2d.element_size(), group_size, target_vecs_per_thread)


def _vector_width(x2d, residual, weight, out) -> int:
    pairs = [(x2d.stride(0), x2d.data_ptr()), (0, weight.data_ptr()), (0, out.data_ptr())]
    if residual is not None:
        r2d = _as_rows(residual)
        pairs.append((r2d.stride(0), r2d.data_ptr()))
    return row_quant.vector_width(x2d.shape[1], x2d.element_size(), *pairs)


# Rows per SM up to which a call without the residual runs 2 vectors a thread (more threads share
# a row's math): same run (H100, bf16, inputs in L2 / % of copy bandwidth; 4 -> 2 vectors a
# thread), per token 256x8192 2.23 -> 1.82 us over the floor, 1024x4096 55.7 -> 58.0%, group 128
# 256x4096 1.91 -> 1.66 us, 256x8192 2.47 -> 1.84, 1024x4096 48.8 -> 56.4%; per token 256x4096
# 1.52 -> 1.61 us; at 4096x4096 4 vectors win (81.7 vs 76.0%, group 128 78.2 vs 73.7).
V2_MAX_ROWS_PER_SM = 8
# The staged kernel per token without the residual: where the register kernel's CTAs are 256
# threads or more (at 67 registers, 3 an SM) and its grid over 8 waves. Same run (H100, bf16, %
# of copy bandwidth, 4 vectors a thread -> staged): 16384x8192 88.8 -> 93.9, 16384x7168 (224
# threads) 91.6 -> 91.9, 4096x8192 (2 waves) 83.4 -> 78.4, 16384x4096 94.3 -> 88.1, 16384x2048
# 91.7 -> 83.0; with the residual the register kernel wins everywhere (16384x8192 99.7 vs 98.0%).
STAGED_MIN_THREADS = 256
STAGED_MIN_WAVES = 8


def plan_rule(num_rows: int, has_residual: bool, per_token: bool, sm_count: int,
              registers: Optional[row_quant.RowPlan]) -> str:
    """Which CUDA plan a call runs ("v1", "v2", "staged" or "v4": row_quant.plan's default
    target): one vector a thread where each row has an SM to itself (rows <= SMs / 2), measured
    per token 1x2048 1.86 -> 1.45 us, 1x4096 1.89 -> 1.68, 16x4096 1.95 -> 1.74, 64x4096 2.09 ->
    1.90, with the residual 16x4096 2.69 -> 2.37, 64x4096 2.93 -> 2.63 (H100, inputs in L2); two
    without the residual up to V2_MAX_ROWS_PER_SM rows an SM; the staged kernel per token without
    the residual where STAGED_MIN_THREADS and STAGED_MIN_WAVES say."""
    if 2 * num_rows <= sm_count:
        return "v1"
    if not has_residual and num_rows <= V2_MAX_ROWS_PER_SM * sm_count:
        return "v2"
    if (per_token and not has_residual and row_quant.register_threads(registers) >= STAGED_MIN_THREADS
            and row_quant.register_grid_waves(registers, num_rows, sm_count) > STAGED_MIN_WAVES):
        return "staged"
    return "v4"


def _auto_plan(x2d, residual, weight, out, group_size) -> Optional[row_quant.RowPlan]:
    # The vector width once per call; row_quant.plan is cached per shape.
    row_len, size = x2d.shape[1], x2d.element_size()
    vec = _vector_width(x2d, residual, weight, out)
    registers = row_quant.plan(row_len, vec, size, group_size)
    rule = plan_rule(x2d.shape[0], residual is not None, group_size is None,
                     _device.device_info(x2d.get_device()).sm_count, registers)
    if rule in ("v1", "v2"):
        return row_quant.plan(row_len, vec, size, group_size, int(rule[1]))
    if rule == "staged":
        return row_quant.plan(row_len, vec, size, group_size, staged=True) or registers
    return registers


def launch_cuda(x2d, residual, weight, q, scale, eps, group_size, scale_ub, layout, ue8m0, plan,
                enable_pdl=None) -> None:
    """layout: row_quant.ScaleFlags.layout (0, row-major, per token). A bulk plan (forced) needs
    no residual."""
    if plan.bulk and residual is not None:
        raise ValueError(f"{OP}: a bulk row load (a forced plan) takes no residual")
    index = x2d.get_device()
    pdl = _device.use_pdl(index, enable_pdl)
    num_rows, hidden = x2d.shape
    ub_ptr, ub_value = scale_ub_pointer_and_value(scale_ub)
    r2d = None if residual is None else _as_rows(residual)
    row_input_bytes = hidden * x2d.element_size() * (1 if r2d is None else 2)
    config = row_quant.launch_config(KERNEL, plan, num_rows, row_input_bytes, group_size, layout, ue8m0, index, pdl)
    KERNEL(x2d.dtype, index, x2d.data_ptr(), None if r2d is None else r2d.data_ptr(), weight.data_ptr(), q.data_ptr(),
           scale.data_ptr(), ub_ptr, ub_value, eps, FUSED_GROUP_EPS, num_rows, hidden, x2d.stride(0),
           0 if r2d is None else r2d.stride(0), scale.stride(1) if layout else 0, config)


_OP = QuantOp(
    OP,
    "Tensor x, Tensor weight, float eps, Tensor(r!)? residual, int? group_size, Tensor? scale_ub, float? scale_ub_value, "
    "bool column_major_scales, bool tma_aligned_scales, bool scale_ue8m0, bool packed_ue8m0, str backend, "
    "bool? enable_pdl=None",
    ("out", "scale_out"),
    check=_check,
    allocate=_allocate,
    run=_run,
    mutated=(3,),
)


def rms_norm_quant_fp8(
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-6,
    *,
    residual: Optional[torch.Tensor] = None,
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
    """RMSNorm of x (after adding residual) quantized to FP8 e4m3, in one pass.

    Args:
        x: (..., H) float16, bfloat16 or float32; the last dimension contiguous, rows may be strided.
        weight: (H,) of x's dtype, contiguous.
        eps: added to the mean of squares (a positive float).
        residual: optional tensor of x's shape and dtype, overwritten in place with x + residual
            (rounded to the dtype, as vLLM's and FlashInfer's fused_add_rmsnorm store it); the norm is
            taken of that sum.
        group_size: None for one scale per row (the per_token_quant_fp8 contract, scale_ub
            included), or 16-256 for one per group (the per_token_group_quant_fp8 contract with
            eps 1e-10; H a multiple of it).
        column_major_scales, tma_aligned_scales, scale_ue8m0, packed_ue8m0: per group, the scale
            layouts of per_token_group_quant_fp8 (packed_ue8m0 implies the other three).
        out, scale_out: preallocated outputs (codes of x's shape; scales (..., 1) per token, per
            group in the layout the flags ask for).
        backend, enable_pdl: as for per_token_quant_fp8. The CUDA backend picks its register or
            staged kernel and plan by plan_rule; rows neither holds (over 512 x 6 vectors in
            registers, 512 x 4 per group; float32 with group 256) run on the Triton kernel.

    Returns:
        (q, scales) of y = weight * RMSNorm(h) computed as torch computes it in x's dtype
        (reference.py: rms_norm_reference); the kernels' fp32 norm may differ from torch's in the
        last bits of the rsqrt (fp8quant/fused_bounds.py says how far).
    """
    _checks.tensor(OP, "x", x)
    ub_tensor, ub_value = row_quant.split_scale_ub(OP, scale_ub, group_size, x.device)
    if packed_ue8m0 is True:
        scale_ue8m0 = column_major_scales = tma_aligned_scales = True
    return _OP((x, weight, eps, residual, group_size, ub_tensor, ub_value, column_major_scales, tma_aligned_scales,
                scale_ue8m0, packed_ue8m0, backend, enable_pdl), (out, scale_out))
