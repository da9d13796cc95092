// Per-token FP8 (e4m3) quantization kernels.
//
// Plain CUDA C++: no torch headers, so every instantiation compiles with nvcc on a machine
// without a GPU (tests/test_kernel_build.py) and the same source serves any binding.
//
// Numerics (fp8quant/reference.py is the contract, matched bit for bit):
//   amax  = max |x| over the row in fp32, NaN-propagating
//   amax  = min(amax, scale_ub)                       (scale_ub = +inf when absent)
//   scale = max(amax / 448, 1 / (448 * 512))          IEEE division, NaN-propagating max
//   q     = e4m3(clamp(x / scale, -448, 448))         x / scale as IEEE division rounds it (computed
//                                                     through the row's reciprocal, see scaled()),
//                                                     round to nearest even
// The clamp is the `satfinite` of the conversion: finite overflow and +-inf saturate to +-448,
// NaN stays NaN (code 0x7f).
//
// Three ways to hold the row between the amax pass and the quantize pass (Staging):
//   kRegisters: the row lives in registers, kVecsPerThread vectors per thread, read once.
//   kShared:    one warp per row, the row staged in dynamic shared memory (the seed's design).
//   kGlobal:    one warp per row, the row read twice from global memory (any length).
// The host planner (fp8quant/ops/per_token_plan.py) picks the staging, vector width and shape; this file
// only checks that an instance exists for the request.
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include "common/fp8.cuh"
#include "common/launch.cuh"
#include "common/pdl.cuh"
#include "common/reduce.cuh"
#include "common/vec.cuh"

namespace fp8quant {

constexpr int kMaxVecsPerThread = 8;
constexpr int kMaxThreadsPerRow = 512;  // kRegisters; at most 128 registers per thread, no spills

enum class Staging : int32_t { kRegisters = 0, kShared = 1, kGlobal = 2 };

// The kernels' parameter block, built from PerTokenArgs on the host.
struct PerTokenParams {
  const void* x;               // [num_rows, hidden], rows x_row_stride elements apart
  uint8_t* q;                  // [num_rows, hidden], contiguous e4m3 codes
  float* scale;                // [num_rows]
  const float* scale_ub_ptr;   // device pointer to one float, or nullptr
  float scale_ub_value;        // used when scale_ub_ptr is nullptr; +inf means no bound
  int32_t threads_per_row;     // kRegisters: a power of two; the others: 32
  int64_t num_rows;
  int64_t hidden;
  int64_t x_row_stride;        // elements
  int32_t smem_row_stride;     // bytes between the rows of two warps in shared memory (kShared)
  int16_t ctas_per_row_shift;  // kRegisters: log2 of the CTAs that share a row (see below); else 0
  int16_t trigger_at_entry;    // kRegisters under PDL: nonzero lets the next kernel launch at entry
};
// 72 bytes: with ctas_per_row_shift placed after threads_per_row (80 bytes, every later field 8
// bytes further), the same kernels, their SASS otherwise unchanged, took 0.06-0.3 us more per call
// at 1-20 MB (docs/design.md).
static_assert(sizeof(PerTokenParams) == 72, "see above");

// One call's values, as the Python side passes them (fp8quant/ops/per_token.py declares the same
// fields in this order; the generated entry point fills this with designated initializers, so the
// compiler checks every name and the order). Host-side only.
struct PerTokenArgs {
  const void* x;
  void* q;
  void* scale;
  const void* scale_ub_ptr;
  float scale_ub_value;
  int64_t num_rows;
  int64_t hidden;
  int64_t x_row_stride;
};

// One plan's launch: the same for every call of a shape, so the Python side builds it once per
// plan (ctypes, from its declaration in fp8quant/ops/per_token.py; tests/test_kernel_build.py
// compares every field's offset) and passes a pointer.
struct PerTokenConfig {
  int32_t staging;           // Staging
  int32_t vec;               // elements per vector access
  int32_t vecs_per_thread;   // kRegisters only
  int32_t threads_per_row;
  int32_t ctas_per_row_shift;
  int32_t trigger_at_entry;
  int32_t smem_row_stride;
  int32_t block_threads;
  int64_t grid;
  int32_t smem_bytes;
  int32_t device;
  int32_t pdl;
};

__device__ __forceinline__ float load_scale_ub(const PerTokenParams& p) {
  return p.scale_ub_ptr != nullptr ? *p.scale_ub_ptr : p.scale_ub_value;
}

// ---------------------------------------------------------------------------------------------
// kRegisters: `threads_per_row` threads share a row (a power of two: below 32 several rows share
// a warp, above 32 a row spans several warps); blockDim.x / threads_per_row rows per CTA; each
// thread keeps kVecsPerThread vectors in registers, so the row is read from global memory once.
// A few rows can also be shared by 2^ctas_per_row_shift consecutive CTAs (one row each; the
// kSplitRow instances): every one of them reads the whole row and takes its max (no
// communication between CTAs), then quantizes and stores only its part, a contiguous range of
// its threads' vectors j; the first writes the scale. Quantizing was ~8.5 of the ~10
// instructions per element then (~5 of ~6 now), so a row of 16384 alone on one SM was
// bound by that SM's instruction issue (~0.55 us); shared by 4 CTAs, 1x16384 took 1.42 us
// instead of 1.91 (docs/design.md).
// (A row split over a thread-block cluster, its maxima combined in distributed shared memory,
// measured 0.1-0.5 us slower per call at every decode shape but two: docs/design.md.)
// Each CTA takes one group of rows: the planner's grid covers every row. (A grid-stride
// loop around the body, a persistent grid, measured no faster, and without the loop, together
// with unconditional shuffles, a one-row call took 0.06-0.07 us less: docs/design.md.)
template <typename In, int kVec, int kVecsPerThread, bool kSplitRow>
__global__ void __launch_bounds__(kMaxThreadsPerRow) per_token_quant_registers_kernel(const PerTokenParams p) {
  __shared__ float warp_amax[kMaxThreadsPerRow / 32];
  const int tpr = p.threads_per_row;
  // tpr is a power of two: shifts, not the ~20-instruction integer divisions by a runtime value
  // that stood between the kernel's start and its first load.
  const int tpr_shift = __ffs(tpr) - 1;
  const int lane = threadIdx.x & (tpr - 1);
  const int local_row = threadIdx.x >> tpr_shift;
  // A compile-time 0 where rows are not shared, so those instances keep the unshared code (the same SASS).
  // One instance with a branch between the two loops instead made ptxas issue 4 of the 8 loads
  // of the bf16 8-vector instance late (docs/design.md).
  const int split_shift = kSplitRow ? p.ctas_per_row_shift : 0;
  const int part = blockIdx.x & ((1 << split_shift) - 1);  // which part of the row this CTA stores
  const int64_t row = static_cast<int64_t>(blockIdx.x >> split_shift) * (blockDim.x >> tpr_shift) + local_row;
  const bool row_valid = row < p.num_rows;
  const int num_vecs = static_cast<int>(p.hidden / kVec);  // the planner keeps it <= 4096
  // 64-bit row offset once; within a row, 32-bit vector indices (at most 512 x 8 vectors).
  // Every load is issued, unpredicated: a padding slot (i >= num_vecs) loads the row's first
  // vector again, which cannot change the row's max, and a row past the end loads the last row,
  // whose max it discards. With predicated loads into zeroed registers, ptxas issued some of
  // a thread's loads only after the first ones had arrived (a second memory round trip): in 6 of
  // the 24 sm_90 16-byte instances, and with any change around them in others, the bf16
  // 4-vector one included (docs/design.md). Now none of the 1-4-vector instances does.
  const int64_t load_row = row_valid ? row : p.num_rows - 1;
  const auto* x_vecs =
      reinterpret_cast<const InVec<In, kVec>*>(static_cast<const In*>(p.x) + load_row * p.x_row_stride);

  // The row's lines into L2 while the kernel before may still run (see prefetch_line_to_l2), in
  // the CTAs of the first wave only (SMs x 2048 threads' worth): only they can start before that
  // kernel completes. A later CTA finds its wait already met, and its prefetch only queues
  // requests ahead of its own loads: float32 4096x16384 (512 x 8 vectors, 2 CTAs per SM) took
  // 116.7 us per call prefetching in every CTA, 111.7 without any prefetch, 111.9 prefetching in
  // the first 4 x SMs CTAs (docs/design.md).
  // Where the planner says so (planner.pdl_trigger_at_entry: two calls' CTAs fill the SMs, so no
  // third call can become resident before this one's CTAs exit), the next kernel may launch
  // now: the call after next then has its CTAs placed, and its rows asked of L2, as this call's
  // CTAs exit, instead of once the next call's wait returns. 128x4096 1.69 -> 1.48 us, 256x2048
  // 1.66 -> 1.45, 1024x4096 5.07 -> 4.87 (docs/design.md).
  allow_dependents_to_launch_if(p.trigger_at_entry);
  if (cta_in_first_wave()) {
#pragma unroll
    for (int j = 0; j < kVecsPerThread; ++j) {
      const int i = lane + j * tpr;
      prefetch_line_to_l2(x_vecs + (i < num_vecs ? i : 0));
    }
  }
  grid_dependency_wait();
  // Otherwise here, not after the stores (1x16384 1.83 vs 2.00 us, 64x16384 3.17 vs 3.53) nor
  // after the row's loads (256x16384 5.58-5.65 vs 6.12-6.16, 128x8192 2.14-2.16 vs 2.52).
  allow_dependents_to_launch_if(!p.trigger_at_entry);
  InVec<In, kVec> v[kVecsPerThread];
#pragma unroll
  for (int j = 0; j < kVecsPerThread; ++j) {
    const int i = lane + j * tpr;
    v[j] = x_vecs[i < num_vecs ? i : 0];
  }
  // Read while the row's loads are in flight, before the barrier, which no load moves across: a
  // scale_ub given as a device tensor then adds no memory round trip after the reduction.
  const float scale_ub = load_scale_ub(p);
  float amax = abs_max<kVecsPerThread>(v);
  // Every thread of the CTA takes part (shuffles, barrier); rows past the end stop after it.
  amax = row_max(amax, tpr, local_row, warp_amax);
  if (!row_valid) return;

  const RowScale rs(amax, scale_ub);  // per row, in registers
  if (lane == 0 && part == 0) p.scale[row] = rs.scale;
  auto* q_vecs = reinterpret_cast<CodeVec<kVec>*>(p.q + row * p.hidden);
  // This CTA's vectors: j in [j_begin, j_end), all of them unless the row is shared.
  const int j_begin = (part * kVecsPerThread) >> split_shift;
  const int j_end = ((part + 1) * kVecsPerThread) >> split_shift;
  for_row_kind(rs, [&](auto kind) {
#pragma unroll
    for (int j = 0; j < kVecsPerThread; ++j) {
      const int i = lane + j * tpr;
      if ((!kSplitRow || (j >= j_begin && j < j_end)) && i < num_vecs) {
        q_vecs[i] = quantize_vec<decltype(kind)::value>(v[j], rs);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// kShared / kGlobal: one warp per row, blockDim.x / 32 rows per CTA, any row length. kShared
// keeps the row in dynamic shared memory between the two passes, kGlobal reads it again.
template <typename In, int kVec, Staging kStaging>
__global__ void __launch_bounds__(256) per_token_quant_warp_kernel(const PerTokenParams p) {
  extern __shared__ __align__(16) uint8_t smem[];
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  const int rows_per_cta = blockDim.x / 32;
  const int64_t num_vecs = p.hidden / kVec;
  const int64_t first_row = static_cast<int64_t>(blockIdx.x) * rows_per_cta + warp;
  // This warp's first row, in the CTAs of the first wave (see the register kernel).
  if (lane == 0 && first_row < p.num_rows && cta_in_first_wave()) {
    const In* x_row = static_cast<const In*>(p.x) + first_row * p.x_row_stride;
    prefetch_to_l2(x_row, x_row + p.hidden);
  }
  grid_dependency_wait();
  allow_dependents_to_launch();
  const float scale_ub = load_scale_ub(p);
  auto* row_smem = reinterpret_cast<InVec<In, kVec>*>(smem + warp * p.smem_row_stride);

  for (int64_t row = first_row; row < p.num_rows;
       row += static_cast<int64_t>(gridDim.x) * rows_per_cta) {
    const auto* x_row =
        reinterpret_cast<const InVec<In, kVec>*>(static_cast<const In*>(p.x) + row * p.x_row_stride);
    float amax = 0.0f;
    for (int64_t i = lane; i < num_vecs; i += 32) {
      const InVec<In, kVec> v = x_row[i];
      if constexpr (kStaging == Staging::kShared) row_smem[i] = v;
      amax = max_nan(amax, abs_max<1>(&v));
    }
    const RowScale rs(__uint_as_float(warp_max_bits(amax)), scale_ub);
    if (lane == 0) p.scale[row] = rs.scale;

    // Each lane reads back only the vectors it staged itself, so no barrier is needed between
    // the passes, nor before the next row overwrites them.
    auto* q_row = reinterpret_cast<CodeVec<kVec>*>(p.q + row * p.hidden);
    for_row_kind(rs, [&](auto kind) {
      constexpr RowKind kKind = decltype(kind)::value;
      for (int64_t i = lane; i < num_vecs; i += 32) {
        if constexpr (kStaging == Staging::kShared) {
          q_row[i] = quantize_vec<kKind>(row_smem[i], rs);
        } else {
          q_row[i] = quantize_vec<kKind>(x_row[i], rs);
        }
      }
    });
  }
}


// ---------------------------------------------------------------------------------------------
// The instance tables: every kernel instance goes through common/launch.cuh's launch().
using PerTokenLaunchFn = cudaError_t (*)(const PerTokenParams&, const LaunchConfig&, cudaStream_t);

template <typename In, int kVec, int kVecsPerThread, bool kSplitRow>
constexpr PerTokenLaunchFn registers_launcher() {
  return &launch<per_token_quant_registers_kernel<In, kVec, kVecsPerThread, kSplitRow>, PerTokenParams>;
}

template <typename In, int kVec, bool kSplitRow, int... kN>
constexpr std::array<PerTokenLaunchFn, kMaxVecsPerThread> registers_row(std::integer_sequence<int, kN...>) {
  return {registers_launcher<In, kVec, kN + 1, kSplitRow>()...};
}

template <typename In, int... kW>
constexpr auto registers_table(std::integer_sequence<int, kW...>) {
  return std::array<std::array<PerTokenLaunchFn, kMaxVecsPerThread>, sizeof...(kW)>{
      registers_row<In, vec_of_index(kMaxVec<In>, kW), false>(std::make_integer_sequence<int, kMaxVecsPerThread>{})...};
}

template <typename In, int kVec, Staging kStaging>
constexpr PerTokenLaunchFn warp_launcher() {
  return &launch<per_token_quant_warp_kernel<In, kVec, kStaging>, PerTokenParams>;
}

template <typename In, Staging kStaging, int... kW>
constexpr auto warp_table(std::integer_sequence<int, kW...>) {
  return std::array<PerTokenLaunchFn, sizeof...(kW)>{warp_launcher<In, vec_of_index(kMaxVec<In>, kW), kStaging>()...};
}

// Looks the instance up in the compile-time tables and launches it. Unknown shapes are refused
// with cudaErrorInvalidValue; the Python side validates before it gets here.
template <typename In>
cudaError_t launch_per_token_quant(const PerTokenArgs& a, const PerTokenConfig& c, cudaStream_t stream) {
  static constexpr auto widths = std::make_integer_sequence<int, kNumVecWidths<In>>{};
  static constexpr auto kRegisters = registers_table<In>(widths);
  // Rows shared by CTAs: 16-byte vectors only (the planner shares no other rows).
  static constexpr auto kRegistersSplitRow =
      registers_row<In, kMaxVec<In>, true>(std::make_integer_sequence<int, kMaxVecsPerThread>{});
  static constexpr auto kShared = warp_table<In, Staging::kShared>(widths);
  static constexpr auto kGlobal = warp_table<In, Staging::kGlobal>(widths);

  const int w = width_index(kMaxVec<In>, c.vec);
  if (w >= kNumVecWidths<In>) return cudaErrorInvalidValue;
  PerTokenLaunchFn fn = nullptr;
  switch (static_cast<Staging>(c.staging)) {
    case Staging::kRegisters:
      if (c.vecs_per_thread < 1 || c.vecs_per_thread > kMaxVecsPerThread) return cudaErrorInvalidValue;
      if (c.ctas_per_row_shift == 0) {
        fn = kRegisters[w][c.vecs_per_thread - 1];
      } else if (w == 0 && c.ctas_per_row_shift > 0) {
        fn = kRegistersSplitRow[c.vecs_per_thread - 1];
      } else {
        return cudaErrorInvalidValue;
      }
      break;
    case Staging::kShared: fn = kShared[w]; break;
    case Staging::kGlobal: fn = kGlobal[w]; break;
    default: return cudaErrorInvalidValue;
  }
  const PerTokenParams params{
      a.x,
      static_cast<uint8_t*>(a.q),
      static_cast<float*>(a.scale),
      static_cast<const float*>(a.scale_ub_ptr),
      a.scale_ub_value,
      c.threads_per_row,
      a.num_rows,
      a.hidden,
      a.x_row_stride,
      c.smem_row_stride,
      static_cast<int16_t>(c.ctas_per_row_shift),
      static_cast<int16_t>(c.trigger_at_entry),
  };
  const cudaError_t err = set_device(c.device);
  return err != cudaSuccess ? err : fn(params, LaunchConfig{c.grid, c.block_threads, c.smem_bytes, c.device, c.pdl}, stream);
}

}  // namespace fp8quant
