"""The numerical contract of each op, in plain torch (runs on CPU or GPU). per_token_quant_fp8:

Every backend matches this bit for bit: the FP8 codes byte for byte and the scales exactly.

For each row (token) of x, shape (..., H):
    amax  = max |x| over the row, in float32               (NaN anywhere -> NaN)
    amax  = min(amax, scale_ub)                            (when scale_ub is given)
    scale = max(amax / 448, 1 / (448 * 512))               float32, shape (..., 1)
    q     = float8_e4m3fn(clamp(x / scale, -448, 448))     IEEE fp32 division, round to nearest even

This is vLLM's and FBGEMM's dynamic per-token rule, so the codes and scales are interchangeable
with theirs. The floor keeps an all-zero row's scale finite (its codes are all zero).

Non-finite input (decided here, tested in tests/test_reference.py):
- A NaN anywhere in a row makes that row's scale NaN and every code of the row NaN (0x7f):
  a NaN never turns into a finite number.
- An Inf (and no NaN) makes the scale +Inf (unless scale_ub bounds it): the Inf elements become
  NaN codes (Inf / Inf), the finite ones +-0, so q * scale dequantizes the whole row to NaN and
  the overflow stays visible. With scale_ub the Inf elements saturate to +-448 instead.
- NaN codes are always the canonical 0x7f (the GPU's conversion gives it; the CPU's would keep
  the sign, so the reference canonicalizes). The bits of a NaN scale are not part of the contract
  (CUDA gives 0x7fffffff, torch 0x7fc00000, the Triton interpreter what numpy gives): compare
  scales as NaN.
- A scale_ub tensor read on a GPU is not checked: a bound <= 0 gives the floor scale (codes
  saturate), a NaN bound NaN scales and codes, as computed here.
"""

from __future__ import annotations

import torch

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0
MIN_SCALE = 1.0 / (FP8_MAX * 512.0)
NAN_CODE = 0x7F
INPUT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def per_token_quant_fp8_reference(
    x: torch.Tensor, scale_ub: float | torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (q, scale): q float8_e4m3fn of x's shape, scale float32 of shape (..., 1)."""
    xf = x.float()
    if xf.shape[-1] == 0 or xf.numel() == 0:
        return (
            torch.empty(x.shape, dtype=FP8_DTYPE, device=x.device),
            torch.empty((*x.shape[:-1], 1), dtype=torch.float32, device=x.device),
        )
    # Constants are made on x's device with torch.full: a Python-scalar divisor would let CUDA
    # torch multiply by its reciprocal (not IEEE division: 1 ulp off in about half the rows, seen
    # on an H100), and a CPU tensor would be a host copy, which CUDA-graph capture forbids.
    def const(value, dtype=torch.float32):
        return torch.full((), value, dtype=dtype, device=x.device)

    amax = xf.abs().amax(dim=-1, keepdim=True)  # torch.amax propagates NaN
    if scale_ub is not None:
        if isinstance(scale_ub, torch.Tensor):
            ub = scale_ub.to(device=x.device, dtype=torch.float32).reshape(())
        else:
            ub = const(float(scale_ub))
        amax = torch.minimum(amax, ub)  # propagates NaN from either side
    scale = torch.maximum(amax / const(FP8_MAX), const(MIN_SCALE))
    y = (xf / scale).clamp(-FP8_MAX, FP8_MAX)  # clamp keeps NaN
    codes = y.to(FP8_DTYPE).view(torch.uint8)
    # torch.where rather than masked assignment, so torch.compile traces it without a break.
    codes = torch.where(torch.isnan(y), const(NAN_CODE, torch.uint8), codes)
    return codes.view(FP8_DTYPE), scale
