// Does a prefetched line survive a kernel boundary in L2? (docs/performance.md, v15 run 6)
//
// v12 found that the register kernel's prefetch.global.L2 before the PDL wait does not get every
// line of a DRAM-resident row into L2 for the loads after the wait, not even when it runs 5-9 us
// ahead, while a volatile (.sys) load of each vector did. One reading: the H100's L2 is two
// partitions, and a line whose home is the far one may be kept near the SM only as a copy that a
// kernel boundary drops. This program measures it without torch or PDL: a "warm" kernel touches a
// 2 MiB region (128 CTAs x 16 KiB rows, as 128x8192 bf16) in one of several ways, optionally
// spins, and ends; a "measure" kernel then reads one 4-byte word per 128-byte line of it (lane 0
// of each warp, a chain of 16 dependent loads: cycles per load, per warp), optionally from
// another CTA than the one that warmed the row (row + 64: likely another SM and GPC), with a
// non-coherent load (ld.global.nc, LDG.E.CONSTANT: how the register kernel's `*ptr` of a const row
// compiles) or a coherent one (ld.global.cg, LDG.E.STRONG.GPU). Each trial
// uses a region not touched before, after a 256 MiB memset that pushes earlier lines out of L2.
//
//   none       nothing: every line from DRAM (the miss latency)
//   prefetch   prefetch.global.L2 per 16-byte vector, as the register kernel does
//   bulk       one cp.async.bulk.prefetch.L2 per row
//   ld.cg      a real 16-byte load per vector (ld.global.cg), its value kept
//   ld.gpu     a real 4-byte load per 32-byte sector, ld.relaxed.gpu (a coherent load)
//   ld.sys     the same with ld.volatile (v12 run 3's volatile load)
//   prefetch, same kernel: the measurement in the warm kernel itself after the spin (no boundary)
//   prefetch.L1  prefetch.global.L1 per vector (the line into the SM's L1, so read through L2 by
//              that SM as a load would be)
//   tma to smem  the row into shared memory by one cp.async.bulk (the TMA), waited for on an mbarrier
//   cp.async to smem  the row into shared memory by cp.async.cg, 16 bytes per thread and vector
//   st         the row written, 16 bytes per thread and vector (st.global.v4): an engine's
//              activations, written by the kernel just before the quantization (v17)
//   touch      one 4-byte ld.global.cg per 128-byte line (its first sector), value kept (v17)
//   cp touch   one 4-byte cp.async.ca per 128-byte line (its first sector) into a shared scratch
//              word: a load through the SM that holds no register (v17)
//   prefetch + cp touch  both: the lines into L2 by the prefetch, the touch for the near copy
//
// `l2probe stress`: the warm kernel runs beside a kernel that streams 256 MiB from DRAM with
// evict-first loads on another stream (as the previous call of a PDL chain loads while the next
// one prefetches); the measurement comes after both, on an idle GPU.
//
// `l2probe bulk`: the measurement reads each row as the register kernel does (256 threads x 4
// vectors, all in flight) and notes each CTA's cycles until its barrier: bandwidth, not latency.
//
// `l2probe lines` (v17): per 128-byte line, lane 0 of each warp times its first ld.global.cg
// (no L1) and then 4 more of the same line, each on its own (the clock read takes the loaded
// value as an operand, so it cannot move above the wait). If a line reads faster once an SM has
// loaded it (a copy kept near that SM, as one reading of the H100's two L2 partitions has it),
// the first loads of prefetched lines split into a fast and a slow group and the repeats are all
// fast; if not, first loads and repeats read alike.
//
// Build and run (device): nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/l2probe scripts/l2_prefetch_probe.cu && /tmp/l2probe [stress|bulk|lines]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "probe_check.cuh"

constexpr int kRows = 128, kThreads = 256, kRowBytes = 16384, kLinesPerRow = kRowBytes / 128;
constexpr size_t kRegionBytes = size_t{kRows} * kRowBytes;
enum Warm { kNone, kPrefetch, kBulk, kLdCg, kLdGpu, kLdSys, kPrefetchSameKernel, kPrefetchL1, kTma, kCpAsync, kStore,
            kTouch, kCpTouch, kPrefetchCpTouch, kNumWarm };
const char* kWarmNames[] = {"none", "prefetch", "bulk", "ld.cg", "ld.gpu", "ld.sys", "prefetch, same kernel", "prefetch.L1",
                            "tma to smem", "cp.async to smem", "st", "touch", "cp touch", "prefetch + cp touch"};

__device__ __forceinline__ uint64_t cycles() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%clock64;" : "=l"(t)::"memory");
  return t;
}

// One line at a time per warp (lane 0): a chain of 16 loads, each one's address depending on the
// value the one before returned (plus a runtime zero), so each waits for the one before; the
// warp's cycles per load go to latency[]. (Timing each load on its own read ~35 cycles for half
// of them: ptxas moved the clock read above the instruction that waits for the load.)
constexpr int kWarps = kThreads / 32;
__device__ void measure_row(const char* region, int row, bool coherent, uint32_t zero, uint32_t* latency,
                            uint32_t* sink) {
  const int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 != 0) return;
  uint32_t v = 0;
  const uint64_t t0 = cycles();
  for (int line = warp; line < kLinesPerRow; line += kWarps) {
    const char* p = region + static_cast<size_t>(row) * kRowBytes + line * 128 + (v & zero);
    if (coherent) {
      asm volatile("ld.global.cg.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    } else {
      asm volatile("ld.global.nc.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    }
  }
  *sink = v & zero;  // waits for the last load (zero: every warp stores 0)
  const uint64_t t1 = cycles();
  latency[blockIdx.x * kWarps + warp] = static_cast<uint32_t>((t1 - t0) / (kLinesPerRow / kWarps));
}

__global__ void __launch_bounds__(kThreads) warm_kernel(const char* region, int how, uint64_t spin_cycles,
                                                        uint32_t* latency, int shift, bool coherent, uint32_t zero,
                                                        uint32_t* sink) {
  const char* row = region + static_cast<size_t>(blockIdx.x) * kRowBytes;
  uint32_t acc = 0;
  __shared__ __align__(128) char staged[kRowBytes];
  __shared__ __align__(8) uint64_t staged_bar;
  if (how == kTma) {
    const uint32_t bar = static_cast<uint32_t>(__cvta_generic_to_shared(&staged_bar));
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(staged));
    if (threadIdx.x == 0) {
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar));
      asm volatile("fence.mbarrier_init.release.cluster;");
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(kRowBytes));
      asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                   ::"r"(dst), "l"(row), "r"(kRowBytes), "r"(bar) : "memory");
    }
    uint32_t done = 0;
    while (!done) {
      asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0; selp.u32 %0, 1, 0, p; }"
                   : "=r"(done) : "r"(bar) : "memory");
    }
    acc ^= reinterpret_cast<const uint32_t*>(staged)[threadIdx.x];
  } else if (how == kCpAsync) {
    for (int j = 0; j < kRowBytes / 16 / kThreads; ++j) {
      const int off = (threadIdx.x + j * kThreads) * 16;
      const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(staged + off));
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(row + off) : "memory");
    }
    asm volatile("cp.async.commit_group;\ncp.async.wait_all;" ::: "memory");
    __syncthreads();
    acc ^= reinterpret_cast<const uint32_t*>(staged)[threadIdx.x];
  } else if (how == kPrefetchL1) {
    for (int j = 0; j < kRowBytes / 16 / kThreads; ++j)
      asm volatile("prefetch.global.L1 [%0];" ::"l"(row + (threadIdx.x + j * kThreads) * 16));
  } else if (how == kPrefetch || how == kPrefetchSameKernel) {
    for (int j = 0; j < kRowBytes / 16 / kThreads; ++j)
      asm volatile("prefetch.global.L2 [%0];" ::"l"(row + (threadIdx.x + j * kThreads) * 16));
  } else if (how == kBulk) {
    if (threadIdx.x == 0) asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(row), "r"(kRowBytes));
  } else if (how == kLdCg) {
    for (int j = 0; j < kRowBytes / 16 / kThreads; ++j) {
      uint32_t a, b, c, d;
      asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];"
                   : "=r"(a), "=r"(b), "=r"(c), "=r"(d)
                   : "l"(row + (threadIdx.x + j * kThreads) * 16));
      acc ^= a ^ b ^ c ^ d;
    }
  } else if (how == kTouch || how == kCpTouch || how == kPrefetchCpTouch) {
    if (how == kPrefetchCpTouch) {
      for (int j = 0; j < kRowBytes / 16 / kThreads; ++j)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(row + (threadIdx.x + j * kThreads) * 16));
    }
    for (int line = threadIdx.x; line < kLinesPerRow; line += kThreads) {
      if (how == kTouch) {
        uint32_t v;
        asm volatile("ld.global.cg.u32 %0, [%1];" : "=r"(v) : "l"(row + line * 128));
        acc ^= v;
      } else {
        const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(staged));
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(dst), "l"(row + line * 128) : "memory");
      }
    }
    asm volatile("cp.async.wait_all;" ::: "memory");
  } else if (how == kStore) {
    for (int j = 0; j < kRowBytes / 16 / kThreads; ++j) {
      const uint32_t w = 0x01010101u;  // the memset's bytes again
      asm volatile("st.global.v4.u32 [%0], {%1, %1, %1, %1};" ::"l"(row + (threadIdx.x + j * kThreads) * 16), "r"(w)
                   : "memory");
    }
  } else if (how == kLdGpu || how == kLdSys) {
    for (int j = 0; j < kRowBytes / 32 / kThreads; ++j) {
      const char* p = row + (threadIdx.x + j * kThreads) * 32;
      uint32_t v;
      if (how == kLdGpu) {
        asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p));
      } else {
        asm volatile("ld.volatile.global.u32 %0, [%1];" : "=r"(v) : "l"(p));
      }
      acc ^= v;
    }
  }
  const uint64_t t0 = cycles();
  while (cycles() - t0 < spin_cycles) {
  }
  if (acc == 0x9e3779b9u) *sink = acc;
  if (how == kPrefetchSameKernel) {
    __syncthreads();
    measure_row(region, (blockIdx.x + shift) % kRows, coherent, zero, latency, sink);
  }
}

__global__ void __launch_bounds__(kThreads) measure_kernel(const char* region, uint32_t* latency, int shift,
                                                           bool coherent, uint32_t zero, uint32_t* sink) {
  measure_row(region, (blockIdx.x + shift) % kRows, coherent, zero, latency, sink);
}

// lines mode: lane 0 of each warp, its lines of the row one at a time; per line the cycles of the
// first ld.global.cg (latency[line]) and the mean of 4 more of the same line (repeat[line]).
// The clock is read after a shared-memory store of the loaded value, which waits for it (an
// operand of the clock read's asm alone would not hold ptxas: v15 saw ~35-cycle "loads").
constexpr int kRepeats = 4;
__device__ __forceinline__ uint32_t timed_load(const char* p, uint32_t& v, uint32_t smem_slot) {
  uint64_t t0, t1;
  asm volatile("mov.u64 %0, %%clock64;" : "=l"(t0)::"memory");
  asm volatile("ld.global.cg.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  asm volatile("st.volatile.shared.u32 [%0], %1;" ::"r"(smem_slot), "r"(v) : "memory");
  asm volatile("mov.u64 %0, %%clock64;" : "=l"(t1)::"memory");
  return static_cast<uint32_t>(t1 - t0);
}
__global__ void __launch_bounds__(kThreads) lines_measure_kernel(const char* region, uint32_t* first, uint32_t* repeat,
                                                                 int shift, int offset, uint32_t zero, uint32_t* sink) {
  const int row = (blockIdx.x + shift) % kRows;
  const int warp = threadIdx.x / 32;
  __shared__ uint32_t slots[kWarps];
  const uint32_t slot = static_cast<uint32_t>(__cvta_generic_to_shared(&slots[warp]));
  if (threadIdx.x % 32 != 0) return;
  uint32_t v = 0;
  for (int line = warp; line < kLinesPerRow; line += kWarps) {
    const char* p = region + static_cast<size_t>(row) * kRowBytes + line * 128 + offset;
    const uint32_t t_first = timed_load(p + (v & zero), v, slot);
    uint32_t t_repeat = 0;
    for (int k = 0; k < kRepeats; ++k) t_repeat += timed_load(p + (v & zero), v, slot);
    first[blockIdx.x * kLinesPerRow + line] = t_first;
    repeat[blockIdx.x * kLinesPerRow + line] = t_repeat / kRepeats;
  }
  *sink = v & zero;
}

// p10/p50/p90 and a histogram of 50-cycle buckets (the share of lines in each, from 200 cycles).
void print_lines(const char* what, std::vector<uint32_t> all) {
  std::sort(all.begin(), all.end());
  std::printf("  %-7s p10 %4u p50 %4u p90 %4u |", what, all[all.size() / 10], all[all.size() / 2],
              all[all.size() * 9 / 10]);
  for (uint32_t lo = 200; lo < 1000; lo += 50) {
    const size_t n = std::lower_bound(all.begin(), all.end(), lo + 50) - std::lower_bound(all.begin(), all.end(), lo);
    std::printf(" %2.0f", 100.0 * n / all.size());
  }
  const size_t over = all.end() - std::lower_bound(all.begin(), all.end(), 1000u);
  std::printf(" | >=1000: %.0f%%\n", 100.0 * over / all.size());
}

int lines_main(char* buffer, char* flush, size_t flush_bytes, int regions, uint32_t* sink) {
  const int trials = 8;
  uint32_t *first, *repeat;
  CHECK(cudaMalloc(&first, kRows * kLinesPerRow * sizeof(uint32_t)));
  CHECK(cudaMalloc(&repeat, kRows * kLinesPerRow * sizeof(uint32_t)));
  std::printf("lines: cycles of each line's first ld.global.cg and of 4 more (mean), lane 0 of each warp, one line "
              "at a time; %d trials of 128 rows x 128 lines; histogram: %% of lines per 50 cycles from 200 to 1000\n",
              trials);
  std::vector<uint32_t> host(kRows * kLinesPerRow);
  int next_region = 0;
  struct LinesCase {
    int how, shift, offset;
  };
  std::vector<LinesCase> cases;
  for (int how : {kNone, kPrefetch, kLdCg, kStore})
    for (int shift : {0, 64}) cases.push_back({how, shift, 0});
  // Is a touched line near as a whole, or only its touched sector? Read at the touched sector
  // (offset 0) and at another (offset 64).
  for (int how : {kTouch, kCpTouch, kPrefetchCpTouch})
    for (int offset : {0, 64}) cases.push_back({how, 0, offset});
  for (const LinesCase& c : cases) {
    const int how = c.how, shift = c.shift;
    {
      std::vector<uint32_t> all_first, all_repeat;
      for (int t = 0; t < trials; ++t) {
        const char* region = buffer + kRegionBytes * (next_region++ % regions);
        CHECK(cudaMemsetAsync(flush, t & 0xff, flush_bytes));
        warm_kernel<<<kRows, kThreads>>>(region, how, 20000, nullptr, 0, false, 0, sink);
        lines_measure_kernel<<<kRows, kThreads>>>(region, first, repeat, shift, c.offset, 0, sink);
        CHECK(cudaDeviceSynchronize());
        CHECK(cudaMemcpy(host.data(), first, host.size() * sizeof(uint32_t), cudaMemcpyDeviceToHost));
        all_first.insert(all_first.end(), host.begin(), host.end());
        CHECK(cudaMemcpy(host.data(), repeat, host.size() * sizeof(uint32_t), cudaMemcpyDeviceToHost));
        all_repeat.insert(all_repeat.end(), host.begin(), host.end());
      }
      std::printf("%s, shift %d, offset %d\n", kWarmNames[how], shift, c.offset);
      print_lines("first", all_first);
      print_lines("repeat", all_repeat);
    }
  }
  return 0;
}

// The register kernel's way: every thread of the CTA loads its 4 vectors of the row at once
// (ld.global.nc.v4), then the CTA meets at a barrier; thread 0 notes the cycles from before the
// loads to after the barrier (one value per CTA, in latency[blockIdx.x * kWarps]).
__global__ void __launch_bounds__(kThreads) bulk_measure_kernel(const char* region, uint32_t* latency, int shift,
                                                                bool coherent, uint32_t* sink) {
  const int row = (blockIdx.x + shift) % kRows;
  const char* p = region + static_cast<size_t>(row) * kRowBytes;
  __syncthreads();
  const uint64_t t0 = cycles();
  uint32_t acc = 0;
  uint32_t r[4][4];
  if (coherent) {
#pragma unroll
    for (int j = 0; j < 4; ++j)
      asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];"
                   : "=r"(r[j][0]), "=r"(r[j][1]), "=r"(r[j][2]), "=r"(r[j][3])
                   : "l"(p + (threadIdx.x + j * kThreads) * 16));
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j)
      asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
                   : "=r"(r[j][0]), "=r"(r[j][1]), "=r"(r[j][2]), "=r"(r[j][3])
                   : "l"(p + (threadIdx.x + j * kThreads) * 16));
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) acc ^= r[j][0] ^ r[j][1] ^ r[j][2] ^ r[j][3];
  __syncthreads_or(acc == 0x9e3779b9u);  // waits for every thread's loads
  const uint64_t t1 = cycles();
  if (threadIdx.x == 0) {
    for (int w = 0; w < kWarps; ++w) latency[blockIdx.x * kWarps + w] = static_cast<uint32_t>(t1 - t0);
  }
  if (acc == 0x9e3779b9u) *sink = acc;
}

// Streams `bytes` of DRAM through the SMs with evict-first loads (ld.global.cs), its sum kept: the
// traffic the previous call of a PDL chain makes while the next one prefetches (stress mode).
__global__ void __launch_bounds__(512) stress_kernel(const uint4* buffer, size_t vectors, uint32_t* sink) {
  uint32_t acc = 0;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < vectors; i += size_t{gridDim.x} * blockDim.x) {
    uint32_t a, b, c, d;
    asm volatile("ld.global.cs.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(a), "=r"(b), "=r"(c), "=r"(d) : "l"(buffer + i));
    acc ^= a ^ b ^ c ^ d;
  }
  if (acc == 0x9e3779b9u) *sink = acc;
}

int main(int argc, char** argv) {
  // "stress": the warm kernel runs beside stress_kernel (another stream, 256 MiB of evict-first
  // reads, ~85 us), the measurement after both.
  const bool stress = argc > 1 && std::string(argv[1]) == "stress";
  // "bulk": the measurement reads each row as the register kernel does, all loads in flight
  // (cycles per CTA from the first load to the barrier after the last; each CTA's value 8 times).
  const bool bulk = argc > 1 && std::string(argv[1]) == "bulk";
  const int trials = 24, regions = 480;  // 480 x 2 MiB: no region is used twice
  char *buffer, *flush;
  uint32_t *latency, *sink;
  const size_t flush_bytes = size_t{256} << 20;
  CHECK(cudaMalloc(&buffer, kRegionBytes * regions));
  CHECK(cudaMalloc(&flush, flush_bytes));
  CHECK(cudaMalloc(&latency, kRows * kWarps * sizeof(uint32_t)));
  CHECK(cudaMalloc(&sink, sizeof(uint32_t)));
  CHECK(cudaMemset(buffer, 1, kRegionBytes * regions));
  if (argc > 1 && std::string(argv[1]) == "lines") return lines_main(buffer, flush, flush_bytes, regions, sink);
  int clock_khz = 0;
  CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, 0));
  std::printf("l2_prefetch_probe: 2 MiB regions, 128 rows of 16 KiB, one load per 128-byte line; cycles "
              "(SM clock attribute %d MHz); %d trials each, a fresh region per trial\n",
              clock_khz / 1000, trials);
  std::printf("%-24s %10s %6s %5s %8s %8s %8s %8s   %s\n", "warm", "spin (cyc)", "shift", "load", "p10", "p50", "p90",
              "mean", "warps under the threshold (midway between 'none' p10 and 'ld.cg' p90, nc, unshifted)");
  int next_region = 0;
  std::vector<uint32_t> host(kRows * kWarps);
  double miss_p10 = 0, hit_p90 = 0;
  struct Case {
    int how;
    uint64_t spin;
    int shift;
    bool coherent;
  };
  std::vector<Case> cases;
  if (bulk) {
    for (int how : {kNone, kLdCg, kPrefetch, kTma, kCpAsync})
      for (int shift : {0, 64}) cases.push_back({how, 20000, shift, false});
  } else if (stress) {
    for (int how : {kNone, kLdCg, kPrefetch, kBulk, kPrefetchSameKernel})
      for (uint64_t spin : {uint64_t{0}, uint64_t{20000}}) cases.push_back({how, spin, 0, false});
  } else {
    for (int how : {kNone, kLdCg, kPrefetch, kBulk, kLdGpu, kLdSys, kPrefetchSameKernel})
      for (uint64_t spin : {uint64_t{0}, uint64_t{20000}})
        for (int shift : {0, 64})
          for (bool coherent : {false, true}) cases.push_back({how, spin, shift, coherent});
  }
  cudaStream_t side;
  CHECK(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking));
  char* stress_buffer = nullptr;
  const size_t stress_bytes = size_t{256} << 20;
  if (stress) {
    CHECK(cudaMalloc(&stress_buffer, stress_bytes));
    CHECK(cudaMemset(stress_buffer, 2, stress_bytes));
    std::printf("stress: each warm kernel beside a 256 MiB evict-first read on another stream\n");
  }
  for (const Case& c : cases) {
    std::vector<uint32_t> all;
    for (int t = 0; t < trials; ++t) {
      const char* region = buffer + kRegionBytes * (next_region++ % regions);
      CHECK(cudaMemsetAsync(flush, t & 0xff, flush_bytes));
      if (stress) {
        CHECK(cudaDeviceSynchronize());
        stress_kernel<<<132, 512, 0, side>>>(reinterpret_cast<const uint4*>(stress_buffer), stress_bytes / 16, sink);
      }
      warm_kernel<<<kRows, kThreads>>>(region, c.how, c.spin, latency, c.shift, c.coherent, 0, sink);
      if (stress) CHECK(cudaDeviceSynchronize());  // the measurement after the stress kernel, unloaded
      if (bulk) {
        bulk_measure_kernel<<<kRows, kThreads>>>(region, latency, c.shift, c.coherent, sink);
      } else if (c.how != kPrefetchSameKernel) {
        measure_kernel<<<kRows, kThreads>>>(region, latency, c.shift, c.coherent, 0, sink);
      }
      CHECK(cudaDeviceSynchronize());
      CHECK(cudaMemcpy(host.data(), latency, host.size() * sizeof(uint32_t), cudaMemcpyDeviceToHost));
      all.insert(all.end(), host.begin(), host.end());
    }
    std::sort(all.begin(), all.end());
    const double p10 = all[all.size() / 10], p50 = all[all.size() / 2], p90 = all[all.size() * 9 / 10];
    double mean = 0;
    for (uint32_t v : all) mean += v;
    mean /= all.size();
    if (c.how == kNone && c.spin == 0 && c.shift == 0 && !c.coherent) miss_p10 = p10;
    if (c.how == kLdCg && c.spin == 0 && c.shift == 0 && !c.coherent) hit_p90 = p90;
    const double threshold = hit_p90 > 0 ? (miss_p10 + hit_p90) / 2 : miss_p10;
    const size_t under = std::lower_bound(all.begin(), all.end(), static_cast<uint32_t>(threshold)) - all.begin();
    std::printf("%-24s %10llu %6d %5s %8.0f %8.0f %8.0f %8.0f   %5.1f%% (under %.0f)\n", kWarmNames[c.how],
                static_cast<unsigned long long>(c.spin), c.shift, c.coherent ? "cg" : "nc", p10, p50, p90, mean,
                100.0 * under / all.size(),
                threshold);
  }
  return 0;
}
