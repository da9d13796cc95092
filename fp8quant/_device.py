"""Device facts the planners and launchers need, read once per device, and the same facts for
the GPUs measured, so that plans can be made and tested without a GPU."""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import torch

MIN_CUDA_CAPABILITY = (8, 0)  # max.NaN.f32 and the e4m3 conversion need sm_80


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    sm_count: int
    capability: tuple[int, int]
    max_smem_per_block_optin: int  # bytes
    l2_bytes: int = 50 * 2**20
    # Peak DRAM bandwidth (2 x memory clock x bus width), bytes/s; 0 where unknown (the planners
    # then plan as for the H100).
    dram_bytes_per_s: float = 0.0
    smem_per_sm: int = 228 * 1024  # shared memory per SM, bytes (the H100's and H200's)

    @property
    def arch(self) -> str:
        return f"{self.capability[0]}{self.capability[1]}"

    @property
    def dram_bytes_per_s_per_sm(self) -> float:
        return self.dram_bytes_per_s / self.sm_count


# Peak bandwidths from the driver's memory clock and bus width: H100 SXM 2619 MHz x 5120 bits;
# the H200's 4.81e12 B/s and 60 MiB of L2 as its driver reports them.
H100_SXM = DeviceInfo("NVIDIA H100 80GB HBM3", 132, (9, 0), 232448, 50 * 2**20, 2 * 2619e6 * 5120 / 8)
H200_SXM = DeviceInfo("NVIDIA H200", 132, (9, 0), 232448, 60 * 2**20, 4.814304e12)


@functools.lru_cache(maxsize=None)
def capability(index: int) -> tuple[int, int]:
    return torch.cuda.get_device_capability(index)


def arch_of(index: int) -> str:
    major, minor = capability(index)
    return f"{major}{minor}"


def pdl_supported(index: int) -> bool:
    """Programmatic dependent launch needs compute capability 9.0 (Hopper) or newer."""
    return capability(index) >= (9, 0)


def use_pdl(index: int, enable_pdl: bool | None) -> bool:
    """The public calls' PDL choice: on where the GPU has it, unless enable_pdl is False."""
    return pdl_supported(index) and enable_pdl is not False


@functools.lru_cache(maxsize=None)
def device_info(index: int) -> DeviceInfo:
    props = torch.cuda.get_device_properties(index)
    return DeviceInfo(
        props.name,
        props.multi_processor_count,
        (props.major, props.minor),
        getattr(props, "shared_memory_per_block_optin", 48 * 1024),
        getattr(props, "L2_cache_size", 50 * 2**20),
        peak_dram_bytes_per_s(index),
        getattr(props, "shared_memory_per_multiprocessor", DeviceInfo.smem_per_sm),
    )


# CUdevice_attribute values (cuda.h): the peak memory clock in kHz and the bus width in bits.
_CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36
_CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37


@functools.cache
def driver_library() -> ctypes.CDLL | None:
    """The CUDA driver library (libcuda), or None where it cannot be loaded (no GPU driver)."""
    try:
        return ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None


def peak_dram_bytes_per_s(index: int) -> float:
    """2 x memory clock x bus width of device `index`, from the driver (torch's device properties
    do not carry the memory clock); 0.0 where the driver cannot say."""
    driver = driver_library()
    if driver is None:
        return 0.0
    device, clock_khz, bus_bits = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    failed = (
        driver.cuInit(0)
        or driver.cuDeviceGet(ctypes.byref(device), index)
        or driver.cuDeviceGetAttribute(ctypes.byref(clock_khz), _CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, device)
        or driver.cuDeviceGetAttribute(ctypes.byref(bus_bits), _CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, device)
    )
    return 0.0 if failed else 2.0 * clock_khz.value * 1e3 * bus_bits.value / 8


# torch._C._cuda_getCurrentRawStream is the one-call form of the current stream's handle that
# torch.compile's generated code uses; looked up once (a CPU-only torch lacks it).
_RAW_STREAM = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def current_raw_stream(index: int) -> int:
    """The handle of torch's current stream on device `index` (what CUDA-graph capture and
    torch.cuda.stream() set). The public path, which builds a torch.cuda.Stream per call, is the
    fallback for a torch without the raw call."""
    if _RAW_STREAM is not None:
        return _RAW_STREAM(index)
    return torch.cuda.current_stream(index).cuda_stream
