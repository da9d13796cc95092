// Decode latency probe (device machine): where does the time of a one-row call go?
//
// At 1 to 64 tokens the v6 register kernel took 1.8-2.0 us per call under CUDA-graph replay where
// a memcpy of the same bytes and the Triton kernel took 1.4-1.7 (docs/performance.md, v6-v7). This
// program times, in one process and the same graph-replay method as `fp8quant bench` (steady
// state: two replays minus one, divided by the calls per graph), the production kernel against
// ablations of it that stop after each stage:
//   L0 load the row, store raw bytes          (the memory chain: launch, load, store, drain)
//   L1 + amax (shuffles, cross-warp), approximate scale, q = x * recip
//   L2 + the exact scale and reciprocal (RowScale), still q = x * recip
//   L3 + exact per-element division (Markstein, scaled<true>): the finite-row result
//   L4 + the NaN/Inf-scale path (for_row_kind): the production kernel with a compile-time tpr
//   prod: the production kernel (runtime threads-per-row), through launch_per_token_quant
// plus an empty kernel and a graph memcpy of the same bytes.
//
// Build and run (device): nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/probe scripts/decode_probe.cu && /tmp/probe
#include "../fp8quant/csrc/per_token_quant_fp8.cuh"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

#include "probe_check.cuh"

using namespace fp8quant;
using Bf16 = __nv_bfloat16;
constexpr int kVec = 8;

template <int kVecs, int kTpr, int kLevel>
__global__ void __launch_bounds__(512) probe_kernel(const PerTokenParams p) {
  __shared__ float warp_amax[16];
  const int lane = threadIdx.x % kTpr;
  const int local_row = threadIdx.x / kTpr;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kTpr) + local_row;
  const bool row_valid = row < p.num_rows;
  const int num_vecs = static_cast<int>(p.hidden / kVec);
  const auto* x_vecs = reinterpret_cast<const InVec<Bf16, kVec>*>(static_cast<const Bf16*>(p.x) + row * p.x_row_stride);
  auto* q_vecs = reinterpret_cast<CodeVec<kVec>*>(p.q + row * p.hidden);

  InVec<Bf16, kVec> v[kVecs];
#pragma unroll
  for (int j = 0; j < kVecs; ++j) {
    const int i = lane + j * kTpr;
    if (row_valid && i < num_vecs) {
      v[j] = x_vecs[i];
    } else {
      v[j].set_zero();
    }
  }
  if constexpr (kLevel == 0) {
#pragma unroll
    for (int j = 0; j < kVecs; ++j) {
      const int i = lane + j * kTpr;
      CodeVec<kVec> c;
      c.w[0] = v[j].w[0] ^ v[j].w[1];
      c.w[1] = v[j].w[2] ^ v[j].w[3];
      if (row_valid && i < num_vecs) q_vecs[i] = c;
    }
    if (lane == 0 && row_valid) p.scale[row] = 1.0f;
    return;
  } else {
    float amax = abs_max<kVecs>(v);
#pragma unroll
    for (int offset = (kTpr < 32 ? kTpr : 32) / 2; offset > 0; offset /= 2) {
      amax = max_nan(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
    }
    if constexpr (kTpr > 32) {
      if ((threadIdx.x & 31) == 0) warp_amax[threadIdx.x / 32] = amax;
      __syncthreads();
      amax = warp_amax[local_row * (kTpr / 32)];
#pragma unroll
      for (int w = 1; w < kTpr / 32; ++w) amax = max_nan(amax, warp_amax[local_row * (kTpr / 32) + w]);
    }
    RowScale rs(0.0f, 0.0f);
    if constexpr (kLevel == 1) {
      rs.scale = fmaxf(amax * (1.0f / 448.0f), kMinScale);
      rs.recip = __fdividef(1.0f, rs.scale);
    } else {
      rs = RowScale(amax, p.scale_ub_value);
    }
    if (!row_valid) return;
    if (lane == 0) p.scale[row] = rs.scale;
    auto quantize_all = [&](auto finite) {
#pragma unroll
      for (int j = 0; j < kVecs; ++j) {
        const int i = lane + j * kTpr;
        if (i >= num_vecs) continue;
        if constexpr (kLevel <= 2) {
          CodeVec<kVec> out;
#pragma unroll
          for (int e = 0; e < kVec; e += 2) {
            const float2 pair = make_float2(v[j].get(e) * rs.recip, v[j].get(e + 1) * rs.recip);
            const uint32_t codes = __nv_cvt_float2_to_fp8x2(pair, __NV_SATFINITE, __NV_E4M3);
            if (e % 4 == 0) {
              out.w[e / 4] = codes;
            } else {
              out.w[e / 4] |= codes << 16;
            }
          }
          q_vecs[i] = out;
        } else {
          q_vecs[i] = quantize_vec<decltype(finite)::value>(v[j], rs);
        }
      }
    };
    if constexpr (kLevel <= 3) {  // a finite row within scale_ub (RowKind was a bool before v11)
      quantize_all(std::integral_constant<RowKind, RowKind::kInRange>{});
    } else {
      for_row_kind(rs, quantize_all);
    }
  }
}

__global__ void fill_kernel(Bf16* x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    x[i] = __float2bfloat16(__sinf(static_cast<float>(i) * 0.37f) * 3.0f);
  }
}

// Steady-state microseconds per call: (time of two replays - time of one) / calls, median of reps.
double per_call_us(const std::function<void(cudaStream_t)>& one_call, int calls, int reps = 25) {
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < calls; ++i) one_call(s);
  CHECK(cudaStreamEndCapture(s, &graph));
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t e0, e1, e2;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  CHECK(cudaEventCreate(&e2));
  for (int i = 0; i < 3; ++i) CHECK(cudaGraphLaunch(exec, s));
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    CHECK(cudaEventRecord(e0, s));
    CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaEventRecord(e1, s));
    CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaEventRecord(e2, s));
    CHECK(cudaEventSynchronize(e2));
    float one = 0, two = 0;
    CHECK(cudaEventElapsedTime(&one, e0, e1));
    CHECK(cudaEventElapsedTime(&two, e1, e2));
    t.push_back((two - one) * 1000.0 / calls);
  }
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(graph));
  CHECK(cudaStreamDestroy(s));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

template <int kVecs, int kTpr>
void probe_shape(int64_t rows, int64_t hidden, const Bf16* x, uint8_t* q, float* scale) {
  constexpr int kCalls = 200;
  PerTokenParams p{x, q, scale, nullptr, __builtin_huge_valf(), kTpr, rows, hidden, hidden, 0};
  const int block = kTpr > 128 ? kTpr : 128;
  const int rows_per_cta = block / kTpr;
  const int64_t grid = (rows + rows_per_cta - 1) / rows_per_cta;
  LaunchShape shape{0, kVec, kVecs, block, 0, 0, /*pdl=*/0, grid};
  auto level = [&](auto kernel) {
    return per_call_us([&](cudaStream_t s) { kernel<<<static_cast<unsigned>(grid), block, 0, s>>>(p); }, kCalls);
  };
  const int64_t bytes = rows * hidden * 3 + rows * 4;
  const double empty = per_call_us([](cudaStream_t s) { empty_kernel<<<1, 1, 0, s>>>(PerTokenParams{}); }, kCalls);
  const double memcpy_us = per_call_us(
      [&](cudaStream_t s) { CHECK(cudaMemcpyAsync(q + (64 << 20), x, bytes, cudaMemcpyDeviceToDevice, s)); }, kCalls);
  const double prod = per_call_us([&](cudaStream_t s) { CHECK(launch_per_token_quant<Bf16>(p, shape, s)); }, kCalls);
  const double l0 = level(probe_kernel<kVecs, kTpr, 0>);
  const double l1 = level(probe_kernel<kVecs, kTpr, 1>);
  const double l2 = level(probe_kernel<kVecs, kTpr, 2>);
  const double l3 = level(probe_kernel<kVecs, kTpr, 3>);
  const double l4 = level(probe_kernel<kVecs, kTpr, 4>);
  std::printf("%5lldx%-6lld t%-3dx%d grid %-4lld | empty %.2f memcpy %.2f | L0 %.2f L1 %.2f L2 %.2f L3 %.2f L4 %.2f | prod %.2f us\n",
              static_cast<long long>(rows), static_cast<long long>(hidden), kTpr, kVecs, static_cast<long long>(grid),
              empty, memcpy_us, l0, l1, l2, l3, l4, prod);
}

int main() {
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  const int64_t max_elems = 256 * 16384;
  Bf16* x;
  uint8_t* q;
  float* scale;
  CHECK(cudaMalloc(&x, max_elems * sizeof(Bf16)));
  CHECK(cudaMalloc(&q, max_elems + (64 << 20) + 3 * max_elems));
  CHECK(cudaMalloc(&scale, 4096 * sizeof(float)));
  fill_kernel<<<256, 256>>>(x, max_elems);
  CHECK(cudaDeviceSynchronize());
  for (int round = 0; round < 2; ++round) {
    probe_shape<2, 128>(1, 1368, x, q, scale);
    probe_shape<2, 256>(1, 4096, x, q, scale);
    probe_shape<4, 128>(1, 4096, x, q, scale);
    probe_shape<8, 256>(1, 16384, x, q, scale);
    probe_shape<2, 128>(64, 2048, x, q, scale);
    probe_shape<4, 128>(16, 4096, x, q, scale);
    probe_shape<4, 128>(256, 4096, x, q, scale);
  }
  return 0;
}
