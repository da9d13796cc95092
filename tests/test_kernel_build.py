"""nvcc compiles every kernel instance for sm_80, sm_89 and sm_90, with no register spills in
the register-staged kernels (a spill would turn the one-read design into local-memory traffic)."""

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import fp8quant  # noqa: F401 (registers every op's entry point)
from fp8quant import _cuda, jit

NVCC = jit.find_nvcc()
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc not found")
ARCHS = ["80", "89", "90"]
PER_TOKEN = next(e for e in _cuda.ENTRY_POINTS if e.symbol == "fp8quant_per_token_quant_fp8")


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("build")


def _library(root: Path, spec, arch: str) -> Path:
    return root / f"{spec.name}_{arch}.so"


@pytest.fixture(scope="module")
def build_logs(build_root):
    jobs = [(spec, arch) for entry in _cuda.ENTRY_POINTS for spec in _cuda.module_specs(entry) for arch in ARCHS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        logs = list(pool.map(lambda job: job[0].compile(job[1], NVCC, _library(build_root, *job)), jobs))
    return {(spec.name, arch): log for (spec, arch), log in zip(jobs, logs)}


def _functions(log: str):
    """(mangled kernel name, stack frame bytes, spill store bytes) for each compiled entry."""
    blocks = re.split(r"Compiling entry function '", log)[1:]
    for b in blocks:
        name = b.split("'", 1)[0]
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores", b)
        yield name, int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("dtype", list(_cuda.ELEMENT_TYPES))
@pytest.mark.parametrize("arch", ARCHS)
def test_every_per_token_instance_compiles(build_logs, dtype, arch):
    spec = PER_TOKEN.module_spec(*_cuda.ELEMENT_TYPES[dtype])
    funcs = list(_functions(build_logs[(spec.name, arch)]))
    registers = [f for f in funcs if "registers_kernel" in f[0]]
    warp = [f for f in funcs if "warp_kernel" in f[0]]
    widths = {torch.float32: 3, torch.float16: 4, torch.bfloat16: 4}[dtype]
    assert len(registers) == widths * 8 + 8, funcs  # + the 16-byte instances for rows shared by CTAs
    assert len(warp) == widths * 2, funcs
    # No instance spills (nvcc 13.0). Until v6 the 16-bit 8-element x 7-8 vector instances on
    # sm_80 and the 1-element x 8-vector ones did (8-28 bytes): the vectors held 16-bit elements
    # one per register; held as 32-bit words (csrc/per_token.cuh: InVec) they fit.
    spilled = [f for f in funcs if f[2] > 0]
    assert not spilled, f"kernels spill: {spilled}"


# symbol -> (a substring of its kernels' names, kernels per vector width)
OTHER_OPS = {
    "fp8quant_per_token_group_quant_fp8": ("group_quant_kernel", 4),  # 1, 2, 4, 8 vectors per thread
    "fp8quant_per_tensor_quant_fp8": ("per_tensor", 3),  # the amax, the quantize and the cluster kernel
    "fp8quant_rms_norm_quant_fp8": ("rms_norm_quant_kernel", 4),  # 1, 2, 4, 6 vectors per thread
    "fp8quant_silu_and_mul_quant_fp8": ("silu_and_mul_quant_kernel", 4),
}


@pytest.mark.parametrize("symbol", sorted(OTHER_OPS))
@pytest.mark.parametrize("dtype", list(_cuda.ELEMENT_TYPES))
@pytest.mark.parametrize("arch", ARCHS)
def test_every_instance_of_the_other_ops_compiles(build_logs, symbol, dtype, arch):
    entry = next(e for e in _cuda.ENTRY_POINTS if e.symbol == symbol)
    spec = entry.module_spec(*_cuda.ELEMENT_TYPES[dtype])
    name, per_width = OTHER_OPS[symbol]
    funcs = [f for f in _functions(build_logs[(spec.name, arch)]) if name in f[0]]
    widths = {torch.float32: 3, torch.float16: 4, torch.bfloat16: 4}[dtype]
    assert len(funcs) == widths * per_width, funcs
    assert not [f for f in funcs if f[2] > 0], f"kernels spill: {funcs}"


def _static_smem_bound(symbol: str) -> int:
    from fp8quant.ops import per_tensor, per_token_group, row_quant

    return {"fp8quant_per_token_group_quant_fp8": per_token_group.STATIC_SMEM_BYTES,
            "fp8quant_silu_and_mul_group_quant_fp8": per_token_group.STATIC_SMEM_BYTES,
            "fp8quant_per_tensor_quant_fp8": per_tensor.STATIC_SMEM_BYTES,
            "fp8quant_rms_norm_quant_fp8": row_quant.STATIC_SMEM_BYTES,
            "fp8quant_silu_and_mul_quant_fp8": row_quant.STATIC_SMEM_BYTES}[symbol]


@pytest.mark.parametrize("symbol", ["fp8quant_per_token_group_quant_fp8", "fp8quant_silu_and_mul_group_quant_fp8",
                                    "fp8quant_per_tensor_quant_fp8", "fp8quant_rms_norm_quant_fp8",
                                    "fp8quant_silu_and_mul_quant_fp8"])
def test_kernels_declare_at_most_the_shared_memory_the_planner_counts(build_logs, symbol):
    """The PDL reservations (ops/pdl_plan.py, through each op's pdl_launch) are net of what each
    CTA declares, the op's STATIC_SMEM_BYTES; a kernel declaring more would let one CTA fewer fit
    an SM than planned."""
    entry = next(e for e in _cuda.ENTRY_POINTS if e.symbol == symbol)
    for dtype in _cuda.ELEMENT_TYPES:
        log = build_logs[(entry.module_spec(*_cuda.ELEMENT_TYPES[dtype]).name, "90")]
        declared = {int(b) for b in re.findall(r"(\d+) bytes smem", log)}
        assert declared and max(declared) <= _static_smem_bound(symbol), (dtype, declared)


def _cuobjdump() -> str | None:
    try:
        import triton  # its NVIDIA backend ships cuobjdump

        bundled = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    except ImportError:
        bundled = None
    return shutil.which("cuobjdump") or (str(bundled) if bundled and bundled.is_file() else None)


@pytest.mark.parametrize("dtype", list(_cuda.ELEMENT_TYPES))
def test_row_loads_issue_before_their_first_use(build_logs, build_root, dtype):
    """sm_90 SASS of every register-kernel instance with 16-byte vectors (1-8 of them per thread,
    rows shared by CTAs or not: the planner takes up to 8 under 64 MiB, e.g. 256x16384 at
    256 x 8): every 16-byte load of the row is issued before the first abs/max on a loaded
    value, so the row costs one memory round trip. In one v7 build the 4-vector bf16 instance
    issued two of its four loads after the first two had arrived; and
    two experiment builds issued 3-4 of the 8 loads of the 8-vector instance late, and 256x16384
    took 5.65 us per call instead of 5.05 (docs/design.md)."""
    tool = _cuobjdump()
    if tool is None:
        pytest.skip("cuobjdump not found")
    spec = PER_TOKEN.module_spec(*_cuda.ELEMENT_TYPES[dtype])
    sass = subprocess.run([tool, "-sass", str(_library(build_root, spec, "90"))], capture_output=True, text=True, check=True).stdout
    checked = 0
    for function in re.split(r"\n\s+Function : ", sass)[1:]:
        name = function.split("\n", 1)[0]
        m = re.search(r"registers_kernelI\w*?Li(\d+)ELi(\d+)ELb([01])E", name)
        if not m or int(m.group(1)) * dtype.itemsize != 16:
            continue
        code = [line for line in function.split("\n") if re.match(r"\s+/\*[0-9a-f]{4}\*/", line)]
        loads = [i for i, line in enumerate(code) if re.search(r"\bLDG\.E\.128", line)]
        uses = [i for i, line in enumerate(code) if re.search(r"\b(HFMA2|HMNMX2|VHMNMX|FMNMX)", line)]
        assert loads and uses, name
        late = [code[i].strip() for i in loads if i > min(uses)]
        assert not late, f"{name}: loads after the first use of a loaded value: {late}"
        checked += 1
    assert checked == 8 + 8


def test_cache_key_changes_with_source_and_arch(tmp_path, monkeypatch):
    monkeypatch.setenv("FP8QUANT_CACHE_DIR", str(tmp_path))
    spec = PER_TOKEN.module_spec("bf16", "__nv_bfloat16")
    d90 = spec.build_dir("90", NVCC)
    assert d90 != spec.build_dir("80", NVCC)
    assert str(d90).startswith(str(tmp_path))
    other = jit.ModuleSpec(spec.name, spec.source + "// edit\n", spec.headers)
    assert other.build_dir("90", NVCC) != d90


def test_build_and_load_caches(tmp_path, monkeypatch):
    """The JIT path end to end on this machine: build once, then load from the cache."""
    monkeypatch.setenv("FP8QUANT_CACHE_DIR", str(tmp_path))
    spec = PER_TOKEN.module_spec("f32", "float")
    lib = spec.build_and_load("90", NVCC)
    assert hasattr(lib, "fp8quant_per_token_quant_fp8") and hasattr(lib, "fp8quant_empty")
    path = spec.library_path("90", NVCC)
    assert path.is_file() and (path.parent / "build.log").is_file()
    mtime = path.stat().st_mtime_ns
    spec.build_and_load("90", NVCC)
    assert path.stat().st_mtime_ns == mtime  # loaded, not rebuilt


@pytest.mark.parametrize("entry", _cuda.ENTRY_POINTS, ids=lambda e: e.symbol)
def test_entry_declarations_match_the_header(tmp_path, entry):
    """The generated entry point fills the op's args struct with designated initializers (the
    compiler checks names and order); a field left out of the declaration would stay zero, so the
    struct must be exactly the declared fields: the size of a ctypes struct of them. The config
    struct crosses as bytes (ctypes, built once per plan): every declared field at the header's
    offset, and the same size."""
    import ctypes

    args = type("Args", (ctypes.Structure,), {"_fields_": [(n, jit.C_ARG_TYPES[c]) for n, c in entry.args]})
    config = entry.config_type
    prints = "".join(f'  std::printf("{n} %zu\\n", offsetof({entry.config_struct}, {n}));\n' for n, _ in entry.config)
    src = tmp_path / "layout.cu"
    src.write_text(
        f'#include "{entry.header}"\n#include <cstddef>\n#include <cstdio>\nint main() {{\n'
        f'  std::printf("args %zu\\n", sizeof({entry.args_struct}));\n'
        f'  std::printf("config %zu\\n", sizeof({entry.config_struct}));\n{prints}  return 0;\n}}\n'
    )
    exe = tmp_path / "layout"
    subprocess.run([NVCC, "-std=c++20", "-arch=sm_80", f"-I{jit.CSRC_DIR}", "-o", str(exe), str(src)], check=True, capture_output=True)
    got = dict(line.split() for line in subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines())
    assert int(got.pop("args")) == ctypes.sizeof(args)
    assert int(got.pop("config")) == ctypes.sizeof(config)
    assert {n: int(v) for n, v in got.items()} == {n: getattr(config, n).offset for n, _ in entry.config}
