"""per_token_quant_fp8 in Triton: the same contract as fp8quant/reference.py, bit for bit.

The version to read and change without leaving Python. It also runs under the Triton
interpreter (TRITON_INTERPRET=1) on a machine without a GPU, which is how CI exercises real
kernel logic (tests/test_triton_interpreter.py says what the interpreter computes exactly).

Exactness notes:
- `x / scale` in Triton lowers to an approximate division (div.full.f32); the contract is IEEE
  division. tl.math.div_rn per element is exact but costs ~10 instructions with a slow path, and
  made this kernel compute-bound wherever BLOCK pads the row (H=1368, 5120: 33-55% of copy
  bandwidth). So, as the CUDA kernel does (per_token_quant_fp8.cuh: scaled()), it divides
  through the row's correctly rounded reciprocal plus one FMA correction (Markstein's theorem);
  a program with a NaN or +inf scale among its rows uses div_rn. tests/test_gpu.py checks every
  bfloat16 and float16 value against 2048 scales for both backends.
- tl.max / tl.minimum / tl.clamp drop NaN by default; the contract propagates it, so every
  max/min/clamp here passes propagate_nan=ALL.
- The clamp to +-448 happens before the conversion, so the conversion's own overflow rule never
  matters.
"""

from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl

from ._cuda import pdl_supported  # the one capability check for PDL (importing it builds nothing)
from .planner import vector_width
from .reference import FP8_MAX, MIN_SCALE

try:  # programmatic dependent launch: Triton's grid-dependency-control ops and launch option
    from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
    from triton.backends.nvidia.compiler import CUDAOptions

    TRITON_HAS_PDL = "launch_pdl" in CUDAOptions.__dataclass_fields__
except ImportError:  # an older Triton: the kernel runs without PDL
    TRITON_HAS_PDL = False



@triton.jit
def _max_nan(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _e4m3_software(y):
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
def _to_e4m3(y, SOFTWARE_E4M3: tl.constexpr):
    if SOFTWARE_E4M3:
        return _e4m3_software(y)
    else:
        y = tl.clamp(y, -448.0, 448.0, propagate_nan=tl.PropagateNan.ALL)
        return y.to(tl.float8e4nv)


@triton.jit
def _divide_finite(x, scale, recip):
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
def _divide(x, scale, recip, ALL_FINITE):
    # A program whose rows all have finite scales (every row but one with a NaN, or an Inf and
    # no scale_ub) takes the reciprocal; otherwise IEEE division (exact for every case).
    if ALL_FINITE:
        y = _divide_finite(x, scale, recip)
    else:
        y = tl.math.div_rn(x, scale)
    return y


@triton.jit
def _per_token_quant_fp8_kernel(
    x_ptr,
    q_ptr,
    scale_ptr,
    scale_ub_ptr,
    scale_ub_value,
    num_rows,
    hidden_vecs,
    x_row_stride_vecs,
    VEC: tl.constexpr,
    HAS_UB_PTR: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
    SINGLE_PASS: tl.constexpr,
    SOFTWARE_E4M3: tl.constexpr,
    USE_PDL: tl.constexpr,
):
    # The row length and stride arrive in units of VEC elements (the widest access, up to 16
    # bytes, that divides both and the base addresses): multiplied back by a constexpr, Triton
    # knows every row starts VEC-aligned and every mask is constant over VEC elements, so it
    # emits VEC-wide loads and stores. Passed as plain element counts, H=1368 (not a multiple of
    # 16, Triton's only integer specialization) got scalar accesses: 43-47% of copy bandwidth.
    hidden = hidden_vecs * VEC
    x_row_stride = x_row_stride_vecs * VEC
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    row_mask = rows < num_rows
    x_rows = x_ptr + rows[:, None] * x_row_stride
    q_rows = q_ptr + rows[:, None] * hidden
    cols = tl.arange(0, BLOCK)
    if USE_PDL:
        # Launched with PDL, this program may start before the previous kernel in the stream has
        # finished: wait for it before touching memory, then let the next kernel be scheduled
        # (as the CUDA kernels do: per_token_quant_fp8.cuh, grid_dependency_wait).
        gdc_wait()
        gdc_launch_dependents()

    if SINGLE_PASS:
        # The whole row in registers: one read from global memory.
        mask = row_mask[:, None] & (cols[None, :] < hidden)
        x = tl.load(x_rows + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        amax = tl.reduce(tl.abs(x), 1, _max_nan)
    else:
        amax = tl.zeros([ROWS], dtype=tl.float32)
        for start in range(0, hidden, BLOCK):
            mask = row_mask[:, None] & (start + cols[None, :] < hidden)
            xb = tl.load(x_rows + start + cols[None, :], mask=mask, other=0.0).to(tl.float32)
            amax = _max_nan(amax, tl.reduce(tl.abs(xb), 1, _max_nan))

    if HAS_UB_PTR:
        ub = tl.load(scale_ub_ptr)
    else:
        ub = scale_ub_value
    amax = tl.minimum(amax, ub, propagate_nan=tl.PropagateNan.ALL)
    scale = tl.maximum(tl.math.div_rn(amax, 448.0), 1.0 / (448.0 * 512.0), propagate_nan=tl.PropagateNan.ALL)
    tl.store(scale_ptr + rows, scale, mask=row_mask)
    recip = tl.math.div_rn(1.0, scale)
    all_finite = tl.min(((scale == scale) & (scale != float("inf"))).to(tl.int32), 0) == 1

    if SINGLE_PASS:
        q = _to_e4m3(_divide(x, scale[:, None], recip[:, None], all_finite), SOFTWARE_E4M3)
        tl.store(q_rows + cols[None, :], q, mask=mask)
    else:
        for start in range(0, hidden, BLOCK):
            mask = row_mask[:, None] & (start + cols[None, :] < hidden)
            xb = tl.load(x_rows + start + cols[None, :], mask=mask, other=0.0).to(tl.float32)
            q = _to_e4m3(_divide(xb, scale[:, None], recip[:, None], all_finite), SOFTWARE_E4M3)
            tl.store(q_rows + start + cols[None, :], q, mask=mask)


# Rows up to this many elements are held whole (one global read); longer ones loop twice.
SINGLE_PASS_MAX = 32768
TWO_PASS_BLOCK = 8192
# Measured on an H100 (scripts/triton_configs.py, docs/performance.md v6; bfloat16, % of copy
# bandwidth, elements per program x warps). 4 warps won at every large shape: 65536x1368 89.7%
# (8 warps 74.0%, 16: 58.3%), 65536x2048 100.9%, 32768x4096 101.3% (8 warps 99.3%), 16384x5120
# 91.6% (8 warps 81.7%), 16384x7168 100.6% (92.2%), 16384x8192 100.8% (97.5%), 8192x16384
# 100.3% at one 16384-element row (16 warps: 72.1%). Elements per program: rows padded to at
# most 2048 do better with 4096 (two rows; 65536x1368 90.6 vs 89.7%, 8192x1368 74.6 vs 70.6%,
# 65536x2048 101.7 vs 100.9%, 8192x2048 85.9 vs 83.5%), longer ones with 8192 (32768x4096
# 101.3 vs 99.7%).
# v7 (scripts/triton_configs.py with WARPS=2,4): the 4096-element programs of short rows do
# better with 2 warps where the row is padded (32768x1368 90.7 vs 88.0%, 65536x1368 94.5 vs
# 92.3%) and the same where it is not (65536x2048 99.7 vs 99.5%, 8192x2048 83.2 vs 84.2%);
# longer rows keep 4 (4096-16384: 2 warps 0.5-16% slower). A row padded from 1368 to 2048
# lanes computes a third of its lanes for nothing; fewer warps, more resident programs.
# (Holding such a row as a power-of-two head plus a tail, 1024 + 512, measured slower:
# 32768x1368 80.3%; the two shapes need their own layouts and conversions between them.)
SHORT_ROW_BLOCK = 2048
ELEMENTS_PER_PROGRAM_SHORT_ROWS = 4096
ELEMENTS_PER_PROGRAM = 8192
NUM_WARPS_SHORT_ROWS = 2
NUM_WARPS = 4
# ... but not for a handful of rows, where a program's latency is the call's: 1x1368 1.60 us
# with 2 warps, 1.50 with 4.
SHORT_ROWS_MIN_ROWS_FOR_2_WARPS = 1024


@functools.lru_cache(maxsize=1024)
def triton_config(hidden: int, num_rows: int) -> dict:
    """ROWS, BLOCK, SINGLE_PASS and num_warps for a shape."""
    block = triton.next_power_of_2(hidden)
    single = block <= SINGLE_PASS_MAX
    if not single:
        block = TWO_PASS_BLOCK
    short = block <= SHORT_ROW_BLOCK
    elements = ELEMENTS_PER_PROGRAM_SHORT_ROWS if short else ELEMENTS_PER_PROGRAM
    rows = max(1, min(elements // block, triton.next_power_of_2(num_rows)))
    two_warps = short and num_rows >= SHORT_ROWS_MIN_ROWS_FOR_2_WARPS
    return dict(ROWS=rows, BLOCK=block, SINGLE_PASS=single, num_warps=NUM_WARPS_SHORT_ROWS if two_warps else NUM_WARPS)


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def per_token_quant_fp8_triton(
    x2d: torch.Tensor,
    q2d: torch.Tensor,
    scale1d: torch.Tensor,
    scale_ub: float | torch.Tensor | None,
    software_e4m3: bool | None = None,
    pdl: bool = False,
) -> None:
    """x2d (rows, H) with unit last stride; q2d contiguous; scale1d (rows,). Already validated.

    software_e4m3: convert to e4m3 in integer arithmetic instead of the conversion instruction
    (default: only under the interpreter; the GPU tests run both ways).
    pdl: programmatic dependent launch, where pdl_available() says this Triton and GPU have it."""
    if software_e4m3 is None:
        software_e4m3 = interpreting()
    pdl = pdl and pdl_available(x2d.device)
    launch_options = dict(launch_pdl=True) if pdl else {}
    num_rows, hidden = x2d.shape
    cfg = triton_config(hidden, num_rows)
    vec = vector_width(hidden, x2d.element_size(), x2d.stride(0), x2d.data_ptr(), q2d.data_ptr())
    has_ptr = isinstance(scale_ub, torch.Tensor)
    ub_value = float("inf") if scale_ub is None or has_ptr else float(scale_ub)
    grid = (triton.cdiv(num_rows, cfg["ROWS"]),)
    _per_token_quant_fp8_kernel[grid](
        x2d,
        q2d,
        scale1d,
        scale_ub if has_ptr else scale1d,  # a valid pointer that is never read
        ub_value,
        num_rows,
        hidden // vec,
        x2d.stride(0) // vec,
        VEC=vec,
        HAS_UB_PTR=has_ptr,
        SOFTWARE_E4M3=software_e4m3,
        USE_PDL=pdl,
        **cfg,
        **launch_options,
    )


def pdl_available(device: torch.device) -> bool:
    return TRITON_HAS_PDL and not interpreting() and device.type == "cuda" and pdl_supported(device.index)


assert FP8_MAX == 448.0 and MIN_SCALE == 1.0 / (448.0 * 512.0)  # the constants in the kernel
