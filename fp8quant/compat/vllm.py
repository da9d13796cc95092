"""vLLM's quantization entry points over fp8quant's ops: `from fp8quant.compat.vllm import
scaled_fp8_quant, per_token_group_quant_fp8` in place of `vllm._custom_ops.scaled_fp8_quant` and
`vllm.model_executor.layers.quantization.utils.fp8_utils.per_token_group_quant_fp8`. Same argument
names, defaults, return shapes and padding behaviour as vLLM's documented wrappers.

Where the numbers differ from vLLM's kernels (ours follow fp8quant/reference.py):
- x / scale is IEEE division, correctly rounded (vLLM's CUDA kernels multiply by the reciprocal in
  places, which can round a code the other way at a tie);
- a NaN anywhere makes the scale NaN and every code of the row (per token), group or tensor NaN
  (vLLM's fmaxf-based amax drops NaN);
- dynamic per-tensor scales take the per-token floor 1 / (448 * 512), so an all-zero tensor gets a
  finite scale;
- per-token-group UE8M0 scales are the smallest power of two >= amax / 448, from its bits (vLLM's
  float32 exp2(ceil(log2(s))) can land one power below just above a power of two); use_ue8m0=None
  means False here (vLLM decides it from its DeepGEMM settings).
"""

from __future__ import annotations

from typing import Optional

import torch

from ..ops.per_tensor import per_tensor_quant_fp8
from ..ops.per_token import per_token_quant_fp8
from ..ops.per_token_group import per_token_group_quant_fp8 as _group_quant

_NAME = "fp8quant.compat.vllm"


def scaled_fp8_quant(
    input: torch.Tensor,
    scale: Optional[torch.Tensor] = None,
    num_token_padding: Optional[int] = None,
    scale_ub: Optional[torch.Tensor] = None,
    use_per_token_if_dynamic: bool = False,
    output: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FP8 e4m3 quantization of a 2-D input: static per-tensor (scale given, 1 element), dynamic
    per-tensor, or dynamic per-token (use_per_token_if_dynamic, with scale_ub). With
    num_token_padding the output has max(num_token_padding, rows) rows, the padding rows not written
    (and per token, as many scales, the padding ones not written either). Returns (output, scale):
    the scale given for static, else the new scales ((rows', 1) per token, (1,) per tensor)."""
    if not isinstance(input, torch.Tensor) or input.dim() != 2:
        raise ValueError(f"{_NAME}.scaled_fp8_quant: input must be a 2-D tensor, got "
                         f"{tuple(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__}")
    rows = input.shape[0]
    padded = max(num_token_padding, rows) if num_token_padding else rows
    if output is None:
        output = torch.empty((padded, input.shape[1]), dtype=torch.float8_e4m3fn, device=input.device)
    elif tuple(output.shape) != (padded, input.shape[1]):
        raise ValueError(f"{_NAME}.scaled_fp8_quant: output must have shape {(padded, input.shape[1])}, got {tuple(output.shape)}")
    if scale is not None:
        if scale.numel() != 1:
            raise ValueError(f"{_NAME}.scaled_fp8_quant: a static scale has one element, got {scale.numel()}")
        per_tensor_quant_fp8(input, scale.reshape(1), out=output[:rows])
        return output, scale
    if use_per_token_if_dynamic:
        scales = torch.empty((padded, 1), dtype=torch.float32, device=input.device)
        per_token_quant_fp8(input, scale_ub, out=output[:rows], scale_out=scales[:rows])
        return output, scales
    scales = torch.empty(1, dtype=torch.float32, device=input.device)
    per_tensor_quant_fp8(input, out=output[:rows], scale_out=scales)
    return output, scales


def per_token_group_quant_fp8(
    x: torch.Tensor,
    group_size: int,
    eps: float = 1e-10,
    dtype: Optional[torch.dtype] = None,
    column_major_scales: bool = False,
    out_q: Optional[torch.Tensor] = None,
    use_ue8m0: Optional[bool] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token-group FP8 quantization: returns (x_q, x_s), x_s float32 (..., H / group_size), or
    (M, H / group_size) with stride (1, M) when column_major_scales. dtype: float8_e4m3fn only."""
    if dtype not in (None, torch.float8_e4m3fn):
        raise ValueError(f"{_NAME}.per_token_group_quant_fp8: dtype must be torch.float8_e4m3fn, got {dtype}")
    return _group_quant(x, group_size, eps=float(eps), column_major_scales=column_major_scales,
                        scale_ue8m0=bool(use_ue8m0), out=out_q)
