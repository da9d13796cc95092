"""per_tensor_quant_fp8: one float32 scale for the whole tensor, given (static) or from its amax
(dynamic).

fp8quant/reference.py (per_tensor_quant_fp8_reference) defines the numbers; the CUDA kernels
(csrc/per_tensor.cuh; dynamic on a tensor that fits per-token's register kernel as one row, that
kernel: one_row_plan) and the Triton kernels (triton/per_tensor.py) match it bit for bit.
Registered as ``fp8quant::per_tensor_quant_fp8`` and ``fp8quant::per_tensor_quant_fp8_out``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from dataclasses import dataclass
from typing import Optional

import torch

from .. import _checks, _cuda, _device
from .._library import QuantOp
from ..jit import EntryPoint
from ..reference import FP8_DTYPE, per_tensor_quant_fp8_reference
from . import per_token, per_token_plan
from .backends import resolve_backend, scale_ub_pointer_and_value, tensor_vector_width
from .pdl_plan import pdl_trigger_at_entry, small_grid_takes_trigger
from .per_token import _as_rows

OP = "per_tensor_quant_fp8"

KERNEL = _cuda.register(EntryPoint(
    header="per_tensor.cuh",
    symbol="fp8quant_per_tensor_quant_fp8",
    launcher="fp8quant::launch_per_tensor_quant",
    args_struct="fp8quant::TensorArgs",
    args=(
        ("x", "const void*"), ("q", "void*"), ("scale", "void*"), ("static_scale", "const void*"), ("scale_ub_ptr", "const void*"),
        ("scale_ub_value", "float"), ("partials", "void*"), ("num_rows", "int64_t"), ("hidden", "int64_t"),
        ("x_row_stride", "int64_t"),
    ),
    config_struct="fp8quant::TensorConfig",
    config=(
        ("vec", "int32_t"), ("dynamic", "int32_t"), ("chunks_per_row", "int64_t"), ("amax_grid", "int64_t"),
        ("quant_grid", "int64_t"), ("block_threads", "int32_t"), ("quant_trigger_at_entry", "int32_t"),
        ("quant_smem_bytes", "int32_t"), ("cluster", "int32_t"), ("device", "int32_t"), ("pdl", "int32_t"),
    ),
))

MAX_CTA_THREADS = 256  # per_tensor.cuh: kTensorMaxThreads
CHUNK_VECS_PER_THREAD = 4  # per_tensor.cuh: kTensorVecsPerThread; a chunk is up to 256 threads x 4 vectors
CTAS_PER_SM = 8  # dynamic: grids of at most this many CTAs per SM, each looping over its chunks
MAX_CLUSTER = 8  # per_tensor.cuh: per_tensor_cluster_kernel, the portable cluster size
# Dynamic in one kernel only for a tensor of one chunk (a single CTA): measured (H100, same run,
# inputs in L2) 1x4096 2.37 -> 1.59 us, 1x7168 2.46 -> 1.92 against two kernels, while a cluster
# of 8 CTAs at 4x16384 (8 chunks) took 2.89 us against 2.61 (clusters are forced with fp8quant:cN).
# Tensors whose rows are one contiguous range take one_row_plan first (per-token's kernel).
CLUSTER_MAX_CHUNKS = 1


def _check(x, scale, scale_ub, scale_ub_value, backend, enable_pdl, outs) -> None:
    _checks.tensor(OP, "x", x)
    _checks.rows(OP, x)
    if scale is not None:
        if not isinstance(scale, torch.Tensor):
            raise TypeError(f"{OP}: scale must be None or a 1-element float32 tensor, got {type(scale).__name__}")
        if scale.numel() != 1 or scale.dtype != torch.float32 or scale.device != x.device:
            raise ValueError(f"{OP}: scale must be a 1-element float32 tensor on {x.device}, got {_checks.describe(scale)}")
        if scale_ub is not None or scale_ub_value is not None:
            raise ValueError(f"{OP}: scale_ub bounds a dynamic scale; with a static scale it must be None")
    _checks.backend(OP, backend)
    _checks.optional_bool(OP, "enable_pdl", enable_pdl)
    out, scale_out = outs
    _checks.output(OP, "out", out, tuple(x.shape), FP8_DTYPE, x.device)
    _checks.output(OP, "scale_out", scale_out, (1,), torch.float32, x.device)
    _checks.scale_ub(OP, scale_ub, x.device)
    _checks.scale_ub_value(OP, scale_ub_value)


def _allocate(x, *args):
    return torch.empty(x.shape, dtype=FP8_DTYPE, device=x.device), torch.empty(1, dtype=torch.float32, device=x.device)


def _run(x, scale, scale_ub, scale_ub_value, backend, enable_pdl, outs, outputs_given) -> None:
    out, scale_out = outs
    if outputs_given:
        _checks.no_overlap(OP, (("x", x), ("scale", scale)), (("out", out), ("scale_out", scale_out)))
    _checks.host_scale_ub(OP, scale_ub)
    if scale is not None and scale.device.type == "cpu":
        value = float(scale.reshape(()))
        if not (0.0 < value < float("inf")):
            raise ValueError(f"{OP}: scale must be finite and positive, got a tensor holding {value!r}")
    ub = scale_ub if scale_ub is not None else scale_ub_value
    if x.numel() == 0:  # no launch: the scale of an empty tensor (static: the one given)
        scale_out.copy_(per_tensor_quant_fp8_reference(x, scale, ub)[1])
        return
    backend = resolve_backend(OP, x, backend, KERNEL)
    if backend == "torch":
        q, s = per_tensor_quant_fp8_reference(x, scale, ub)
        out.copy_(q)
        scale_out.copy_(s)
    elif backend == "cuda":
        launch_cuda(_as_rows(x), out, scale_out, scale, ub, enable_pdl)
    else:
        from ..triton.per_tensor import per_tensor_quant_fp8_triton

        with torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext():
            per_tensor_quant_fp8_triton(_as_rows(x), out.view(-1, x.shape[-1]), scale_out, scale, ub, pdl=enable_pdl is not False)


@dataclass(frozen=True)
class TensorPlan:
    chunks_per_row: int
    block_threads: int
    amax_grid: int  # also the number of partial maxima
    quant_grid: int
    cluster: int = 0  # dynamic in one kernel: one cluster of this many CTAs (then no amax grid)


def plan(num_rows: int, hidden: int, vec: int, sm_count: int, dynamic: bool = True, clusters: bool = False,
         cluster: Optional[int] = None) -> TensorPlan:
    """Rows cut into chunks of up to 256 threads x 4 vectors, so that a few long rows still spread
    over the SMs; a CTA of the chunk's vectors / 4 threads in whole warps (full CTAs at short
    rows: at 4096 bf16 256-thread CTAs held 2 vectors a thread and a CTA per chunk read 91-93%
    of the copy bandwidth, at 7168 and 8192 101-102%, H100).
    Static: a CTA per chunk (CTAs looping over chunks read 95.2-96.5% over 100 MB). Dynamic: the
    amax grid has at most 8 CTAs per SM, each looping over its chunks, and the quantize grid is the
    same (each of its CTAs reads every partial max); their CTAs keep 256 threads (sized to the
    chunk, 8 CTAs of 128 threads at H 4096 left an SM half its threads: 16384x4096 1.12x of two
    reads + a write, against 1.00-1.07x over 100 MB with 256, H100).
    Dynamic on sm_90+ (`clusters`) where the tensor is one chunk (CLUSTER_MAX_CHUNKS): one kernel,
    per_tensor_cluster_kernel with a cluster of one CTA (no second launch, no partials' round trip
    through L2, x read once). `cluster` forces a cluster of that many CTAs (at most the chunks;
    0: two kernels)."""
    vecs_per_row = hidden // vec
    chunks_per_row = max(1, -(-vecs_per_row // (MAX_CTA_THREADS * CHUNK_VECS_PER_THREAD)))
    if not dynamic and num_rows * chunks_per_row < sm_count:
        # Static with fewer chunks than SMs (decode sizes): smaller chunks, down to a warp's, so
        # that a call spreads over more SMs (NOT MEASURED; static decode in L2 was 0.7-1.3 us over
        # the floor, 1x7168 a single 224-thread CTA at 1.67 us).
        chunks_per_row = max(chunks_per_row, min(-(-vecs_per_row // (32 * CHUNK_VECS_PER_THREAD)),
                                                 -(-sm_count // num_rows)))
    chunk_vecs = -(-vecs_per_row // chunks_per_row)
    block_threads = min(MAX_CTA_THREADS, 32 * -(-chunk_vecs // (32 * CHUNK_VECS_PER_THREAD)))
    chunks = num_rows * chunks_per_row
    if not dynamic:
        return TensorPlan(chunks_per_row, block_threads, 0, chunks)
    if cluster is None:
        cluster = 1 if clusters and chunks <= CLUSTER_MAX_CHUNKS else 0
    if cluster:
        if not 1 <= cluster <= MAX_CLUSTER:
            raise ValueError(f"cluster must be 0 or 1-{MAX_CLUSTER} CTAs, got {cluster}")
        cluster = min(cluster, chunks)
        return TensorPlan(chunks_per_row, block_threads, 0, cluster, cluster)
    grid = min(chunks, CTAS_PER_SM * sm_count)
    return TensorPlan(chunks_per_row, MAX_CTA_THREADS, grid, grid)


# The most a kernel of per_tensor.cuh declares: cta_max's warp maxima, and the cluster kernel's
# CTA max.
STATIC_SMEM_BYTES = 4 * (MAX_CTA_THREADS // 32) + 4


def quant_pdl_launch(p: TensorPlan, vec_bytes: int, dynamic: bool, device: _device.DeviceInfo, pdl: bool,
                     forced: Optional[bool] = None) -> tuple[bool, int]:
    """(whether the quantize kernel lets the next kernel launch at its entry, the shared memory
    each of its CTAs reserves) under PDL: only where forced (the bench's ":e1"; static with
    per-token's rule's reservation). Not by default: measured (H100, same run, inputs in L2), at
    entry cost the dynamic path 0.25 us at 16x4096 and 0.74 at 256x4096 (it gained 0.17 at
    4x16384) and the static path 0.19 us at 1x7168 (it gained 0.13 at 256x4096)."""
    if not pdl or forced is not True:
        return False, 0
    if dynamic:
        return True, 0
    cta_input = p.block_threads * CHUNK_VECS_PER_THREAD * vec_bytes
    return True, pdl_trigger_at_entry(p.quant_grid, p.block_threads, cta_input, device, pdl,
                                      small_grid_takes_trigger(p.quant_grid, cta_input), STATIC_SMEM_BYTES)[1]


@functools.lru_cache(maxsize=4096)
def _cached_config(num_rows, hidden, vec, element_size, device_index, dynamic, pdl, trigger_at_entry=None, cluster=None):
    device = _device.device_info(device_index)
    p = plan(num_rows, hidden, vec, device.sm_count, dynamic, device.capability >= (9, 0), cluster)
    trigger, smem_bytes = quant_pdl_launch(p, vec * element_size, dynamic, device, pdl, trigger_at_entry)
    if p.cluster:
        trigger, smem_bytes = False, 0
    config = ctypes.byref(KERNEL.entry.config_type(vec, int(dynamic), p.chunks_per_row, p.amax_grid, p.quant_grid,
                                                   p.block_threads, int(trigger), smem_bytes, p.cluster, device_index,
                                                   int(pdl)))
    return config, p.amax_grid


@functools.lru_cache(maxsize=4096)
def one_row_plan(num_rows: int, hidden: int, x_row_stride: int, element_size: int, vec: int,
                 device: _device.DeviceInfo, pdl: bool) -> Optional[per_token_plan.Plan]:
    """Dynamic: per_token_quant_fp8's plan for the tensor as one row of num_rows x hidden elements
    (vec: the one row's vector width), where its rows are one contiguous range and that plan holds
    the row in registers (at most 512 threads x 8 vectors: 32768 bf16 elements); else None.
    Per token of one row is per tensor (reference.py: the same floor, bound and NaN rules;
    tests/test_per_tensor.py checks it), and the per-token register kernel is the tuned one-row
    kernel: one launch, the row shared by up to 4 CTAs. Per token (H100, bf16, in L2, us) 1x4096
    1.08, 1x7168 1.12, 1x16384 1.25, where the per-tensor kernels took 1.59 (one CTA), 1.93, 2.62
    (two kernels) (the committed token and tensor results; NOT MEASURED as this rule: bench
    `fp8quant` against `fp8quant:c1` / `fp8quant:c0`, which force the per-tensor kernels)."""
    if num_rows != 1 and x_row_stride != hidden:
        return None
    p = per_token_plan.plan(1, num_rows * hidden, element_size, vec, device, pdl=pdl)
    return p if p.staging == per_token_plan.REGISTERS else None


def launch_cuda(x2d, q, scale_out, scale, scale_ub, enable_pdl=None, trigger_at_entry: Optional[bool] = None,
                cluster: Optional[int] = None) -> None:
    """trigger_at_entry, cluster: None for the planner's rules (one_row_plan, quant_pdl_launch,
    plan); the bench and the tests force them (a forced one keeps the per-tensor kernels)."""
    index = x2d.get_device()
    pdl = _device.use_pdl(index, enable_pdl)
    num_rows, hidden = x2d.shape
    dynamic = scale is None
    if dynamic and trigger_at_entry is None and cluster is None:
        numel, element_size = num_rows * hidden, x2d.element_size()
        one_row_vec = per_token_plan.vector_width(numel, element_size, numel, x2d.data_ptr(), q.data_ptr())
        one_row = one_row_plan(num_rows, hidden, x2d.stride(0), element_size, one_row_vec, _device.device_info(index), pdl)
        if one_row is not None:
            per_token.launch_cuda(x2d.view(1, -1), q.view(1, -1), scale_out, scale_ub, enable_pdl, one_row)
            return
    vec = tensor_vector_width(x2d, q)
    config, amax_grid = _cached_config(num_rows, hidden, vec, x2d.element_size(), index, dynamic, pdl, trigger_at_entry,
                                       cluster if dynamic else None)
    ub_ptr, ub_value = scale_ub_pointer_and_value(scale_ub)
    partials = torch.empty(amax_grid, dtype=torch.float32, device=x2d.device) if amax_grid else None
    KERNEL(x2d.dtype, index, x2d.data_ptr(), q.data_ptr(), scale_out.data_ptr(), None if dynamic else scale.data_ptr(), ub_ptr, ub_value,
           None if partials is None else partials.data_ptr(), num_rows, hidden, x2d.stride(0), config)


_OP = QuantOp(
    OP,
    "Tensor x, Tensor? scale, Tensor? scale_ub, float? scale_ub_value, str backend, bool? enable_pdl=None",
    ("out", "scale_out"),
    check=_check,
    allocate=_allocate,
    run=_run,
)


def per_tensor_quant_fp8(
    x: torch.Tensor,
    scale: Optional[torch.Tensor] = None,
    *,
    scale_ub: float | torch.Tensor | None = None,
    out: Optional[torch.Tensor] = None,
    scale_out: Optional[torch.Tensor] = None,
    backend: str = "auto",
    enable_pdl: Optional[bool] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize the whole tensor to FP8 e4m3 with one float32 scale.

    Args:
        x: (..., H) float16, bfloat16 or float32; the last dimension contiguous, rows may be strided.
        scale: static: a 1-element float32 tensor on x's device (a CPU one is checked to be positive
            and finite; a device one is read by the kernel, and a scale <= 0, subnormal or -inf
            gives what IEEE division then clamping gives). None: dynamic, from the tensor's amax.
        scale_ub: dynamic only: an upper bound on the amax, as for per_token_quant_fp8.
        out, scale_out: preallocated outputs: codes of x's shape, float32 of shape (1,).
        backend, enable_pdl: as for per_token_quant_fp8.

    Returns:
        (q, scale) with scale of shape (1,): the given one (copied into scale_out) or max(amax /
        448, 1 / (448 * 512)); q = e4m3(clamp(x / scale, -448, 448)), IEEE division. A NaN makes
        a dynamic scale and every code NaN."""
    _checks.tensor(OP, "x", x)
    ub_tensor, ub_value = _checks.scale_ub(OP, scale_ub, x.device)
    return _OP((x, scale, ub_tensor, ub_value, backend, enable_pdl), (out, scale_out))
