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

#include "common/bulk_copy.cuh"
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
  int32_t bulk_load;  // the staged kernel per token: the [gate | up] row in by one bulk copy (sm_90+)
  RowQuantOut out;
};

template <typename In, int kVec, int kN>
__global__ void __launch_bounds__(kRowMaxThreads, 1) silu_and_mul_quant_kernel(const SiluAndMulQuantParams p) {
  using V = InVec<In, kVec>;
  __shared__ float warp_maxes[kRowMaxWarps];
  const int64_t row = blockIdx.x;
  const int vecs = static_cast<int>(p.inner / kVec);
  const RowSlots slots = row_slots<kVec, kN>(p.out, threadIdx.x);
  const V* gate_vecs = reinterpret_cast<const V*>(static_cast<const In*>(p.x) + row * p.x_row_stride);
  const V* up_vecs = reinterpret_cast<const V*>(static_cast<const In*>(p.x) + row * p.x_row_stride + p.inner);

  grid_dependency_wait_and_allow(p.out.trigger_at_entry);
  V gate[kN], up[kN];
#pragma unroll
  for (int j = 0; j < kN; ++j) {
    const int i = slots.first + j * slots.stride;
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
  quantize_row<In, kVec, kN>(y, slots, whole_row(row), vecs, p.out, warp_maxes);
}

// The staged form (row_quant.cuh: staged rows): per token, y into shared memory and its max, then
// the codes; per group nothing staged, y quantized in the group layout as it is produced
// (quantize_staged_groups).
template <typename In, int kVec>
__global__ void __launch_bounds__(kRowMaxThreads) silu_and_mul_quant_staged_kernel(const SiluAndMulQuantParams p) {
  using V = InVec<In, kVec>;
  __shared__ float warp_maxes[kRowMaxWarps];
  V* staged = staged_row<In, kVec>();
  const int64_t row = blockIdx.x;
  const int64_t vecs = p.inner / kVec;
  const int threads = blockDim.x;
  const V* gate_vecs = reinterpret_cast<const V*>(static_cast<const In*>(p.x) + row * p.x_row_stride);
  const V* up_vecs = reinterpret_cast<const V*>(static_cast<const In*>(p.x) + row * p.x_row_stride + p.inner);

  grid_dependency_wait_and_allow(p.out.trigger_at_entry);
  if (p.out.group_size != 0) {
    quantize_staged_groups<In, kVec>(row, static_cast<int>(vecs), p.out, warp_maxes,
                                     [&](int i) { return silu_and_mul<In, kVec>(gate_vecs[i], up_vecs[i]); });
    return;
  }
  float amax = 0.0f;
  constexpr bool kBulk = sizeof(V) == 16 && has_bulk_copy();  // 16-byte vectors: rows of 16-byte multiples
  if (kBulk && p.bulk_load) {
    // The [gate | up] row (2 x vecs vectors: the plan's shared memory is twice the row's codes'
    // width) by the copy engine; each thread's y over its own gate vectors. NOT MEASURED: forced
    // only (ops/row_quant.py: RowPlan.bulk, bench "fp8quant:plan:bulk").
    bulk_load_to_shared(staged, gate_vecs, static_cast<uint32_t>(2 * vecs * sizeof(V)));
    for (int64_t i = threadIdx.x; i < vecs; i += threads) {
      const V y = silu_and_mul<In, kVec>(staged[i], staged[vecs + i]);
      staged[i] = y;
      amax = max_nan(amax, abs_max<1>(&y));
    }
    quantize_staged_row(staged, amax, row, vecs, p.out, warp_maxes);
    return;
  }
  for (int64_t base = threadIdx.x; base - threadIdx.x < vecs; base += kStagedUnroll * threads) {
    V gate[kStagedUnroll], up[kStagedUnroll];
#pragma unroll
    for (int u = 0; u < kStagedUnroll; ++u) {
      const int64_t i = base + u * threads;
      if (i < vecs) {
        gate[u] = gate_vecs[i];
        up[u] = up_vecs[i];
      }
    }
#pragma unroll
    for (int u = 0; u < kStagedUnroll; ++u) {
      const int64_t i = base + u * threads;
      if (i >= vecs) continue;
      const V y = silu_and_mul<In, kVec>(gate[u], up[u]);
      staged[i] = y;
      amax = max_nan(amax, abs_max<1>(&y));
    }
  }
  quantize_staged_row(staged, amax, row, vecs, p.out, warp_maxes);
}

struct SiluAndMulQuantOp {
  using Params = SiluAndMulQuantParams;
  using LaunchFn = cudaError_t (*)(const Params&, const LaunchConfig&, cudaStream_t);
  template <typename In, int kVec, int kN>
  static constexpr LaunchFn launcher() {
    return &launch<silu_and_mul_quant_kernel<In, kVec, kN>, Params>;
  }
  template <typename In, int kVec>
  static constexpr LaunchFn staged_launcher() {
    return &launch<silu_and_mul_quant_staged_kernel<In, kVec>, Params>;
  }
};

template <typename In>
cudaError_t launch_silu_and_mul_quant(const SiluAndMulQuantArgs& a, const RowQuantConfig& c, cudaStream_t stream) {
  const SiluAndMulQuantParams params{a.x, a.inner, a.x_row_stride, c.staged == 2, row_quant_out(a, a.inner, c)};
  return launch_row_kernel<SiluAndMulQuantOp, In>(params, c, stream);
}

}  // namespace fp8quant
