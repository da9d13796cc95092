"""What the fused producer ops (rms_norm_quant_fp8, silu_and_mul_quant_fp8) share: their
quantization arguments (per token or per group, the scale layouts), the scale tensor, the
reference path into the outputs, and the launch plan of their one-CTA-per-row kernels
(csrc/common/row_quant.cuh)."""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass, replace
from typing import NamedTuple, Optional

import torch

from .. import _checks, _device
from .._device import DeviceInfo
from ..reference import GROUP_SIZES
from . import per_token_group
from .pdl_plan import MAX_THREADS_PER_SM, pdl_trigger_at_entry, small_grid_takes_trigger

MAX_THREADS = 512  # row_quant.cuh: kRowMaxThreads
VECS_PER_THREAD = (1, 2, 4, 6)  # row_quant.cuh: kRowVecsPerThread
TARGET_VECS_PER_THREAD = 4
# row_quant.cuh: RowQuantConfig, every fused op's config struct
CONFIG = (
    ("vec", "int32_t"), ("vecs_per_thread", "int32_t"), ("group_size", "int32_t"), ("layout", "int32_t"),
    ("ue8m0", "int32_t"), ("block_threads", "int32_t"), ("grid", "int64_t"), ("staged", "int32_t"),
    ("trigger_at_entry", "int32_t"), ("smem_bytes", "int32_t"), ("ctas_per_row_shift", "int32_t"), ("device", "int32_t"),
    ("pdl", "int32_t"),
)
# What a row kernel's CTA declares: the warps' sums and maxima (rms_norm_quant.cuh, the most), and
# the staged kernel's bulk-copy mbarrier with its alignment (common/bulk_copy.cuh); test_kernel_build
# reads ptxas's count.
STATIC_SMEM_BYTES = 2 * 4 * (MAX_THREADS // 32) + 16
# The staged kernels (row_quant.cuh: staged rows): about this many vectors per thread (two passes of
# kStagedUnroll = 4), which also bounds a thread's terms of the norm's sum of squares to 64
# (fused_bounds.py); rows longer than 512 x 8 vectors run on Triton.
STAGED_VECS_PER_THREAD = 8


class ScaleFlags(NamedTuple):
    """A fused call's group-scale flags, as per_token_group_quant_fp8 takes them (per token: all
    False)."""

    column_major: bool = False
    tma_aligned: bool = False
    ue8m0: bool = False
    packed: bool = False

    @property
    def layout(self) -> int:
        """group_scales.cuh's ScaleLayout (the kernels' scale_ld is the scale tensor's stride(1))."""
        return per_token_group.layout_code(self.column_major, self.tma_aligned, self.packed)


def check_quant_args(op: str, row_len: int, group_size, scale_ub, scale_ub_value, flags: ScaleFlags, device) -> None:
    """group_size None (per token) or one of GROUP_SIZES dividing the row; scale_ub per token only;
    the layout flags per group only, as per_token_group_quant_fp8 checks them."""
    if group_size is None:
        for name, value in zip(("column_major_scales", "tma_aligned_scales", "scale_ue8m0", "packed_ue8m0"), flags):
            if not isinstance(value, bool):
                raise TypeError(f"{op}: {name} must be True or False, got {value!r}")
        if any(flags):
            raise ValueError(f"{op}: column_major_scales, tma_aligned_scales, scale_ue8m0 and packed_ue8m0 apply to group "
                             f"scales; they need a group_size")
        _checks.scale_ub(op, scale_ub, device)
        _checks.scale_ub_value(op, scale_ub_value)
        return
    per_token_group.check_scale_flags(op, *flags)
    if isinstance(group_size, bool) or not isinstance(group_size, int):
        raise TypeError(f"{op}: group_size must be None or an int, got {type(group_size).__name__}")
    if group_size not in GROUP_SIZES:
        raise ValueError(f"{op}: group_size must be None (per token) or one of {GROUP_SIZES}, got {group_size}")
    if row_len % group_size:
        raise ValueError(f"{op}: the output's row length must be a multiple of group_size {group_size}, got {row_len}")
    if scale_ub is not None or scale_ub_value is not None:
        raise ValueError(f"{op}: scale_ub bounds per-token scales; with group_size it must be None")


def split_scale_ub(op: str, scale_ub, group_size, device) -> tuple:
    """scale_ub as the schema takes it, (tensor or None, float or None); per group any value is
    passed on for check_quant_args to refuse."""
    if isinstance(scale_ub, torch.Tensor):
        return scale_ub, None
    if group_size is None:
        return _checks.scale_ub(op, scale_ub, device)
    return None, scale_ub


def _token_scale_shape(q_shape: tuple) -> tuple:
    return (*q_shape[:-1], 1)


def check_outputs(op: str, outs: tuple, q_shape: tuple, group_size, flags: ScaleFlags, device) -> None:
    """out: codes of q_shape; scale_out: (..., 1) per token, else the layout the flags ask for."""
    from ..reference import FP8_DTYPE

    out, scale_out = outs
    _checks.output(op, "out", out, q_shape, FP8_DTYPE, device)
    if group_size is None:
        _checks.output(op, "scale_out", scale_out, _token_scale_shape(q_shape), torch.float32, device)
    else:
        per_token_group.check_scale_out(op, scale_out, q_shape, group_size, flags.column_major, flags.tma_aligned,
                                        flags.packed, device)


def allocate(q_shape: tuple, group_size, flags: ScaleFlags, device) -> tuple[torch.Tensor, torch.Tensor]:
    from ..reference import FP8_DTYPE

    if group_size is None:
        scales = torch.empty(_token_scale_shape(q_shape), dtype=torch.float32, device=device)
    else:
        scales = per_token_group.allocate_scales(q_shape, group_size, flags.column_major, flags.tma_aligned, flags.packed,
                                                 device)
    return torch.empty(q_shape, dtype=FP8_DTYPE, device=device), scales


def copy_reference(q: torch.Tensor, s: torch.Tensor, outs: tuple, group_size, flags: ScaleFlags) -> None:
    """The reference's codes and row-major scales into the outputs' layout."""
    out, scale_out = outs
    out.copy_(q)
    if group_size is None:
        scale_out.copy_(s)
    else:
        scale_out.copy_(per_token_group.scales_from_reference(s, flags.column_major, flags.tma_aligned, flags.packed))


def vector_width(row_len: int, element_size: int, *strides_and_addresses: tuple[int, int]) -> int:
    """The widest vector (elements, a power of two, at most 16 bytes) dividing the row length, each
    (row stride in elements, base address in bytes) pair's stride, and aligning its address."""
    vec = 16 // element_size
    while vec > 1:
        if row_len % vec == 0 and all(
            stride % vec == 0 and address % (vec * element_size) == 0 for stride, address in strides_and_addresses
        ):
            return vec
        vec //= 2
    return 1


@dataclass(frozen=True)
class RowPlan:
    vec: int
    vecs_per_thread: int  # the register kernel's; 0 for the staged kernel
    block_threads: int
    smem_bytes: int = 0  # the staged kernel's row in shared memory; 0 for the register kernel
    trigger_at_entry: Optional[bool] = None  # under PDL; None: pdl_launch's rule, else forced (the bench)
    # Register kernel: CTAs sharing each row (row_quant.cuh: RowPart), a power of two up to the
    # CTA's warps; only forced (shared_rows; NOT MEASURED: no rule plans it yet).
    ctas_per_row: int = 1
    # Staged kernel, RMSNorm without the residual or SiLU per token: the input row into shared memory
    # by one bulk copy (bulk_rows; sm_90+, 16-byte vectors); only forced (bench "fp8quant:plan:bulk";
    # NOT MEASURED).
    bulk: bool = False

    @property
    def staged(self) -> bool:
        return self.smem_bytes > 0


def staged_pays(registers: Optional[RowPlan], num_rows: int, sm_count: int) -> bool:
    """Whether a row goes to the staged kernel instead of the register kernel's plan: where that
    plan's CTAs are over 256 threads (a row of more than 256 x 4 vectors, whose registers leave an
    SM one CTA) and its grid more than fills the SMs' threads once (so CTAs must follow one
    another on an SM instead of all being resident). SiLU per token, H100, same run: 16384 rows of
    I 11008 / 18432 298 / 489 us staged vs 431 / 662 us (101.1 / 103.2% of copy bandwidth vs 70.0 /
    76.3%); 256 rows of I 14336 10.55 vs 10.34 us, 16384 of I 2048 58.25 vs 57.28 (register plans of
    448 and 64 threads kept)."""
    return register_threads(registers) > 256 and register_grid_waves(registers, num_rows, sm_count) > 1


def register_threads(registers: Optional[RowPlan]) -> int:
    """A register plan's CTA threads; None (rows longer than the register kernel holds): 512."""
    return MAX_THREADS if registers is None else registers.block_threads


def register_grid_waves(registers: Optional[RowPlan], num_rows: int, sm_count: int) -> float:
    """How many times the register plan's CTAs (a row each) fill the SMs' threads."""
    return num_rows * register_threads(registers) / (sm_count * MAX_THREADS_PER_SM)


@functools.lru_cache(maxsize=4096)  # once per shape: the ops call it on every launch
def plan(row_len: int, vec: int, element_size: int, group_size: Optional[int],
         target_vecs_per_thread: int = TARGET_VECS_PER_THREAD, staged: bool = False,
         staged_vecs_per_thread: int = STAGED_VECS_PER_THREAD) -> Optional[RowPlan]:
    """One CTA per row: about TARGET_VECS_PER_THREAD vectors per thread, in whole warps, at most
    512 threads; None where the CUDA kernel cannot hold the row (more than 512 x 6 vectors) or a
    group spans more than a warp (group_size / vec > 32: float32 with group 256, or a narrow
    vector); per group the vectors per thread a power of two dividing the group. staged: the
    staged kernel's plan instead (about staged_vecs_per_thread vectors per thread, at most
    STAGED_VECS_PER_THREAD, the row's element_size-byte elements in shared memory; where
    staged_pays, and forced as "fp8quant:plan:s" / ":sN" in the bench); target_vecs_per_thread:
    an op's own target (SiLU's is 2) or the bench's forced "fp8quant:plan:vN"."""
    vecs = row_len // vec
    if group_size is not None and group_size // vec > 32:
        return None
    if staged:
        if vecs > MAX_THREADS * STAGED_VECS_PER_THREAD:
            return None
        target = min(staged_vecs_per_thread, STAGED_VECS_PER_THREAD)
        threads = min(MAX_THREADS, 32 * -(-vecs // (target * 32)))
        return RowPlan(vec, 0, threads, row_len * element_size)
    # Per group, a thread's vectors are of one group and divide it (row_quant.cuh: row_slots).
    allowed = VECS_PER_THREAD if group_size is None else tuple(
        n for n in VECS_PER_THREAD if (group_size // vec) % n == 0)
    target = min(target_vecs_per_thread, allowed[-1])
    warps = -(-vecs // (target * 32))
    threads = min(MAX_THREADS, 32 * warps)
    per_thread = -(-vecs // threads)
    fits = [n for n in allowed if n >= per_thread]
    return RowPlan(vec, fits[0], threads) if fits else None


def shared_rows(plan: RowPlan, ctas_per_row: int) -> RowPlan:
    """The register plan with each row shared by ctas_per_row CTAs (row_quant.cuh: RowPart): a power
    of two up to the CTA's warps (each part stores whole warps' vectors)."""
    if plan.staged or ctas_per_row < 1 or ctas_per_row & (ctas_per_row - 1) or ctas_per_row > plan.block_threads // 32:
        raise ValueError(f"ctas_per_row must be a power of two up to the register plan's {plan.block_threads // 32} "
                         f"warps{' (the staged kernel takes 1)' if plan.staged else ''}, got {ctas_per_row}")
    return replace(plan, ctas_per_row=ctas_per_row)


def bulk_rows(plan: RowPlan, element_size: int, input_rows: int = 1) -> RowPlan:
    """The staged plan with its input row loaded by one bulk copy (RMSNorm without the residual;
    SiLU per token, whose input row is input_rows = 2 codes' rows wide, [gate | up], all in shared
    memory): staged, 16-byte vectors."""
    if not plan.staged or plan.vec * element_size != 16:
        raise ValueError(f"a bulk row load needs the staged kernel and 16-byte vectors, got "
                         f"{'a staged' if plan.staged else 'a register'} plan of {plan.vec * element_size}-byte vectors")
    return replace(plan, bulk=True, smem_bytes=plan.smem_bytes * input_rows)


def pdl_launch(plan: RowPlan, num_rows: int, row_input_bytes: int, device: DeviceInfo, pdl: bool) -> tuple[bool, int]:
    """(whether the kernel lets the next kernel launch at its entry, the shared memory each
    register-kernel CTA reserves) under PDL: only where forced (plan.trigger_at_entry True, the
    bench's ":e1"), with per-token's small-grid reservation for the register kernel at 2 rows up to
    half the SMs. Not by default: measured (H100, same run, inputs in L2) SiLU per token 16x4096
    1.84 vs 1.83 us, 64x4096 1.94 vs 1.94 (no gain)."""
    if not pdl or plan.trigger_at_entry is not True:
        return False, 0
    if plan.staged or 2 * num_rows > device.sm_count or not small_grid_takes_trigger(num_rows, row_input_bytes):
        return True, 0
    return True, pdl_trigger_at_entry(num_rows, plan.block_threads, row_input_bytes, device, pdl, True,
                                      STATIC_SMEM_BYTES)[1]


@functools.lru_cache(maxsize=4096)
def launch_config(kernel, plan: RowPlan, num_rows: int, row_input_bytes: int, group_size, layout: int, ue8m0,
                  device_index: int, pdl: bool):
    """The plan's RowQuantConfig for one op's kernel, built once (a pointer per call); a row reads
    row_input_bytes of its inputs (x, and the residual); layout: ScaleFlags.layout."""
    trigger, reserve = pdl_launch(plan, num_rows, row_input_bytes, _device.device_info(device_index), pdl)
    return ctypes.byref(kernel.entry.config_type(
        plan.vec, plan.vecs_per_thread, group_size or 0, int(layout), int(ue8m0), plan.block_threads,
        num_rows * plan.ctas_per_row, 2 if plan.bulk else int(plan.staged), int(trigger),
        plan.smem_bytes if plan.staged else reserve,
        plan.ctas_per_row.bit_length() - 1, device_index, int(pdl),
    ))
