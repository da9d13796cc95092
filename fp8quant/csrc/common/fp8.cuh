// FP8 e4m3 arithmetic every quantization kernel shares: NaN-propagating min/max, the exact
// division x / scale without a division per element, the per-row (or per-group) scale, and the
// conversion of a vector to codes. fp8quant/reference.py is the contract they implement.
#pragma once

#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "vec.cuh"

namespace fp8quant {

constexpr float kFp8E4m3Max = 448.0f;
// Keeps the scale of an all-zero row finite and nonzero (vLLM's and FBGEMM's floor).
constexpr float kMinScale = 1.0f / (448.0f * 512.0f);

// fmaxf/fminf return the other operand when one is NaN; the contract propagates NaN
// (torch.amax, torch.maximum and torch.minimum do), so a NaN row never gets a finite scale.
__device__ __forceinline__ float max_nan(float a, float b) {
  float r;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}
__device__ __forceinline__ float min_nan(float a, float b) {
  float r;
  asm("min.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

// b / 448 as IEEE division rounds it, for every fp32 b: q0 = RN(b * RN(1/448)) is within an ulp,
// the FMA gives the exact residual, one correction rounds correctly (Markstein; 448's significand
// is not all ones). An infinite q0 is kept (the FMAs would turn it into NaN); where b is so small
// that the quotient is subnormal the result may be an ulp off, but it is then far below
// kMinScale, which replaces it. Three instructions on the path from the amax to the first store,
// instead of __fdiv_rn's range check and branch to its slow path. tests/test_gpu_per_token.py compares the
// scale of every non-negative fp32 amax with IEEE division.
__device__ __forceinline__ float div_by_fp8_max(float b) {
  constexpr float kRecip = 1.0f / kFp8E4m3Max;  // RN(1/448), folded at compile time
  const float q0 = __fmul_rn(b, kRecip);
  const float q1 = __fmaf_rn(__fmaf_rn(-q0, kFp8E4m3Max, b), kRecip, q0);
  return isinf(q0) ? q0 : q1;
}

// The smallest power of two >= a float32 scale, from its bits (reference.py: ue8m0_round_up).
__device__ __forceinline__ float ue8m0_round_up(float s) {
  const uint32_t bits = __float_as_uint(s);
  const float up = __uint_as_float((bits + 0x7fffffu) & 0xff800000u);
  return (isnan(s) || isinf(s)) ? s : up;
}

// What a row's scale allows the quantize loop to skip, decided once per row (for_row_kind).
enum class RowKind : int32_t {
  kInRange,    // finite scale, amax <= scale_ub: every |x / scale| <= 448 (1 + 2^-22), no overflow
  kClamped,    // finite scale, amax > scale_ub: x * recip may overflow to +-inf (x = +-inf too)
  kNonFinite,  // NaN scale (a NaN in the row), or +inf (an Inf and no scale_ub)
};

// A row's scale and its correctly rounded reciprocal, computed once per row.
struct RowScale {
  float scale;
  float recip;  // RN(1 / scale); 0 when the scale is NaN or +inf
  RowKind kind;

  __device__ __forceinline__ RowScale(float amax, float scale_ub) {
    const float bounded = min_nan(amax, scale_ub);
    scale = max_nan(div_by_fp8_max(bounded), kMinScale);
    const bool finite = isfinite(scale);
    recip = finite ? __frcp_rn(scale) : 0.0f;
    kind = !finite ? RowKind::kNonFinite : (amax > scale_ub ? RowKind::kClamped : RowKind::kInRange);
  }

  // A scale chosen by the caller that bounds every |x| of its elements by 448 scale (a group's
  // max(amax, eps) / 448, maybe rounded up to a power of two): a finite one is kInRange. It must be
  // a normal float (its reciprocal finite): the ops' eps bounds it from below.
  __device__ __forceinline__ static RowScale of_scale(float s) { return RowScale(s, Given{}); }

 private:
  struct Given {};
  __device__ __forceinline__ RowScale(float s, Given) {
    scale = s;
    const bool finite = isfinite(s);
    recip = finite ? __frcp_rn(s) : 0.0f;
    kind = finite ? RowKind::kInRange : RowKind::kNonFinite;
  }
};

// x / scale, correctly rounded (as IEEE division), without a division per element.
//
// Finite scale (a normal number >= kMinScale): q0 = RN(x * recip) is within an ulp of x / scale,
// the FMA gives the exact residual, and one correction step rounds correctly (Markstein's
// theorem): 3 instructions instead of the division's reciprocal, Newton steps and range check.
// The residual is taken negated, q0 * scale - x, and subtracted: the same rounding for every
// x != 0, and for x = -0 the result is -0 (q0 = -0, residual +0, -0 + -0 = -0) where the
// un-negated form x - q0 * scale gives +0 (e4m3 0x00 instead of 0x80, which a copysign per
// element would have to fix). A tiny quotient keeps x's sign: q1 = RN(x * recip - q0 * (scale * recip -
// 1)), and |q0 (scale * recip - 1)| < |x * recip|, so it is never an exact zero.
// kInRange rows need nothing more: |x| <= amax, so |q0| <= 448 (1 + 2^-22). In a kClamped row
// q0 may overflow to +-inf (and x may be +-inf), where the FMAs would give NaN; q0 is kept, and
// saturates to +-448 like the exact quotient. 4 instructions per element (with the bf16 unpack)
// instead of 7 before (docs/design.md). tests/test_gpu_per_token.py checks every bfloat16 and
// float16 value against 2048 scales, and the edge rows (-0 among them).
//
// NaN or +inf scale: the IEEE quotient is NaN for a NaN scale, and x / inf = +-0 for finite x,
// NaN for x = +-inf. No division needed.
template <RowKind kKind>
__device__ __forceinline__ float scaled(float x, const RowScale& rs) {
  if constexpr (kKind == RowKind::kNonFinite) {
    return (isnan(rs.scale) || isinf(x)) ? __int_as_float(0x7fffffff) : copysignf(0.0f, x);
  } else {
    const float q0 = __fmul_rn(x, rs.recip);
    const float q1 = __fmaf_rn(-__fmaf_rn(q0, rs.scale, -x), rs.recip, q0);
    if constexpr (kKind == RowKind::kClamped) {
      return isinf(q0) ? q0 : q1;
    } else {
      return q1;
    }
  }
}

// Calls f(std::integral_constant<RowKind, kind>) for the row's kind: the choice is made once per
// row, so the per-element code has no branch (one made ptxas spill).
template <typename F>
__device__ __forceinline__ void for_row_kind(const RowScale& rs, F&& f) {
  if (rs.kind == RowKind::kInRange) {
    f(std::integral_constant<RowKind, RowKind::kInRange>{});
  } else if (rs.kind == RowKind::kClamped) {
    f(std::integral_constant<RowKind, RowKind::kClamped>{});
  } else {
    f(std::integral_constant<RowKind, RowKind::kNonFinite>{});
  }
}
template <RowKind kKind, typename In, int kVec>
__device__ __forceinline__ CodeVec<kVec> quantize_vec(const InVec<In, kVec>& v, const RowScale& rs) {
  CodeVec<kVec> out;
  if constexpr (kVec == 1) {
    out.w[0] = __nv_cvt_float_to_fp8(scaled<kKind>(v.get(0), rs), __NV_SATFINITE, __NV_E4M3);
  } else {
    // Two codes per conversion; two conversions per 32-bit word.
#pragma unroll
    for (int e = 0; e < kVec; e += 2) {
      const float2 pair = make_float2(scaled<kKind>(v.get(e), rs), scaled<kKind>(v.get(e + 1), rs));
      const uint32_t codes = __nv_cvt_float2_to_fp8x2(pair, __NV_SATFINITE, __NV_E4M3);
      if constexpr (kVec == 2) {
        out.w[0] = static_cast<uint16_t>(codes);
      } else if (e % 4 == 0) {
        out.w[e / 4] = codes;
      } else {
        out.w[e / 4] |= codes << 16;
      }
    }
  }
  return out;
}


}  // namespace fp8quant
