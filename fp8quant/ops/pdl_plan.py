"""Where a kernel lets the next one launch at its entry under PDL (programmatic dependent launch):
the rule the per-token register kernel measured (per_token_plan's table, docs/design.md) and the
group kernel shares. The kernels call allow_dependents_to_launch_if (csrc/common/pdl.cuh) with it."""

from __future__ import annotations

import math
from fractions import Fraction

from .._device import DeviceInfo

EARLY_TRIGGER_MAX_CTA_INPUT_BYTES = 16 * 1024
EARLY_TRIGGER_MIN_FILL = Fraction(9, 10)
MAX_THREADS_PER_SM = 2048  # sm_80 to sm_90
MAX_CTAS_PER_SM = 32
SMEM_RESERVED_PER_CTA = 1024  # the driver's per-CTA shared memory


def two_calls_ctas_per_sm(grid: int, device: DeviceInfo) -> int:
    """CTAs per SM that two calls take: twice one call's, or one where two grids fit one per SM."""
    return 2 * math.ceil(grid / device.sm_count) if 2 * grid > device.sm_count else 1


def pdl_trigger_at_entry(
    grid: int, block_threads: int, cta_input_bytes: int, device: DeviceInfo, pdl: bool, small_grid: bool = False,
    static_smem_bytes: int = 0,
) -> tuple[bool, int]:
    """(whether a kernel lets the next kernel launch at its entry, the dynamic shared memory each
    CTA then reserves), under PDL; static_smem_bytes: what each CTA declares already.

    By default a call lets the next launch after its PDL wait, so the call after next is placed,
    and asks L2 for its rows, only once the next call's wait returns. At entry, it is placed as
    this call's CTAs exit. That helps where two calls' CTAs fill the SMs (at least 9/10 of their
    slots; otherwise every call of a graph becomes resident at once and waits: up to 0.6 us
    slower), either by their threads or by shared memory reserved so that no third call's CTAs
    fit; and only for CTAs that quantize at most 16 KiB (with larger ones the few SMs the two calls
    leave empty take two of the next call's CTAs and finish last: 256x16384 5.62 vs 5.17 us).
    `small_grid` (small_grid_takes_trigger): a grid of at most half the SMs takes it whether or
    not two calls fill the SMs, with one CTA per SM reserved: 2-8 rows of 4096-8192 1.14-1.38 ->
    1.01-1.13 us, 40x8192 from L2 1.49 -> 1.37."""
    if not pdl:
        return False, 0
    two_calls = two_calls_ctas_per_sm(grid, device)
    fills = cta_input_bytes <= EARLY_TRIGGER_MAX_CTA_INPUT_BYTES and 2 * grid >= EARLY_TRIGGER_MIN_FILL * two_calls * device.sm_count
    if not fills and not (small_grid and two_calls == 1):
        return False, 0
    if min(MAX_THREADS_PER_SM // block_threads, MAX_CTAS_PER_SM) <= two_calls:
        return True, 0
    # A footprint midway between the most that fits two_calls CTAs and the least that keeps out
    # one more (in 128-byte steps), so that neither depends on the allocation's rounding.
    smem = device.smem_per_sm
    footprint = (smem // two_calls + smem // (two_calls + 1)) // 2 // 128 * 128
    reserve = footprint - SMEM_RESERVED_PER_CTA - static_smem_bytes
    if not 0 < reserve <= device.max_smem_per_block_optin:
        return False, 0
    return True, reserve


def small_grid_takes_trigger(num_rows: int, cta_read_bytes: int) -> bool:
    """Two rows or more, and CTAs that read at most 16 KiB (the whole row where CTAs share it): a
    single row measured 0.01-0.02 us slower with it, CTAs reading 32 KiB rows 0.02 (H200)."""
    return num_rows >= 2 and cta_read_bytes <= EARLY_TRIGGER_MAX_CTA_INPUT_BYTES
