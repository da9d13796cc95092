// Max reductions: over a thread's vectors (a balanced tree), over a warp (one integer max) and
// over the threads of a row (straight-line shuffles, shared memory across warps).
#pragma once

#include <cuda_runtime.h>

#include "fp8.cuh"
#include "vec.cuh"

namespace fp8quant {

// thread's vectors, the last vectors sat on the shortest path to the result, and in one
// build ptxas issued the third and fourth 16-byte loads of the 4-vector bf16 instance only after
// the first two had arrived: a second memory round trip (docs/design.md).
template <int kN, typename T, typename Max>
__device__ __forceinline__ T tree_max(const T* m, Max max) {
  if constexpr (kN == 1) {
    return m[0];
  } else {
    return max(tree_max<kN / 2>(m, max), tree_max<kN - kN / 2>(m + kN / 2, max));
  }
}

// max |x| over kN vectors, NaN-propagating (the result is >= 0 or a NaN with its sign bit clear).
template <int kN, typename In, int kVec>
__device__ __forceinline__ float abs_max(const InVec<In, kVec>* v) {
  using Pair = typename Packed2<In>::type;
  using V = InVec<In, kVec>;
  if constexpr (!std::is_void_v<Pair> && V::kPerWord == 2) {
    Pair m[kN * V::kWords];
#pragma unroll
    for (int i = 0; i < kN * V::kWords; ++i) m[i] = __habs2(bit_cast<Pair>(v[i / V::kWords].w[i % V::kWords]));
    const Pair r = tree_max<kN * V::kWords>(m, [](Pair a, Pair b) { return __hmax2_nan(a, b); });
    return max_nan(to_float(r.x), to_float(r.y));
  } else {
    // Leaves interleaved across the vectors (v0[0], v1[0], ..., v0[1], ...): with them in
    // order, the quantize code (more paths after this) made ptxas issue the last 2 of the 8
    // row loads of the float32 8-vector instances after the first max, which waits for the
    // first load; interleaved, none is late (tests/test_kernel_build.py).
    float m[kN * kVec];
#pragma unroll
    for (int i = 0; i < kN * kVec; ++i) m[i] = fabsf(v[i % kN].get(i / kN));
    return tree_max<kN * kVec>(m, [](float a, float b) { return max_nan(a, b); });
  }
}


// The bits of the max of v over the warp. v is never negative (a max of absolute values, or a
// NaN with its sign bit clear), so its bits order as unsigned integers the way the floats do, NaN
// above +inf: one warp-wide integer max (redux.sync, sm_80+) instead of five dependent shuffles.
__device__ __forceinline__ unsigned warp_max_bits(float v) {
  return __reduce_max_sync(0xffffffffu, __float_as_uint(v));
}

// The max of v over the `tpr` consecutive threads of a row (a power of two, uniform across the
// CTA), in straight-line code: as loops bounded by tpr the branches made a one-row call
// 0.12-0.16 us slower than the same kernel with tpr a compile-time constant, and the warp-wide
// integer max took another 0.03-0.06 us off (docs/design.md).
__device__ __forceinline__ float row_max(float v, int tpr, int local_row, float* warp_amax) {
  if (tpr < 32) {  // several rows share a warp
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
      const float other = __shfl_xor_sync(0xffffffffu, v, offset);
      v = offset < tpr ? max_nan(v, other) : v;
    }
    return v;
  }
  v = __uint_as_float(warp_max_bits(v));
  if (tpr > 32) {
    // The row spans tpr / 32 consecutive warps: each publishes its max, then every lane reads
    // one of the row's (lane mod warps) and one more warp-wide max combines them.
    const int warps_per_row = tpr >> 5;
    const int lane = threadIdx.x & 31;
    if (lane == 0) warp_amax[threadIdx.x >> 5] = v;
    __syncthreads();
    v = __uint_as_float(warp_max_bits(warp_amax[local_row * warps_per_row + (lane & (warps_per_row - 1))]));
  }
  return v;
}

}  // namespace fp8quant
