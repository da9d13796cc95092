// Vectors of input elements and of e4m3 codes, held as raw 32-bit words, and their exact
// conversion to float. Shared by every kernel; no torch headers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace fp8quant {

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


// A vector of kVec input elements, loaded and stored as one access of kVec * sizeof(In) bytes.
// It holds raw 32-bit words (16- or 8-bit ones for 2- and 1-byte vectors), not In elements:
// held as an array of 16-bit elements, the compiler kept every element in a register of its own
// (a PRMT per element), and the 4 x 16-byte bf16 instance took 59 registers instead of 40
// (docs/design.md).
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

// kVec floats rounded to nearest even into an input vector (the dtype's own rounding, as torch
// rounds an op's float result): how the fused kernels hold a row after each rounded step.
template <typename In, int kVec>
__device__ __forceinline__ InVec<In, kVec> round_to_vec(const float (&f)[kVec]) {
  InVec<In, kVec> v;
  using V = InVec<In, kVec>;
  v.set_zero();
#pragma unroll
  for (int e = 0; e < kVec; ++e) {
    uint32_t bits;
    if constexpr (std::is_same_v<In, float>) {
      bits = __float_as_uint(f[e]);
    } else if constexpr (std::is_same_v<In, __half>) {
      bits = __half_as_ushort(__float2half_rn(f[e]));
    } else {
      bits = __bfloat16_as_ushort(__float2bfloat16_rn(f[e]));
    }
    v.w[e / V::kPerWord] |= static_cast<typename V::Word>(bits << (16 * (e % V::kPerWord)));
  }
  return v;
}

// An input vector's elements as floats.
template <typename In, int kVec>
__device__ __forceinline__ void to_floats(const InVec<In, kVec>& v, float (&f)[kVec]) {
#pragma unroll
  for (int e = 0; e < kVec; ++e) f[e] = v.get(e);
}

// kVec e4m3 codes, stored as one access of kVec bytes (raw words, like InVec).
template <int kVec>
struct alignas(kVec) CodeVec {
  using Word = typename RawWordOf<(kVec < 4 ? kVec : 4)>::type;
  static constexpr int kWords = kVec / static_cast<int>(sizeof(Word));
  Word w[kWords];
};



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

// Vector widths are powers of two from one 16-byte access down to one element.
template <typename In>
constexpr int kMaxVec = 16 / static_cast<int>(sizeof(In));
template <typename In>
constexpr int kNumVecWidths = kMaxVec<In> == 8 ? 4 : (kMaxVec<In> == 4 ? 3 : 1);
constexpr int vec_of_index(int max_vec, int index) { return max_vec >> index; }
constexpr int width_index(int max_vec, int vec) {
  int index = 0;
  while (index < 8 && (max_vec >> index) != vec) ++index;
  return index;
}

}  // namespace fp8quant
