"""What every Triton kernel of fp8quant shares: NaN-propagating max, the e4m3 conversion (and its
integer-arithmetic form for the interpreter), the exact division x / scale, PDL support.

Exactness notes:
- `x / scale` in Triton lowers to an approximate division (div.full.f32); the contract is IEEE
  division. tl.math.div_rn per element is exact but costs ~10 instructions with a slow path, and
  made the per-token kernel compute-bound wherever BLOCK pads the row (H=1368, 5120: 33-55% of
  copy bandwidth). So, as the CUDA kernels do (csrc/common/fp8.cuh: scaled()), kernels divide
  through the correctly rounded reciprocal plus one FMA correction (Markstein's theorem), and a
  program with a NaN or +inf scale uses div_rn.
- tl.max / tl.minimum / tl.clamp drop NaN by default; the contract propagates it, so every
  max/min/clamp passes propagate_nan=ALL.
- The clamp to +-448 happens before the conversion, so the conversion's own overflow rule never
  matters.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._device import pdl_supported
from ..ops.backends import interpreting

try:  # programmatic dependent launch: Triton's grid-dependency-control ops and launch option
    from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait  # noqa: F401 (re-exported)
    from triton.backends.nvidia.compiler import CUDAOptions

    TRITON_HAS_PDL = "launch_pdl" in CUDAOptions.__dataclass_fields__
except ImportError:  # an older Triton: kernels run without PDL (USE_PDL never set)
    gdc_launch_dependents = gdc_wait = None
    TRITON_HAS_PDL = False


def pdl_available(device: torch.device) -> bool:
    return TRITON_HAS_PDL and not interpreting() and device.type == "cuda" and pdl_supported(device.index)


@triton.jit
def max_nan(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def e4m3_software(y):
    """fp32 y -> e4m3fn, round to nearest even, NaN -> 0x7f, in integer arithmetic.

    Only for the interpreter, whose own fp32 -> e4m3 conversion (Triton 3.9) is wrong in three
    ways: it drops the carry when rounding up crosses a power of two (125.3 -> 64, not 128),
    rounds 0.75 * 2^-9 to 0 instead of 2^-9, and turns NaN into 0x7c (384). On the GPU the
    conversion instruction is right and this is not compiled in.
    """
    y = tl.clamp(y, -448.0, 448.0, propagate_nan=tl.PropagateNan.ALL)
    a = tl.abs(y)
    bits = a.to(tl.int32, bitcast=True)
    # Normal e4m3 (|y| >= 2^-6): keep 3 mantissa bits, half to even on the bit pattern (a carry
    # out of the mantissa moves the exponent up, as it should); rebias the exponent 127 -> 7.
    rounded = (bits + 0x7FFFF + ((bits >> 20) & 1)) & -1048576
    normal = (((rounded >> 23) - 120) << 3) | ((rounded >> 20) & 7)
    # Subnormal e4m3: multiples of 2^-9. Adding 1.5 * 2^14 (whose ulp is 2^-9) rounds to one,
    # half to even, in one IEEE addition; subtracting it back is exact.
    subnormal = (((a + 24576.0) - 24576.0) * 512.0).to(tl.int32)
    code = tl.where(a >= 0.015625, normal, subnormal)
    code = code | ((y.to(tl.int32, bitcast=True) >> 24) & 0x80)
    code = tl.where(a != a, 0x7F, code)
    return code.to(tl.uint8).to(tl.float8e4nv, bitcast=True)


@triton.jit
def to_e4m3(y, SOFTWARE_E4M3: tl.constexpr):
    if SOFTWARE_E4M3:
        return e4m3_software(y)
    else:
        y = tl.clamp(y, -448.0, 448.0, propagate_nan=tl.PropagateNan.ALL)
        return y.to(tl.float8e4nv)


@triton.jit
def divide_finite(x, scale, recip):
    """x / scale as IEEE division rounds it, for a finite scale (a normal number >= MIN_SCALE)
    and its correctly rounded reciprocal: q0 is within an ulp, the FMA gives the exact residual,
    one correction rounds correctly (Markstein). Where q0 is beyond +-448 the code saturates
    either way, and the correction would turn an overflow to +-inf into NaN, so q0 is kept; where
    the correction cancels to 0 (a quotient far below e4m3's smallest subnormal), q0 keeps x's
    sign, which the code keeps (0x80 for -0)."""
    q0 = x * recip
    q1 = tl.fma(tl.fma(-q0, scale, x), recip, q0)
    return tl.where((tl.abs(q0) > 448.0) | (q1 == 0.0), q0, q1)


@triton.jit
def is_finite(scale):
    return (scale == scale) & (scale != float("inf"))


@triton.jit
def all_finite(scales):
    """Whether every scale of a program's 1-D block is finite (neither NaN nor +inf): divide's test."""
    return tl.min(is_finite(scales).to(tl.int32), 0) == 1


@triton.jit
def divide(x, scale, recip, ALL_FINITE):
    # A program whose scales are all finite (no row or group with a NaN, or an Inf and no
    # scale_ub) takes the reciprocal; otherwise IEEE division (exact for every case). One branch
    # per program: a select between the two computed both, div_rn's ~10 instructions per element.
    if ALL_FINITE:
        y = divide_finite(x, scale, recip)
    else:
        y = tl.math.div_rn(x, scale)
    return y


@triton.jit
def bounded_scale(amax, ub):
    """max(min(amax, ub) / 448, 1 / (448 * 512)), NaN-propagating, IEEE division: the per-token
    and dynamic per-tensor scale."""
    amax = tl.minimum(amax, ub, propagate_nan=tl.PropagateNan.ALL)
    return tl.maximum(tl.math.div_rn(amax, 448.0), 1.0 / (448.0 * 512.0), propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def ue8m0_round_up(s):
    """The smallest power of two >= each float32 scale, from its bits (reference.ue8m0_round_up)."""
    bits = s.to(tl.int32, bitcast=True)
    up = ((bits + 0x7FFFFF) & -8388608).to(tl.float32, bitcast=True)
    return tl.where((s != s) | (s == float("inf")), s, up)


@triton.jit
def round_to(x, dtype: tl.constexpr, INTERPRET: tl.constexpr):
    """float32 x rounded to nearest even in `dtype` (returned as that dtype). The interpreter
    (Triton 3.9) truncates float32 -> bfloat16; there the bits are rounded first (half to even,
    NaN kept), after which its truncation is exact."""
    if INTERPRET and dtype == tl.bfloat16:
        bits = x.to(tl.int32, bitcast=True)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & -65536).to(tl.float32, bitcast=True)
        x = tl.where(x != x, x, rounded)
    return x.to(dtype)


@triton.jit
def store_group_scales(s_ptr, row, g, scale, valid, groups, scale_ld, LAYOUT: tl.constexpr):
    """Scales of groups g (of `groups`) of rows `row` where valid, in group_scales.cuh's layouts:
    0 row-major, 1 column-major (column stride scale_ld), 2 packed UE8M0 (the exponent byte in byte
    g % 4 of word (g / 4, row), a row's last group zeroing its word's unfilled bytes)."""
    if LAYOUT == 0:
        tl.store(s_ptr + row * groups + g, scale, mask=valid)
    elif LAYOUT == 1:
        tl.store(s_ptr + g * scale_ld + row, scale, mask=valid)
    else:
        exps = (scale.to(tl.int32, bitcast=True) >> 23).to(tl.uint8)
        byte = s_ptr.to(tl.pointer_type(tl.uint8), bitcast=True) + ((g // 4) * scale_ld + row) * 4 + g % 4
        tl.store(byte, exps, mask=valid)
        last = valid & (g == groups - 1)
        for k in tl.static_range(1, 4):
            tl.store(byte + k, tl.zeros_like(exps), mask=last & (g % 4 + k < 4))
