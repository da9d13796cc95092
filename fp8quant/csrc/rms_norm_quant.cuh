// (Add +) RMSNorm + FP8 quantization in one pass: each row of x (and of residual) read once, the
// residual written once, the codes and scales written.
//
// Numerics (fp8quant/reference.py, rms_norm_quant_fp8_reference, the unfused torch composition):
//   h = x + residual, rounded to the input dtype (written back to residual), or h = x
//   r = 1 / sqrt(sum(h^2) / H + eps)          one fp32 value per row (__frsqrt_rn: correctly rounded)
//   y = dtype(dtype(h * r) * weight)          each product rounded to the input dtype, as torch's
//                                             RMSNorm (h.to(dtype) * weight) rounds them
//   then per-token or per-group quantization of y (common/row_quant.cuh), bit for bit that of y.
// Where it differs from torch: the sum of squares in another order (per thread, then a tree) and
// torch's rsqrt; r is within a few fp32 ulps of torch's, which the tests bound.
#pragma once

#include <cstdint>

#include "common/bulk_copy.cuh"
#include "common/fp8.cuh"
#include "common/launch.cuh"
#include "common/pdl.cuh"
#include "common/row_quant.cuh"
#include "common/vec.cuh"

namespace fp8quant {

// One call's values (fp8quant/ops/rms_norm_quant.py declares the same fields, in this order).
struct RmsNormQuantArgs {
  const void* x;
  void* residual;              // null: no residual
  const void* weight;
  void* q;
  void* scale;
  const void* scale_ub_ptr;
  float scale_ub_value;
  float eps;
  float group_eps;
  int64_t num_rows;
  int64_t hidden;
  int64_t x_row_stride;        // elements
  int64_t residual_row_stride;
  int64_t scale_ld;
};

struct RmsNormQuantParams {
  const void* x;
  void* residual;
  const void* weight;
  int64_t hidden;
  int64_t x_row_stride;
  int64_t residual_row_stride;
  float eps;
  int32_t bulk_load;  // the staged kernel without a residual: the row in by one bulk copy (sm_90+)
  RowQuantOut out;
};

// dtype(dtype(h * inv_rms) * weight), each product rounded to the input dtype as torch's RMSNorm
// rounds them.
template <typename In, int kVec>
__device__ __forceinline__ InVec<In, kVec> rms_normalize(const InVec<In, kVec>& h, const InVec<In, kVec>& w, float inv_rms) {
  float n[kVec];
#pragma unroll
  for (int e = 0; e < kVec; ++e) n[e] = __fmul_rn(h.get(e), inv_rms);
  const InVec<In, kVec> normalized = round_to_vec<In, kVec>(n);
#pragma unroll
  for (int e = 0; e < kVec; ++e) n[e] = __fmul_rn(normalized.get(e), w.get(e));
  return round_to_vec<In, kVec>(n);
}

// At 4 vectors a thread (the large-input plan) at most 64 registers: 4 CTAs of 256 threads an SM
// instead of 3 (bf16 16-byte: 67 -> 61 registers, no instance spills, the same SASS otherwise).
// Predicted, NOT MEASURED: per token 16384x8192 88.8 -> ~92% of copy bandwidth, 4096x8192 83.4
// -> ~87 (bytes in flight an SM 48 -> 64 KiB; per-token's kernel, 6 CTAs, reads 100.8%).
template <typename In, int kVec, int kN>
__global__ void __launch_bounds__(kRowMaxThreads, kN == 4 ? 2 : 1) rms_norm_quant_kernel(const RmsNormQuantParams p) {
  using V = InVec<In, kVec>;
  __shared__ float warp_sums[kRowMaxWarps];
  __shared__ float warp_maxes[kRowMaxWarps];
  const RowPart part = row_part(p.out);
  const int64_t row = part.row;
  const int vecs = static_cast<int>(p.hidden / kVec);
  const RowSlots slots = row_slots<kVec, kN>(p.out, threadIdx.x);
  const V* x_vecs = reinterpret_cast<const V*>(static_cast<const In*>(p.x) + row * p.x_row_stride);
  V* res_vecs = reinterpret_cast<V*>(static_cast<In*>(p.residual) + row * p.residual_row_stride);
  const V* w_vecs = static_cast<const V*>(p.weight);

  grid_dependency_wait_and_allow(p.out.trigger_at_entry);
  V h[kN];
#pragma unroll
  for (int j = 0; j < kN; ++j) {
    const int i = slots.first + j * slots.stride;
    if (i < vecs) h[j] = x_vecs[i]; else h[j].set_zero();
  }
  if (p.residual != nullptr) {
    V r[kN];
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      const int i = slots.first + j * slots.stride;
      if (i < vecs) r[j] = res_vecs[i]; else r[j].set_zero();
    }
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      float sum[kVec];
#pragma unroll
      for (int e = 0; e < kVec; ++e) sum[e] = h[j].get(e) + r[j].get(e);
      h[j] = round_to_vec<In, kVec>(sum);
      const int i = slots.first + j * slots.stride;
      if (i < vecs && part.stores) res_vecs[i] = h[j];
    }
  }
  float squares = 0.0f;
#pragma unroll
  for (int j = 0; j < kN; ++j) {
#pragma unroll
    for (int e = 0; e < kVec; ++e) squares = __fmaf_rn(h[j].get(e), h[j].get(e), squares);
  }
  const float mean = __fdiv_rn(block_sum(squares, warp_sums), static_cast<float>(p.hidden));
  const float inv_rms = __frsqrt_rn(mean + p.eps);
  if (p.out.group_size != 0 && !part.stores) return;  // per group the other parts' warps have their groups
  // The weight read after the reduction (from L2, every row reads it): held across it beside h,
  // the 16-byte x 4-vector bf16 instance took 90 registers instead of 67 (2 CTAs of 256 threads
  // an SM instead of 3; per token 16384x7168 65.2 -> 91.6% of copy bandwidth, H100). Read beside
  // x at 1-2 vectors a thread it saved 0.06-0.07 us at decode: not kept (docs/design.md).
  V y[kN];
#pragma unroll
  for (int j = 0; j < kN; ++j) {
    const int i = slots.first + j * slots.stride;
    V w;
    if (i < vecs) w = w_vecs[i]; else w.set_zero();
    y[j] = rms_normalize<In, kVec>(h[j], w, inv_rms);
  }
  quantize_row<In, kVec, kN>(y, slots, part, vecs, p.out, warp_maxes);
}

// The staged form (row_quant.cuh: staged rows): h (x + residual, residual written) into shared
// memory with the sum of its squares; then y from h and the weight, per token staged again over h
// with its max before the codes, per group quantized in the group layout (quantize_staged_groups,
// after a barrier: a thread reads vectors others staged). A thread sums its own elements in order
// (at most 64: the planner's bound, fused_bounds.py's derivation), then the tree.
template <typename In, int kVec>
__global__ void __launch_bounds__(kRowMaxThreads) rms_norm_quant_staged_kernel(const RmsNormQuantParams p) {
  using V = InVec<In, kVec>;
  __shared__ float warp_sums[kRowMaxWarps];
  __shared__ float warp_maxes[kRowMaxWarps];
  V* staged = staged_row<In, kVec>();
  const int64_t row = blockIdx.x;
  const int64_t vecs = p.hidden / kVec;
  const int threads = blockDim.x;
  const V* x_vecs = reinterpret_cast<const V*>(static_cast<const In*>(p.x) + row * p.x_row_stride);
  V* res_vecs = reinterpret_cast<V*>(static_cast<In*>(p.residual) + row * p.residual_row_stride);
  const V* w_vecs = static_cast<const V*>(p.weight);
  const bool has_residual = p.residual != nullptr;
  const bool per_group = p.out.group_size != 0;

  grid_dependency_wait_and_allow(p.out.trigger_at_entry);
  float squares = 0.0f;
  constexpr bool kBulk = sizeof(V) == 16 && has_bulk_copy();  // 16-byte vectors: rows of 16-byte multiples
  if (kBulk && p.bulk_load && !has_residual) {
    // The row (16-byte vectors) by the copy engine, then each thread's sum of squares from shared
    // memory in the loop's order (its vectors t, t + T, ...). NOT MEASURED: forced only
    // (ops/row_quant.py: RowPlan.bulk, bench "fp8quant:plan:bulk").
    bulk_load_to_shared(staged, x_vecs, static_cast<uint32_t>(vecs * sizeof(V)));
    for (int64_t i = threadIdx.x; i < vecs; i += threads) {
      const V h = staged[i];
#pragma unroll
      for (int e = 0; e < kVec; ++e) squares = __fmaf_rn(h.get(e), h.get(e), squares);
    }
  } else {
    for (int64_t base = threadIdx.x; base - threadIdx.x < vecs; base += kStagedUnroll * threads) {
      V h[kStagedUnroll], r[kStagedUnroll];
#pragma unroll
      for (int u = 0; u < kStagedUnroll; ++u) {
        const int64_t i = base + u * threads;
        if (i < vecs) {
          h[u] = x_vecs[i];
          if (has_residual) r[u] = res_vecs[i];
        }
      }
#pragma unroll
      for (int u = 0; u < kStagedUnroll; ++u) {
        const int64_t i = base + u * threads;
        if (i >= vecs) continue;
        if (has_residual) {
          float sum[kVec];
#pragma unroll
          for (int e = 0; e < kVec; ++e) sum[e] = h[u].get(e) + r[u].get(e);
          h[u] = round_to_vec<In, kVec>(sum);
          res_vecs[i] = h[u];
        }
        staged[i] = h[u];
#pragma unroll
        for (int e = 0; e < kVec; ++e) squares = __fmaf_rn(h[u].get(e), h[u].get(e), squares);
      }
    }
  }
  const float mean = __fdiv_rn(block_sum(squares, warp_sums), static_cast<float>(p.hidden));
  const float inv_rms = __frsqrt_rn(mean + p.eps);
  if (per_group) {
    __syncthreads();
    quantize_staged_groups<In, kVec>(row, static_cast<int>(vecs), p.out, warp_maxes,
                                     [&](int i) { return rms_normalize<In, kVec>(staged[i], w_vecs[i], inv_rms); });
    return;
  }
  float amax = 0.0f;
  for (int64_t base = threadIdx.x; base - threadIdx.x < vecs; base += kStagedUnroll * threads) {
    V w[kStagedUnroll];
#pragma unroll
    for (int u = 0; u < kStagedUnroll; ++u) {
      const int64_t i = base + u * threads;
      if (i < vecs) w[u] = w_vecs[i];
    }
#pragma unroll
    for (int u = 0; u < kStagedUnroll; ++u) {
      const int64_t i = base + u * threads;
      if (i >= vecs) continue;
      const V y = rms_normalize<In, kVec>(staged[i], w[u], inv_rms);
      staged[i] = y;
      amax = max_nan(amax, abs_max<1>(&y));
    }
  }
  quantize_staged_row(staged, amax, row, vecs, p.out, warp_maxes);
}

struct RmsNormQuantOp {
  using Params = RmsNormQuantParams;
  using LaunchFn = cudaError_t (*)(const Params&, const LaunchConfig&, cudaStream_t);
  template <typename In, int kVec, int kN>
  static constexpr LaunchFn launcher() {
    return &launch<rms_norm_quant_kernel<In, kVec, kN>, Params>;
  }
  template <typename In, int kVec>
  static constexpr LaunchFn staged_launcher() {
    return &launch<rms_norm_quant_staged_kernel<In, kVec>, Params>;
  }
};

template <typename In>
cudaError_t launch_rms_norm_quant(const RmsNormQuantArgs& a, const RowQuantConfig& c, cudaStream_t stream) {
  const RmsNormQuantParams params{a.x, a.residual, a.weight, a.hidden, a.x_row_stride, a.residual_row_stride, a.eps,
                                  c.staged == 2, row_quant_out(a, a.hidden, c)};
  return launch_row_kernel<RmsNormQuantOp, In>(params, c, stream);
}

}  // namespace fp8quant
