"""How a fused op (rms_norm_quant_fp8, silu_and_mul_quant_fp8) may differ from its contract, the
unfused torch composition (fp8quant/reference.py).

The kernels compute the producer's transcendental step (the norm's rsqrt of a sum of squares, silu's
exp) in fp32 in their own way, so their value of it, before any rounding to the input dtype, is
within a relative DELTA of torch's but not always equal. Every later step is the reference's, and
each is monotone in that value (rounding, a product with a fixed factor, the quantization with a
fixed scale). So, with y_lo / y_hi the composition computed with the step at (1 -+ DELTA) times
torch's value:
- each scale lies between the scales of y_lo's and y_hi's amax bounds (equal where they agree);
- each code, under the kernel's own scale, lies between the codes of y_lo and y_hi (equal to the
  reference's wherever y_lo == y_hi, the "determined" elements: almost all of them);
- NaN where the reference has NaN, and nowhere else.
And against a float64 truth: the fused op's SQNR at most 0.05 dB below the unfused composition's.

DELTA, derived (not fitted): the norm's mean of squares summed in fp32 (up to 48 terms per thread,
then a tree of up to 10 levels) is within 58 * 2^-24 of the exact sum, torch's within a few
2^-24; the rsqrt halves that, plus an ulp each for the two rsqrts: under 2^-19, so 2^-18. silu:
expf (2 ulp) against torch's (1 ulp), then 1 + e, the CUDA kernel's reciprocal (1 ulp) and product (the
Triton kernel's IEEE division): under 4.5 ulp from the exact value, torch's under 2, so 2^-20.
"""

from __future__ import annotations

import math

import torch

from fp8quant.reference import FP8_DTYPE, FP8_MAX, FUSED_GROUP_EPS, MIN_SCALE, ue8m0_round_up

RMS_DELTA = 2.0**-18
SILU_DELTA = 2.0**-20


def rms_norm_bounds(x, weight, eps, residual=None):
    """(y_lo, y_hi) float32 tensors of y's values (in x's dtype) with torch's rsqrt scaled by (1 -+ RMS_DELTA)."""
    h = x if residual is None else x + residual
    hf = h.float()
    r = torch.rsqrt(hf.pow(2).mean(-1, keepdim=True) + eps).double()
    ys = [((hf * (r * (1 + d)).float()).to(x.dtype) * weight).float() for d in (-RMS_DELTA, RMS_DELTA)]
    return torch.minimum(*ys), torch.maximum(*ys)


def silu_and_mul_bounds(x):
    inner = x.shape[-1] // 2
    g, up = x[..., :inner], x[..., inner:]
    s = (g.double() / (1 + torch.exp(-g.double())))
    ys = [(((s * (1 + d)).float()).to(x.dtype) * up).float() for d in (-SILU_DELTA, SILU_DELTA)]
    return torch.minimum(*ys), torch.maximum(*ys)


def _groups(t: torch.Tensor, group_size):
    """t (..., L) as (rows, groups, group length): per token one group of the whole row."""
    rows = t.reshape(-1, t.shape[-1])
    g = rows.shape[-1] if group_size is None else group_size
    return rows.reshape(rows.shape[0], -1, g)


def _scale_of(amax: torch.Tensor, group_size, scale_ub, ue8m0) -> torch.Tensor:
    if group_size is None:
        if scale_ub is not None:
            amax = torch.minimum(amax, torch.tensor(float(scale_ub)))
        return torch.maximum(amax / torch.tensor(FP8_MAX), torch.tensor(MIN_SCALE))
    s = torch.maximum(amax, torch.tensor(FUSED_GROUP_EPS)) / torch.tensor(FP8_MAX)
    return ue8m0_round_up(s) if ue8m0 else s


def _code_values(y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The reference's codes of y under the given scales, as float values (NaN for NaN codes)."""
    return (y / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE).float()


def assert_fused_within(q, scales, bounds, group_size=None, scale_ub=None, ue8m0=False, context="") -> int:
    """q (..., L) codes, scales row-major ((..., 1) or (..., G)), bounds = (y_lo, y_hi). Returns the
    number of undetermined elements (y_lo != y_hi), which may differ from the reference's codes."""
    y_lo, y_hi = (_groups(b.detach().cpu().float(), group_size) for b in bounds)
    codes = _groups(q.detach().cpu().view(FP8_DTYPE).float(), group_size)
    s = scales.detach().cpu().float().reshape(codes.shape[0], codes.shape[1], 1)
    nan = torch.isnan(y_lo).any(-1, keepdim=True) | torch.isnan(y_hi).any(-1, keepdim=True)
    same_sign = (y_lo >= 0) == (y_hi >= 0)
    a_lo = torch.where(same_sign, torch.minimum(y_lo.abs(), y_hi.abs()), torch.zeros_like(y_lo)).amax(-1, keepdim=True)
    a_hi = torch.maximum(y_lo.abs(), y_hi.abs()).amax(-1, keepdim=True)
    s_lo, s_hi = (_scale_of(a, group_size, scale_ub, ue8m0) for a in (a_lo, a_hi))
    finite_rows = ~nan
    bad_scale = finite_rows & ~((s >= s_lo) & (s <= s_hi))
    bad_scale |= nan & ~torch.isnan(s)
    if bool(bad_scale.any()):
        i = tuple(int(v) for v in bad_scale.nonzero()[0][:2])
        raise AssertionError(f"{context}: {int(bad_scale.sum())} scales outside their bounds; first (row, group) {i}: "
                             f"got {float(s[i])!r}, bounds [{float(s_lo[i])!r}, {float(s_hi[i])!r}]")
    c_lo, c_hi = _code_values(y_lo, s), _code_values(y_hi, s)
    expect_nan = torch.isnan(c_lo) | torch.isnan(c_hi)
    ok = torch.where(expect_nan, torch.isnan(codes), (codes >= c_lo) & (codes <= c_hi))
    if not bool(ok.all()):
        i = tuple(int(v) for v in (~ok).nonzero()[0])
        raise AssertionError(f"{context}: {int((~ok).sum())} of {ok.numel()} codes outside their bounds; first at "
                             f"(row, group, element) {i}: got {float(codes[i])!r}, bounds [{float(c_lo[i])!r}, "
                             f"{float(c_hi[i])!r}] (y in [{float(y_lo[i])!r}, {float(y_hi[i])!r}], scale {float(s[i[:2]])!r})")
    return int((y_lo != y_hi).sum())


def sqnr_db(q, scales, truth: torch.Tensor, group_size=None) -> float:
    """10 log10(|truth|^2 / |q * scale - truth|^2), float64, over the groups (rows per token) whose
    scale and truth are finite (a row that overflows the dtype has an infinite scale, in the fused
    and the unfused op alike)."""
    codes = _groups(q.detach().cpu().view(FP8_DTYPE).double(), group_size)
    s = scales.detach().cpu().double().reshape(codes.shape[0], codes.shape[1], 1)
    t = _groups(truth.detach().cpu().double(), group_size)
    keep = torch.isfinite(s) & torch.isfinite(t).all(-1, keepdim=True)
    err = torch.where(keep, (codes * s - t) ** 2, 0).sum()
    return 10 * math.log10(float(torch.where(keep, t**2, 0).sum()) / max(float(err), 1e-300))


def rms_norm_truth(x, weight, eps, residual=None):
    h = x.double() if residual is None else x.double() + residual.double()
    return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps) * weight.double()


def silu_and_mul_truth(x):
    inner = x.shape[-1] // 2
    g, up = x[..., :inner].double(), x[..., inner:].double()
    return g / (1 + torch.exp(-g)) * up
