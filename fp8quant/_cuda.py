"""The CUDA backend's binding: every op's entry point (jit.EntryPoint) built on first use per
input dtype and GPU architecture, loaded with ctypes and launched on torch's current stream.

Why ctypes: the kernels' host code is plain C (no torch, no Python headers), so it builds with nvcc
alone, against any torch version, and loading it needs nothing beyond the standard library. A
launch costs one ctypes call with scalar arguments; under CUDA graphs it costs nothing. Stream and
device come from torch, so graph capture and torch.compile see an ordinary torch op (the ops are
registered in fp8quant/_library.py).
"""

from __future__ import annotations

import ctypes
import functools
import threading

import torch

from . import _device
from .jit import EntryPoint, ModuleSpec, find_nvcc

ELEMENT_TYPES = {
    torch.float32: ("f32", "float"),
    torch.float16: ("f16", "__half"),
    torch.bfloat16: ("bf16", "__nv_bfloat16"),
}

ENTRY_POINTS: list[EntryPoint] = []  # every op's, for prebuild and the build tests


def register(entry: EntryPoint) -> "Kernel":
    ENTRY_POINTS.append(entry)
    kernel = Kernel(entry)
    KERNELS.append(kernel)
    return kernel


def module_specs(entry: EntryPoint) -> list[ModuleSpec]:
    return [entry.module_spec(*ELEMENT_TYPES[dtype]) for dtype in ELEMENT_TYPES]


_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _load(entry: EntryPoint, dtype: torch.dtype, arch: str) -> ctypes.CDLL:
    with _lock:
        lib = entry.module_spec(*ELEMENT_TYPES[dtype]).build_and_load(arch)
    fn = getattr(lib, entry.symbol)
    fn.argtypes = entry.argtypes()
    fn.restype = ctypes.c_int
    lib.fp8quant_empty.argtypes = [ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p]
    lib.fp8quant_empty.restype = ctypes.c_int
    lib.fp8quant_error_string.argtypes = [ctypes.c_int]
    lib.fp8quant_error_string.restype = ctypes.c_char_p
    return lib


class Kernel:
    """One op's CUDA entry point: `load` builds (or finds in the cache) the library for a dtype
    and device; calling the kernel launches it with the entry's arguments, in their declared
    order, on torch's current stream of that device (made the current device for the launch)."""

    def __init__(self, entry: EntryPoint):
        self.entry = entry
        self._functions: dict = {}  # (dtype, device index) -> (library, entry function): one dict lookup per call

    def load(self, dtype: torch.dtype, device_index: int) -> ctypes.CDLL:
        return _load(self.entry, dtype, _device.arch_of(device_index))

    def __call__(self, dtype: torch.dtype, device_index: int, *args) -> None:
        if torch.cuda.current_device() != device_index:  # rarely: a device guard to enter and leave
            with torch.cuda.device(device_index):
                return self._launch(dtype, device_index, args)
        return self._launch(dtype, device_index, args)

    def _launch(self, dtype: torch.dtype, device_index: int, args: tuple) -> None:
        found = self._functions.get((dtype, device_index))
        if found is None:
            lib = self.load(dtype, device_index)
            found = self._functions[(dtype, device_index)] = (lib, getattr(lib, self.entry.symbol))
        err = found[1](*args, _device.current_raw_stream(device_index))
        if err != 0:
            raise RuntimeError(f"{self.entry.symbol}: CUDA launch failed: {found[0].fp8quant_error_string(err).decode()}")


KERNELS: list[Kernel] = []


def clear_cache() -> None:
    """Forget the loaded libraries (tests that change what a build finds)."""
    _load.cache_clear()
    for kernel in KERNELS:
        kernel._functions.clear()


def launch_empty(device_index: int, pdl: bool = False) -> None:
    """An empty kernel (1 CTA of 32 threads) through the shared launch helper: the benchmark's
    launch floor, with or without programmatic dependent launch."""
    lib = _load(ENTRY_POINTS[0], torch.bfloat16, _device.arch_of(device_index))
    err = lib.fp8quant_empty(device_index, int(pdl), _device.current_raw_stream(device_index))
    if err != 0:
        raise RuntimeError(f"empty kernel launch failed: {lib.fp8quant_error_string(err).decode()}")


def prebuild(arch: str | None = None) -> list[str]:
    """Build every op's module for `arch` (default: the current GPU's). Returns library paths."""
    if arch is None:
        arch = _device.arch_of(torch.cuda.current_device())
    paths = []
    for entry in ENTRY_POINTS:
        for spec in module_specs(entry):
            spec.build_and_load(arch)
            paths.append(str(spec.library_path(arch, find_nvcc())))
    return paths
