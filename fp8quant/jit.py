"""Build CUDA modules on first use and cache them.

A module is a small generated translation unit that includes one op's kernel header from
``fp8quant/csrc`` (over the shared ``csrc/common`` headers) and exports plain C entry points
(``EntryPoint``), compiled with nvcc into a shared library and loaded with ctypes
(fp8quant/_cuda.py). The kernel headers know nothing of torch, so the same sources compile on a
machine without a GPU (CI) and on one with any torch version.

Cache layout: ``$FP8QUANT_CACHE_DIR`` (default ``~/.cache/fp8quant``) /
``<package version>/sm_<arch>/<module name>-<hash>/<module name>.so``; the hash covers the
sources, the flags, the arch and the nvcc version, so an edit or a new compiler builds afresh.
The build runs under a file lock and writes to a temporary name that is renamed into place, so
concurrent processes never load a half-written library (double-checked: try_load, lock,
try_load, build, load).
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__

CSRC_DIR = Path(__file__).resolve().parent / "csrc"

# -O3 and IEEE division and square root (nvcc's defaults, spelled out because the contract
# depends on them: no --use_fast_math, no -ftz). C++20 for the designated initializers of the
# generated entry points. -lineinfo lets ncu map time to source lines.
BASE_NVCC_FLAGS = (
    "-O3",
    "-std=c++20",
    "--shared",
    "-Xcompiler=-fPIC",
    "-prec-div=true",
    "-ftz=false",
    "-lineinfo",
)


class BuildError(RuntimeError):
    """nvcc is missing or failed; the message carries its command and output."""


def cache_root() -> Path:
    return Path(os.environ.get("FP8QUANT_CACHE_DIR", Path.home() / ".cache" / "fp8quant"))


def find_nvcc() -> str | None:
    """nvcc from $CUDA_HOME/bin, then PATH, then /usr/local/cuda."""
    candidates = []
    for env in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(env):
            candidates.append(Path(os.environ[env]) / "bin" / "nvcc")
    on_path = shutil.which("nvcc")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path("/usr/local/cuda/bin/nvcc"))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    return None


@functools.lru_cache(maxsize=None)
def nvcc_version(nvcc: str) -> str:
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def gencode_flags(arch: str) -> list[str]:
    """arch like "90" or "90a" -> real code for that arch plus its PTX for newer GPUs."""
    return [f"-gencode=arch=compute_{arch},code=[sm_{arch},compute_{arch}]"]


@dataclass(frozen=True)
class ModuleSpec:
    """One shared library: generated source text plus the headers it includes."""

    name: str
    source: str
    headers: tuple[str, ...]
    extra_flags: tuple[str, ...] = field(default=())

    def flags(self, arch: str) -> list[str]:
        return [*BASE_NVCC_FLAGS, *gencode_flags(arch), f"-I{CSRC_DIR}", *self.extra_flags]

    def digest(self, arch: str, nvcc: str) -> str:
        h = hashlib.sha256()
        h.update(self.source.encode())
        for header in self.headers:
            h.update(header.encode())
            h.update((CSRC_DIR / header).read_bytes())
        for header in sorted(CSRC_DIR.glob("common/*.cuh")):  # every op includes some of them
            h.update(header.name.encode())
            h.update(header.read_bytes())
        # The include directory's path is left out (its headers' bytes are in): a checkout
        # elsewhere, a worktree or another machine hits the same cache entry.
        flags = [f for f in self.flags(arch) if f != f"-I{CSRC_DIR}"]
        h.update(" ".join(flags).encode())
        h.update(nvcc_version(nvcc).encode())
        return h.hexdigest()[:16]

    def build_dir(self, arch: str, nvcc: str) -> Path:
        return cache_root() / __version__ / f"sm_{arch}" / f"{self.name}-{self.digest(arch, nvcc)}"

    def library_path(self, arch: str, nvcc: str) -> Path:
        return self.build_dir(arch, nvcc) / f"{self.name}.so"

    def compile(self, arch: str, nvcc: str, output: Path) -> str:
        """Compile to `output`; returns nvcc's output (with -Xptxas -v: registers, spills)."""
        output.parent.mkdir(parents=True, exist_ok=True)
        src = output.with_suffix(".cu")
        src.write_text(self.source)
        cmd = [nvcc, *self.flags(arch), "-Xptxas=-v", "-o", str(output), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(
                f"building fp8quant module {self.name!r} for sm_{arch} failed:\n"
                f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
            )
        return proc.stdout + proc.stderr

    def try_load(self, arch: str, nvcc: str) -> ctypes.CDLL | None:
        path = self.library_path(arch, nvcc)
        return ctypes.CDLL(str(path)) if path.is_file() else None

    def build_and_load(self, arch: str, nvcc: str | None = None) -> ctypes.CDLL:
        nvcc = nvcc or find_nvcc()
        if nvcc is None:
            raise BuildError(
                "fp8quant's CUDA backend compiles its kernels on first use and needs nvcc "
                "(the CUDA toolkit); none was found in $CUDA_HOME/bin, on PATH or in "
                "/usr/local/cuda/bin. Install the toolkit or use backend='triton'."
            )
        lib = self.try_load(arch, nvcc)
        if lib is not None:
            return lib
        final = self.library_path(arch, nvcc)
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(final.parent / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                lib = self.try_load(arch, nvcc)  # another process may have built it meanwhile
                if lib is not None:
                    return lib
                with tempfile.TemporaryDirectory(dir=final.parent) as tmp:
                    tmp_out = Path(tmp) / final.name
                    log = self.compile(arch, nvcc, tmp_out)
                    (final.parent / "build.log").write_text(log)
                    shutil.copy(tmp_out.with_suffix(".cu"), final.with_suffix(".cu"))
                    os.replace(tmp_out, final)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return ctypes.CDLL(str(final))


# C types an entry point's arguments may have, and their ctypes.
C_ARG_TYPES = {
    "const void*": ctypes.c_void_p,
    "void*": ctypes.c_void_p,
    "float": ctypes.c_float,
    "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64,
}


@dataclass(frozen=True)
class EntryPoint:
    """One op's C entry point, its arguments declared once for both sides.

    The generated source exports
    ``int <symbol>(<args>..., const <config_struct>* config, cudaStream_t stream)``, which calls
    ``<launcher><Element>(<args_struct>{.name = name, ...}, *config, stream)``. `args` are one
    call's values: C++20 designated initializers make the compiler check every name and the order
    against the op header's struct, and ctypes takes the argument types from the same list.
    `config` are one plan's launch values, the same for every call of a shape: Python builds a
    ctypes struct of them once per plan (`config_type`) and passes its address, which costs less
    per call than as many scalar arguments (ctypes converts each one). tests/test_kernel_build.py
    compares both structs, field by field, with the header."""

    header: str  # in fp8quant/csrc, e.g. "per_token.cuh"
    symbol: str  # e.g. "fp8quant_per_token_quant_fp8"
    launcher: str  # a function template over the element type, e.g. "fp8quant::launch_per_token_quant"
    args_struct: str  # e.g. "fp8quant::PerTokenArgs"
    args: tuple[tuple[str, str], ...]  # (name, C type from C_ARG_TYPES)
    config_struct: str  # e.g. "fp8quant::PerTokenConfig"
    config: tuple[tuple[str, str], ...]

    def source(self, element_ctype: str) -> str:
        params = "".join(f"{ctype} {name}, " for name, ctype in self.args)
        fields = ", ".join(f".{name} = {name}" for name, _ in self.args)
        return (
            "// Generated by fp8quant/jit.py (EntryPoint.source).\n"
            f'#include "{self.header}"\n'
            f'extern "C" int {self.symbol}({params}const {self.config_struct}* config, cudaStream_t stream) {{\n'
            f"  return static_cast<int>({self.launcher}<{element_ctype}>({self.args_struct}{{{fields}}}, *config, stream));\n"
            "}\n"
            'extern "C" int fp8quant_empty(int32_t device, int32_t pdl, cudaStream_t stream) {\n'
            "  return static_cast<int>(fp8quant::launch_empty(device, pdl, stream));\n"
            "}\n"
            'extern "C" const char* fp8quant_error_string(int err) {\n'
            "  return cudaGetErrorString(static_cast<cudaError_t>(err));\n"
            "}\n"
        )

    def module_spec(self, element_tag: str, element_ctype: str) -> ModuleSpec:
        """One module per element type: a first build compiles one dtype's instances, not all."""
        name = self.symbol.removeprefix("fp8quant_") + f"_{element_tag}"
        return ModuleSpec(name=name, source=self.source(element_ctype), headers=(self.header,))

    def argtypes(self) -> list:
        return [C_ARG_TYPES[ctype] for _, ctype in self.args] + [ctypes.c_void_p, ctypes.c_void_p]

    @functools.cached_property
    def config_type(self) -> type:
        fields = [(name, C_ARG_TYPES[ctype]) for name, ctype in self.config]
        return type(self.config_struct.rsplit("::", 1)[-1], (ctypes.Structure,), {"_fields_": fields})
