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
// The host planner (fp8quant/planner.py) picks the staging, vector width and shape; this file
// only checks that an instance exists for the request.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

namespace fp8quant {

constexpr float kFp8E4m3Max = 448.0f;
// Keeps the scale of an all-zero row finite and nonzero (vLLM's and FBGEMM's floor).
constexpr float kMinScale = 1.0f / (448.0f * 512.0f);
constexpr int kMaxVecsPerThread = 8;
constexpr int kMaxThreadsPerRow = 512;  // kRegisters; at most 128 registers per thread, no spills

enum class Staging : int32_t { kRegisters = 0, kShared = 1, kGlobal = 2 };

// Field for field the same as fp8quant/_cuda.py::KernelParams (ctypes).
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
// 72 bytes, as before v9 added ctas_per_row_shift: with that field placed after
// threads_per_row (80 bytes, every later field 8 bytes further), v8's kernels, their SASS
// otherwise unchanged, took 0.06-0.3 us more per call at 1-20 MB (docs/performance.md, v9 run 7).
static_assert(sizeof(PerTokenParams) == 72, "see above");

// Field for field the same as fp8quant/_cuda.py::LaunchShape (ctypes).
struct LaunchShape {
  int32_t staging;             // Staging
  int32_t vec;                 // elements per vector access
  int32_t vecs_per_thread;     // kRegisters only; 0 for the others
  int32_t block_threads;
  int32_t smem_bytes;          // dynamic shared memory
  int32_t device;
  int32_t pdl;                 // nonzero: programmatic dependent launch (sm_90+), see grid_dependency_wait
  int64_t grid;
};

// ---------------------------------------------------------------------------------------------
// Small helpers

template <typename In>
__device__ __forceinline__ float to_float(In v) {
  if constexpr (std::is_same_v<In, float>) {
    return v;
  } else if constexpr (std::is_same_v<In, __half>) {
    return __half2float(v);
  } else {
    return __bfloat162float(v);
  }
}

// fmaxf/fminf return the other operand when one is NaN; the contract propagates NaN
// (torch.amax, torch.maximum and torch.minimum do), so a NaN row never gets a finite scale.
__device__ __forceinline__ float max_nan(float a, float b) {
  float r;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}
__device__ __forceinline__ float min_nan(float a, float b) {
  float r;
  asm("min.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

// A vector of kVec input elements, loaded and stored as one access of kVec * sizeof(In) bytes.
// It holds raw 32-bit words (16- or 8-bit ones for 2- and 1-byte vectors), not In elements:
// held as an array of 16-bit elements, the compiler kept every element in a register of its own
// (a PRMT per element), and the 4 x 16-byte bf16 instance took 59 registers instead of 40
// (docs/performance.md, v6).
template <int kBytes>
struct RawWordOf {
  using type = uint32_t;
};
template <>
struct RawWordOf<2> {
  using type = uint16_t;
};
template <>
struct RawWordOf<1> {
  using type = uint8_t;
};

template <typename To, typename From>
__device__ __forceinline__ To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From));
  To to;
  memcpy(&to, &from, sizeof(To));
  return to;
}

template <typename In, int kVec>
struct alignas(sizeof(In) * kVec) InVec {
  static constexpr int kBytes = static_cast<int>(sizeof(In)) * kVec;
  using Word = typename RawWordOf<(kBytes < 4 ? kBytes : 4)>::type;
  static constexpr int kWords = kBytes / static_cast<int>(sizeof(Word));
  static constexpr int kPerWord = kVec / kWords;  // elements per word
  Word w[kWords];

  __device__ __forceinline__ void set_zero() {
#pragma unroll
    for (int k = 0; k < kWords; ++k) w[k] = 0;
  }
  // Element e (a compile-time index after unrolling) as float, exactly.
  __device__ __forceinline__ float get(int e) const {
    if constexpr (std::is_same_v<In, float>) {
      return __uint_as_float(w[e]);
    } else {
      const uint32_t bits = static_cast<uint32_t>(w[e / kPerWord]) >> (16 * (e % kPerWord));
      if constexpr (std::is_same_v<In, __half>) {
        return __half2float(__ushort_as_half(static_cast<unsigned short>(bits & 0xffffu)));
      } else {
        return __uint_as_float(bits << 16);  // bf16 is the top half of an fp32
      }
    }
  }
};

// kVec e4m3 codes, stored as one access of kVec bytes (raw words, like InVec).
template <int kVec>
struct alignas(kVec) CodeVec {
  using Word = typename RawWordOf<(kVec < 4 ? kVec : 4)>::type;
  static constexpr int kWords = kVec / static_cast<int>(sizeof(Word));
  Word w[kWords];
};

// b / 448 as IEEE division rounds it, for every fp32 b: q0 = RN(b * RN(1/448)) is within an ulp,
// the FMA gives the exact residual, one correction rounds correctly (Markstein; 448's significand
// is not all ones). An infinite q0 is kept (the FMAs would turn it into NaN); where b is so small
// that the quotient is subnormal the result may be an ulp off, but it is then far below
// kMinScale, which replaces it. Three instructions on the path from the amax to the first store,
// instead of __fdiv_rn's range check and branch to its slow path. tests/test_gpu.py compares the
// scale of every non-negative fp32 amax with IEEE division.
__device__ __forceinline__ float div_by_fp8_max(float b) {
  constexpr float kRecip = 1.0f / kFp8E4m3Max;  // RN(1/448), folded at compile time
  const float q0 = __fmul_rn(b, kRecip);
  const float q1 = __fmaf_rn(__fmaf_rn(-q0, kFp8E4m3Max, b), kRecip, q0);
  return isinf(q0) ? q0 : q1;
}

// What a row's scale allows the quantize loop to skip, decided once per row (for_row_kind).
enum class RowKind : int32_t {
  kInRange,    // finite scale, amax <= scale_ub: every |x / scale| <= 448 (1 + 2^-22), no overflow
  kClamped,    // finite scale, amax > scale_ub: x * recip may overflow to +-inf (x = +-inf too)
  kNonFinite,  // NaN scale (a NaN in the row), or +inf (an Inf and no scale_ub)
};

// A row's scale and its correctly rounded reciprocal, computed once per row.
struct RowScale {
  float scale;
  float recip;  // RN(1 / scale); 0 when the scale is NaN or +inf
  RowKind kind;

  __device__ __forceinline__ RowScale(float amax, float scale_ub) {
    const float bounded = min_nan(amax, scale_ub);
    scale = max_nan(div_by_fp8_max(bounded), kMinScale);
    const bool finite = isfinite(scale);
    recip = finite ? __frcp_rn(scale) : 0.0f;
    kind = !finite ? RowKind::kNonFinite : (amax > scale_ub ? RowKind::kClamped : RowKind::kInRange);
  }
};

// x / scale, correctly rounded (as IEEE division), without a division per element.
//
// Finite scale (a normal number >= kMinScale): q0 = RN(x * recip) is within an ulp of x / scale,
// the FMA gives the exact residual, and one correction step rounds correctly (Markstein's
// theorem): 3 instructions instead of the division's reciprocal, Newton steps and range check.
// The residual is taken negated, q0 * scale - x, and subtracted: the same rounding for every
// x != 0, and for x = -0 the result is -0 (q0 = -0, residual +0, -0 + -0 = -0) where the
// un-negated form x - q0 * scale gives +0 (e4m3 0x00 instead of 0x80; v3 paid a copysign per
// element for that). A tiny quotient keeps x's sign: q1 = RN(x * recip - q0 * (scale * recip -
// 1)), and |q0 (scale * recip - 1)| < |x * recip|, so it is never an exact zero.
// kInRange rows need nothing more: |x| <= amax, so |q0| <= 448 (1 + 2^-22). In a kClamped row
// q0 may overflow to +-inf (and x may be +-inf), where the FMAs would give NaN; q0 is kept, and
// saturates to +-448 like the exact quotient. 4 instructions per element (with the bf16 unpack)
// instead of v10's 7 (docs/performance.md, v11). tests/test_gpu.py checks every bfloat16 and
// float16 value against 2048 scales, and the edge rows (-0 among them).
//
// NaN or +inf scale: the IEEE quotient is NaN for a NaN scale, and x / inf = +-0 for finite x,
// NaN for x = +-inf. No division needed.
template <RowKind kKind>
__device__ __forceinline__ float scaled(float x, const RowScale& rs) {
  if constexpr (kKind == RowKind::kNonFinite) {
    return (isnan(rs.scale) || isinf(x)) ? __int_as_float(0x7fffffff) : copysignf(0.0f, x);
  } else {
    const float q0 = __fmul_rn(x, rs.recip);
    const float q1 = __fmaf_rn(-__fmaf_rn(q0, rs.scale, -x), rs.recip, q0);
    if constexpr (kKind == RowKind::kClamped) {
      return isinf(q0) ? q0 : q1;
    } else {
      return q1;
    }
  }
}

// Calls f(std::integral_constant<RowKind, kind>) for the row's kind: the choice is made once per
// row, so the per-element code has no branch (one made ptxas spill).
template <typename F>
__device__ __forceinline__ void for_row_kind(const RowScale& rs, F&& f) {
  if (rs.kind == RowKind::kInRange) {
    f(std::integral_constant<RowKind, RowKind::kInRange>{});
  } else if (rs.kind == RowKind::kClamped) {
    f(std::integral_constant<RowKind, RowKind::kClamped>{});
  } else {
    f(std::integral_constant<RowKind, RowKind::kNonFinite>{});
  }
}

// 16-bit inputs take their abs-max in packed pairs (abs and max are exact in any format): half
// the max instructions.
template <typename In>
struct Packed2 {
  using type = void;
};
template <>
struct Packed2<__half> {
  using type = __half2;
};
template <>
struct Packed2<__nv_bfloat16> {
  using type = __nv_bfloat162;
};

// The max of m[0..kN) by a balanced tree: every leaf at the same depth. Taken as a chain over a
// thread's vectors (v6), the last vectors sat on the shortest path to the result, and in one
// build ptxas issued the third and fourth 16-byte loads of the 4-vector bf16 instance only after
// the first two had arrived: a second memory round trip (docs/performance.md, v7).
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
    // order, the v11 quantize code (more paths after this) made ptxas issue the last 2 of the 8
    // row loads of the float32 8-vector instances after the first max, which waits for the
    // first load; interleaved, none is late (tests/test_kernel_build.py).
    float m[kN * kVec];
#pragma unroll
    for (int i = 0; i < kN * kVec; ++i) m[i] = fabsf(v[i % kN].get(i / kN));
    return tree_max<kN * kVec>(m, [](float a, float b) { return max_nan(a, b); });
  }
}

template <RowKind kKind, typename In, int kVec>
__device__ __forceinline__ CodeVec<kVec> quantize_vec(const InVec<In, kVec>& v, const RowScale& rs) {
  CodeVec<kVec> out;
  if constexpr (kVec == 1) {
    out.w[0] = __nv_cvt_float_to_fp8(scaled<kKind>(v.get(0), rs), __NV_SATFINITE, __NV_E4M3);
  } else {
    // Two codes per conversion; two conversions per 32-bit word.
#pragma unroll
    for (int e = 0; e < kVec; e += 2) {
      const float2 pair = make_float2(scaled<kKind>(v.get(e), rs), scaled<kKind>(v.get(e + 1), rs));
      const uint32_t codes = __nv_cvt_float2_to_fp8x2(pair, __NV_SATFINITE, __NV_E4M3);
      if constexpr (kVec == 2) {
        out.w[0] = static_cast<uint16_t>(codes);
      } else if (e % 4 == 0) {
        out.w[e / 4] = codes;
      } else {
        out.w[e / 4] |= codes << 16;
      }
    }
  }
  return out;
}

// A vector of the input. The input is read exactly once, so (an experiment, off unless the
// module is built with -DFP8QUANT_EXPERIMENT_EVICT_FIRST) its 16-byte loads can bypass L1 and
// leave L2 first.
template <typename V>
__device__ __forceinline__ V load_input(const V* ptr) {
#ifdef FP8QUANT_EXPERIMENT_EVICT_FIRST
  if constexpr (sizeof(V) == 16) {
    uint4 r;
    uint64_t policy;
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
    asm("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(ptr), "l"(policy));
    return bit_cast<V>(r);
  }
#endif
  return *ptr;
}

__device__ __forceinline__ float load_scale_ub(const PerTokenParams& p) {
  return p.scale_ub_ptr != nullptr ? *p.scale_ub_ptr : p.scale_ub_value;
}

// Programmatic dependent launch (sm_90+). Launched with it (LaunchShape::pdl), a kernel may
// start while the kernel before it in the stream is still running: grid_dependency_wait() then
// blocks until that kernel has completed and its writes are visible, so every kernel calls it
// before its first global access (x and scale_ub may be the previous kernel's output, q and
// scale its input). allow_dependents_to_launch() lets the next kernel, if it was launched with
// PDL, be scheduled now; it still waits for this one to complete before it touches memory.
// Called after the wait, so at most two grids are in flight. Without PDL both are no-ops.
__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void allow_dependents_to_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// The same where `when` is nonzero: one predicated instruction, no branch. An if around the call
// split the register kernel's body into blocks, and ptxas then issued 4 of the 8 row loads of
// the bf16 8-vector shared-row instance after the first had arrived (tests/test_kernel_build.py).
__device__ __forceinline__ void allow_dependents_to_launch_if(int when) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "{\n\t.reg .pred p;\n\tsetp.ne.s32 p, %0, 0;\n\t@p griddepcontrol.launch_dependents;\n\t}" ::"r"(when)
      : "memory");
#endif
}

// L2 prefetch before grid_dependency_wait(). Under PDL a kernel's CTAs are resident while the
// kernel before it finishes (allow_dependents_to_launch), but may not load its input until that
// kernel has completed. A prefetch may be issued before: it is a hint that returns nothing and
// changes no value any load returns, and L2 is where the SMs' views of global memory meet, so
// whatever the kernel before writes lands in L2 and is what the loads after the wait read. The
// row's DRAM reads then overlap the previous kernel's end instead of following it: 0.1-1.25 us
// per call at decode sizes with inputs in DRAM, 0.4-1.25 us at 10-13 MB, 0.5-0.9 us at 100 MB
// (docs/performance.md, v10 run 1). Without PDL the prefetch is just ahead of the loads and
// costs 0.02-0.24 us (the same run). -DFP8QUANT_EXPERIMENT_NO_PREFETCH (an A/B switch) removes
// it. The warp-per-row kernel's prefetch is untimed: no shape of the bench's grid takes it.
//
// prefetch_line_to_l2: the line holding ptr, one instruction per thread (per vector in the
// register kernel: a warp's 32 vectors are 4 lines). The register kernel uses it rather than
// the bulk form: cp.async.bulk.prefetch takes its operands in uniform registers, so ptxas wraps
// it in a loop over the warp's distinct addresses, and with that loop ahead of them ptxas issued
// 4 of the 8 row loads of the bf16 8-vector instance after the first had arrived.
// With the input in DRAM the loads after the wait still take 0.12-0.28 us longer than with it in
// L2 at 32-256 rows of 4096-16384 (0.57 at 256x16384). The prefetched lines are in L2 by then,
// but a 16 KiB row of them reads in ~1440 SM cycles where one that real loads brought reads in
// ~920, whichever prefetch instruction (.L2, .L1, bulk; scripts/l2_prefetch_probe.cu,
// docs/performance.md v15 runs 6-9). No other way to ask for them was faster (v12 runs 1-5 and
// 9, v15 run 10): the lines marked evict_last, each 32-byte sector prefetched on its own, real
// loads before the wait (volatile per vector or line, ld.global.cg per sector kept live past the
// wait: the rows after the wait then read as from L2, the call did not get faster), cp.async
// into a shared scratch, and the next kernel let launch at entry instead of after the wait.
__device__ __forceinline__ void prefetch_line_to_l2(const void* ptr) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && !defined(FP8QUANT_EXPERIMENT_NO_PREFETCH)
  asm volatile("prefetch.global.L2 [%0];" ::"l"(ptr));
#endif
}
// Whether this CTA is among the first SMs x 2048 threads' worth of the grid: the CTAs that can
// be resident before the kernel ahead completes, so the ones whose prefetch can help (%nsmid
// bounds the SMs' ids, which need not be contiguous; 2048 threads per SM on sm_90, and the
// prefetch is sm_90+ only).
__device__ __forceinline__ bool cta_in_first_wave() {
  constexpr uint64_t kMaxThreadsPerSm = 2048;
  unsigned num_sm_ids;
  asm("mov.u32 %0, %%nsmid;" : "=r"(num_sm_ids));
  return static_cast<uint64_t>(blockIdx.x) * blockDim.x < num_sm_ids * kMaxThreadsPerSm;
}

// prefetch_to_l2: [begin, end), its 16-byte-aligned part and at most kMaxPrefetchBytes of it, in
// one bulk request (the warp-per-row kernel: one lane per row, rows of any length).
constexpr uint32_t kMaxPrefetchBytes = 64 * 1024;
__device__ __forceinline__ void prefetch_to_l2(const void* begin, const void* end) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && !defined(FP8QUANT_EXPERIMENT_NO_PREFETCH)
  const uint64_t b = (reinterpret_cast<uint64_t>(begin) + 15) & ~uint64_t{15};
  const uint64_t e = reinterpret_cast<uint64_t>(end) & ~uint64_t{15};
  if (e > b) {
    const uint32_t bytes = static_cast<uint32_t>(e - b < kMaxPrefetchBytes ? e - b : kMaxPrefetchBytes);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(b), "r"(bytes));
  }
#endif
}

// The bits of the max of v over the warp. v is never negative (a max of absolute values, or a
// NaN with its sign bit clear), so its bits order as unsigned integers the way the floats do, NaN
// above +inf: one warp-wide integer max (redux.sync, sm_80+) instead of five dependent shuffles.
__device__ __forceinline__ unsigned warp_max_bits(float v) {
  return __reduce_max_sync(0xffffffffu, __float_as_uint(v));
}

// The max of v over the `tpr` consecutive threads of a row (a power of two, uniform across the
// CTA), in straight-line code: as loops bounded by tpr (v6) the branches made a one-row call
// 0.12-0.16 us slower than the same kernel with tpr a compile-time constant, and the warp-wide
// integer max took another 0.03-0.06 us off (scripts/decode_probe.cu, docs/performance.md v7).
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

#if defined(FP8QUANT_EXPERIMENT_TIMELINE) || defined(FP8QUANT_EXPERIMENT_SMID)
// The SM this thread runs on (the two experiments below note it).
__device__ __forceinline__ unsigned sm_id() {
  unsigned id;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
  return id;
}
#endif

// An experiment (-DFP8QUANT_EXPERIMENT_TIMELINE, docs/performance.md v11 run 8): thread 0 of each
// CTA of the register kernel notes %globaltimer and clock64 at its entry, after the PDL wait,
// after its loads (the abs-max, which waits for them), after the row's max and after its
// stores are issued, and the SM it ran on (%smid, in the record's last slot: where a long PDL
// chain places its CTAs, v13); fp8quant_timeline_read() copies the last kTimelineCalls calls of
// up to kTimelineCtas CTAs to the host. Off by default: nothing of it is compiled.
#ifdef FP8QUANT_EXPERIMENT_TIMELINE
constexpr int kTimelineMarks = 5, kTimelineCalls = 16, kTimelineCtas = 1024;
constexpr int kTimelineRecord = 2 * kTimelineMarks + 1;  // globaltimer, clock64 per mark; %smid
__device__ unsigned long long g_timeline[kTimelineCalls][kTimelineCtas][kTimelineRecord];
__device__ unsigned g_timeline_calls[kTimelineCtas];
struct Timeline {
  unsigned long long t[kTimelineRecord];
  __device__ __forceinline__ void mark(int k) {
    if (threadIdx.x == 0) {
      asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t[k]));
      t[kTimelineMarks + k] = clock64();
    }
  }
  __device__ __forceinline__ void commit() {
    if (threadIdx.x == 0 && blockIdx.x < kTimelineCtas) {
      const unsigned call = atomicAdd(&g_timeline_calls[blockIdx.x], 1u) % kTimelineCalls;
      t[2 * kTimelineMarks] = sm_id();
#pragma unroll
      for (int k = 0; k < kTimelineRecord; ++k) g_timeline[call][blockIdx.x][k] = t[k];
    }
  }
};
}  // namespace fp8quant
extern "C" int fp8quant_timeline_read(void* host, size_t bytes) {
  return static_cast<int>(cudaMemcpyFromSymbol(host, fp8quant::g_timeline, bytes));
}
namespace fp8quant {
#define FP8QUANT_TIMELINE_MARK(k) timeline.mark(k)
#else
#define FP8QUANT_TIMELINE_MARK(k)
#endif

// An experiment (-DFP8QUANT_EXPERIMENT_SMID, docs/performance.md v14 run 3; off by default, nothing
// of it compiled): each CTA of the register kernel notes its SM (%smid) after its stores, and
// fp8quant_smid_read() copies the notes (the last call's, up to kSmidCtas CTAs) to the host, for
// scripts/chain_probe.py --smid: where a long PDL chain places a call's CTAs. It adds a register
// or two where the timeline (60 instead of 38 registers at 256x8192) changed the placement itself.
#ifdef FP8QUANT_EXPERIMENT_SMID
constexpr int kSmidCtas = 4096;
__device__ unsigned g_last_smid[kSmidCtas];
}  // namespace fp8quant
extern "C" int fp8quant_smid_read(void* host, size_t bytes) {
  return static_cast<int>(cudaMemcpyFromSymbol(host, fp8quant::g_last_smid, bytes));
}
namespace fp8quant {
#endif

// ---------------------------------------------------------------------------------------------
// kRegisters: `threads_per_row` threads share a row (a power of two: below 32 several rows share
// a warp, above 32 a row spans several warps); blockDim.x / threads_per_row rows per CTA; each
// thread keeps kVecsPerThread vectors in registers, so the row is read from global memory once.
// A few rows can also be shared by 2^ctas_per_row_shift consecutive CTAs (one row each; the
// kSplitRow instances): every one of them reads the whole row and takes its max (no
// communication between CTAs), then quantizes and stores only its part, a contiguous range of
// its threads' vectors j; the first writes the scale. Quantizing was ~8.5 of the ~10
// instructions per element in v9 (~5 of ~6 since v11), so a row of 16384 alone on one SM was
// bound by that SM's instruction issue (~0.55 us); shared by 4 CTAs, 1x16384 took 1.42 us
// instead of 1.91 (docs/performance.md, v9).
// (A row split over a thread-block cluster, its maxima combined in distributed shared memory,
// measured 0.1-0.5 us slower per call at every decode shape but two: docs/performance.md, v8.)
// Each CTA takes one group of rows: the planner's grid covers every row. (v1-v6 had a grid-stride
// loop around the body; no persistent grid measured faster (v6), and without the loop, together
// with unconditional shuffles, a one-row call took 0.06-0.07 us less: docs/performance.md v7.)
template <typename In, int kVec, int kVecsPerThread, bool kSplitRow>
__global__ void __launch_bounds__(kMaxThreadsPerRow) per_token_quant_registers_kernel(const PerTokenParams p) {
#ifdef FP8QUANT_EXPERIMENT_TIMELINE
  Timeline timeline;
#endif
  FP8QUANT_TIMELINE_MARK(0);
  __shared__ float warp_amax[kMaxThreadsPerRow / 32];
  const int tpr = p.threads_per_row;
  // tpr is a power of two: shifts, not the ~20-instruction integer divisions by a runtime value
  // that stood between the kernel's start and its first load.
  const int tpr_shift = __ffs(tpr) - 1;
  const int lane = threadIdx.x & (tpr - 1);
  const int local_row = threadIdx.x >> tpr_shift;
  // A compile-time 0 where rows are not shared, so those instances are v8's code (the same SASS).
  // One instance with a branch between the two loops instead made ptxas issue 4 of the 8 loads
  // of the bf16 8-vector instance late (docs/performance.md, v9).
  const int split_shift = kSplitRow ? p.ctas_per_row_shift : 0;
  const int part = blockIdx.x & ((1 << split_shift) - 1);  // which part of the row this CTA stores
  const int64_t row = static_cast<int64_t>(blockIdx.x >> split_shift) * (blockDim.x >> tpr_shift) + local_row;
  const bool row_valid = row < p.num_rows;
  const int num_vecs = static_cast<int>(p.hidden / kVec);  // the planner keeps it <= 4096
  // 64-bit row offset once; within a row, 32-bit vector indices (at most 512 x 8 vectors).
  // Every load is issued, unpredicated: a padding slot (i >= num_vecs) loads the row's first
  // vector again, which cannot change the row's max, and a row past the end loads the last row,
  // whose max it discards. With predicated loads into zeroed registers (v7), ptxas issued some of
  // a thread's loads only after the first ones had arrived (a second memory round trip): in 6 of
  // the 24 sm_90 16-byte instances of v7, and with any change around them in others, the bf16
  // 4-vector one included (docs/performance.md, v8). Now none of the 1-4-vector instances does.
  const int64_t load_row = row_valid ? row : p.num_rows - 1;
  const auto* x_vecs =
      reinterpret_cast<const InVec<In, kVec>*>(static_cast<const In*>(p.x) + load_row * p.x_row_stride);

  // The row's lines into L2 while the kernel before may still run (see prefetch_line_to_l2), in
  // the CTAs of the first wave only (SMs x 2048 threads' worth): only they can start before that
  // kernel completes. A later CTA finds its wait already met, and its prefetch only queues
  // requests ahead of its own loads: float32 4096x16384 (512 x 8 vectors, 2 CTAs per SM) took
  // 116.7 us per call prefetching in every CTA, 111.7 without any prefetch, 111.9 prefetching in
  // the first 4 x SMs CTAs (docs/performance.md, v10 run 4).
  // Where the planner says so (planner.pdl_trigger_at_entry: two calls' CTAs fill the SMs, so no
  // third call can become resident before this one's CTAs exit), the next kernel may launch
  // now: the call after next then has its CTAs placed, and its rows asked of L2, as this call's
  // CTAs exit, instead of once the next call's wait returns. 128x4096 1.69 -> 1.48 us, 256x2048
  // 1.66 -> 1.45, 1024x4096 5.07 -> 4.87 (docs/performance.md, v18 run 1).
  allow_dependents_to_launch_if(p.trigger_at_entry);
  if (cta_in_first_wave()) {
#pragma unroll
    for (int j = 0; j < kVecsPerThread; ++j) {
      const int i = lane + j * tpr;
      prefetch_line_to_l2(x_vecs + (i < num_vecs ? i : 0));
    }
  }
  grid_dependency_wait();
  FP8QUANT_TIMELINE_MARK(1);
  // Otherwise here, not after the stores: 1x16384 1.83 vs 2.00 us, 64x16384 3.17 vs 3.53 (v8 run
  // 2); nor after the row's loads: 256x16384 5.58-5.65 vs 6.12-6.16, 128x8192 2.14-2.16 vs 2.52
  // (v14 run 1).
  allow_dependents_to_launch_if(!p.trigger_at_entry);
  InVec<In, kVec> v[kVecsPerThread];
#pragma unroll
  for (int j = 0; j < kVecsPerThread; ++j) {
    const int i = lane + j * tpr;
    v[j] = load_input(x_vecs + (i < num_vecs ? i : 0));
  }
  // Read while the row's loads are in flight, before the barrier, which no load moves across: a
  // scale_ub given as a device tensor then adds no memory round trip after the reduction.
  const float scale_ub = load_scale_ub(p);
  float amax = abs_max<kVecsPerThread>(v);
  FP8QUANT_TIMELINE_MARK(2);
  // Every thread of the CTA takes part (shuffles, barrier); rows past the end stop after it.
  amax = row_max(amax, tpr, local_row, warp_amax);
  FP8QUANT_TIMELINE_MARK(3);
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
  FP8QUANT_TIMELINE_MARK(4);
#ifdef FP8QUANT_EXPERIMENT_TIMELINE
  timeline.commit();
#endif
#ifdef FP8QUANT_EXPERIMENT_SMID
  if (threadIdx.x == 0 && blockIdx.x < kSmidCtas) g_last_smid[blockIdx.x] = sm_id();
#endif
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

// The launch floor the benchmark measures, launched through the same helper (with or without PDL).
__global__ void empty_kernel(const PerTokenParams) {
  grid_dependency_wait();
  allow_dependents_to_launch();
}

// ---------------------------------------------------------------------------------------------
// The one launch helper. Every instance goes through it; the tables below only take addresses.
using LaunchFn = cudaError_t (*)(const PerTokenParams&, const LaunchShape&, cudaStream_t);

template <auto kKernel>
cudaError_t launch(const PerTokenParams& p, const LaunchShape& shape, cudaStream_t stream) {
  if (shape.smem_bytes > 48 * 1024) {
    // Above 48 KB a kernel must opt in; the planner has checked the device's limit.
    const cudaError_t err = cudaFuncSetAttribute(
        kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shape.smem_bytes);
    if (err != cudaSuccess) return err;
  }
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(shape.grid));
  config.blockDim = dim3(static_cast<unsigned>(shape.block_threads));
  config.dynamicSmemBytes = static_cast<size_t>(shape.smem_bytes);
  config.stream = stream;
  cudaLaunchAttribute pdl;
  pdl.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  pdl.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &pdl;
  config.numAttrs = shape.pdl != 0 ? 1 : 0;
  const cudaError_t err = cudaLaunchKernelEx(&config, kKernel, p);
  return err != cudaSuccess ? err : cudaGetLastError();
}

// Vector widths are powers of two from one 16-byte access down to one element.
template <typename In>
constexpr int kMaxVec = 16 / static_cast<int>(sizeof(In));
template <typename In>
constexpr int kNumVecWidths = kMaxVec<In> == 8 ? 4 : (kMaxVec<In> == 4 ? 3 : 1);
constexpr int vec_of_index(int max_vec, int index) { return max_vec >> index; }

template <typename In, int kVec, int kVecsPerThread, bool kSplitRow>
constexpr LaunchFn registers_launcher() {
  return &launch<per_token_quant_registers_kernel<In, kVec, kVecsPerThread, kSplitRow>>;
}

template <typename In, int kVec, bool kSplitRow = false, int... kN>
constexpr std::array<LaunchFn, kMaxVecsPerThread> registers_row(std::integer_sequence<int, kN...>) {
  return {registers_launcher<In, kVec, kN + 1, kSplitRow>()...};
}

template <typename In, int... kW>
constexpr auto registers_table(std::integer_sequence<int, kW...>) {
  return std::array<std::array<LaunchFn, kMaxVecsPerThread>, sizeof...(kW)>{
      registers_row<In, vec_of_index(kMaxVec<In>, kW)>(
          std::make_integer_sequence<int, kMaxVecsPerThread>{})...};
}

template <typename In, int kVec, Staging kStaging>
constexpr LaunchFn warp_launcher() {
  return &launch<per_token_quant_warp_kernel<In, kVec, kStaging>>;
}

template <typename In, Staging kStaging, int... kW>
constexpr auto warp_table(std::integer_sequence<int, kW...>) {
  return std::array<LaunchFn, sizeof...(kW)>{warp_launcher<In, vec_of_index(kMaxVec<In>, kW), kStaging>()...};
}

constexpr int width_index(int max_vec, int vec) {
  int index = 0;
  while (index < 8 && (max_vec >> index) != vec) ++index;
  return index;
}

inline cudaError_t set_device(int device) {
  int current = -1;
  cudaError_t err = cudaGetDevice(&current);
  if (err == cudaSuccess && current != device) err = cudaSetDevice(device);
  return err;
}

// Looks the instance up in compile-time tables and launches it. Unknown shapes are refused
// with cudaErrorInvalidValue; the Python side validates before it gets here.
template <typename In>
cudaError_t launch_per_token_quant(const PerTokenParams& p, const LaunchShape& shape,
                                   cudaStream_t stream) {
  static constexpr auto widths = std::make_integer_sequence<int, kNumVecWidths<In>>{};
  static constexpr auto kRegisters = registers_table<In>(widths);
  // Rows shared by CTAs: 16-byte vectors only (the planner shares no other rows).
  static constexpr auto kRegistersSplitRow =
      registers_row<In, kMaxVec<In>, true>(std::make_integer_sequence<int, kMaxVecsPerThread>{});
  static constexpr auto kShared = warp_table<In, Staging::kShared>(widths);
  static constexpr auto kGlobal = warp_table<In, Staging::kGlobal>(widths);

  const int w = width_index(kMaxVec<In>, shape.vec);
  if (w >= kNumVecWidths<In>) return cudaErrorInvalidValue;
  LaunchFn fn = nullptr;
  switch (static_cast<Staging>(shape.staging)) {
    case Staging::kRegisters:
      if (shape.vecs_per_thread < 1 || shape.vecs_per_thread > kMaxVecsPerThread) {
        return cudaErrorInvalidValue;
      }
      if (p.ctas_per_row_shift == 0) {
        fn = kRegisters[w][shape.vecs_per_thread - 1];
      } else if (w == 0 && p.ctas_per_row_shift > 0) {
        fn = kRegistersSplitRow[shape.vecs_per_thread - 1];
      } else {
        return cudaErrorInvalidValue;
      }
      break;
    case Staging::kShared: fn = kShared[w]; break;
    case Staging::kGlobal: fn = kGlobal[w]; break;
    default: return cudaErrorInvalidValue;
  }
  const cudaError_t err = set_device(shape.device);
  return err != cudaSuccess ? err : fn(p, shape, stream);
}

// The empty kernel, through the same launch helper: the benchmark's launch floor.
inline cudaError_t launch_empty(const LaunchShape& shape, cudaStream_t stream) {
  const cudaError_t err = set_device(shape.device);
  return err != cudaSuccess ? err : launch<empty_kernel>(PerTokenParams{}, shape, stream);
}

}  // namespace fp8quant
