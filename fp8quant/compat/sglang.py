"""SGLang's sgl_kernel quantization entry points over fp8quant's ops: `from fp8quant.compat.sglang
import sgl_per_token_quant_fp8, sgl_per_tensor_quant_fp8, sgl_per_token_group_quant_fp8` in place of
`sgl_kernel`'s. SGLang's argument order and out-parameter style: the outputs are the caller's.

Where the numbers differ from SGLang's kernels (ours follow fp8quant/reference.py):
- x / scale is IEEE division, correctly rounded (SGLang multiplies by 1 / scale, which can round a
  code the other way at a tie);
- a NaN makes its scale and codes NaN (SGLang's amax drops NaN);
- the per-token scale has the floor 1 / (448 * 512), as vLLM's and FBGEMM's;
- dynamic per-tensor needs no zeroed output_s (SGLang's atomic max does): ours writes it;
- the group op takes fp8_min / fp8_max = -448 / 448 only (e4m3fn), and eps of at least 448 * 2^-126.
"""

from __future__ import annotations

import torch

from ..ops.per_tensor import per_tensor_quant_fp8
from ..ops.per_token import per_token_quant_fp8
from ..ops.per_token_group import per_token_group_quant_fp8

_NAME = "fp8quant.compat.sglang"


def sgl_per_token_quant_fp8(input: torch.Tensor, output_q: torch.Tensor, output_s: torch.Tensor) -> None:
    """Per-token FP8 quantization of input (M, H) into output_q (M, H) and output_s ((M,) or (M, 1))."""
    scale_out = output_s.view(*input.shape[:-1], 1) if isinstance(output_s, torch.Tensor) else output_s
    per_token_quant_fp8(input, out=output_q, scale_out=scale_out)


def sgl_per_tensor_quant_fp8(input: torch.Tensor, output_q: torch.Tensor, output_s: torch.Tensor, is_static: bool) -> None:
    """Per-tensor FP8 quantization: static (is_static, output_s holds the scale) or dynamic (output_s,
    one float32, receives it; no need to zero it first)."""
    if is_static:
        per_tensor_quant_fp8(input, output_s.reshape(1), out=output_q)
    else:
        per_tensor_quant_fp8(input, out=output_q, scale_out=output_s.view(1))


def sgl_per_token_group_quant_fp8(
    input: torch.Tensor,
    output_q: torch.Tensor,
    output_s: torch.Tensor,
    group_size: int,
    eps: float,
    fp8_min: float,
    fp8_max: float,
    scale_ue8m0: bool = False,
) -> None:
    """Per-token-group FP8 quantization into the caller's tensors; output_s's strides say its layout:
    row-major, column-major (stride (1, M)) or TMA-aligned column-major (stride (1, M4))."""
    if (fp8_min, fp8_max) != (-448.0, 448.0):
        raise ValueError(f"{_NAME}.sgl_per_token_group_quant_fp8: fp8_min, fp8_max must be -448, 448 (e4m3fn), got {fp8_min}, {fp8_max}")
    rows = input.numel() // input.shape[-1] if input.dim() else 0
    column = output_s.dim() == 2 and output_s.shape[1] > 1 and output_s.stride(0) == 1
    tma = column and output_s.stride(1) != rows
    per_token_group_quant_fp8(input, group_size, eps=float(eps), column_major_scales=column, tma_aligned_scales=tma,
                              scale_ue8m0=scale_ue8m0, out=output_q, scale_out=output_s)
