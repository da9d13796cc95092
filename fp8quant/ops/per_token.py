"""per_token_quant_fp8: per row, amax, scale = amax / 448, q = e4m3(x / scale).

fp8quant/reference.py (per_token_quant_fp8_reference) defines the numbers; the CUDA kernels
(csrc/per_token.cuh, planned by ops/per_token_plan.py) and the Triton kernel
(triton/per_token.py) match it bit for bit. Registered as ``fp8quant::per_token_quant_fp8`` and
``fp8quant::per_token_quant_fp8_out``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from typing import Optional

import torch

from .. import _checks, _cuda, _device
from .._library import QuantOp
from ..jit import EntryPoint
from ..reference import FP8_DTYPE, per_token_quant_fp8_reference
from . import per_token_plan as planner
from .backends import resolve_backend, scale_ub_pointer_and_value, tensor_vector_width

OP = "per_token_quant_fp8"

KERNEL = _cuda.register(EntryPoint(
    header="per_token.cuh",
    symbol="fp8quant_per_token_quant_fp8",
    launcher="fp8quant::launch_per_token_quant",
    args_struct="fp8quant::PerTokenArgs",
    args=(
        ("x", "const void*"), ("q", "void*"), ("scale", "void*"), ("scale_ub_ptr", "const void*"),
        ("scale_ub_value", "float"), ("num_rows", "int64_t"), ("hidden", "int64_t"), ("x_row_stride", "int64_t"),
    ),
    config_struct="fp8quant::PerTokenConfig",
    config=(
        ("staging", "int32_t"), ("vec", "int32_t"), ("vecs_per_thread", "int32_t"), ("threads_per_row", "int32_t"),
        ("ctas_per_row_shift", "int32_t"), ("trigger_at_entry", "int32_t"), ("smem_row_stride", "int32_t"),
        ("block_threads", "int32_t"), ("grid", "int64_t"), ("smem_bytes", "int32_t"), ("device", "int32_t"),
        ("pdl", "int32_t"),
    ),
))


def _check(x, scale_ub, scale_ub_value, backend, enable_pdl, outs) -> None:
    _checks.tensor(OP, "x", x)
    _checks.rows(OP, x)
    _checks.backend(OP, backend)
    _checks.optional_bool(OP, "enable_pdl", enable_pdl)
    out, scale_out = outs
    _checks.output(OP, "out", out, tuple(x.shape), FP8_DTYPE, x.device)
    _checks.output(OP, "scale_out", scale_out, (*x.shape[:-1], 1), torch.float32, x.device)
    _checks.scale_ub(OP, scale_ub, x.device)
    _checks.scale_ub_value(OP, scale_ub_value)


def _allocate(x, *args) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.empty(x.shape, dtype=FP8_DTYPE, device=x.device),
        torch.empty((*x.shape[:-1], 1), dtype=torch.float32, device=x.device),
    )


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    """x as (rows, H) with one row stride; a copy only when the leading dims cannot merge."""
    if x.dim() == 2:
        return x
    if x.dim() == 1:
        return x.view(1, x.shape[-1])
    try:
        return x.view(-1, x.shape[-1])
    except RuntimeError:
        return x.reshape(-1, x.shape[-1])


def _run(x, scale_ub, scale_ub_value, backend, enable_pdl, outs, outputs_given) -> None:
    out, scale_out = outs
    if outputs_given:  # outputs allocated for this call overlap nothing
        _checks.no_overlap(OP, (("x", x),), (("out", out), ("scale_out", scale_out)))
    _checks.host_scale_ub(OP, scale_ub)
    if x.numel() == 0:
        return
    ub = scale_ub if scale_ub is not None else scale_ub_value
    backend = resolve_backend(OP, x, backend, KERNEL)
    if backend == "torch":
        q, s = per_token_quant_fp8_reference(x, ub)
        out.copy_(q)
        scale_out.copy_(s)
    elif backend == "cuda":
        launch_cuda(_as_rows(x), out, scale_out, ub, enable_pdl)
    else:
        from ..triton.per_token import per_token_quant_fp8_triton

        with torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext():
            per_token_quant_fp8_triton(_as_rows(x), out.view(-1, x.shape[-1]), scale_out.view(-1), ub, pdl=enable_pdl is not False)


def plan_for(x2d: torch.Tensor, q: torch.Tensor, pdl: bool, **forced) -> planner.Plan:
    """The plan for x2d -> q (only q's data pointer is read); `forced`: staging, threads_per_row,
    ctas_per_row (tests and the benchmark)."""
    num_rows, hidden = x2d.shape
    element_size = x2d.element_size()
    vec = tensor_vector_width(x2d, q)
    if forced:
        return planner.plan(num_rows, hidden, element_size, vec, _device.device_info(x2d.get_device()), pdl=pdl, **forced)
    return _cached_plan(num_rows, hidden, element_size, vec, x2d.get_device(), pdl)


@functools.lru_cache(maxsize=4096)
def _cached_plan(num_rows, hidden, element_size, vec, device_index, pdl) -> planner.Plan:
    return planner.plan(num_rows, hidden, element_size, vec, _device.device_info(device_index), pdl=pdl)


def launch_cuda(
    x2d: torch.Tensor,
    q: torch.Tensor,
    scale: torch.Tensor,
    scale_ub: float | torch.Tensor | None,
    enable_pdl: Optional[bool] = None,
    plan: Optional[planner.Plan] = None,
) -> None:
    """Launch the CUDA kernels on torch's current stream of x2d's device: x2d (rows, H) with its
    last dimension contiguous; q and scale contiguous (only their data pointers are read). `plan`
    forces a launch (tests, the benchmark); by default the planner's for x2d."""
    index = x2d.get_device()
    pdl = _device.use_pdl(index, enable_pdl)
    if plan is None:
        plan = plan_for(x2d, q, pdl)
    ub_ptr, ub_value = scale_ub_pointer_and_value(scale_ub)
    num_rows, hidden = x2d.shape
    args = (x2d.data_ptr(), q.data_ptr(), scale.data_ptr(), ub_ptr, ub_value, num_rows, hidden, x2d.stride(0),
            _launch_config(plan, index, pdl))
    KERNEL(x2d.dtype, index, *args)


@functools.lru_cache(maxsize=4096)
def _launch_config(plan: planner.Plan, device_index: int, pdl: bool):
    """The plan's PerTokenConfig, built once per plan, device and PDL choice (a pointer per call)."""
    return ctypes.byref(KERNEL.entry.config_type(
        planner.STAGING_CODE[plan.staging], plan.vec, plan.vecs_per_thread, plan.threads_per_row,
        plan.ctas_per_row.bit_length() - 1, int(pdl and plan.trigger_at_entry), plan.smem_row_stride,
        plan.block_threads, plan.grid, plan.smem_bytes, device_index, int(pdl),
    ))


_OP = QuantOp(
    OP,
    "Tensor x, Tensor? scale_ub, float? scale_ub_value, str backend, bool? enable_pdl=None",
    ("out", "scale_out"),
    check=_check,
    allocate=_allocate,
    run=_run,
)


def per_token_quant_fp8(
    x: torch.Tensor,
    scale_ub: float | torch.Tensor | None = None,
    *,
    out: Optional[torch.Tensor] = None,
    scale_out: Optional[torch.Tensor] = None,
    backend: str = "auto",
    enable_pdl: Optional[bool] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize each row (token) of x to FP8 e4m3 with its own float32 scale.

    Args:
        x: (..., H) float16, bfloat16 or float32, H >= 1; the last dimension contiguous, the
            rows may be strided. Zero rows give empty outputs and launch nothing.
        scale_ub: optional upper bound on each row's amax: a positive float, or a 1-element
            float32 tensor on x's device (read on the device, so CUDA graphs can change it; a
            bound <= 0 there gives every row the floor scale, a NaN bound NaN scales).
        out: optional float8_e4m3fn tensor of x's shape (contiguous) to write the codes into.
        scale_out: optional float32 tensor of shape (..., 1) (contiguous) for the scales.
        backend: "auto" (the reference for CPU tensors, CUDA on GPUs of compute capability 8.0+,
            Triton with one warning where the CUDA kernels cannot be built), "cuda", "triton"
            (also on CPU tensors under TRITON_INTERPRET=1) or "torch".
        enable_pdl: programmatic dependent launch (None: on GPUs that have it, sm_90+). The kernel
            waits on the GPU for the previous one before it touches memory, so results are the
            same either way; False launches it plainly.

    Returns:
        (q, scale) with x ~= q.float() * scale, per row: scale = max(min(amax, scale_ub) / 448,
        1 / (448 * 512)); q = e4m3(clamp(x / scale, -448, 448)), IEEE division, round to nearest
        even. A NaN in a row makes its scale and all its codes NaN (0x7f); an Inf makes the scale
        +Inf, the Inf elements NaN and the others zero; with scale_ub an Inf saturates to +-448.
        The outputs never require grad.

    Raises:
        TypeError / ValueError before anything runs or is written, naming the bad argument.
    """
    _checks.tensor(OP, "x", x)  # before x.device is read
    ub_tensor, ub_value = _checks.scale_ub(OP, scale_ub, x.device)
    return _OP((x, ub_tensor, ub_value, backend, enable_pdl), (out, scale_out))
