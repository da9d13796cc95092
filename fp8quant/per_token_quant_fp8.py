"""per_token_quant_fp8: the public op, its argument checks and its backends.

    q, scale = per_token_quant_fp8(x, scale_ub=None, *, out=None, scale_out=None, backend="auto",
                                   enable_pdl=None)

fp8quant/reference.py defines the numbers (including NaN and Inf); every backend matches it bit
for bit. Backends: "cuda" (our kernels, fp8quant/csrc, built on first use), "triton"
(fp8quant/triton_kernels.py), "torch" (the reference itself), "auto": the reference for CPU
tensors, CUDA on an NVIDIA GPU of compute capability 8.0 or newer, Triton (with one warning)
when the CUDA kernels cannot be built there.

The op is registered as the torch.library ops ``fp8quant::per_token_quant_fp8`` and
``fp8quant::per_token_quant_fp8_out`` with fake (meta) implementations, so torch.compile
(fullgraph=True) and CUDA-graph capture see an ordinary op.
"""

from __future__ import annotations

import functools
import warnings
from typing import Optional

import torch

from . import _cuda, reference
from .reference import FP8_DTYPE, INPUT_DTYPES

BACKENDS = ("auto", "cuda", "triton", "torch")
MIN_CUDA_CAPABILITY = (8, 0)  # max.NaN.f32 and the e4m3 conversion need sm_80


def _describe(t: torch.Tensor) -> str:
    return f"tensor(shape={tuple(t.shape)}, dtype={t.dtype}, device={t.device})"


def _check_static(
    x: torch.Tensor,
    out: Optional[torch.Tensor],
    scale_out: Optional[torch.Tensor],
    scale_ub: Optional[torch.Tensor],
    scale_ub_value: Optional[float],
    backend: str,
    enable_pdl: Optional[bool] = None,
) -> None:
    """Checks that need no data pointers (also run while tracing under torch.compile)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"per_token_quant_fp8: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in INPUT_DTYPES:
        raise TypeError(
            f"per_token_quant_fp8: x must have dtype float16, bfloat16 or float32, got {x.dtype}"
        )
    if x.dim() == 0:
        raise ValueError("per_token_quant_fp8: x must have at least one dimension (..., H), got a 0-d tensor")
    if x.shape[-1] < 1:
        raise ValueError(f"per_token_quant_fp8: x's last dimension H must be at least 1, got shape {tuple(x.shape)}")
    if x.shape[-1] > 1 and x.stride(-1) != 1:
        raise ValueError(
            "per_token_quant_fp8: x's last dimension must be contiguous (stride 1), got strides "
            f"{tuple(x.stride())}; call x.contiguous() first"
        )
    if backend not in BACKENDS:
        raise ValueError(f"per_token_quant_fp8: backend must be one of {BACKENDS}, got {backend!r}")
    if enable_pdl is not None and not isinstance(enable_pdl, bool):
        raise TypeError(f"per_token_quant_fp8: enable_pdl must be None, True or False, got {enable_pdl!r}")
    scale_shape = (*x.shape[:-1], 1)
    for name, t, dtype, shape in (
        ("out", out, FP8_DTYPE, tuple(x.shape)),
        ("scale_out", scale_out, torch.float32, scale_shape),
    ):
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"per_token_quant_fp8: {name} must be a torch.Tensor or None, got {type(t).__name__}")
        if t.dtype != dtype or tuple(t.shape) != shape or t.device != x.device:
            raise ValueError(
                f"per_token_quant_fp8: {name} must be a contiguous tensor of shape {shape}, dtype "
                f"{dtype} on {x.device}, got {_describe(t)}"
            )
        if not t.is_contiguous():
            raise ValueError(f"per_token_quant_fp8: {name} must be contiguous, got strides {tuple(t.stride())}")
    if scale_ub is not None:
        if scale_ub.numel() != 1 or scale_ub.dtype != torch.float32 or scale_ub.device != x.device:
            raise ValueError(
                "per_token_quant_fp8: scale_ub must be a float or a 1-element float32 tensor on "
                f"{x.device}, got {_describe(scale_ub)}"
            )
    if scale_ub_value is not None and not (0.0 < scale_ub_value < float("inf")):
        raise ValueError(f"per_token_quant_fp8: scale_ub must be finite and positive, got {scale_ub_value}")


def _span(t: torch.Tensor) -> tuple[int, int]:
    """[first byte, last byte + 1) that t's elements occupy."""
    if t.is_contiguous():  # outputs always, inputs mostly: no sum over the dimensions (v20)
        start = t.data_ptr()
        return (start, start + t.numel() * t.element_size())
    if t.numel() == 0:
        return (t.data_ptr(), t.data_ptr())
    extent = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()) if size > 0)
    return (t.data_ptr(), t.data_ptr() + (extent + 1) * t.element_size())


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _check_overlap(x: torch.Tensor, out: torch.Tensor, scale_out: torch.Tensor) -> None:
    # Each span once: computing them per pair was the largest Python cost of an eager call
    # (v19 run 4, cProfile: 6 spans, ~30% of the call).
    x_span, out_span, scale_span = _span(x), _span(out), _span(scale_out)
    for name, span in (("out", out_span), ("scale_out", scale_span)):
        if _overlaps(x_span, span):
            raise ValueError(f"per_token_quant_fp8: {name} overlaps x in memory; outputs must not alias the input")
    if _overlaps(out_span, scale_span):
        raise ValueError("per_token_quant_fp8: out and scale_out overlap in memory")


_warned_fallback = False


@functools.lru_cache(maxsize=None)
def _capability(device_index: int) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device_index)


def _resolve_backend(x: torch.Tensor, backend: str) -> str:
    if not x.is_cuda:
        if backend in ("cuda", "triton"):
            raise ValueError(
                f"per_token_quant_fp8: backend={backend!r} needs x on an NVIDIA GPU, got x on {x.device}"
            )
        return "torch"
    index = x.get_device()
    capability = _capability(index)
    if backend == "cuda" and capability < MIN_CUDA_CAPABILITY:
        raise ValueError(
            f"per_token_quant_fp8: backend='cuda' needs compute capability >= 8.0, x is on "
            f"{torch.cuda.get_device_name(x.device)} (capability {capability[0]}.{capability[1]})"
        )
    if backend != "auto":
        return backend
    return _auto_backend(x.dtype, index)


@functools.lru_cache(maxsize=None)
def _auto_backend(dtype: torch.dtype, device_index: int) -> str:
    """backend="auto" on a GPU, decided once per dtype and device: the reference below sm_80, else
    the CUDA kernels, else (they cannot be built: no nvcc, a failed build) Triton with one warning.
    Once, because a failed build is not retried on every call (the build's own cache only keeps
    successes), and an eager call should not pay for the decision (docs/performance.md, v20)."""
    if _capability(device_index) < MIN_CUDA_CAPABILITY:
        return "torch"
    from .jit import BuildError

    try:
        _cuda.load(dtype, device_index)
        return "cuda"
    except BuildError as e:
        global _warned_fallback
        if not _warned_fallback:
            _warned_fallback = True
            warnings.warn(
                f"fp8quant: the CUDA kernels could not be built, falling back to Triton.\n{e}",
                RuntimeWarning,
                stacklevel=5,
            )
        return "triton"


def _new_codes(x: torch.Tensor) -> torch.Tensor:
    return torch.empty(x.shape, dtype=FP8_DTYPE, device=x.device)


def _new_scales(x: torch.Tensor) -> torch.Tensor:
    return torch.empty((*x.shape[:-1], 1), dtype=torch.float32, device=x.device)


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    """x as (rows, H) with one row stride; a copy only when the leading dims cannot merge."""
    hidden = x.shape[-1]
    if x.dim() == 1:
        return x.view(1, hidden)
    if x.dim() == 2:
        return x
    try:
        return x.view(-1, hidden)
    except RuntimeError:
        return x.reshape(-1, hidden)


def _run(
    x: torch.Tensor,
    out: torch.Tensor,
    scale_out: torch.Tensor,
    scale_ub: Optional[torch.Tensor],
    scale_ub_value: Optional[float],
    backend: str,
    enable_pdl: Optional[bool],
    outputs_given: bool = True,
) -> None:
    """Quantize x into out and scale_out (checked by _check_static). `outputs_given`: out or
    scale_out came from the caller; outputs allocated for this call cannot overlap anything, so
    the overlap check is skipped for them."""
    if outputs_given:
        _check_overlap(x, out, scale_out)
    if x.numel() == 0:
        return
    ub = scale_ub if scale_ub is not None else scale_ub_value
    backend = _resolve_backend(x, backend)
    if backend == "torch":
        q, s = reference.per_token_quant_fp8_reference(x, ub)
        out.copy_(q)
        scale_out.copy_(s)
        return
    x2d = x if x.dim() == 2 else _as_rows(x)
    if backend == "cuda":
        # out and scale_out are contiguous: _cuda.launch reads their data pointers, no views needed.
        index = x.get_device()
        pdl = _cuda.use_pdl(index, enable_pdl)
        plan = _cuda.plan_for(x2d, out, pdl=pdl)
        if torch.cuda.current_device() == index:  # the usual case: no device guard to enter and leave
            _cuda.launch(x2d, out, scale_out, ub, plan, pdl)
        else:
            with torch.cuda.device(index):
                _cuda.launch(x2d, out, scale_out, ub, plan, pdl)
    else:
        from . import triton_kernels

        q2d = out.view(-1, x.shape[-1])
        s1d = scale_out.view(-1)
        with torch.cuda.device(x.device):
            triton_kernels.per_token_quant_fp8_triton(x2d, q2d, s1d, ub, pdl=enable_pdl is not False)


def _mark_written(*tensors: torch.Tensor) -> None:
    """Bump the version counters of outputs the kernels wrote through data pointers, which autograd
    cannot see (a no-op for inference tensors). One tensor per call: increment_version takes a
    sequence only since torch 2.5 (pytorch PR 132652)."""
    for t in tensors:
        torch.autograd.graph.increment_version(t)


# The ops are defined with torch.library.Library and their schemas written out, not with
# torch.library.custom_op: custom_op wraps every call in Python layers of its own (an autograd
# kernel, an aliasing check of the outputs, the version bumps of mutated arguments), and a call
# through torch.ops, which is what torch.compile's generated code makes, cost ~15 us (functional)
# and ~35-43 us (out=) on our CPU machine against ~3-5 us this way (do-nothing bodies, torch 2.13).
# With our kernels on an H200's host: 49.1 -> 32.8 us functional, 48.5 -> 23.1 out= (medians of 5
# shapes x 3 rounds; docs/performance.md, v22 run 1). As with vLLM's and SGLang's own C++ ops, no
# autograd kernel is registered: the outputs of an input that requires grad carry torch's
# not-implemented fallback, which warns if anything backpropagates through them (the codes are not
# differentiable).
_LIBRARY = torch.library.Library("fp8quant", "DEF")
_LIBRARY.define(
    "per_token_quant_fp8(Tensor x, Tensor? scale_ub, float? scale_ub_value, str backend, "
    "bool? enable_pdl=None) -> (Tensor, Tensor)"
)
_LIBRARY.define(
    "per_token_quant_fp8_out(Tensor x, Tensor(a1!) out, Tensor(a2!) scale_out, Tensor? scale_ub, "
    "float? scale_ub_value, str backend, bool? enable_pdl=None) -> ()"
)


def _per_token_quant_fp8_op(x, scale_ub, scale_ub_value, backend, enable_pdl=None):
    _check_static(x, None, None, scale_ub, scale_ub_value, backend, enable_pdl)
    out, scale_out = _new_codes(x), _new_scales(x)
    _run(x, out, scale_out, scale_ub, scale_ub_value, backend, enable_pdl, outputs_given=False)
    return out, scale_out


def _per_token_quant_fp8_out_op(x, out, scale_out, scale_ub, scale_ub_value, backend, enable_pdl=None):
    _check_static(x, out, scale_out, scale_ub, scale_ub_value, backend, enable_pdl)
    _run(x, out, scale_out, scale_ub, scale_ub_value, backend, enable_pdl)
    _mark_written(out, scale_out)  # custom_op did this for mutated arguments; a Library op has to


def _per_token_quant_fp8_fake(x, scale_ub, scale_ub_value, backend, enable_pdl=None):
    _check_static(x, None, None, scale_ub, scale_ub_value, backend, enable_pdl)
    return _new_codes(x), _new_scales(x)


def _per_token_quant_fp8_out_fake(x, out, scale_out, scale_ub, scale_ub_value, backend, enable_pdl=None):
    _check_static(x, out, scale_out, scale_ub, scale_ub_value, backend, enable_pdl)


# One implementation for every backend (CPU, CUDA): _run picks the kernels from x's device.
for _name, _impl, _fake in (
    ("per_token_quant_fp8", _per_token_quant_fp8_op, _per_token_quant_fp8_fake),
    ("per_token_quant_fp8_out", _per_token_quant_fp8_out_op, _per_token_quant_fp8_out_fake),
):
    _LIBRARY.impl(_name, _impl, "CompositeExplicitAutograd")
    torch.library.register_fake(f"fp8quant::{_name}", _fake, lib=_LIBRARY)


def _dispatcher_not_needed(x: torch.Tensor, *others: Optional[torch.Tensor]) -> bool:
    """Whether an eager call on the GPU may run the op's implementation directly rather than
    through torch.ops: x is on a CUDA device, nothing is tracing (torch.compile, export), no
    Python dispatch or torch-function mode is active (fake tensors, profilers' and users' modes),
    every tensor is a plain torch.Tensor and none needs autograd. There the dispatcher would only
    forward the call, at a cost of its own: with the ops made by custom_op, skipping it took an
    eager call's host time on the device machine from a median of 83 us to 50 (docs/performance.md,
    v19 run 2); since the ops are Library ops (v22) the skip saves ~2.7 us (H200 host: out= given,
    20.4 us against 23.1 through torch.ops). CUDA-graph replays pay neither. Everywhere else (CPU
    and meta tensors too) the call goes through the registered ops."""
    return (
        x.is_cuda
        and not torch.compiler.is_compiling()
        and torch._C._len_torch_dispatch_stack() == 0
        and torch._C._len_torch_function_stack() == 0
        and all(t is None or (type(t) is torch.Tensor and not t.requires_grad) for t in (x, *others))
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
            float32 tensor on x's device (read on the device, so CUDA graphs can change it).
        out: optional float8_e4m3fn tensor of x's shape (contiguous) to write the codes into.
        scale_out: optional float32 tensor of shape (..., 1) (contiguous) for the scales.
        backend: "auto", "cuda", "triton" or "torch".
        enable_pdl: programmatic dependent launch (None, the default: on GPUs that have it,
            compute capability 9.0+, for the CUDA and Triton backends). The kernel is then
            scheduled while the previous kernel in the stream finishes and waits for it on the
            GPU before it reads or writes anything, so results are the same either way; False
            launches it plainly. Ignored by the torch backend, on older GPUs and by a Triton
            without PDL support.

    Returns:
        (q, scale) with x ~= q.float() * scale. Per row: scale = max(min(amax, scale_ub) / 448,
        1 / (448 * 512)); q = e4m3(clamp(x / scale, -448, 448)) with IEEE division and
        round-to-nearest-even. A NaN in a row makes its scale and all its codes NaN (0x7f); an
        Inf makes the scale +Inf, the Inf elements NaN and the others zero (so the row
        dequantizes to NaN); with scale_ub an Inf saturates to +-448 instead.

    Raises:
        TypeError / ValueError before anything runs or is written, naming the bad argument.
    """
    ub_tensor, ub_value = None, None
    if isinstance(scale_ub, torch.Tensor):
        ub_tensor = scale_ub
    elif scale_ub is not None:
        if isinstance(scale_ub, bool) or not isinstance(scale_ub, (int, float)):
            raise TypeError(
                "per_token_quant_fp8: scale_ub must be None, a float or a 1-element float32 "
                f"tensor, got {type(scale_ub).__name__}"
            )
        ub_value = float(scale_ub)
    if not isinstance(x, torch.Tensor):  # before torch.ops, whose schema error is less clear
        raise TypeError(f"per_token_quant_fp8: x must be a torch.Tensor, got {type(x).__name__}")
    if enable_pdl is not None and not isinstance(enable_pdl, bool):  # torch.ops would take 1 as True
        raise TypeError(f"per_token_quant_fp8: enable_pdl must be None, True or False, got {enable_pdl!r}")
    if _dispatcher_not_needed(x, out, scale_out, ub_tensor):
        _check_static(x, out, scale_out, ub_tensor, ub_value, backend, enable_pdl)
        given = [t for t in (out, scale_out) if t is not None]
        out = _new_codes(x) if out is None else out
        scale_out = _new_scales(x) if scale_out is None else scale_out
        _run(x, out, scale_out, ub_tensor, ub_value, backend, enable_pdl, outputs_given=bool(given))
        _mark_written(*given)  # as the _out op does through the dispatcher
        return out, scale_out
    # The ops check everything else (_check_static), in eager mode and while tracing alike, and
    # before any launch; checking here too would do it twice per call.
    if out is None and scale_out is None:
        return torch.ops.fp8quant.per_token_quant_fp8(x, ub_tensor, ub_value, backend, enable_pdl)
    out = _new_codes(x) if out is None else out
    scale_out = _new_scales(x) if scale_out is None else scale_out
    torch.ops.fp8quant.per_token_quant_fp8_out(x, out, scale_out, ub_tensor, ub_value, backend, enable_pdl)
    return out, scale_out
