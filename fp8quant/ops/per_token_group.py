"""per_token_group_quant_fp8: one float32 scale per group of group_size consecutive elements of a
row (1x128 for DeepSeek-V3 / Qwen3 FP8 and other block-FP8 models), in the layout the GEMM reads.

fp8quant/reference.py (per_token_group_quant_fp8_reference, group_scales_layout) defines the
numbers and layouts; the CUDA kernel (csrc/per_token_group.cuh) and the Triton kernel
(triton/per_token_group.py) match it bit for bit. Registered as
``fp8quant::per_token_group_quant_fp8`` and ``fp8quant::per_token_group_quant_fp8_out``.
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
from ..reference import FP8_DTYPE, GROUP_SIZES, group_scales_layout, per_token_group_quant_fp8_reference, tma_aligned_rows
from .backends import resolve_backend
from .pdl_plan import pdl_trigger_at_entry, small_grid_takes_trigger
from .per_token_plan import vector_width
from .per_token import _as_rows

OP = "per_token_group_quant_fp8"
ROW_MAJOR, COLUMN_MAJOR, PACKED_UE8M0 = 0, 1, 2  # common/group_scales.cuh: ScaleLayout
# The smallest eps: every scale max(amax, eps) / 448 is then a normal float32, whose reciprocal is finite.
MIN_EPS = 448.0 * 2.0**-126

# per_token_group.cuh's arguments and launch values, shared by its entry points (this op's, and
# silu_and_mul_quant_fp8's per-group path through the same kernel with its producer)
GROUP_ARGS = (
    ("x", "const void*"), ("q", "void*"), ("scale", "void*"), ("num_rows", "int64_t"), ("hidden", "int64_t"),
    ("x_row_stride", "int64_t"), ("scale_ld", "int64_t"), ("eps", "float"),
)
GROUP_CONFIG = (
    ("vec", "int32_t"), ("vecs_per_thread", "int32_t"), ("group_shift", "int32_t"),
    ("threads_per_group_shift", "int32_t"), ("groups_per_cta_shift", "int32_t"), ("rows_per_cta_shift", "int32_t"),
    ("scale_tile", "int32_t"), ("layout", "int32_t"), ("ue8m0", "int32_t"), ("trigger_at_entry", "int32_t"),
    ("block_threads", "int32_t"), ("smem_bytes", "int32_t"), ("grid", "int64_t"), ("device", "int32_t"),
    ("pdl", "int32_t"),
)

KERNEL = _cuda.register(EntryPoint(
    header="per_token_group.cuh",
    symbol="fp8quant_per_token_group_quant_fp8",
    launcher="fp8quant::launch_per_token_group_quant",
    args_struct="fp8quant::GroupArgs",
    args=GROUP_ARGS,
    config_struct="fp8quant::GroupConfig",
    config=GROUP_CONFIG,
))


def layout_code(column_major: bool, tma_aligned: bool, packed: bool) -> int:
    """group_scales.cuh's ScaleLayout for the flags (TMA-aligned is column-major with a padded ld)."""
    return PACKED_UE8M0 if packed else (COLUMN_MAJOR if column_major or tma_aligned else ROW_MAJOR)


def scale_shape_and_stride(x_shape: tuple, group_size: int, column_major: bool, tma_aligned: bool, packed: bool):
    """(shape, strides, storage elements, dtype) of the scale tensor the op returns."""
    rows = 1
    for d in x_shape[:-1]:
        rows *= d
    groups = x_shape[-1] // group_size
    if packed:
        ld, words = tma_aligned_rows(rows), -(-groups // 4)
        return (rows, words), (1, ld), words * ld, torch.int32
    if column_major or tma_aligned:
        ld = tma_aligned_rows(rows) if tma_aligned else rows
        return (rows, groups), (1, ld), groups * ld, torch.float32
    shape = (*x_shape[:-1], groups)
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return shape, tuple(reversed(strides)), rows * groups, torch.float32


def check_scale_flags(op: str, column_major, tma_aligned, ue8m0, packed) -> None:
    """The four layout flags: bools, packed with the three it implies, TMA-aligned column-major."""
    for name, value in (("column_major_scales", column_major), ("tma_aligned_scales", tma_aligned),
                        ("scale_ue8m0", ue8m0), ("packed_ue8m0", packed)):
        if not isinstance(value, bool):
            raise TypeError(f"{op}: {name} must be True or False, got {value!r}")
    if packed and not (ue8m0 and column_major and tma_aligned):
        raise ValueError(f"{op}: packed_ue8m0 needs scale_ue8m0, column_major_scales and tma_aligned_scales (the call sets them)")
    if tma_aligned and not column_major:
        raise ValueError(f"{op}: tma_aligned_scales needs column_major_scales=True")


def check_scale_out(op: str, scale_out, q_shape: tuple, group_size: int, column_major, tma_aligned, packed, device) -> None:
    """scale_out (None or given) in the layout the flags ask for, scales of codes of q_shape."""
    if scale_out is None:
        return
    shape, strides, _, dtype = scale_shape_and_stride(q_shape, group_size, column_major, tma_aligned, packed)
    if not isinstance(scale_out, torch.Tensor):
        raise TypeError(f"{op}: scale_out must be a torch.Tensor or None, got {type(scale_out).__name__}")
    if (scale_out.dtype != dtype or tuple(scale_out.shape) != tuple(shape) or scale_out.device != device
            or (scale_out.numel() > 1 and tuple(scale_out.stride()) != tuple(strides))):
        raise ValueError(
            f"{op}: scale_out must be a tensor of shape {tuple(shape)}, strides {tuple(strides)}, dtype {dtype} on "
            f"{device} (the layout the flags ask for), got {_checks.describe(scale_out)} with strides "
            f"{tuple(scale_out.stride())}"
        )


def allocate_scales(q_shape: tuple, group_size: int, column_major, tma_aligned, packed, device) -> torch.Tensor:
    """A scale tensor in the flags' layout (its storage includes a TMA-aligned layout's padding)."""
    shape, strides, size, dtype = scale_shape_and_stride(q_shape, group_size, column_major, tma_aligned, packed)
    return torch.empty(size, dtype=dtype, device=device).as_strided(shape, strides)


def scales_from_reference(s: torch.Tensor, column_major, tma_aligned, packed) -> torch.Tensor:
    """The reference's row-major (..., G) scales in the flags' layout (what a backend writes)."""
    if not (packed or column_major):
        return s
    return group_scales_layout(s.reshape(-1, s.shape[-1]), column_major, tma_aligned, packed)


def _check(x, group_size, eps, column_major, tma_aligned, ue8m0, packed, backend, enable_pdl, outs) -> None:
    _checks.tensor(OP, "x", x)
    _checks.rows(OP, x)
    if isinstance(group_size, bool) or not isinstance(group_size, int):
        raise TypeError(f"{OP}: group_size must be an int, got {type(group_size).__name__}")
    if group_size not in GROUP_SIZES:
        raise ValueError(f"{OP}: group_size must be one of {GROUP_SIZES}, got {group_size}")
    if x.shape[-1] % group_size:
        raise ValueError(f"{OP}: x's last dimension H must be a multiple of group_size {group_size}, got H={x.shape[-1]}")
    if isinstance(eps, bool) or not isinstance(eps, float):
        raise TypeError(f"{OP}: eps must be a float, got {type(eps).__name__}")
    if not (MIN_EPS <= eps <= _checks.FLOAT32_MAX):
        raise ValueError(f"{OP}: eps must be finite and at least 448 * 2^-126 ({MIN_EPS:.3g}), got {eps!r}")
    check_scale_flags(OP, column_major, tma_aligned, ue8m0, packed)
    _checks.backend(OP, backend)
    _checks.optional_bool(OP, "enable_pdl", enable_pdl)
    out, scale_out = outs
    _checks.output(OP, "out", out, tuple(x.shape), FP8_DTYPE, x.device)
    check_scale_out(OP, scale_out, tuple(x.shape), group_size, column_major, tma_aligned, packed, x.device)


def _allocate(x, group_size, eps, column_major, tma_aligned, ue8m0, packed, *rest):
    return (torch.empty(x.shape, dtype=FP8_DTYPE, device=x.device),
            allocate_scales(tuple(x.shape), group_size, column_major, tma_aligned, packed, x.device))


def _run(x, group_size, eps, column_major, tma_aligned, ue8m0, packed, backend, enable_pdl, outs, outputs_given) -> None:
    out, scale_out = outs
    if outputs_given:
        _checks.no_overlap(OP, (("x", x),), (("out", out), ("scale_out", scale_out)))
    if x.numel() == 0:
        return
    backend = resolve_backend(OP, x, backend, KERNEL)
    if backend == "torch":
        q, s = per_token_group_quant_fp8_reference(x, group_size, eps, ue8m0)
        out.copy_(q)
        scale_out.copy_(scales_from_reference(s, column_major, tma_aligned, packed))  # packed: with its zero bytes
    elif backend == "cuda":
        launch_cuda(_as_rows(x), out, scale_out, group_size, eps, layout_code(column_major, tma_aligned, packed), ue8m0,
                    enable_pdl)
    else:
        from ..triton.per_token_group import per_token_group_quant_fp8_triton

        with torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext():
            per_token_group_quant_fp8_triton(_as_rows(x), out.view(-1, x.shape[-1]), scale_out, group_size, eps,
                                             layout_code(column_major, tma_aligned, packed), ue8m0, pdl=enable_pdl is not False)


@dataclass(frozen=True)
class GroupPlan:
    vec: int
    vecs_per_thread: int
    threads_per_group: int
    groups_per_cta: int
    rows_per_cta: int
    grid: int
    scale_tile: bool = False  # column-major / packed scales through shared memory (per_token_group.cuh)
    trigger_at_entry: Optional[bool] = None  # under PDL; None: pdl_plan's rule (pdl_launch), else forced

    @property
    def block_threads(self) -> int:
        return self.rows_per_cta * self.groups_per_cta * self.threads_per_group


MAX_THREADS_PER_GROUP = 32  # a group's max by shuffles within one warp
MIN_VECS_PER_THREAD = 2  # two loads in flight per thread, as the Triton kernel that reached the copy bandwidth
CTA_THREADS = 256
MAX_CTA_THREADS = 512  # per_token_group.cuh: kGroupMaxThreads
# Rows of a scale tile: 8 column-major scales or packed words are one 32-byte sector.
TILE_ROWS = 8
# What each CTA declares: per_token_group.cuh's tile, kGroupMaxThreads words (test_kernel_build
# reads ptxas's count).
STATIC_SMEM_BYTES = 4 * MAX_CTA_THREADS


def plan(num_rows: int, hidden: int, group_size: int, vec: int, sm_count: int, cta_threads: int = CTA_THREADS,
         vecs_per_thread: Optional[int] = None, whole_rows_only: bool = False, layout: int = 0,
         scale_tile: Optional[bool] = None, input_bytes: int = 0, l2_bytes: int = 50 * 2**20,
         trigger_at_entry: Optional[bool] = None) -> GroupPlan:
    """The launch: threads per group the fewest that hold the group at MIN_VECS_PER_THREAD vectors
    each (or the whole group in one thread), at most a warp (so at most 8 vectors each at group 256
    and one element per vector); a CTA of up to cta_threads threads covers as many of a row's
    groups as divide its group count, times as many rows as fill it while the grid still gives
    every SM two CTAs; at least a warp.
    Column-major and packed layouts whose input (input_bytes) is larger than the L2 (scale_tile by
    default there): up to TILE_ROWS rows first (then groups, then rows), the scales written from a
    shared-memory tile as whole sectors; packed only where a CTA's groups are whole words (a
    multiple of 4, or the row's 1 or 2 groups), else as below. Measured (H100, same run, tiled vs
    direct stores): over 100 MB column-major g128 +1.7, g64 +2.3, g32 +10-14 points of copy
    bandwidth, packed +0.8-1.7; at 1.8-3.7 MB (decode) 0.03-0.22 us slower per call, where the
    scales' sectors stay in L2 between their writes.
    vecs_per_thread, whole_rows_only (rows shared only by CTAs that cover whole rows),
    scale_tile and trigger_at_entry (pdl_launch) are there for the bench's forced plans."""
    vecs_per_group = group_size // vec
    if vecs_per_thread is None:
        vecs_per_thread = min(vecs_per_group, max(MIN_VECS_PER_THREAD, vecs_per_group // MAX_THREADS_PER_GROUP))
    tpg = vecs_per_group // vecs_per_thread
    groups = hidden // group_size

    def stack_groups(gpc: int, rpc: int) -> int:
        while groups % (gpc * 2) == 0 and rpc * gpc * 2 * tpg <= cta_threads:
            gpc *= 2
        return gpc

    def stack_rows(gpc: int, rpc: int) -> int:
        while rpc * 2 * gpc * tpg <= cta_threads and -(-num_rows // (rpc * 2)) * (groups // gpc) >= 2 * sm_count:
            rpc *= 2
        return rpc

    tiled = layout != ROW_MAJOR and (scale_tile if scale_tile is not None else input_bytes > l2_bytes)
    if tiled:
        rpc = 1
        while rpc < min(TILE_ROWS, num_rows) and rpc * 2 * tpg <= cta_threads:
            rpc *= 2
        gpc = stack_groups(1, rpc)
        if layout == PACKED_UE8M0 and gpc % 4 and gpc != groups:
            return plan(num_rows, hidden, group_size, vec, sm_count, cta_threads, vecs_per_thread, whole_rows_only,
                        layout, False, trigger_at_entry=trigger_at_entry)
        rpc = stack_rows(gpc, rpc)
    else:
        gpc = stack_groups(1, 1)
        rpc = stack_rows(gpc, 1) if gpc == groups or not whole_rows_only else 1
    while rpc * gpc * tpg < 32:  # full warps: the shuffles take the whole warp's mask
        rpc *= 2
    grid = -(-num_rows // rpc) * (groups // gpc)
    return GroupPlan(vec, vecs_per_thread, tpg, gpc, rpc, grid, tiled, trigger_at_entry)


def pdl_launch(p: GroupPlan, num_rows: int, group_size: int, cta_input_bytes_per_code: int, device: _device.DeviceInfo,
               pdl: bool) -> tuple[bool, int]:
    """(whether the kernel lets the next one launch at its entry, the shared memory each CTA
    reserves for it) under PDL: per-token's measured rule (pdl_plan.pdl_trigger_at_entry, with
    small_grid_takes_trigger), the CTA's input being its groups' elements x cta_input_bytes_per_code
    (x's element size; twice that where a producer reads two inputs a code)."""
    if not pdl or p.trigger_at_entry is False:
        return False, 0
    cta_input = p.rows_per_cta * p.groups_per_cta * group_size * cta_input_bytes_per_code
    trigger, reserve = pdl_trigger_at_entry(p.grid, p.block_threads, cta_input, device, pdl,
                                            small_grid_takes_trigger(num_rows, cta_input), STATIC_SMEM_BYTES)
    return trigger or p.trigger_at_entry is True, reserve


@functools.lru_cache(maxsize=4096)
def _cached_config(kernel, num_rows, hidden, x_row_len, element_size, group_size, vec, device_index, layout, ue8m0, pdl,
                   forced: Optional[GroupPlan] = None):
    device = _device.device_info(device_index)
    p = forced or plan(num_rows, hidden, group_size, vec, device.sm_count, layout=layout,
                       input_bytes=num_rows * x_row_len * element_size, l2_bytes=device.l2_bytes)
    trigger, smem_bytes = pdl_launch(p, num_rows, group_size, x_row_len // hidden * element_size, device, pdl)
    log2 = int.bit_length
    return ctypes.byref(kernel.entry.config_type(
        p.vec, p.vecs_per_thread, log2(group_size) - 1, log2(p.threads_per_group) - 1, log2(p.groups_per_cta) - 1,
        log2(p.rows_per_cta) - 1, int(p.scale_tile), layout, int(ue8m0), int(trigger), p.block_threads, smem_bytes,
        p.grid, device_index, int(pdl),
    ))


def launch_cuda(x2d, q, scale, group_size, eps, layout, ue8m0, enable_pdl=None, forced: Optional[GroupPlan] = None,
                kernel=None, hidden: Optional[int] = None) -> None:
    """kernel, hidden: another entry point of per_token_group.cuh and the codes' row length, where
    x's rows are longer (silu_and_mul_quant_fp8's per-group path: [gate | up], 2 x hidden)."""
    index = x2d.get_device()
    pdl = _device.use_pdl(index, enable_pdl)
    num_rows = x2d.shape[0]
    hidden = x2d.shape[1] if hidden is None else hidden
    vec = vector_width(hidden, x2d.element_size(), x2d.stride(0), x2d.data_ptr(), q.data_ptr())
    kernel = KERNEL if kernel is None else kernel
    config = _cached_config(kernel, num_rows, hidden, x2d.shape[1], x2d.element_size(), group_size, vec, index, layout,
                            ue8m0, pdl, forced)
    scale_ld = scale.stride(1) if layout != ROW_MAJOR else 0
    args = (x2d.data_ptr(), q.data_ptr(), scale.data_ptr(), num_rows, hidden, x2d.stride(0), scale_ld, eps, config)
    kernel(x2d.dtype, index, *args)


_OP = QuantOp(
    OP,
    "Tensor x, int group_size, float eps, bool column_major_scales, bool tma_aligned_scales, bool scale_ue8m0, "
    "bool packed_ue8m0, str backend, bool? enable_pdl=None",
    ("out", "scale_out"),
    check=_check,
    allocate=_allocate,
    run=_run,
)


def per_token_group_quant_fp8(
    x: torch.Tensor,
    group_size: int = 128,
    *,
    eps: float = 1e-10,
    column_major_scales: bool = False,
    tma_aligned_scales: bool = False,
    scale_ue8m0: bool = False,
    packed_ue8m0: bool = False,
    out: Optional[torch.Tensor] = None,
    scale_out: Optional[torch.Tensor] = None,
    backend: str = "auto",
    enable_pdl: Optional[bool] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize each group of group_size consecutive elements of x's rows to FP8 e4m3 with its own
    float32 scale.

    Args:
        x: (..., H) float16, bfloat16 or float32, H a multiple of group_size; the last dimension
            contiguous, rows may be strided.
        group_size: 16, 32, 64, 128 or 256.
        eps: the smallest amax (a float of at least 448 * 2^-126): an all-zero group gets scale
            eps / 448.
        column_major_scales: scales of shape (M, H / g) with stride (1, M), M the rows of x.
        tma_aligned_scales: with column_major_scales, stride (1, M4), M4 = M rounded up to 4 (the
            padding rows of the storage are not written).
        scale_ue8m0: each scale rounded up to a power of two, from its bits.
        packed_ue8m0: int32 (M, ceil(G / 4)) with stride (1, M4), four exponent bytes per word,
            group 4k in the lowest byte of word k (DeepGEMM's sm100 scale-factor layout; implies the
            three flags above).
        out, scale_out: preallocated outputs (scale_out in the layout the flags ask for).
        backend, enable_pdl: as for per_token_quant_fp8.

    Returns:
        (q, scales), q of x's shape. Per group: scale = max(amax, eps) / 448 (rounded up to a power
        of two with scale_ue8m0); q = e4m3(clamp(x / scale, -448, 448)), IEEE division. A NaN in a
        group makes its scale and codes NaN (0x7f); an Inf makes the scale +Inf, the Inf elements
        NaN and the others zero."""
    if packed_ue8m0 is True:
        scale_ue8m0 = column_major_scales = tma_aligned_scales = True
    if isinstance(eps, int) and not isinstance(eps, bool):
        raise TypeError(f"{OP}: eps must be a float, got int ({eps!r})")
    return _OP((x, group_size, eps, column_major_scales, tma_aligned_scales, scale_ue8m0, packed_ue8m0, backend, enable_pdl),
               (out, scale_out))
