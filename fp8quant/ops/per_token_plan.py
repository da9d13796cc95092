"""The launch planner of per_token_quant_fp8, callable without a GPU (CI tests its decisions).

It turns (rows, H, element size, alignment, device, PDL) into a Plan: which staging holds a row
between the amax pass and the quantize pass, the vector width, threads per row, CTA, grid and
shared memory. The CUDA side trusts the plan (it only refuses instances it lacks). Each rule,
with the measurement behind it (us per call or % of copy bandwidth, H100, bf16 unless said;
docs/design.md has the tables):

| rule | where | why |
|---|---|---|
| registers staging | rows up to 512 x 8 vectors | the row is read once: 7-48 points over shared memory at H >= 4096 |
| shared, then global | longer rows | shared while a row fits the opt-in limit, else read twice |
| <= 4 vectors per thread, least padding | many rows | 31-40 registers, 1536 threads per SM: 7168 at 256 x 4 99.4% vs 128 x 7 97.7% |
| 2 vectors per thread | >= 4 MiB where they fill every slot; >= 64 MiB also 2/3 (16-bit, H100) | 2048x2048 4.92 vs 5.76 us; 65536x1368 1.3-2% |
| <= 256 threads per row | < 64 MiB | 256x16384 5.28 vs 5.64 us |
| H200: mid-size plans at >= 64 MiB | > 32 GB/s DRAM per SM | 131072x1368 124.1 vs 159.4 us |
| ~2 vectors per thread, <= 256 threads | few rows (< 256 threads per SM) | 1x1368 1.82 vs 1.93 us; 64x2048 2.06 vs 2.43 |
| a row shared by up to 4 CTAs | rows x 2 <= SMs, reads <= 1 MiB | 1x16384 1.91 -> 1.42 us; 1x4096 1.38 -> 1.11 |
| k rows per CTA under PDL | rows of >= 12 KiB, grid over the SMs | 384x8192 4.87 -> 4.07 us; 512x8192 5.95 -> 5.13 |
| next launch at entry under PDL | two calls fill the SMs, CTAs <= 16 KiB | 128x4096 1.69 -> 1.48 us; 1024x4096 5.07 -> 4.87 |
| ... and for grids of <= half the SMs | >= 2 rows, CTAs read <= 16 KiB | 2x8192 1.37 -> 1.11 us; 8x5120 1.30 -> 1.10 |
| rows shared past the read bound | when that makes a grid taking the trigger (PDL) | 32x16384 from L2 1.66 -> 1.55 us; 16x16384 1.58 -> 1.43 |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._device import DeviceInfo
from .pdl_plan import (  # noqa: F401 (shared with the group kernel's planner; tests read them here too)
    EARLY_TRIGGER_MAX_CTA_INPUT_BYTES, MAX_CTAS_PER_SM, MAX_THREADS_PER_SM, SMEM_RESERVED_PER_CTA, pdl_trigger_at_entry,
    small_grid_takes_trigger, two_calls_ctas_per_sm,
)

REGISTERS, SHARED, GLOBAL = "registers", "shared", "global"
STAGINGS = (REGISTERS, SHARED, GLOBAL)
STAGING_CODE = {REGISTERS: 0, SHARED: 1, GLOBAL: 2}  # per_token.cuh: Staging

MAX_VECS_PER_THREAD = 8
MAX_THREADS_PER_ROW = 512  # the kernel's __launch_bounds__(512) leaves 128 registers, no spills
PREFERRED_MAX_VECS_PER_THREAD = 4
FILL_THREADS_PER_SM = 256  # "few rows": fewer threads than this per SM
MID_INPUT_BYTES = 4 * 2**20  # 2 vectors per thread where they fill every slot
LARGE_INPUT_BYTES = 64 * 2**20  # also where they fill 2/3 (16-bit), and no 256-thread cap
MID_ROW_MAX_THREADS = 256
# The H100's two-vector plans for large inputs only up to this much peak DRAM bandwidth per SM
# (H100 SXM 25.4 GB/s, H200 36.5; between the two, the bound is a guess).
TWO_VECTORS_LARGE_MAX_DRAM_PER_SM = 32e9
DECODE_MAX_THREADS_PER_ROW = 256
MAX_CTAS_PER_ROW = 4  # 8 were never faster than 4
SHARED_ROWS_MAX_READ_BYTES = 2**20  # every CTA of a shared row reads all of it
SPLIT_MAX_VECS_PER_THREAD = 5
SPLIT_MIN_THREADS_PER_ROW = 128
PDL_PACK_MIN_ROW_BYTES = 12 * 1024  # 14 KiB rows measured faster packed, 10 KiB ones slower
PDL_MAX_ROWS_PER_CTA = 4
CTA_THREADS = 256  # the warp-per-row kernels: 8 rows per CTA
# The register kernel's CTAs for short rows: 128-thread CTAs beat 256 by 2.5-6% at 100-135 MB
# (32768x1368 48.1 vs 51.0 us): smaller CTAs retire and are replaced one at a time.
REGISTERS_CTA_THREADS = 128
SMEM_ROW_PAD_BYTES = 16  # keeps staged rows 16-byte aligned (bank conflicts measured equal without)
MAX_GRID = 2**31 - 1


@dataclass(frozen=True)
class Plan:
    staging: str
    vec: int  # elements per vector access
    vecs_per_thread: int  # registers staging only, else 0
    threads_per_row: int
    block_threads: int
    grid: int
    smem_bytes: int  # dynamic shared memory: the staged rows, or the reservation of the trigger at entry
    smem_row_stride: int  # bytes, shared staging only
    ctas_per_row: int = 1  # registers staging: CTAs sharing each row (a power of two)
    trigger_at_entry: bool = False  # registers staging under PDL: the next kernel may launch at entry

    @property
    def rows_per_cta(self) -> int:
        return self.block_threads // self.threads_per_row

    @property
    def name(self) -> str:
        if self.staging == REGISTERS:
            split = f"/s{self.ctas_per_row}" if self.ctas_per_row > 1 else ""
            return f"registers/v{self.vec}/t{self.threads_per_row}x{self.vecs_per_thread}{split}"
        return f"{self.staging}/v{self.vec}"


def vector_width(hidden: int, element_size: int, x_row_stride: int, x_address: int, q_address: int) -> int:
    """Widest vector (elements, a power of two, at most 16 bytes) that divides the row length and
    the row stride (elements) and to which x's and q's base addresses (bytes) are aligned."""
    vec = 16 // element_size
    while vec > 1:
        if (
            hidden % vec == 0
            and x_row_stride % vec == 0
            and x_address % (vec * element_size) == 0
            and q_address % vec == 0
        ):
            return vec
        vec //= 2
    return 1


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(n))) if n > 1 else 1


def registers_threads_per_row(
    num_rows: int, num_vecs: int, device: DeviceInfo, input_bytes: int = 0, sixteen_bit: bool = True,
    vec_bytes: int = 16,
) -> int:
    """Threads per row for the register kernel (the table's rows on threads per row).

    Many rows: the power of two that wastes the fewest vector slots at up to 4 vectors per thread,
    ties to the nearest 4 vectors (2 where the H100's large-input rule applies); 2 vectors per
    thread first from MID_INPUT_BYTES where they fill every slot and, on devices of up to
    TWO_VECTORS_LARGE_MAX_DRAM_PER_SM, from LARGE_INPUT_BYTES where they fill 2/3 (16-bit); at
    most MID_ROW_MAX_THREADS under LARGE_INPUT_BYTES. Rows longer than 512 x 4 vectors: the fewest
    threads that hold them. Few rows: about 2 vectors per thread up to 256 threads, or, where CTAs
    will share the rows, the fewest threads that hold a row in 5 vectors (at least 128)."""
    large = input_bytes >= LARGE_INPUT_BYTES
    large_two = large and device.dram_bytes_per_s_per_sm <= TWO_VECTORS_LARGE_MAX_DRAM_PER_SM
    candidates = []
    tpr = 1
    while tpr <= MAX_THREADS_PER_ROW:
        per_thread = math.ceil(num_vecs / tpr)
        if per_thread <= PREFERRED_MAX_VECS_PER_THREAD:
            waste = tpr * per_thread - num_vecs
            fill_all = input_bytes >= MID_INPUT_BYTES and waste == 0
            fill_all = fill_all and (large_two or not large or tpr <= MID_ROW_MAX_THREADS)
            fill_two_thirds = large_two and sixteen_bit and 3 * waste <= tpr * per_thread
            two_first = per_thread == 2 and (fill_all or fill_two_thirds)
            candidates.append((not two_first, waste, abs(per_thread - (2 if large_two else 4)), tpr))
        tpr *= 2
    if not candidates:  # very long rows: the fewest threads that hold them
        return min(_pow2_at_least(math.ceil(num_vecs / MAX_VECS_PER_THREAD)), MAX_THREADS_PER_ROW)
    tpr = min(candidates)[-1]
    if not large:
        tpr = min(tpr, max(MID_ROW_MAX_THREADS, _pow2_at_least(math.ceil(num_vecs / MAX_VECS_PER_THREAD))))
    # Few rows, judged at the threads per row the few-rows rule would give (at most 256): with 512,
    # 128x16384 took 512 x 4 at 4.54 us against 4.02 at 256 x 8.
    if num_rows * min(tpr, DECODE_MAX_THREADS_PER_ROW) < device.sm_count * FILL_THREADS_PER_SM:
        if rows_can_be_shared(num_rows, num_vecs, vec_bytes, device):
            tpr = max(SPLIT_MIN_THREADS_PER_ROW, _pow2_at_least(math.ceil(num_vecs / SPLIT_MAX_VECS_PER_THREAD)))
            return min(tpr, MAX_THREADS_PER_ROW)
        tpr = min(DECODE_MAX_THREADS_PER_ROW, _pow2_at_least(math.ceil(num_vecs / 2)))
        tpr = max(tpr, _pow2_at_least(math.ceil(num_vecs / MAX_VECS_PER_THREAD)))
    return tpr


def rows_can_be_shared(num_rows: int, num_vecs: int, vec_bytes: int, device: DeviceInfo) -> bool:
    """Whether a few rows go to several CTAs each: two CTAs per row fit in one per SM, a row needs
    more than one vector per thread at 128 threads, and its vectors are 16 bytes (the kernel's
    shared-row instances)."""
    return num_rows * 2 <= device.sm_count and num_vecs > SPLIT_MIN_THREADS_PER_ROW and vec_bytes == 16


def registers_ctas_per_row(
    num_rows: int, num_vecs: int, threads_per_row: int, vec_bytes: int, device: DeviceInfo, pdl: bool = False
) -> int:
    """CTAs that share each row: each reads the whole row and takes its max, then quantizes its
    part. The largest power of two up to MAX_CTAS_PER_ROW that leaves every CTA a vector per thread,
    keeps the grid within one CTA per SM and the reads within SHARED_ROWS_MAX_READ_BYTES (past it
    the repeated reads cost more than sharing gains: 32x16384 1.79 us unshared vs 2.01 with 4).
    Under PDL, past that bound while it makes a grid that takes the trigger at entry (two calls'
    grids of 60-66 fill the SMs): 32x16384 from L2 1.66 -> 1.55 us, 16x16384 1.58 -> 1.43."""
    vecs_per_thread = math.ceil(num_vecs / threads_per_row)
    if threads_per_row < 32 or not rows_can_be_shared(num_rows, num_vecs, vec_bytes, device):
        return 1
    row_bytes = num_vecs * vec_bytes
    split = 1
    while (
        split * 2 <= min(vecs_per_thread, MAX_CTAS_PER_ROW)
        and num_rows * split * 2 <= device.sm_count
        and num_rows * split * 2 * row_bytes <= SHARED_ROWS_MAX_READ_BYTES
    ):
        split *= 2
    while (
        pdl
        and split * 2 <= min(vecs_per_thread, MAX_CTAS_PER_ROW)
        and 2 * num_rows * split * 2 <= device.sm_count
        and pdl_trigger_at_entry(num_rows * split * 2, threads_per_row, row_bytes // (split * 2), device, pdl)[0]
    ):
        split *= 2
    return split


def pdl_rows_per_cta(
    num_rows: int, num_vecs: int, vec_bytes: int, threads_per_row: int, device: DeviceInfo, pdl: bool,
    threads_forced: bool = False,
) -> tuple[int, int]:
    """(threads per row, rows per CTA) under PDL: where one row per CTA would give more than one CTA
    per SM and rows are PDL_PACK_MIN_ROW_BYTES or more, k = ceil(rows / SMs) rows go to a CTA (up
    to PDL_MAX_ROWS_PER_CTA), the threads per row halved (unless forced) until k rows fit 512
    threads. Why: under PDL the next call's CTAs are placed while this call's are resident, on the
    SMs with the most room; over a long chain of calls a grid of 256 drifts onto about half the SMs,
    4 CTAs each (256x8192 2.78-3.13 us early in a chain, 3.33-3.66 late); with at most one CTA per
    SM it spreads again."""
    one = (threads_per_row, 1)
    if not pdl or num_rows <= device.sm_count or num_vecs * vec_bytes < PDL_PACK_MIN_ROW_BYTES:
        return one
    rows_per_cta = math.ceil(num_rows / device.sm_count)
    tpr = threads_per_row
    while (
        not threads_forced
        and rows_per_cta * tpr > MAX_THREADS_PER_ROW
        and tpr > 32
        and math.ceil(num_vecs / (tpr // 2)) <= MAX_VECS_PER_THREAD
    ):
        tpr //= 2
    if rows_per_cta > PDL_MAX_ROWS_PER_CTA or rows_per_cta * tpr > MAX_THREADS_PER_ROW or tpr < 32:
        return one
    return tpr, rows_per_cta


def registers_fit(hidden: int, vec: int) -> bool:
    return math.ceil(hidden / vec) <= MAX_THREADS_PER_ROW * MAX_VECS_PER_THREAD


def shared_row_stride(hidden: int, element_size: int) -> int:
    """Bytes per warp's row in shared memory: the row rounded up to 16 bytes, plus the pad."""
    return -(-hidden * element_size // 16) * 16 + SMEM_ROW_PAD_BYTES


def plan(
    num_rows: int,
    hidden: int,
    element_size: int,
    vec: int,
    device: DeviceInfo,
    staging: str | None = None,
    threads_per_row: int | None = None,
    ctas_per_row: int | None = None,
    pdl: bool = False,
) -> Plan:
    """The launch for a (num_rows, hidden) input. `staging`/`threads_per_row`/`ctas_per_row` force
    a path (tests and the benchmark use them); a forced path that cannot run raises ValueError."""
    if num_rows < 1 or hidden < 1:
        raise ValueError(f"plan needs num_rows >= 1 and hidden >= 1, got {num_rows}, {hidden}")
    num_vecs = hidden // vec
    if staging is None:
        if registers_fit(hidden, vec):
            staging = REGISTERS
        elif shared_row_stride(hidden, element_size) <= device.max_smem_per_block_optin:
            staging = SHARED
        else:
            staging = GLOBAL
    if staging not in STAGINGS:
        raise ValueError(f"staging must be one of {STAGINGS}, got {staging!r}")
    if staging == REGISTERS:
        return _registers_plan(num_rows, hidden, element_size, vec, num_vecs, device, threads_per_row, ctas_per_row, pdl)

    rows_per_cta = CTA_THREADS // 32
    smem_bytes, stride = 0, 0
    if staging == SHARED:
        stride = shared_row_stride(hidden, element_size)
        if stride > device.max_smem_per_block_optin:
            raise ValueError(
                f"a row of {hidden} x {element_size} bytes does not fit the device's "
                f"{device.max_smem_per_block_optin} bytes of shared memory per block"
            )
        rows_per_cta = max(1, min(rows_per_cta, device.max_smem_per_block_optin // stride))
    rows_per_cta = max(1, min(rows_per_cta, math.ceil(num_rows / device.sm_count)))
    if staging == SHARED:
        smem_bytes = stride * rows_per_cta
    grid = min(math.ceil(num_rows / rows_per_cta), MAX_GRID)
    return Plan(staging, vec, 0, 32, 32 * rows_per_cta, grid, smem_bytes, stride)


def _registers_plan(num_rows, hidden, element_size, vec, num_vecs, device, threads_per_row, ctas_per_row, pdl) -> Plan:
    if not registers_fit(hidden, vec):
        raise ValueError(f"a row of {hidden} elements does not fit in registers")
    threads_forced = threads_per_row is not None
    if threads_per_row is None:
        threads_per_row = registers_threads_per_row(
            num_rows, num_vecs, device, num_rows * hidden * element_size, element_size == 2, vec * element_size
        )
    if threads_per_row & (threads_per_row - 1) or not 1 <= threads_per_row <= MAX_THREADS_PER_ROW:
        raise ValueError(f"threads_per_row must be a power of two in [1, {MAX_THREADS_PER_ROW}], got {threads_per_row}")
    pdl_rows = 1
    if ctas_per_row in (None, 1):
        threads_per_row, pdl_rows = pdl_rows_per_cta(
            num_rows, num_vecs, vec * element_size, threads_per_row, device, pdl, threads_forced
        )
    vecs_per_thread = math.ceil(num_vecs / threads_per_row)
    if vecs_per_thread > MAX_VECS_PER_THREAD:
        raise ValueError(
            f"threads_per_row={threads_per_row} leaves {vecs_per_thread} vectors per thread (at most {MAX_VECS_PER_THREAD})"
        )
    if ctas_per_row is None:
        ctas_per_row = registers_ctas_per_row(num_rows, num_vecs, threads_per_row, vec * element_size, device, pdl)
    if ctas_per_row & (ctas_per_row - 1) or not 1 <= ctas_per_row <= vecs_per_thread:
        raise ValueError(
            f"ctas_per_row must be a power of two in [1, {vecs_per_thread}] (the vectors per thread at "
            f"threads_per_row={threads_per_row}), got {ctas_per_row}"
        )
    if ctas_per_row > 1 and threads_per_row < 32:
        raise ValueError(f"ctas_per_row > 1 needs threads_per_row >= 32, got {threads_per_row}")
    if ctas_per_row > 1 and vec * element_size != 16:
        raise ValueError(f"ctas_per_row > 1 needs 16-byte vectors, got {vec} x {element_size} bytes")
    # CTAs of REGISTERS_CTA_THREADS (one row per CTA above that), full warps always (the shuffles
    # use a full mask); fewer rows per CTA when few rows would leave SMs idle; one row per CTA
    # when CTAs share rows; pdl_rows under PDL.
    block = max(threads_per_row, REGISTERS_CTA_THREADS if ctas_per_row == 1 else 32)
    while block > max(threads_per_row, 32) and math.ceil(num_rows * threads_per_row / block) < device.sm_count:
        block //= 2
    if pdl_rows > 1:
        block = pdl_rows * threads_per_row
    rows_per_cta = block // threads_per_row
    # No grid-stride loop (a one-row call was 0.06-0.07 us faster without): the grid covers every row.
    grid = math.ceil(num_rows / rows_per_cta) * ctas_per_row
    if grid > MAX_GRID:
        raise ValueError(f"{num_rows} rows of {hidden} elements need {grid} CTAs, more than one launch has ({MAX_GRID})")
    cta_read_bytes = min(rows_per_cta, num_rows) * hidden * element_size
    small_grid = small_grid_takes_trigger(num_rows, cta_read_bytes)
    trigger, reserve = pdl_trigger_at_entry(grid, block, cta_read_bytes // ctas_per_row, device, pdl, small_grid)
    return Plan(REGISTERS, vec, vecs_per_thread, threads_per_row, block, grid, reserve, 0, ctas_per_row, trigger)
