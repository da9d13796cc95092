"""Argument checks every op shares. Each raises TypeError (wrong kind of value) or ValueError
(right kind, wrong value) naming the op, the argument, what it got and what was expected, and
runs before anything reaches torch.ops or a kernel, so errors read the same on every device.
Static checks need no data (they also run on fake tensors while torch.compile traces);
`no_overlap` and `host_scale_ub` read data pointers or values and run just before a launch."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

INPUT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
BACKENDS = ("auto", "cuda", "triton", "torch")
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def describe(t: torch.Tensor) -> str:
    return f"tensor(shape={tuple(t.shape)}, dtype={t.dtype}, device={t.device})"


def _dtype_names(dtypes: Sequence[torch.dtype]) -> str:
    names = [str(d).removeprefix("torch.") for d in dtypes]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def tensor(op: str, name: str, value, dtypes: Sequence[torch.dtype] = INPUT_DTYPES) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in dtypes:
        raise TypeError(f"{op}: {name} must have dtype {_dtype_names(dtypes)}, got {value.dtype}")


def rows(op: str, x: torch.Tensor, name: str = "x") -> None:
    """x is (..., H): at least one dimension, H >= 1, the last dimension contiguous."""
    if x.dim() == 0:
        raise ValueError(f"{op}: {name} must have at least one dimension (..., H), got a 0-d tensor")
    if x.shape[-1] < 1:
        raise ValueError(f"{op}: {name}'s last dimension H must be at least 1, got shape {tuple(x.shape)}")
    if x.shape[-1] > 1 and x.stride(-1) != 1:
        raise ValueError(
            f"{op}: {name}'s last dimension must be contiguous (stride 1), got strides {tuple(x.stride())}; "
            f"call {name}.contiguous() first"
        )


def backend(op: str, value) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{op}: backend must be one of {BACKENDS}, got {value!r}")
    if value not in BACKENDS:
        raise ValueError(f"{op}: backend must be one of {BACKENDS}, got {value!r}")


def optional_bool(op: str, name: str, value) -> None:
    if value is not None and not isinstance(value, bool):  # torch.ops would take 1 as True
        raise TypeError(f"{op}: {name} must be None, True or False, got {value!r}")


def output(op: str, name: str, t, shape: tuple, dtype: torch.dtype, device: torch.device) -> None:
    """An out= tensor the caller gave: contiguous, of this shape, dtype and device."""
    if t is None:
        return
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor or None, got {type(t).__name__}")
    if t.dtype != dtype or tuple(t.shape) != tuple(shape) or t.device != device:
        raise ValueError(
            f"{op}: {name} must be a contiguous tensor of shape {tuple(shape)}, dtype {dtype} on {device}, "
            f"got {describe(t)}"
        )
    if not t.is_contiguous():
        raise ValueError(f"{op}: {name} must be contiguous, got strides {tuple(t.stride())}")


def scale_ub(op: str, value, device: torch.device) -> tuple[Optional[torch.Tensor], Optional[float]]:
    """scale_ub as the ops take it: (a 1-element float32 tensor on x's device, None) or (None, a
    finite positive float that float32 holds) or (None, None)."""
    if value is None:
        return None, None
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype != torch.float32 or value.device != device:
            raise ValueError(
                f"{op}: scale_ub must be a float or a 1-element float32 tensor on {device}, got {describe(value)}"
            )
        return value, None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{op}: scale_ub must be None, a float or a 1-element float32 tensor, got {type(value).__name__}")
    scale_ub_value(op, float(value))
    return None, float(value)


def scale_ub_value(op: str, value: Optional[float]) -> None:
    if value is not None and not (0.0 < value <= FLOAT32_MAX):
        raise ValueError(
            f"{op}: scale_ub must be finite and positive, got {value!r} (a float32 value: at most {FLOAT32_MAX:.8g})"
        )


def host_scale_ub(op: str, ub: Optional[torch.Tensor]) -> None:
    """A scale_ub tensor on the CPU is checked like the float form (reading it costs nothing there).
    One on a GPU is read by the kernel and not checked (that would synchronize): the contract
    says what a bound <= 0 or NaN gives."""
    if ub is not None and ub.device.type == "cpu":
        value = float(ub.reshape(()))
        if not (0.0 < value < math.inf):
            raise ValueError(f"{op}: scale_ub must be finite and positive, got a tensor holding {value!r}")


def _span(t: torch.Tensor) -> tuple[int, int]:
    """[first byte, last byte + 1) that t's elements occupy."""
    if t.is_contiguous():  # outputs always, inputs mostly: no sum over the dimensions
        start = t.data_ptr()
        return (start, start + t.numel() * t.element_size())
    if t.numel() == 0:
        return (t.data_ptr(), t.data_ptr())
    extent = sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()) if size > 0)
    return (t.data_ptr(), t.data_ptr() + (extent + 1) * t.element_size())


def no_overlap(op: str, inputs: tuple, outputs: tuple) -> None:
    """No output shares a byte with an input or with another output; `inputs` and `outputs` are
    (name, tensor) pairs (an input tensor may be None). Each span is computed once: per pair, they
    were the largest Python cost of an eager call (a third of it, cProfile)."""
    in_spans = [(name, _span(t)) for name, t in inputs if t is not None]
    out_spans = [(name, _span(t)) for name, t in outputs]
    for i, (out_name, out_span) in enumerate(out_spans):
        for in_name, in_span in in_spans:
            if out_span[0] < in_span[1] and in_span[0] < out_span[1]:
                raise ValueError(f"{op}: {out_name} overlaps {in_name} in memory; outputs must not alias an input")
        for other_name, other_span in out_spans[:i]:
            if out_span[0] < other_span[1] and other_span[0] < out_span[1]:
                raise ValueError(f"{op}: {other_name} and {out_name} overlap in memory")
