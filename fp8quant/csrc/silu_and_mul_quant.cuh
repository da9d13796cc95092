// SiLU-and-mul + FP8 quantization in one pass: each row of x = [gate | up] (2I elements) read
// once, the codes of y (I elements) and their scales written.
//
// Numerics (fp8quant/reference.py, silu_and_mul_quant_fp8_reference, the unfused torch composition):
//   y = dtype(dtype(silu(gate)) * up),  silu(g) = g * (1 / (1 + exp(-g))) in fp32 (common/silu.cuh),
//   each result rounded to the input dtype as torch's silu and mul round them;
//   then per-token or per-group quantization of y (common/row_quant.cuh), bit for bit that of y.
// Where it differs from torch: expf against torch's vectorized exp, a few fp32 ulps apart, which
// the tests bound.
#pragma once

#include <cstdint>

#include "common/fp8.cuh"
#include "common/launch.cuh"
#include "common/pdl.cuh"
#include "common/row_quant.cuh"
#include "common/silu.cuh"
#include "common/vec.cuh"

namespace fp8quant {

// One call's values (fp8quant/ops/silu_and_mul_quant.py declares the same fields, in this order).
struct SiluAndMulQuantArgs {
  const void* x;
  void* q;
  void* scale;
  const void* scale_ub_ptr;
  float scale_ub_value;
  float group_eps;
  int64_t num_rows;
  int64_t inner;               // I: the output's row length, half of x's
  int64_t x_row_stride;        // elements
  int64_t scale_ld;
};

struct SiluAndMulQuantParams {
  const void* x;
  int64_t inner;
  int64_t x_row_stride;
  RowQuantOut out;
};

template <typename In, int kVec, int kN>
__global__ void __launch_bounds__(kRowMaxThreads, 1) silu_and_mul_quant_kernel(const SiluAndMulQuantParams p) {
  using V = InVec<In, kVec>;
  __shared__ float warp_maxes[kRowMaxWarps];
  const int64_t row = blockIdx.x;
  const int64_t vecs = p.inner / kVec;
  const int threads = blockDim.x;
  const V* gate_vecs = reinterpret_cast<const V*>(static_cast<const In*>(p.x) + row * p.x_row_stride);
  const V* up_vecs = reinterpret_cast<const V*>(static_cast<const In*>(p.x) + row * p.x_row_stride + p.inner);

  grid_dependency_wait();
  allow_dependents_to_launch();
  V gate[kN], up[kN];
#pragma unroll
  for (int j = 0; j < kN; ++j) {
    const int64_t i = threadIdx.x + static_cast<int64_t>(j) * threads;
    if (i < vecs) {
      gate[j] = gate_vecs[i];
      up[j] = up_vecs[i];
    } else {
      gate[j].set_zero();
      up[j].set_zero();
    }
  }
  V y[kN];
#pragma unroll
  for (int j = 0; j < kN; ++j) y[j] = silu_and_mul<In, kVec>(gate[j], up[j]);
  quantize_row<In, kVec, kN>(y, row, vecs, p.out, warp_maxes);
}

struct SiluAndMulQuantOp {
  using Params = SiluAndMulQuantParams;
  using LaunchFn = cudaError_t (*)(const Params&, const LaunchConfig&, cudaStream_t);
  template <typename In, int kVec, int kN>
  static constexpr LaunchFn launcher() {
    return &launch<silu_and_mul_quant_kernel<In, kVec, kN>, Params>;
  }
};

template <typename In>
cudaError_t launch_silu_and_mul_quant(const SiluAndMulQuantArgs& a, const RowQuantConfig& c, cudaStream_t stream) {
  const SiluAndMulQuantParams params{a.x, a.inner, a.x_row_stride, row_quant_out(a, a.inner, c)};
  return launch_row_kernel<SiluAndMulQuantOp, In>(params, c, stream);
}

}  // namespace fp8quant
