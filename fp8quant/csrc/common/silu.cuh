// SiLU-and-mul of one vector pair, as the unfused torch composition computes it: the producer step
// of silu_and_mul_quant_fp8, shared by its per-token kernel (silu_and_mul_quant.cuh) and its
// per-group path through the group kernel (per_token_group.cuh).
#pragma once

#include "vec.cuh"

namespace fp8quant {

// silu(g) = g / (1 + exp(-g)) in fp32 (expf, IEEE division): expf overflows to +inf below
// g = -88.7, and g / inf is -0 (the limit), as in torch.
__device__ __forceinline__ float silu(float g) { return __fdiv_rn(g, 1.0f + expf(-g)); }

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
