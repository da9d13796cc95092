"""vLLM's quantization entry points over fp8quant's ops: `from fp8quant.compat.vllm import
scaled_fp8_quant, per_token_group_quant_fp8, rms_norm_dynamic_per_token_quant,
rms_norm_per_block_quant` in place of `vllm._custom_ops.scaled_fp8_quant`,
`vllm.model_executor.layers.quantization.utils.fp8_utils.per_token_group_quant_fp8` and
`vllm._custom_ops.rms_norm_dynamic_per_token_quant` / `rms_norm_per_block_quant`. Same argument
names, defaults, return shapes and padding behaviour as vLLM's documented wrappers (for
per_token_group_quant_fp8, its current one, with tma_aligned_scales before out_q).

Where the numbers differ from vLLM's kernels (ours follow fp8quant/reference.py):
- x / scale is IEEE division, correctly rounded (vLLM's CUDA kernels multiply by the reciprocal in
  places, which can round a code the other way at a tie);
- a NaN anywhere makes the scale NaN and every code of the row (per token), group or tensor NaN
  (vLLM's fmaxf-based amax drops NaN);
- dynamic per-tensor scales take the per-token floor 1 / (448 * 512), so an all-zero tensor gets a
  finite scale;
- per-token-group UE8M0 scales are the smallest power of two >= amax / 448, from its bits (vLLM's
  float32 exp2(ceil(log2(s))) can land one power below just above a power of two); use_ue8m0=None
  means False here (vLLM decides it from its DeepGEMM settings);
- the fused RMSNorm's y is the unfused torch composition's, each product rounded to the input
  dtype (reference.py: rms_norm_reference; vLLM's kernel keeps x * rms * weight in float32), so a
  code can differ where y lands near a rounding boundary; the residual written is x + residual
  rounded to the dtype, as vLLM's; quant_dtype float8_e4m3fn only (no int8); per block, no
  scale_ub (the group contract has no bound: a scale_ub is refused).
"""

from __future__ import annotations

from typing import Optional

import torch

from ..ops.per_tensor import per_tensor_quant_fp8
from ..ops.per_token import per_token_quant_fp8
from ..ops.per_token_group import per_token_group_quant_fp8 as _group_quant
from ..ops.rms_norm_quant import rms_norm_quant_fp8

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
    tma_aligned_scales: bool = False,
    out_q: Optional[torch.Tensor] = None,
    use_ue8m0: Optional[bool] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token-group FP8 quantization: returns (x_q, x_s), x_s float32 (..., H / group_size), or
    (M, H / group_size) with stride (1, M) when column_major_scales ((1, M4), M rounded up to 4,
    when also tma_aligned_scales). dtype: float8_e4m3fn only."""
    _fp8_only("per_token_group_quant_fp8", "dtype", dtype)
    return _group_quant(x, group_size, eps=float(eps), column_major_scales=column_major_scales,
                        tma_aligned_scales=tma_aligned_scales, scale_ue8m0=bool(use_ue8m0), out=out_q)


def rms_norm_dynamic_per_token_quant(
    input: torch.Tensor,
    weight: torch.Tensor,
    epsilon: float,
    quant_dtype: torch.dtype,
    scale_ub: Optional[torch.Tensor] = None,
    residual: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Add +) RMSNorm + dynamic per-token FP8 quantization: returns (output, scales), output of
    input's shape, scales float32 (tokens, 1) (tokens: every dimension but the last); residual,
    when given, becomes input + residual (the norm's input)."""
    _fp8_only("rms_norm_dynamic_per_token_quant", "quant_dtype", quant_dtype)
    q, s = rms_norm_quant_fp8(input, weight, float(epsilon), residual=residual, scale_ub=scale_ub)
    return q, s.view(-1, 1)


def rms_norm_per_block_quant(
    input: torch.Tensor,
    weight: torch.Tensor,
    epsilon: float,
    quant_dtype: torch.dtype,
    group_size: list[int],
    scale_ub: Optional[torch.Tensor] = None,
    residual: Optional[torch.Tensor] = None,
    is_scale_transposed: bool = False,
    has_tma_aligned_scales: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Add +) RMSNorm + per-group FP8 quantization, group_size [1, g]: returns (output, scales),
    scales float32 (tokens, H / g), with stride (1, tokens) when is_scale_transposed ((1, tokens
    rounded up to 4) when also has_tma_aligned_scales)."""
    name = "rms_norm_per_block_quant"
    _fp8_only(name, "quant_dtype", quant_dtype)
    if len(group_size) != 2 or group_size[0] != 1:
        raise ValueError(f"{_NAME}.{name}: group_size must be [1, g] (a group of g along a row), got {group_size!r}")
    if scale_ub is not None:
        raise ValueError(f"{_NAME}.{name}: scale_ub must be None (group scales take no bound here)")
    q, s = rms_norm_quant_fp8(input, weight, float(epsilon), residual=residual, group_size=group_size[1],
                              column_major_scales=bool(is_scale_transposed),
                              tma_aligned_scales=bool(has_tma_aligned_scales))
    return q, s if is_scale_transposed else s.view(-1, s.shape[-1])


def _fp8_only(name: str, argument: str, dtype) -> None:
    if dtype not in (None, torch.float8_e4m3fn) or (dtype is None and argument == "quant_dtype"):
        raise ValueError(f"{_NAME}.{name}: {argument} must be torch.float8_e4m3fn, got {dtype}")
