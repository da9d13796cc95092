// A row into shared memory with one bulk copy (the Hopper copy engine: cp.async.bulk completing
// on an mbarrier), so that the bytes in flight an SM hold no registers. sm_90+; no torch headers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fp8quant {

// Whether this build has the bulk copy (bulk_load_to_shared does nothing otherwise).
__device__ __forceinline__ constexpr bool has_bulk_copy() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  return true;
#else
  return false;
#endif
}

// `bytes` from global `src` into this CTA's shared `dst` (both 16-byte aligned, bytes a multiple
// of 16): thread 0 arms a one-use mbarrier with the byte count and issues the copy; every thread
// of the CTA calls this and returns once the bytes have landed (the barrier's phase 0 completes,
// which makes the copy engine's writes visible to the waiting threads).
__device__ __forceinline__ void bulk_load_to_shared(void* dst, const void* src, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  __shared__ alignas(8) uint64_t barrier;
  const uint32_t bar = static_cast<uint32_t>(__cvta_generic_to_shared(&barrier));
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar) : "memory");
    // the initialized barrier visible to the copy engine (the async proxy) before it is used
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(static_cast<uint32_t>(__cvta_generic_to_shared(dst))), "l"(src), "r"(bytes), "r"(bar)
                 : "memory");
  }
  asm volatile(
      "{\n\t.reg .pred landed;\n"
      "BULK_WAIT:\n\t"
      "mbarrier.try_wait.parity.shared::cta.b64 landed, [%0], 0;\n\t"
      "@!landed bra BULK_WAIT;\n\t}" ::"r"(bar)
      : "memory");
#endif
}

}  // namespace fp8quant
