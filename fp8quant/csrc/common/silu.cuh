// SiLU-and-mul of one vector pair, as the unfused torch composition computes it: the producer step
// of silu_and_mul_quant_fp8, shared by its per-token kernel (silu_and_mul_quant.cuh) and its
// per-group path through the group kernel (per_token_group.cuh).
#pragma once

#include "vec.cuh"

namespace fp8quant {

// silu(g) = g * (1 / (1 + exp(-g))) in fp32: expf (2 ulp), 1 + e, the hardware reciprocal
// (rcp.approx.ftz.f32: 1 ulp) and the product: within 4.5 ulp of the exact value, torch's within
// 2, so within fused_bounds.SILU_DELTA (2^-20) of torch's. A denominator over 2^64 (g < -44) is
// scaled down by 2^64 first and the product back up (exact: the result stays normal), so the
// reciprocal's input lies in [1, 2^64] or is +inf and neither it nor its result is subnormal:
// the flush-to-zero form, 6 instructions shorter, is then exact to use. IEEE division (__fdiv_rn)
// instead costs ~10 instructions an element and a branch to its slow path around each one, which
// keeps ptxas from interleaving a vector's elements. expf overflows to +inf below g = -88.7,
// whose reciprocal is 0, and g * 0 is -0, as torch's g / inf; g = -inf gives NaN, as in torch.
__device__ __forceinline__ float approx_reciprocal(float d) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(d));
  return r;
}
__device__ __forceinline__ float silu(float g) {
  constexpr float kTwoTo64 = 18446744073709551616.0f, kTwoToMinus64 = 1.0f / kTwoTo64;
  const float d = 1.0f + expf(-g);
  const bool large = d > kTwoTo64;
  const float product = __fmul_rn(g, approx_reciprocal(large ? __fmul_rn(d, kTwoToMinus64) : d));
  return large ? __fmul_rn(product, kTwoToMinus64) : product;
}

// dtype(dtype(silu(gate)) * up): each step rounded to the input dtype, as torch's silu and mul
// round their results.
template <typename In, int kVec>
__device__ __forceinline__ InVec<In, kVec> silu_and_mul(const InVec<In, kVec>& gate, const InVec<In, kVec>& up) {
  float f[kVec];
#pragma unroll
  for (int e = 0; e < kVec; ++e) f[e] = silu(gate.get(e));
  const InVec<In, kVec> activated = round_to_vec<In, kVec>(f);
#pragma unroll
  for (int e = 0; e < kVec; ++e) f[e] = __fmul_rn(activated.get(e), up.get(e));
  return round_to_vec<In, kVec>(f);
}

}  // namespace fp8quant
