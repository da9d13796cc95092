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


# ---------------------------------------------------------------------------------------------
# per_token_group_quant_fp8

GROUP_SIZES = (16, 32, 64, 128, 256)
UE8M0_MIN_SCALE = 2.0**-126  # the smallest power of two a UE8M0 scale takes here (see below)


def ue8m0_round_up(scale: torch.Tensor) -> torch.Tensor:
    """The smallest power of two >= each float32 scale, from its bits: a scale whose significand
    bits are zero is one already; any other becomes the next power up, (bits + 0x7fffff) with the
    significand bits cleared. Exact for every positive normal float32 (vLLM's exp2(ceil(log2(s)))
    in fp32 can land one power below for s just above a power of two, where log2 rounds down to
    the integer); +inf stays +inf, NaN stays NaN, and scales below 2^-126 (subnormal) become
    2^-126, the smallest exponent UE8M0 holds besides 2^-127."""
    bits = scale.contiguous().view(torch.int32)
    rounded = ((bits + 0x7FFFFF) & -8388608).view(torch.float32)  # -8388608 = 0xff800000 as int32
    return torch.where(torch.isnan(scale) | torch.isinf(scale), scale, rounded).view(scale.shape)


def per_token_group_quant_fp8_reference(
    x: torch.Tensor, group_size: int, eps: float = 1e-10, scale_ue8m0: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (q, scales): q float8_e4m3fn of x's shape, scales float32 of shape (..., H / group_size)
    in row-major order (the op's other layouts hold the same values: group_scales_layout).

    Per group of group_size consecutive elements of a row:
        amax  = max |x| over the group, in float32             (NaN anywhere -> NaN)
        amax  = max(amax, eps)
        scale = amax / 448                                     IEEE fp32 division
        scale = ue8m0_round_up(scale)                          (scale_ue8m0)
        q     = float8_e4m3fn(clamp(x / scale, -448, 448))     IEEE division, round to nearest even
    A NaN in a group makes its scale and its codes NaN (0x7f); an Inf makes the scale +Inf, the Inf
    elements NaN codes and the others +-0, as in the per-token contract."""
    hidden = x.shape[-1]
    groups = hidden // group_size
    xf = x.float().reshape(*x.shape[:-1], groups, group_size)

    def const(value, dtype=torch.float32):
        return torch.full((), value, dtype=dtype, device=x.device)

    amax = xf.abs().amax(dim=-1, keepdim=True) if xf.numel() else torch.zeros((*xf.shape[:-1], 1), device=x.device)
    amax = torch.maximum(amax, const(eps))  # propagates NaN
    scale = amax / const(FP8_MAX)
    if scale_ue8m0:
        scale = ue8m0_round_up(scale)
    y = (xf / scale).clamp(-FP8_MAX, FP8_MAX)
    codes = y.to(FP8_DTYPE).view(torch.uint8)
    codes = torch.where(torch.isnan(y), const(NAN_CODE, torch.uint8), codes)
    return codes.view(FP8_DTYPE).reshape(x.shape), scale.reshape(*x.shape[:-1], groups)


def tma_aligned_rows(rows: int) -> int:
    """Rows padded to a multiple of 4: the column stride of TMA-aligned float32 scales is then a
    multiple of 16 bytes, as a TMA descriptor needs."""
    return -(-rows // 4) * 4


def group_scales_layout(
    scales: torch.Tensor, column_major: bool = False, tma_aligned: bool = False, packed_ue8m0: bool = False
) -> torch.Tensor:
    """Row-major (M, G) float32 scales in one of the layouts block-FP8 GEMMs read:
    - row-major: (M, G) contiguous (the default);
    - column_major: (M, G) with stride (1, M): each group's scales of every row contiguous (what
      DeepGEMM on sm90 and torch._scaled_mm's blockwise scaling read);
    - tma_aligned (with column_major): stride (1, M4), M4 = M rounded up to a multiple of 4; the
      padding rows M..M4 of the storage are not written (the GEMMs do not read them);
    - packed_ue8m0 (UE8M0 scales, column-major, TMA-aligned): int32 (M, ceil(G / 4)) with stride
      (1, M4), word k of a row holding the exponent bytes (the float's bits >> 23) of groups
      4k..4k+3, group 4k in the lowest byte; bytes past the last group are zero. This is DeepGEMM's
      MN-major TMA-aligned packed UE8M0 scale-factor tensor for sm100 (its
      get_mn_major_tma_aligned_packed_ue8m0_tensor).
    The storage is returned through the view, so its padding is there; `.untyped_storage()` shows it."""
    rows, groups = scales.shape
    if packed_ue8m0:
        m4 = tma_aligned_rows(rows)
        words = -(-groups // 4)
        exps = torch.zeros(rows, words * 4, dtype=torch.uint8, device=scales.device)
        exps[:, :groups] = (scales.contiguous().view(torch.int32) >> 23).to(torch.uint8)
        packed = exps.view(torch.int32)  # little-endian: group 4k in the lowest byte of word k
        storage = torch.zeros(words, m4, dtype=torch.int32, device=scales.device)
        storage[:, :rows] = packed.t()
        return storage[:, :rows].t()
    if column_major:
        ld = tma_aligned_rows(rows) if tma_aligned else rows
        storage = torch.zeros(groups, ld, dtype=torch.float32, device=scales.device)
        storage[:, :rows] = scales.t()
        return storage[:, :rows].t()
    return scales.contiguous()


# ---------------------------------------------------------------------------------------------
# per_tensor_quant_fp8


def per_tensor_quant_fp8_reference(
    x: torch.Tensor, scale: torch.Tensor | None = None, scale_ub: float | torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (q, scale): q float8_e4m3fn of x's shape, scale float32 of shape (1,).

    Static (scale given, a 1-element float32 tensor): q = e4m3(clamp(x / scale, -448, 448)), IEEE
    division; the scale returned is the one given. Dynamic (scale None): amax = max |x| over the
    whole tensor in float32 (NaN anywhere -> NaN), amax = min(amax, scale_ub) when given, scale =
    max(amax / 448, 1 / (448 * 512)) (the per-token floor), then as static. NaN and Inf as per
    token: a NaN makes the (dynamic) scale and every code NaN; codes of NaN elements are 0x7f."""
    xf = x.float()

    def const(value, dtype=torch.float32):
        return torch.full((), value, dtype=dtype, device=x.device)

    if scale is None:
        amax = xf.abs().amax() if xf.numel() else const(0.0)
        if scale_ub is not None:
            ub = scale_ub.to(device=x.device, dtype=torch.float32).reshape(()) if isinstance(scale_ub, torch.Tensor) else const(float(scale_ub))
            amax = torch.minimum(amax, ub)
        s = torch.maximum(amax / const(FP8_MAX), const(MIN_SCALE)).reshape(1)
    else:
        s = scale.to(device=x.device, dtype=torch.float32).reshape(1)
    y = (xf / s.reshape(())).clamp(-FP8_MAX, FP8_MAX)
    codes = y.to(FP8_DTYPE).view(torch.uint8)
    codes = torch.where(torch.isnan(y), const(NAN_CODE, torch.uint8), codes)
    return codes.view(FP8_DTYPE), s


# ---------------------------------------------------------------------------------------------
# Fused producers: rms_norm_quant_fp8 and silu_and_mul_quant_fp8
#
# The contract of a fused op is the unfused torch composition an engine runs today: the producer
# in the input dtype (each step rounded to it, as torch rounds it), then the quantization
# reference of its output. The CUDA and Triton kernels compute the producer in fp32 with their own
# rsqrt / exp and summation order, so their y can differ from torch's in the last fp32 bits
# before the rounding to the dtype; fp8quant/fused_bounds.py bounds where the codes and scales may
# then differ (and checks the error against a float64 truth).

FUSED_GROUP_EPS = 1e-10  # the group contract's eps in the fused ops (vLLM's default)


def quantize_rows_reference(
    y: torch.Tensor, group_size: int | None, scale_ub: float | torch.Tensor | None = None, scale_ue8m0: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The quantizing half of a fused op: per token (group_size None: scales (..., 1)) or per
    group (scales (..., H / group_size), row-major) of y."""
    if group_size is None:
        return per_token_quant_fp8_reference(y, scale_ub)
    return per_token_group_quant_fp8_reference(y, group_size, FUSED_GROUP_EPS, scale_ue8m0)


def rms_norm_reference(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(y, h): h = x + residual in x's dtype (what the fused op writes to residual; None without
    one), y = RMSNorm(h) as LlamaRMSNorm and vLLM's RMSNorm compute it: the mean of squares and the
    rsqrt in fp32, the normalized value rounded to the dtype, then times weight in the dtype."""
    h = x if residual is None else x + residual
    hf = h.float()
    variance = hf.pow(2).mean(-1, keepdim=True)
    y = (hf * torch.rsqrt(variance + eps)).to(x.dtype) * weight
    return y, (None if residual is None else h)


def rms_norm_quant_fp8_reference(
    x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6, residual: torch.Tensor | None = None,
    group_size: int | None = None, scale_ub: float | torch.Tensor | None = None, scale_ue8m0: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(q, scales, new residual): quantize_rows_reference of rms_norm_reference's y."""
    y, h = rms_norm_reference(x, weight, eps, residual)
    q, s = quantize_rows_reference(y, group_size, scale_ub, scale_ue8m0)
    return q, s, h


def silu_and_mul_reference(x: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up in x's dtype, gate = x[..., :I], up = x[..., I:] (vLLM's and SGLang's order):
    torch's silu rounded to the dtype, then the product rounded to it."""
    inner = x.shape[-1] // 2
    return torch.nn.functional.silu(x[..., :inner]) * x[..., inner:]


def silu_and_mul_quant_fp8_reference(
    x: torch.Tensor, group_size: int | None = None, scale_ub: float | torch.Tensor | None = None,
    scale_ue8m0: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(q, scales): quantize_rows_reference of silu_and_mul_reference(x)."""
    return quantize_rows_reference(silu_and_mul_reference(x), group_size, scale_ub, scale_ue8m0)
