// The quantizing half of a fused producer kernel (RMSNorm + quant, SiLU-and-mul + quant): one CTA
// per row, thread t holding the row's vectors t, t + T, ..., t + (kN - 1) T (T = blockDim.x, a
// multiple of 32) after the producer has computed them, rounded to the input dtype as the unfused
// path rounds them. Per token (one scale per row, the per-token contract) or per group (the
// per-token-group contract). Vectors past the row's end are zero and are not stored.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <utility>

#include "fp8.cuh"
#include "group_scales.cuh"
#include "launch.cuh"
#include "reduce.cuh"
#include "vec.cuh"

namespace fp8quant {

constexpr int kRowMaxThreads = 512;
constexpr int kRowMaxWarps = kRowMaxThreads / 32;

// Where a row's scales go and how they are computed (filled from the op's args per launch).
struct RowQuantOut {
  uint8_t* q;                  // the codes, rows of `q_row_elems`
  float* scale;
  const float* scale_ub_ptr;   // per token: a device bound, or null for scale_ub_value
  float scale_ub_value;        // per token: +inf when unbounded
  float group_eps;             // per group: the smallest amax
  int64_t q_row_elems;
  int64_t scale_ld;            // per group, column-major and packed scales: between two columns
  int32_t group_size;          // 0: per token
  int32_t layout;              // per group: ScaleLayout (group_scales.cuh)
  int32_t ue8m0;               // per group
  int32_t trigger_at_entry;    // under PDL: the next kernel may launch at entry (pdl.cuh)
  int32_t ctas_per_row_shift;  // log2 of the CTAs sharing a row (RowPart); 0 but where a plan splits rows
};

// One plan's launch of a fused op (each op's config struct; ops/row_quant.py fills it).
struct RowQuantConfig {
  int32_t vec;
  int32_t vecs_per_thread;
  int32_t group_size;          // 0: per token
  int32_t layout;              // per group: ScaleLayout
  int32_t ue8m0;
  int32_t block_threads;
  int64_t grid;
  int32_t staged;              // nonzero: the staged kernel (the row in shared memory); 2: by a bulk copy (RMSNorm)
  int32_t trigger_at_entry;
  int32_t smem_bytes;          // the staged kernel's row (bytes), or what a register kernel's CTA reserves
  int32_t ctas_per_row_shift;  // RowQuantOut's; the grid is rows << it
  int32_t device;
  int32_t pdl;
};

// The sum over the CTA, the same bits in every thread: a butterfly over each warp (commutative
// steps, so every lane holds the same sum), then the same over the warps' sums. Fixed order: the
// same input gives the same sum on every run.
__device__ __forceinline__ float block_sum(float v, float* warp_sums) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int warps = blockDim.x >> 5;
  if (warps == 1) return v;
  const int lane = threadIdx.x & 31;
  if (lane == 0) warp_sums[threadIdx.x >> 5] = v;
  __syncthreads();
  v = lane < warps ? warp_sums[lane] : 0.0f;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// The max over the CTA of non-negative values (or NaN with the sign bit clear): warp-wide integer
// maxes (reduce.cuh: warp_max_bits), through shared memory across warps.
__device__ __forceinline__ float block_max(float v, float* warp_maxes) {
  v = __uint_as_float(warp_max_bits(v));
  const int warps = blockDim.x >> 5;
  if (warps == 1) return v;
  const int lane = threadIdx.x & 31;
  if (lane == 0) warp_maxes[threadIdx.x >> 5] = v;
  __syncthreads();
  return __uint_as_float(warp_max_bits(lane < warps ? warp_maxes[lane] : 0.0f));
}

// Which vectors of the row a register kernel's thread holds: slot j is vector first + j * stride,
// held where that is < the row's vectors. Per token t + j T (T = blockDim.x: every load of a warp
// contiguous); per group the group's vectors shared by stride = group_size / (kVec kN) consecutive
// threads, thread lane of them holding vectors lane, lane + stride, ... of its group, so that a
// group's max is the thread's own max over its kN vectors and log2(stride) shuffles, and its scale
// is computed once per kN vectors (the group kernel's layout, per_token_group.cuh). With slot j
// one vector of every group instead (t + j T), each vector took the 4 shuffles and the scale of a
// group of its own (g128: 47.9-58.1% of copy bandwidth at 16384 rows, docs/design.md). Threads
// past the row's last group hold no vector (first >= the row's vectors). The planner gives a
// per-group kernel kN vectors that divide the group (ops/row_quant.py).
struct RowSlots {
  int first;
  int stride;
  int group_vecs_shift;  // per group: log2(group_size / kVec)
};

__host__ __device__ constexpr int log2_of(int n) { return n <= 1 ? 0 : 1 + log2_of(n / 2); }

// t: the thread's index in the row (threadIdx.x; the staged kernels' chunk index, staged rows below).
template <int kVec, int kN>
__device__ __forceinline__ RowSlots row_slots(const RowQuantOut& out, int t) {
  if (out.group_size == 0) return RowSlots{t, static_cast<int>(blockDim.x), 0};
  // Powers of two (the group size, kVec, and kN per group): shifts, not integer divisions.
  constexpr int kVecShift = log2_of(kVec);
  constexpr int kNShift = log2_of(kN);
  const int group_vecs_shift = __ffs(out.group_size) - 1 - kVecShift;
  const int stride_shift = group_vecs_shift - kNShift;
  return RowSlots{((t >> stride_shift) << group_vecs_shift) + (t & ((1 << stride_shift) - 1)), 1 << stride_shift,
                  group_vecs_shift};
}

// A register kernel's row and this CTA's share of it. A few rows may each be shared by 2^shift
// consecutive CTAs (the plan's ctas_per_row; NOT MEASURED, forced only, as per-token's shared rows
// were before their rule: 1x16384 1.91 -> 1.42 us there): every CTA reads the whole row and takes
// its sum of squares (and, per token, the max of all its y), and its warps w with w * 2^shift /
// warps == part (a contiguous range) write the residual, the codes and the group scales of their
// vectors; part 0 writes a per-token scale.
struct RowPart {
  int64_t row;
  bool stores;  // this thread's warp stores its vectors
  bool first;   // part 0
};

__device__ __forceinline__ RowPart row_part(const RowQuantOut& out) {
  const int shift = out.ctas_per_row_shift;
  const int part = static_cast<int>(blockIdx.x & ((1u << shift) - 1));
  const int warps = static_cast<int>(blockDim.x >> 5);
  const int scaled_warp = static_cast<int>(threadIdx.x >> 5) << shift;  // warp w's part: w * 2^shift / warps
  return RowPart{static_cast<int64_t>(blockIdx.x >> shift), scaled_warp >= part * warps && scaled_warp < (part + 1) * warps,
                 part == 0};
}

// A whole row for one CTA (the staged kernels, SiLU's register kernel).
__device__ __forceinline__ RowPart whole_row(int64_t row) { return RowPart{row, true, true}; }

template <typename In, int kVec, int kN>
__device__ __forceinline__ void quantize_row(const InVec<In, kVec> (&y)[kN], const RowSlots& slots, const RowPart& part,
                                             int vecs, const RowQuantOut& out, float* warp_maxes) {
  const int64_t row = part.row;
  auto* q_vecs = reinterpret_cast<CodeVec<kVec>*>(out.q + row * out.q_row_elems);
  if (out.group_size == 0) {
    const float amax = block_max(abs_max<kN>(y), warp_maxes);
    const RowScale rs(amax, out.scale_ub_ptr != nullptr ? *out.scale_ub_ptr : out.scale_ub_value);
    if (threadIdx.x == 0 && part.first) out.scale[row] = rs.scale;
    if (!part.stores) return;
    for_row_kind(rs, [&](auto kind) {
#pragma unroll
      for (int j = 0; j < kN; ++j) {
        const int i = slots.first + j * slots.stride;
        if (i < vecs) q_vecs[i] = quantize_vec<decltype(kind)::value>(y[j], rs);
      }
    });
    return;
  }
  // The group's max: this thread's, then over the group's `stride` consecutive lanes (a power of
  // two <= 32 dividing blockDim.x, every lane of the warp taking part; `stores` is the warp's).
  if (!part.stores) return;
  float amax = abs_max<kN>(y);
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(0xffffffffu, amax, offset);
    amax = offset < slots.stride ? max_nan(amax, other) : amax;
  }
  float scale = div_by_fp8_max(max_nan(amax, out.group_eps));
  if (out.ue8m0) scale = ue8m0_round_up(scale);
  if (slots.first >= vecs) return;  // past the row's last group
  const int64_t group = slots.first >> slots.group_vecs_shift;
  if ((threadIdx.x & (slots.stride - 1)) == 0) {
    store_group_scale(out.scale, out.layout, out.scale_ld, row, group, out.q_row_elems / out.group_size, scale);
  }
  const RowScale rs = RowScale::of_scale(scale);
  for_row_kind(rs, [&](auto kind) {
#pragma unroll
    for (int j = 0; j < kN; ++j) q_vecs[slots.first + j * slots.stride] = quantize_vec<decltype(kind)::value>(y[j], rs);
  });
}

// ---------------------------------------------------------------------------------------------
// Staged rows: a CTA per row, each thread looping over its vectors t, t + T, ... (T = blockDim.x)
// with kStagedUnroll of them in flight, the producer's output (rounded to the dtype) kept in
// dynamic shared memory between the passes. Registers then hold a few vectors whatever the row's
// length, and the CTAs an SM holds are bounded by the rows' bytes in shared memory instead of by
// registers: the register kernel's 16-byte x 4-vector SiLU instance took 88 registers, one
// 352-thread CTA per SM (16384x22016: DRAM 37.5% busy under ncu). Per group the quantizing pass
// takes the register kernel's layout instead (quantize_staged_groups).
constexpr int kStagedUnroll = 4;

template <typename In, int kVec>
__device__ __forceinline__ InVec<In, kVec>* staged_row() {
  extern __shared__ __align__(16) uint8_t row_smem[];
  return reinterpret_cast<InVec<In, kVec>*>(row_smem);
}

// Per token, after the producer pass staged the row's y (each thread its own vectors, so no
// barrier but the reduction's) and took its max: the row's max over the CTA, its scale, then
// every staged vector's codes.
template <typename In, int kVec>
__device__ __forceinline__ void quantize_staged_row(const InVec<In, kVec>* staged, float amax, int64_t row,
                                                    int64_t vecs, const RowQuantOut& out, float* warp_maxes) {
  amax = block_max(amax, warp_maxes);
  const RowScale rs(amax, out.scale_ub_ptr != nullptr ? *out.scale_ub_ptr : out.scale_ub_value);
  if (threadIdx.x == 0) out.scale[row] = rs.scale;
  auto* q_vecs = reinterpret_cast<CodeVec<kVec>*>(out.q + row * out.q_row_elems);
  for_row_kind(rs, [&](auto kind) {
    for (int64_t i = threadIdx.x; i < vecs; i += blockDim.x) {
      q_vecs[i] = quantize_vec<decltype(kind)::value>(staged[i], rs);
    }
  });
}

template <typename In, int kVec, int kN, typename Produce>
__device__ __forceinline__ void quantize_group_chunks(int64_t row, int vecs, const RowQuantOut& out,
                                                      float* warp_maxes, const Produce& produce) {
  const int chunks = vecs / kN;
  // The same trip count in every thread: each warp's lanes all take part in the group shuffles.
  for (int base = 0; base < chunks; base += blockDim.x) {
    const int chunk = base + static_cast<int>(threadIdx.x);
    const RowSlots slots = row_slots<kVec, kN>(out, chunk);
    InVec<In, kVec> y[kN];
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      if (chunk < chunks) y[j] = produce(slots.first + j * slots.stride); else y[j].set_zero();
    }
    quantize_row<In, kVec, kN>(y, slots, whole_row(row), vecs, out, warp_maxes);  // nothing stored past the last group
  }
}

// Per group: the row's y = produce(i) for vector i, quantized in chunks of kStagedUnroll vectors of
// one group a thread (row_slots' layout with the chunk's index for the thread's: a group's max is
// a thread's own and log2(stride) shuffles, one scale per chunk), or of 2 vectors where a group
// has 2 (group 16 of 16-bit values). With each vector quantized as the producer pass made it (a
// group's shuffles and scale per vector), the staged g128 RMSNorm ran at 67.1 / 67.2 / 69.8% of
// copy bandwidth at 16384 rows of 4096 / 7168 / 8192, in this layout 78.8 / 81.2 / 83.4 (H100).
// produce may read what other threads staged: the caller puts a barrier between.
template <typename In, int kVec, typename Produce>
__device__ __forceinline__ void quantize_staged_groups(int64_t row, int vecs, const RowQuantOut& out,
                                                       float* warp_maxes, const Produce& produce) {
  const int group_vecs = out.group_size / kVec;
  if (group_vecs >= kStagedUnroll) {
    quantize_group_chunks<In, kVec, kStagedUnroll>(row, vecs, out, warp_maxes, produce);
  } else {
    quantize_group_chunks<In, kVec, 2>(row, vecs, out, warp_maxes, produce);
  }
}

// A fused op's launch: one kernel instance per (vector width, vectors per thread), picked from a
// compile-time table. Op::launcher<In, kVec, kN>() gives an instance's launcher. Six vectors
// rather than eight at most: the 16-byte x 8-vector instances needed 128 registers and spilled
// (nvcc 13.0, sm_90); rows longer than 512 x 6 vectors run on the Triton kernel.
constexpr int kRowVecsPerThread[] = {1, 2, 4, 6};
constexpr int kNumRowVecsPerThread = 4;

template <typename Op, typename In, int kVec, int... kI>
constexpr auto row_table_row(std::integer_sequence<int, kI...>) {
  return std::array<typename Op::LaunchFn, sizeof...(kI)>{Op::template launcher<In, kVec, kRowVecsPerThread[kI]>()...};
}
template <typename Op, typename In, int... kW>
constexpr auto row_table(std::integer_sequence<int, kW...>) {
  return std::array<std::array<typename Op::LaunchFn, kNumRowVecsPerThread>, sizeof...(kW)>{
      row_table_row<Op, In, vec_of_index(kMaxVec<In>, kW)>(std::make_integer_sequence<int, kNumRowVecsPerThread>{})...};
}
// The quantizing half's outputs of one call, from the fields every fused op's args struct names
// alike (q, scale, scale_ub_ptr, scale_ub_value, group_eps, scale_ld); rows of row_len codes.
template <typename Args>
RowQuantOut row_quant_out(const Args& a, int64_t row_len, const RowQuantConfig& c) {
  return RowQuantOut{
      static_cast<uint8_t*>(a.q), static_cast<float*>(a.scale), static_cast<const float*>(a.scale_ub_ptr),
      a.scale_ub_value, a.group_eps, row_len, a.scale_ld, c.group_size, c.layout, c.ue8m0, c.trigger_at_entry,
      c.ctas_per_row_shift,
  };
}

template <typename Op, typename In, int... kW>
constexpr auto staged_table(std::integer_sequence<int, kW...>) {
  return std::array<typename Op::LaunchFn, sizeof...(kW)>{Op::template staged_launcher<In, vec_of_index(kMaxVec<In>, kW)>()...};
}

// Op::launcher<In, kVec, kN>() (the row in registers) or, where the config stages the row
// (staged), Op::staged_launcher<In, kVec>().
template <typename Op, typename In>
cudaError_t launch_row_kernel(const typename Op::Params& params, const RowQuantConfig& c, cudaStream_t stream) {
  static constexpr auto kTable = row_table<Op, In>(std::make_integer_sequence<int, kNumVecWidths<In>>{});
  static constexpr auto kStagedTable = staged_table<Op, In>(std::make_integer_sequence<int, kNumVecWidths<In>>{});
  const int w = width_index(kMaxVec<In>, c.vec);
  int n = 0;
  while (n < kNumRowVecsPerThread && kRowVecsPerThread[n] != c.vecs_per_thread) ++n;
  const bool staged = c.staged != 0;
  // Per group, the register kernel's vectors per thread divide the group (row_slots).
  const int per_thread = n < kNumRowVecsPerThread ? kRowVecsPerThread[n] : 0;
  const bool group_slots_fit = staged || c.group_size == 0 ||
                               ((per_thread & (per_thread - 1)) == 0 && c.group_size % (c.vec * per_thread) == 0);
  if (w >= kNumVecWidths<In> || (!staged && n == kNumRowVecsPerThread) || !group_slots_fit || c.block_threads % 32 != 0 ||
      c.block_threads > kRowMaxThreads) {
    return cudaErrorInvalidValue;
  }
  const cudaError_t err = set_device(c.device);
  if (err != cudaSuccess) return err;
  const LaunchConfig launch_config{c.grid, c.block_threads, c.smem_bytes, c.device, c.pdl};
  return staged ? kStagedTable[w](params, launch_config, stream) : kTable[w][n](params, launch_config, stream);
}

}  // namespace fp8quant
