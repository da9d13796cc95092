// Programmatic dependent launch and L2 prefetch (sm_90+; no-ops below).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fp8quant {


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

// The wait, with the next kernel let launch at this kernel's entry (trigger_at_entry nonzero: the
// planners' rule, ops/pdl_plan.py) or right after the wait.
__device__ __forceinline__ void grid_dependency_wait_and_allow(int trigger_at_entry) {
  allow_dependents_to_launch_if(trigger_at_entry);
  grid_dependency_wait();
  allow_dependents_to_launch_if(!trigger_at_entry);
}

// L2 prefetch before grid_dependency_wait(). Under PDL a kernel's CTAs are resident while the
// kernel before it finishes (allow_dependents_to_launch), but may not load its input until that
// kernel has completed. A prefetch may be issued before: it is a hint that returns nothing and
// changes no value any load returns, and L2 is where the SMs' views of global memory meet, so
// whatever the kernel before writes lands in L2 and is what the loads after the wait read. The
// row's DRAM reads then overlap the previous kernel's end instead of following it: 0.1-1.25 us
// per call at decode sizes with inputs in DRAM, 0.4-1.25 us at 10-13 MB, 0.5-0.9 us at 100 MB
// (docs/design.md). Without PDL the prefetch is just ahead of the loads and
// costs 0.02-0.24 us (the same run). The warp-per-row kernel's prefetch is untimed: no shape of
// the bench's grid takes it; per_tensor.cuh's static quantize kernel prefetches as the register
// kernel does (not yet measured there).
//
// prefetch_line_to_l2: the line holding ptr, one instruction per thread (per vector in the
// register kernel: a warp's 32 vectors are 4 lines). The register kernel uses it rather than
// the bulk form: cp.async.bulk.prefetch takes its operands in uniform registers, so ptxas wraps
// it in a loop over the warp's distinct addresses, and with that loop ahead of them ptxas issued
// 4 of the 8 row loads of the bf16 8-vector instance after the first had arrived.
// With the input in DRAM the loads after the wait still take 0.12-0.28 us longer than with it in
// L2 at 32-256 rows of 4096-16384 (0.57 at 256x16384). The prefetched lines are in L2 by then,
// but a 16 KiB row of them reads in ~1440 SM cycles where one that real loads brought reads in
// ~920, whichever prefetch instruction (.L2, .L1, bulk; docs/design.md). No other way to ask for
// them was faster: the lines marked evict_last, each 32-byte sector prefetched on its own, real
// loads before the wait (volatile per vector or line, ld.global.cg per sector kept live past the
// wait: the rows after the wait then read as from L2, the call did not get faster), cp.async
// into a shared scratch, and the next kernel let launch at entry instead of after the wait.
__device__ __forceinline__ void prefetch_line_to_l2(const void* ptr) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
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
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const uint64_t b = (reinterpret_cast<uint64_t>(begin) + 15) & ~uint64_t{15};
  const uint64_t e = reinterpret_cast<uint64_t>(end) & ~uint64_t{15};
  if (e > b) {
    const uint32_t bytes = static_cast<uint32_t>(e - b < kMaxPrefetchBytes ? e - b : kMaxPrefetchBytes);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(b), "r"(bytes));
  }
#endif
}

}  // namespace fp8quant
