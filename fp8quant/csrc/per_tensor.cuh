// Per-tensor FP8 (e4m3) quantization: one float32 scale for the whole tensor, given (static) or
// from the tensor's amax (dynamic).
//
// Numerics (fp8quant/reference.py, per_tensor_quant_fp8_reference, matched bit for bit):
//   dynamic: amax = max |x| over the tensor (NaN-propagating), min(amax, scale_ub),
//            scale = max(amax / 448, 1 / (448 * 512)); static: the scale given;
//   q = e4m3(clamp(x / scale, -448, 448)) as IEEE division rounds it.
//
// Dynamic takes two kernels: per_tensor_amax_kernel writes one partial max per CTA into a buffer
// the op allocates (no atomics, nothing for the caller to zero), per_tensor_quant_kernel reduces
// the partials in every CTA (a few hundred floats, from L2) and quantizes; under PDL the second
// starts while the first runs, loads its first chunk of x and then waits for the partials. Static
// is the second kernel alone. Both walk the tensor in chunks of one row: a CTA takes chunks
// blockIdx.x, + gridDim.x, ... (a row split in chunks_per_row chunks of up to kTensorMaxThreads x
// kTensorVecsPerThread vectors), so a few long rows still spread over the SMs.
// Dynamic on sm_90 with few chunks (ops/per_tensor.py: the cluster rule) takes one kernel instead:
// per_tensor_cluster_kernel, one thread block cluster of up to 8 CTAs whose maxima meet in
// distributed shared memory across a cluster barrier (hardware, no atomics, no buffer).
#pragma once

#include <cooperative_groups.h>

#include <array>
#include <cstdint>
#include <utility>

#include "common/fp8.cuh"
#include "common/launch.cuh"
#include "common/pdl.cuh"
#include "common/reduce.cuh"
#include "common/vec.cuh"

namespace fp8quant {

constexpr int kTensorMaxThreads = 256;

// One call's values (fp8quant/ops/per_tensor.py declares the same fields, in this order).
struct TensorArgs {
  const void* x;
  void* q;
  void* scale;                // the call's scale is written here (static: a copy of static_scale)
  const void* static_scale;   // static: the scale to use; dynamic: nullptr
  const void* scale_ub_ptr;   // dynamic: a device float, or nullptr
  float scale_ub_value;       // dynamic, when scale_ub_ptr is nullptr; +inf means no bound
  void* partials;             // dynamic: amax_grid floats
  int64_t num_rows;
  int64_t hidden;
  int64_t x_row_stride;
};

// One plan's launch (built once per plan on the Python side; offsets tested).
struct TensorConfig {
  int32_t vec;
  int32_t dynamic;
  int64_t chunks_per_row;
  int64_t amax_grid;
  int64_t quant_grid;
  int32_t block_threads;  // a chunk's vectors / kTensorVecsPerThread, in whole warps, at most 256
  int32_t quant_trigger_at_entry;  // under PDL: the quantize kernel lets the next launch at its entry
  int32_t quant_smem_bytes;        // dynamic shared memory the quantize kernel's CTAs reserve (ops/pdl_plan.py)
  int32_t cluster;                 // dynamic: nonzero for the one-cluster kernel of this many CTAs (<= 8)
  int32_t device;
  int32_t pdl;
};

struct TensorParams {
  const void* x;
  uint8_t* q;
  float* scale;
  const float* static_scale;
  const float* scale_ub_ptr;
  float scale_ub_value;
  float* partials;
  int64_t num_rows;
  int64_t hidden;
  int64_t x_row_stride;
  int64_t chunks_per_row;
  int64_t num_partials;
  int32_t dynamic;
  int32_t trigger_at_entry;
};

constexpr int kTensorVecsPerThread = 4;  // a chunk: up to kTensorMaxThreads x 4 vectors (ops/per_tensor.py)

// Chunk c's vectors held by this thread (vectors begin + threadIdx.x + k * blockDim.x below
// end), all four loads issued before any is used: with one vector per loop step the amax pass
// read 66% of the copy bandwidth and the static quantize 93.5% (H100, 65536x4096 bf16).
// Vectors past the chunk's end are zero, which no max and no store sees.
template <typename In, int kVec>
struct TensorChunk {
  using V = InVec<In, kVec>;
  int64_t row, begin, end;
  V v[kTensorVecsPerThread];

  // Where chunk c lies: its row and its vectors [begin, end) (arithmetic only: no memory access,
  // so a kernel may compute it before its PDL wait).
  struct Span {
    int64_t row, begin, end;
  };
  __device__ __forceinline__ static Span span(const TensorParams& p, int64_t c) {
    const int64_t vecs_per_row = p.hidden / kVec;
    const int64_t chunk_vecs = (vecs_per_row + p.chunks_per_row - 1) / p.chunks_per_row;
    const int64_t row = c / p.chunks_per_row;
    const int64_t begin = (c - row * p.chunks_per_row) * chunk_vecs;
    return {row, begin, begin + chunk_vecs < vecs_per_row ? begin + chunk_vecs : vecs_per_row};
  }
  __device__ __forceinline__ static const V* row_vecs(const TensorParams& p, int64_t row) {
    return reinterpret_cast<const V*>(static_cast<const In*>(p.x) + row * p.x_row_stride);
  }

  __device__ __forceinline__ TensorChunk(const TensorParams& p, int64_t c) : TensorChunk(p, span(p, c)) {}
  __device__ __forceinline__ TensorChunk(const TensorParams& p, const Span& s) : row(s.row), begin(s.begin), end(s.end) {
    const V* x_vecs = row_vecs(p, row);
#pragma unroll
    for (int k = 0; k < kTensorVecsPerThread; ++k) {
      const int64_t i = begin + threadIdx.x + k * blockDim.x;
      if (i < end) {
        v[k] = x_vecs[i];
      } else {
        v[k].set_zero();
      }
    }
  }

  // The span's lines into L2 before the PDL wait (pdl.cuh: prefetch_line_to_l2), as per-token's
  // register kernel does in its first wave (0.5-0.9 us per call at 100 MB there).
  __device__ __forceinline__ static void prefetch(const TensorParams& p, const Span& s) {
    const V* x_vecs = row_vecs(p, s.row);
#pragma unroll
    for (int k = 0; k < kTensorVecsPerThread; ++k) {
      const int64_t i = s.begin + threadIdx.x + k * blockDim.x;
      prefetch_line_to_l2(x_vecs + (i < s.end ? i : s.begin));
    }
  }

  __device__ __forceinline__ float abs_max() const { return fp8quant::abs_max<kTensorVecsPerThread>(v); }

  template <typename Quantize>
  __device__ __forceinline__ void store(const TensorParams& p, Quantize quantize) const {
    auto* q_vecs = reinterpret_cast<CodeVec<kVec>*>(p.q + row * p.hidden);
#pragma unroll
    for (int k = 0; k < kTensorVecsPerThread; ++k) {
      const int64_t i = begin + threadIdx.x + k * blockDim.x;
      if (i < end) q_vecs[i] = quantize(v[k]);
    }
  }
};

// The max of v over the CTA, in every thread (v >= 0 or NaN with its sign clear: bits order).
__device__ __forceinline__ float cta_max(float v) {
  __shared__ float warp_max[kTensorMaxThreads / 32];
  v = __uint_as_float(warp_max_bits(v));
  if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x >> 5] = v;
  __syncthreads();
  v = __uint_as_float(warp_max_bits((threadIdx.x & 31) < (blockDim.x >> 5) ? warp_max[threadIdx.x & 31] : 0.0f));
  __syncthreads();  // warp_max is reused by the next call
  return v;
}

// The chunks of the tensor: CTA b takes chunks b, b + gridDim.x, ...
__device__ __forceinline__ int64_t tensor_chunks(const TensorParams& p) { return p.num_rows * p.chunks_per_row; }

template <typename In, int kVec>
__global__ void __launch_bounds__(kTensorMaxThreads) per_tensor_amax_kernel(const TensorParams p) {
  grid_dependency_wait();
  // The quantize kernel may start now: it reads x before its own wait, which is safe once every
  // CTA here has passed the wait above (x's producer is then complete).
  allow_dependents_to_launch();
  float amax = 0.0f;
  for (int64_t c = blockIdx.x; c < tensor_chunks(p); c += gridDim.x) amax = max_nan(amax, TensorChunk<In, kVec>(p, c).abs_max());
  amax = cta_max(amax);
  if (threadIdx.x == 0) p.partials[blockIdx.x] = amax;
}

// x / scale for a scale whose reciprocal is not finite or which is not a positive finite number
// (a static scale: zero, subnormal, negative infinity...): IEEE division per element, then the
// conversion saturates as the clamp does.
template <int kVec, typename In>
__device__ __forceinline__ CodeVec<kVec> quantize_vec_dividing(const InVec<In, kVec>& v, float scale) {
  CodeVec<kVec> out;
  uint8_t codes[kVec];
#pragma unroll
  for (int e = 0; e < kVec; ++e) {
    codes[e] = __nv_cvt_float_to_fp8(__fdiv_rn(v.get(e), scale), __NV_SATFINITE, __NV_E4M3);
  }
  memcpy(&out, codes, sizeof(out));
  return out;
}

// Writes the scale (CTA 0) and quantizes this CTA's chunks blockIdx.x, + gridDim.x, ..., the
// first of them already held in `chunk`.
template <typename In, int kVec>
__device__ __forceinline__ void quantize_chunks(const TensorParams& p, TensorChunk<In, kVec>& chunk, float scale) {
  using Chunk = TensorChunk<In, kVec>;
  if (blockIdx.x == 0 && threadIdx.x == 0) *p.scale = scale;
  // The reciprocal path (kClamped) needs a normal positive scale whose reciprocal is a normal
  // float (every dynamic scale is one); NaN and +inf take kNonFinite (x / scale is then NaN or
  // +-0), and any other static scale (<= 0, -inf, subnormal, near FLT_MAX) IEEE division. (A
  // subnormal scale below 2^-128 has an infinite reciprocal: 0 * inf gave NaN codes for zeros.)
  const RowScale rs = RowScale::of_scale(scale);
  const bool non_finite = isnan(scale) || scale == __int_as_float(0x7f800000);
  const bool reciprocal = scale >= 1.17549435e-38f && isfinite(scale) && rs.recip >= 1.17549435e-38f;
  const bool divide = !non_finite && !reciprocal;
  auto quantize_all = [&](auto quantize) {
    for (int64_t c = blockIdx.x;;) {
      chunk.store(p, quantize);
      c += gridDim.x;
      if (c >= tensor_chunks(p)) break;
      chunk = Chunk(p, c);
    }
  };
  using V = typename Chunk::V;
  if (divide) {
    quantize_all([&](const V& v) { return quantize_vec_dividing<kVec>(v, scale); });
  } else if (non_finite) {
    quantize_all([&](const V& v) { return quantize_vec<RowKind::kNonFinite>(v, rs); });
  } else {
    // kClamped: a static scale need not bound |x| by 448 scale (x / scale may overflow to inf,
    // which saturates); for a dynamic one it does, and the overflow test is then never taken.
    quantize_all([&](const V& v) { return quantize_vec<RowKind::kClamped>(v, rs); });
  }
}

template <typename In, int kVec>
__global__ void __launch_bounds__(kTensorMaxThreads) per_tensor_quant_kernel(const TensorParams p) {
  using Chunk = TensorChunk<In, kVec>;
  // Dynamic: x is read before the wait (the amax kernel let this grid launch only after its own
  // wait for x's producer); the wait is for the partial maxima. Static: x may be the previous
  // kernel's output, so the wait comes first; the first chunk's loads are then in flight while
  // the scale is read.
  // Where the planner says so (ops/per_tensor.py: quant_pdl_launch), the next kernel may launch
  // at entry instead of once the scale is known: it still waits for this grid to complete.
  allow_dependents_to_launch_if(p.trigger_at_entry);
  const typename Chunk::Span first = Chunk::span(p, blockIdx.x);  // the grid is never larger than the chunks
  if (!p.dynamic) {
    // Static: the first wave's chunks asked of L2 while the kernel before may still run (only
    // those CTAs can start before it completes). Predicted from per-token's numbers, NOT
    // MEASURED here: the ~1.4 us fixed cost of static 4096x8192 (95.9% of copy bandwidth, where
    // per-token's kernel, prefetching, read 100.8% at the same shape).
    if (cta_in_first_wave()) Chunk::prefetch(p, first);
    grid_dependency_wait();
  }
  Chunk chunk(p, first);
  float scale;
  if (p.dynamic) {
    grid_dependency_wait();
    float amax = 0.0f;
    for (int64_t i = threadIdx.x; i < p.num_partials; i += blockDim.x) amax = max_nan(amax, p.partials[i]);
    amax = cta_max(amax);
    const float ub = p.scale_ub_ptr != nullptr ? *p.scale_ub_ptr : p.scale_ub_value;
    scale = RowScale(amax, ub).scale;
  } else {
    scale = *p.static_scale;
  }
  allow_dependents_to_launch_if(!p.trigger_at_entry);
  quantize_chunks(p, chunk, scale);
}

// Dynamic in one kernel (sm_90+): one cluster of gridDim.x CTAs, CTA b taking chunks b, b +
// gridDim.x, ... Each CTA's max goes to its shared memory; after a cluster barrier every CTA reads
// all of them through distributed shared memory, so every CTA computes the same scale; a second
// barrier keeps each CTA's shared memory alive until all have read it. The first chunk stays in
// registers from the max to the quantize; others are read again (from L1 / L2).
template <typename In, int kVec>
__global__ void __launch_bounds__(kTensorMaxThreads) per_tensor_cluster_kernel(const TensorParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  using Chunk = TensorChunk<In, kVec>;
  namespace cg = cooperative_groups;
  __shared__ float cta_amax;
  grid_dependency_wait();  // x may be the previous kernel's output
  Chunk chunk(p, blockIdx.x);  // the cluster is never larger than the number of chunks
  float amax = chunk.abs_max();
  for (int64_t c = blockIdx.x + gridDim.x; c < tensor_chunks(p); c += gridDim.x) amax = max_nan(amax, Chunk(p, c).abs_max());
  amax = cta_max(amax);
  if (threadIdx.x == 0) cta_amax = amax;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  amax = cta_max(threadIdx.x < gridDim.x ? *cluster.map_shared_rank(&cta_amax, threadIdx.x) : 0.0f);
  cluster.sync();
  const float ub = p.scale_ub_ptr != nullptr ? *p.scale_ub_ptr : p.scale_ub_value;
  const float scale = RowScale(amax, ub).scale;
  allow_dependents_to_launch();
  quantize_chunks(p, chunk, scale);
#endif
}

using TensorLaunchFn = cudaError_t (*)(const TensorParams&, const LaunchConfig&, cudaStream_t);

template <typename In, int kVec>
constexpr std::array<TensorLaunchFn, 3> tensor_kernels() {
  return {&launch<per_tensor_amax_kernel<In, kVec>, TensorParams>, &launch<per_tensor_quant_kernel<In, kVec>, TensorParams>,
          &launch<per_tensor_cluster_kernel<In, kVec>, TensorParams>};
}

template <typename In, int... kW>
constexpr auto tensor_table(std::integer_sequence<int, kW...>) {
  return std::array<std::array<TensorLaunchFn, 3>, sizeof...(kW)>{tensor_kernels<In, vec_of_index(kMaxVec<In>, kW)>()...};
}

template <typename In>
cudaError_t launch_per_tensor_quant(const TensorArgs& a, const TensorConfig& c, cudaStream_t stream) {
  static constexpr auto kTable = tensor_table<In>(std::make_integer_sequence<int, kNumVecWidths<In>>{});
  const int w = width_index(kMaxVec<In>, c.vec);
  if (w >= kNumVecWidths<In>) return cudaErrorInvalidValue;
  const TensorParams params{
      a.x, static_cast<uint8_t*>(a.q), static_cast<float*>(a.scale), static_cast<const float*>(a.static_scale),
      static_cast<const float*>(a.scale_ub_ptr),
      a.scale_ub_value, static_cast<float*>(a.partials), a.num_rows, a.hidden, a.x_row_stride, c.chunks_per_row,
      c.amax_grid, c.dynamic, c.quant_trigger_at_entry,
  };
  cudaError_t err = set_device(c.device);
  if (err == cudaSuccess && c.cluster > 0) {
    return kTable[w][2](params, LaunchConfig{c.cluster, c.block_threads, 0, c.device, c.pdl, c.cluster}, stream);
  }
  if (err == cudaSuccess && c.dynamic) {
    err = kTable[w][0](params, LaunchConfig{c.amax_grid, c.block_threads, 0, c.device, c.pdl}, stream);
  }
  return err != cudaSuccess ? err : kTable[w][1](params, LaunchConfig{c.quant_grid, c.block_threads, c.quant_smem_bytes, c.device, c.pdl}, stream);
}

}  // namespace fp8quant
