// Per-token-group FP8 (e4m3) quantization: one float32 scale per group of group_size (16-256)
// consecutive elements of a row, in the scale layout the block-FP8 GEMM reads.
//
// Numerics (fp8quant/reference.py, per_token_group_quant_fp8_reference, matched bit for bit):
//   amax  = max |x| over the group in fp32, NaN-propagating;  amax = max(amax, eps)
//   scale = amax / 448 (IEEE division; div_by_fp8_max), rounded up to a power of two from its bits
//           with ue8m0;  q = e4m3(clamp(x / scale, -448, 448)) as IEEE division rounds it.
//
// A CTA covers a tile of rows_per_cta rows x groups_per_cta groups; threads_per_group consecutive
// threads (a power of two, at most 32) share a group, each holding kVecsPerThread vectors of it
// in registers (read once), interleaved so that a warp's loads are contiguous. The group's max is
// taken with shuffles; its first thread writes the scale. The planner (ops/per_token_group.py)
// picks every shape; all of them are powers of two, so the kernel only shifts and masks.
#pragma once

#include <array>
#include <cstdint>
#include <utility>

#include "common/fp8.cuh"
#include "common/group_scales.cuh"
#include "common/launch.cuh"
#include "common/pdl.cuh"
#include "common/reduce.cuh"
#include "common/silu.cuh"
#include "common/vec.cuh"

namespace fp8quant {

constexpr int kGroupMaxVecsPerThread = 8;
constexpr int kGroupMaxThreads = 512;

// What the kernel quantizes: x itself, or a fused producer's output computed from x as it is
// loaded. kSiluMul (silu_and_mul_quant_fp8 per group): x's rows are [gate | up], each `hidden`
// elements (hidden is the codes' row length, I), y = silu(gate) * up as silu.cuh rounds it.
enum class GroupProducer : int32_t { kNone = 0, kSiluMul = 1 };

// One call's values (fp8quant/ops/per_token_group.py declares the same fields, in this order).
struct GroupArgs {
  const void* x;
  void* q;
  void* scale;
  int64_t num_rows;
  int64_t hidden;
  int64_t x_row_stride;  // elements
  int64_t scale_ld;      // column-major layouts: scales (or packed words) between two columns
  float eps;
};

// One plan's launch (built once per plan on the Python side; offsets tested).
struct GroupConfig {
  int32_t vec;
  int32_t vecs_per_thread;
  int32_t group_shift;              // log2 group_size
  int32_t threads_per_group_shift;
  int32_t groups_per_cta_shift;
  int32_t rows_per_cta_shift;
  int32_t scale_tile;               // column-major / packed scales leave through shared memory
  int32_t layout;                   // ScaleLayout
  int32_t ue8m0;
  int32_t trigger_at_entry;         // under PDL: nonzero lets the next kernel launch at entry
  int32_t block_threads;
  int32_t smem_bytes;               // dynamic shared memory: only reserved (ops/pdl_plan.py)
  int64_t grid;
  int32_t device;
  int32_t pdl;
};

struct GroupParams {
  const void* x;
  uint8_t* q;
  void* scale;
  int64_t num_rows;
  int64_t hidden;
  int64_t x_row_stride;
  int64_t scale_ld;
  float eps;
  int32_t group_shift;
  int32_t threads_per_group_shift;
  int32_t groups_per_cta_shift;
  int32_t rows_per_cta_shift;
  int32_t scale_tile;
  int32_t layout;
  int32_t ue8m0;
  int32_t trigger_at_entry;
};

template <typename In, int kVec, int kVecsPerThread, GroupProducer kProducer>
__global__ void __launch_bounds__(kGroupMaxThreads) per_token_group_quant_kernel(const GroupParams p) {
  const int tpg_shift = p.threads_per_group_shift;
  const int lane = threadIdx.x & ((1 << tpg_shift) - 1);
  const int local_group = (threadIdx.x >> tpg_shift) & ((1 << p.groups_per_cta_shift) - 1);
  const int local_row = threadIdx.x >> (tpg_shift + p.groups_per_cta_shift);
  const int64_t groups = p.hidden >> p.group_shift;
  const int64_t group_blocks = groups >> p.groups_per_cta_shift;
  const int64_t row = (static_cast<int64_t>(blockIdx.x) / group_blocks << p.rows_per_cta_shift) + local_row;
  const int64_t group = (static_cast<int64_t>(blockIdx.x) % group_blocks << p.groups_per_cta_shift) + local_group;
  const bool row_valid = row < p.num_rows;
  // Every load issued (a row past the end loads the last row and stores nothing), so that all
  // lanes take part in the shuffles.
  const int64_t load_row = row_valid ? row : p.num_rows - 1;
  const int64_t group_start = group << p.group_shift;
  const auto* x_vecs = reinterpret_cast<const InVec<In, kVec>*>(
      static_cast<const In*>(p.x) + load_row * p.x_row_stride + group_start);
  const int tpg = 1 << tpg_shift;

  // Where the planner says so (ops/pdl_plan.py: two calls' CTAs fill the SMs, or a grid of at
  // most half of them), the next kernel may launch now rather than after the wait: the call
  // after next then has its CTAs placed as this call's exit (per_token.cuh measured it).
  grid_dependency_wait_and_allow(p.trigger_at_entry);
  InVec<In, kVec> v[kVecsPerThread];
#pragma unroll
  for (int j = 0; j < kVecsPerThread; ++j) v[j] = x_vecs[lane + j * tpg];
  if constexpr (kProducer == GroupProducer::kSiluMul) {
    const auto* up_vecs = x_vecs + (p.hidden / kVec);
    InVec<In, kVec> up[kVecsPerThread];
#pragma unroll
    for (int j = 0; j < kVecsPerThread; ++j) up[j] = up_vecs[lane + j * tpg];
#pragma unroll
    for (int j = 0; j < kVecsPerThread; ++j) v[j] = silu_and_mul<In, kVec>(v[j], up[j]);
  }
  float amax = abs_max<kVecsPerThread>(v);
  amax = row_max(amax, tpg, 0, nullptr);  // tpg <= 32: shuffles within the group's lanes

  float scale = div_by_fp8_max(max_nan(amax, p.eps));
  if (p.ue8m0) scale = ue8m0_round_up(scale);
  const RowScale rs = RowScale::of_scale(scale);
  // Packed UE8M0 with a word's four groups in one warp (at most 8 threads a group, a CTA's groups
  // a multiple of 4): the first group's first thread gathers the four exponent bytes and stores
  // the word whole. Before the row check, so that every lane takes part in the shuffles.
  const bool packed = p.layout == static_cast<int32_t>(ScaleLayout::kPackedUe8m0);
  const bool whole_words = packed && !p.scale_tile && tpg_shift <= 3 && p.groups_per_cta_shift >= 2;
  uint32_t word_bits = __float_as_uint(scale) >> 23;
  if (whole_words) {
#pragma unroll
    for (int b = 1; b < 4; ++b) word_bits |= __shfl_down_sync(0xffffffffu, __float_as_uint(scale) >> 23, b << tpg_shift) << (8 * b);
  }
  if (p.scale_tile) {
    // Column-major and packed scales through shared memory: the CTA's rows_per_cta x
    // groups_per_cta scales (or exponent bytes) as a column-major tile, written out so that
    // consecutive threads write consecutive rows of a column: runs of rows_per_cta words (8
    // rows: a whole 32-byte sector) instead of one 4-byte store per group into a sector that 8
    // CTAs share.
    __shared__ uint32_t tile[kGroupMaxThreads];
    const int rows_shift = p.rows_per_cta_shift;
    if (lane == 0) tile[(local_group << rows_shift) + local_row] = packed ? (__float_as_uint(scale) >> 23) & 0xffu : __float_as_uint(scale);
    __syncthreads();
    const int rows_mask = (1 << rows_shift) - 1;
    const int64_t row0 = static_cast<int64_t>(blockIdx.x) / group_blocks << rows_shift;
    const int64_t group0 = static_cast<int64_t>(blockIdx.x) % group_blocks << p.groups_per_cta_shift;
    const int tile_groups = 1 << p.groups_per_cta_shift;
    if (!packed) {
      for (int t = threadIdx.x; t < tile_groups << rows_shift; t += blockDim.x) {
        const int64_t r = row0 + (t & rows_mask);
        if (r < p.num_rows) static_cast<uint32_t*>(p.scale)[(group0 + (t >> rows_shift)) * p.scale_ld + r] = tile[t];
      }
    } else {
      // Word w of the tile holds groups 4w..4w+3 (the planner keeps group0 a multiple of 4, or
      // the tile the row's whole 1 or 2 groups); bytes past the row's last group are zero.
      for (int t = threadIdx.x; t < ((tile_groups + 3) >> 2) << rows_shift; t += blockDim.x) {
        const int w = t >> rows_shift;
        const int64_t r = row0 + (t & rows_mask);
        if (r >= p.num_rows) continue;
        uint32_t word = 0;
#pragma unroll
        for (int b = 0; b < 4; ++b) {
          const int g = 4 * w + b;
          if (g < tile_groups && group0 + g < groups) word |= tile[(g << rows_shift) + (t & rows_mask)] << (8 * b);
        }
        static_cast<uint32_t*>(p.scale)[((group0 >> 2) + w) * p.scale_ld + r] = word;
      }
    }
    if (!row_valid) return;
  } else {
    if (!row_valid) return;
    if (lane == 0) {
      if (whole_words) {
        if ((group & 3) == 0) static_cast<uint32_t*>(p.scale)[(group >> 2) * p.scale_ld + row] = word_bits;
      } else {
        store_group_scale(p.scale, p.layout, p.scale_ld, row, group, groups, scale);
      }
    }
  }
  auto* q_vecs = reinterpret_cast<CodeVec<kVec>*>(p.q + row * p.hidden + group_start);
  for_row_kind(rs, [&](auto kind) {
#pragma unroll
    for (int j = 0; j < kVecsPerThread; ++j) q_vecs[lane + j * tpg] = quantize_vec<decltype(kind)::value>(v[j], rs);
  });
}

using GroupLaunchFn = cudaError_t (*)(const GroupParams&, const LaunchConfig&, cudaStream_t);

template <typename In, GroupProducer kProducer, int kVec, int kVecsPerThread>
constexpr GroupLaunchFn group_launcher() {
  return &launch<per_token_group_quant_kernel<In, kVec, kVecsPerThread, kProducer>, GroupParams>;
}

template <typename In, GroupProducer kProducer, int kVec, int... kN>
constexpr std::array<GroupLaunchFn, 4> group_row(std::integer_sequence<int, kN...>) {
  return {group_launcher<In, kProducer, kVec, (1 << kN)>()...};  // 1, 2, 4, 8 vectors per thread
}

template <typename In, GroupProducer kProducer, int... kW>
constexpr auto group_table(std::integer_sequence<int, kW...>) {
  return std::array<std::array<GroupLaunchFn, 4>, sizeof...(kW)>{
      group_row<In, kProducer, vec_of_index(kMaxVec<In>, kW)>(std::make_integer_sequence<int, 4>{})...};
}

// x's rows hold `hidden` elements (kNone) or 2 x hidden (kSiluMul: [gate | up]); the codes and
// scales are those of `hidden` elements a row either way.
template <typename In, GroupProducer kProducer = GroupProducer::kNone>
cudaError_t launch_per_token_group_quant(const GroupArgs& a, const GroupConfig& c, cudaStream_t stream) {
  static constexpr auto kTable = group_table<In, kProducer>(std::make_integer_sequence<int, kNumVecWidths<In>>{});
  const int w = width_index(kMaxVec<In>, c.vec);
  const int n = c.vecs_per_thread == 1 ? 0 : c.vecs_per_thread == 2 ? 1 : c.vecs_per_thread == 4 ? 2 : c.vecs_per_thread == 8 ? 3 : -1;
  if (w >= kNumVecWidths<In> || n < 0) return cudaErrorInvalidValue;
  const GroupParams params{
      a.x, static_cast<uint8_t*>(a.q), a.scale, a.num_rows, a.hidden, a.x_row_stride, a.scale_ld, a.eps,
      c.group_shift, c.threads_per_group_shift, c.groups_per_cta_shift, c.rows_per_cta_shift, c.scale_tile, c.layout,
      c.ue8m0, c.trigger_at_entry,
  };
  const cudaError_t err = set_device(c.device);
  return err != cudaSuccess ? err : kTable[w][n](params, LaunchConfig{c.grid, c.block_threads, c.smem_bytes, c.device, c.pdl}, stream);
}

// silu_and_mul_quant_fp8 per group (ops/silu_and_mul_quant.py): the group kernel with its producer.
template <typename In>
cudaError_t launch_silu_and_mul_group_quant(const GroupArgs& a, const GroupConfig& c, cudaStream_t stream) {
  return launch_per_token_group_quant<In, GroupProducer::kSiluMul>(a, c, stream);
}

}  // namespace fp8quant
