// CHECK for the standalone device probes (scripts/decode_probe.cu, scripts/l2_prefetch_probe.cu):
// a failed CUDA runtime call prints where and why, and ends the program.
#pragma once
#include <cstdio>
#include <cstdlib>

#define CHECK(call)                                                                      \
  do {                                                                                   \
    cudaError_t err_ = (call);                                                           \
    if (err_ != cudaSuccess) {                                                           \
      std::printf("%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)
