"""Which backend runs a call: the one rule every op shares."""

from __future__ import annotations

import functools
import os
import warnings

import torch

from .. import _device
from .._cuda import Kernel
from ..jit import BuildError


def interpreting() -> bool:
    """Whether Triton runs under its interpreter (TRITON_INTERPRET=1): then backend="triton" runs
    on CPU tensors too."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def resolve_backend(op: str, x: torch.Tensor, backend: str, kernel: Kernel) -> str:
    """"auto": the reference ("torch") for CPU tensors and below compute capability 8.0, else the
    CUDA kernels, else (they cannot be built: no nvcc, a failed build) Triton with one warning."""
    if not x.is_cuda:
        if backend == "triton" and interpreting():
            return "triton"
        if backend in ("cuda", "triton"):
            hint = " (or TRITON_INTERPRET=1 for backend='triton')" if backend == "triton" else ""
            raise ValueError(f"{op}: backend={backend!r} needs x on an NVIDIA GPU{hint}, got x on {x.device}")
        return "torch"
    index = x.get_device()
    capability = _device.capability(index)
    if backend == "cuda" and capability < _device.MIN_CUDA_CAPABILITY:
        raise ValueError(
            f"{op}: backend='cuda' needs compute capability >= 8.0, x is on "
            f"{torch.cuda.get_device_name(index)} (capability {capability[0]}.{capability[1]})"
        )
    if backend != "auto":
        return backend
    return auto_backend(kernel, x.dtype, index)


_warned_fallback = False


@functools.lru_cache(maxsize=None)
def auto_backend(kernel: Kernel, dtype: torch.dtype, device_index: int) -> str:
    """backend="auto" on a GPU, decided once per op, dtype and device: a failed build is not retried
    on every call (the build cache keeps successes only), and an eager call does not pay for the
    decision."""
    if _device.capability(device_index) < _device.MIN_CUDA_CAPABILITY:
        return "torch"
    try:
        kernel.load(dtype, device_index)
        return "cuda"
    except BuildError as e:
        global _warned_fallback
        if not _warned_fallback:
            _warned_fallback = True
            warnings.warn(f"fp8quant: the CUDA kernels could not be built, falling back to Triton.\n{e}", RuntimeWarning, stacklevel=6)
        return "triton"


def scale_ub_pointer_and_value(scale_ub) -> tuple:
    """The kernels' two forms of scale_ub: (a device pointer, unused value) for a tensor, (None, the
    float) for a float, (None, +inf) for no bound."""
    if isinstance(scale_ub, torch.Tensor):
        return scale_ub.data_ptr(), float("inf")
    return None, float("inf") if scale_ub is None else float(scale_ub)


def tensor_vector_width(x2d: torch.Tensor, q: torch.Tensor) -> int:
    """per_token_plan.vector_width for x2d (rows, H) and its codes q: the widest access, up to 16
    bytes, that H, the row stride and both base addresses allow."""
    from .per_token_plan import vector_width

    return vector_width(x2d.shape[1], x2d.element_size(), x2d.stride(0), x2d.data_ptr(), q.data_ptr())
