// The one launch helper every kernel goes through, and the empty kernel the benchmark measures as
// its launch floor. Host code; no torch headers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "pdl.cuh"

namespace fp8quant {

// What a launch needs beyond the kernel and its parameters; the Python planners fill it.
struct LaunchConfig {
  int64_t grid;
  int32_t block_threads;
  int32_t smem_bytes;  // dynamic shared memory
  int32_t device;
  int32_t pdl;         // nonzero: programmatic dependent launch (sm_90+, see pdl.cuh)
  int32_t cluster = 1; // CTAs per thread block cluster (sm_90+), at most 8; 1: no cluster
};

inline cudaError_t set_device(int device) {
  int current = -1;
  cudaError_t err = cudaGetDevice(&current);
  if (err == cudaSuccess && current != device) err = cudaSetDevice(device);
  return err;
}

// Launches kKernel(params) on `stream`. Op headers keep compile-time tables of
// &launch<kernel instance, Params> and pick one per call; no launch is written out per instance.
template <auto kKernel, typename Params>
cudaError_t launch(const Params& params, const LaunchConfig& c, cudaStream_t stream) {
  if (c.smem_bytes > 48 * 1024) {
    // Above 48 KB a kernel must opt in; the planner has checked the device's limit.
    const cudaError_t err = cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, c.smem_bytes);
    if (err != cudaSuccess) return err;
  }
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(c.grid));
  config.blockDim = dim3(static_cast<unsigned>(c.block_threads));
  config.dynamicSmemBytes = static_cast<size_t>(c.smem_bytes);
  config.stream = stream;
  cudaLaunchAttribute attrs[2];
  unsigned num_attrs = 0;
  if (c.pdl != 0) {
    attrs[num_attrs].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[num_attrs++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (c.cluster > 1) {
    attrs[num_attrs].id = cudaLaunchAttributeClusterDimension;
    attrs[num_attrs].val.clusterDim.x = static_cast<unsigned>(c.cluster);
    attrs[num_attrs].val.clusterDim.y = 1;
    attrs[num_attrs++].val.clusterDim.z = 1;
  }
  config.attrs = attrs;
  config.numAttrs = num_attrs;
  const cudaError_t err = cudaLaunchKernelEx(&config, kKernel, params);
  return err != cudaSuccess ? err : cudaGetLastError();
}

// The launch floor: a kernel that only takes part in PDL, launched like any other.
__global__ void empty_kernel(int) {
  grid_dependency_wait();
  allow_dependents_to_launch();
}

inline cudaError_t launch_empty(int device, int pdl, cudaStream_t stream) {
  const cudaError_t err = set_device(device);
  return err != cudaSuccess ? err : launch<empty_kernel>(0, LaunchConfig{1, 32, 0, device, pdl}, stream);
}

}  // namespace fp8quant
