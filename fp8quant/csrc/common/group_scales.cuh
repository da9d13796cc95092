// Where a group's scale goes in the layouts block-FP8 GEMMs read (fp8quant/reference.py:
// group_scales_layout), shared by the group kernel and the fused producers' kernels. No torch
// headers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fp8quant {

// row-major float32 (M, G); column-major float32 (M, G) with column stride scale_ld (M, or M
// rounded up to 4 where TMA-aligned); packed UE8M0: int32 (M, ceil(G / 4)) with column stride
// scale_ld, word k of a row holding the exponent bytes of groups 4k..4k+3, group 4k lowest.
enum class ScaleLayout : int32_t { kRowMajor = 0, kColumnMajor = 1, kPackedUe8m0 = 2 };

// Group `group` (of `groups`) of row `row`: its scale, one store. Packed: the exponent byte (a
// UE8M0 scale's bits >> 23) in byte group % 4 of its word, and the row's last group also zeroes
// the bytes of its word that no group fills (each byte has one writer).
__device__ __forceinline__ void store_group_scale(void* scales, int32_t layout, int64_t scale_ld, int64_t row,
                                                  int64_t group, int64_t groups, float scale) {
  if (layout == static_cast<int32_t>(ScaleLayout::kRowMajor)) {
    static_cast<float*>(scales)[row * groups + group] = scale;
  } else if (layout == static_cast<int32_t>(ScaleLayout::kColumnMajor)) {
    static_cast<float*>(scales)[group * scale_ld + row] = scale;
  } else {
    uint8_t* word = static_cast<uint8_t*>(scales) + ((group >> 2) * scale_ld + row) * 4;
    word[group & 3] = static_cast<uint8_t>(__float_as_uint(scale) >> 23);
    if (group == groups - 1) {
      for (int b = static_cast<int>(group & 3) + 1; b < 4; ++b) word[b] = 0;
    }
  }
}

}  // namespace fp8quant
