"""Host-side launch planning for per_token_quant_fp8, callable without a GPU.

The planner turns (rows, hidden, dtype, alignment, device) into a Plan: which staging holds the
row between the amax pass and the quantize pass, the vector width, how many threads share a row,
the CTA and grid sizes and the shared memory. The CUDA side trusts the plan (it only refuses
instances it does not have), so CI tests the decisions here (tests/test_planner.py).

Decisions (docs/performance.md has the measurements behind them):
- Vector width: the widest power-of-two number of elements, up to 16 bytes, that divides the
  row length, the row stride and the base addresses of x and q. The outputs are contiguous, so
  a width that divides H leaves no tail: H = 17 runs one element at a time, H = 1368 (bf16) at
  16 bytes.
- Staging "shared" for short rows in large numbers where an architecture's measured rule says it
  is faster (SHARED_RULES; on the H100 since v6: never).
- Otherwise staging "registers" whenever the row fits in registers (up to 512 threads x 8
  vectors, i.e. 32768 bf16 elements): the row is read once. Threads per row: see
  registers_threads_per_row (the least padding at up to 4 vectors per thread, 2 where they fill
  their slots from 4 MiB up, more threads when few rows would leave the GPU idle).
- Large inputs on a device with more DRAM bandwidth per SM than the H100's (the H200): the
  mid-size thread counts (TWO_VECTORS_LARGE_MAX_DRAM_PER_SM, v17).
- Under PDL, rows of 12 KiB or more go k to a CTA where one each would give more than one CTA
  per SM, k the fewest rows per CTA that keep the grid within the SM count (pdl_rows_per_cta;
  fewer threads per row where k rows need it): a long chain of calls otherwise piles each call's
  CTAs on about half the SMs (v14, v15).
- Under PDL, where two calls' CTAs fill the SMs (CTAs of up to 16 KiB of input), the register
  kernel lets the next call launch at its entry, with shared memory reserved where needed so
  that no third call's CTAs fit (pdl_trigger_at_entry, v18); 30-33 rows of 16-32 KiB go to two
  CTAs each so that they do (pdl_split_for_trigger, v19), 15-16 to four (v21). Grids of at most
  half the SMs of two rows or more take it with one CTA per SM reserved where their CTAs read at
  most 16 KiB (small_grid_takes_trigger, v21).
- Longer rows: "shared" (the seed's design: a warp per row, the row staged in dynamic shared
  memory) while a row fits the device's opt-in shared-memory limit, else "global" (read twice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

REGISTERS, SHARED, GLOBAL = "registers", "shared", "global"
STAGINGS = (REGISTERS, SHARED, GLOBAL)
STAGING_CODE = {REGISTERS: 0, SHARED: 1, GLOBAL: 2}

MAX_VECS_PER_THREAD = 8
PREFERRED_MAX_VECS_PER_THREAD = 4
FILL_THREADS_PER_SM = 256
# Input sizes from which the register kernel prefers 2 vectors per thread: where they fill
# every slot from MID_INPUT_BYTES, where they fill 2/3 of them (16-bit) from LARGE_INPUT_BYTES.
MID_INPUT_BYTES = 4 * 2**20
LARGE_INPUT_BYTES = 64 * 2**20
# Under LARGE_INPUT_BYTES, at most this many threads per row where the row fits them in up to
# 8 vectors each (registers_threads_per_row).
MID_ROW_MAX_THREADS = 256
# Large inputs take the H100's two-vector plans (v8) only on devices with at most this much peak
# DRAM bandwidth per SM. Measured on an H200 (36.5 GB/s per SM; the H100 SXM has 25.4), bf16, us per
# call (docs/performance.md, v17 run 6): 1368-wide rows at 64 x 3 0.78x the time of 128 x 2
# (131072x1368 124.1 vs 159.4; 128 x 2 leaves a third of its slots padding), 7168 and 8192 at
# 256 x 4 0.92x and 0.97-0.98x that of 512 x 2 (65536x7168 320.6-320.9 vs 348.6; 65536x8192
# 368.7-369.1 vs 376.1-376.4); 2048 and 4096 keep 2 vectors (128 x 2 and 256 x 2 as fast as or
# faster than 64 x 4 and 128 x 4 at every size). On the H100 the two-vector plans were 0.4-2%
# ahead (v8 runs 4-5). Between the two devices measured, the bound is a guess.
TWO_VECTORS_LARGE_MAX_DRAM_PER_SM = 32e9  # bytes/s
DECODE_MAX_THREADS_PER_ROW = 256
# A few rows are shared by up to this many CTAs (registers_ctas_per_row), and only while the
# CTAs' reads of their rows (rows x CTAs per row x row bytes, from L2 after the first) stay
# within SHARED_ROWS_MAX_READ_BYTES.
MAX_CTAS_PER_ROW = 4
SHARED_ROWS_MAX_READ_BYTES = 2**20
# Threads per row where rows are shared: the fewest that hold the row in at most this many
# vectors each, and at least SPLIT_MIN_THREADS_PER_ROW.
SPLIT_MAX_VECS_PER_THREAD = 5
SPLIT_MIN_THREADS_PER_ROW = 128
MAX_THREADS_PER_ROW = 512  # the kernel's __launch_bounds__(512) leaves 128 registers, no spills
# Under PDL, rows of at least this many bytes go k to a CTA where one each would give more than
# one CTA per SM (pdl_rows_per_cta): 14 KiB rows measured faster that way, 10 KiB ones slower
# (v14 run 4), and up to PDL_MAX_ROWS_PER_CTA of them (the most measured: v14 run 9, v15).
PDL_PACK_MIN_ROW_BYTES = 12 * 1024
PDL_MAX_ROWS_PER_CTA = 4
# 16-bit rows where ceil(rows / SMs) is 3 but two rows per CTA give a grid of at most this many
# CTAs per SM go two to a CTA, at the threads per row of three: grids of 77-94 CTAs (3 rows) drift
# to 10-13 SMs holding two CTAs of a call in long chains and lag; two bf16 rows of 12-16 KiB at
# t128 were as fast or faster up to 352 rows (grid 176: 265x8192 0.3 us faster, 340x8192 0.25,
# 346-352 even) and slower from 360 (grid 180), float32 ones 0.05-0.17 us slower from 300 rows
# (v16 runs 2-8).
PDL_TWO_ROWS_MAX_CTAS_PER_SM = Fraction(4, 3)  # exact: 352 rows on 132 SMs are in, 353 out
# Under PDL the register kernel lets the next call launch at its entry where two calls' CTAs fill
# the SMs, for CTAs that quantize at most this much input (pdl_trigger_at_entry, v18; a CTA that
# shares a row reads all of it and quantizes its part, v19).
EARLY_TRIGGER_MAX_CTA_INPUT_BYTES = 16 * 1024
EARLY_TRIGGER_MIN_FILL = Fraction(9, 10)
# What an SM holds (sm_80 to sm_90), and the shared memory the driver keeps per CTA.
MAX_THREADS_PER_SM = 2048
MAX_CTAS_PER_SM = 32
SMEM_RESERVED_PER_CTA = 1024
# 8 warps per CTA for the warp-per-row kernels.
CTA_THREADS = 256
# 4 warps per CTA for the register kernel's short rows (one row per CTA above that): measured on
# an H100 (docs/performance.md, v6), 128-thread CTAs beat 256-thread ones by 2.5-6% at
# 100-135 MB in two runs (e.g. 32768x1368: 48.1 vs 51.0 us; 8192x4096: 37.6 vs 38.6 us) and
# tie at 800 MB; smaller CTAs are retired and replaced one at a time, so SMs idle less.
REGISTERS_CTA_THREADS = 128
# Shared-memory rows are padded by one 16-byte access (see docs/performance.md: with one warp
# per row every access of a warp falls in its own row, so the padding is kept only as the seed
# had it and measured with ncu's bank-conflict counters).
SMEM_ROW_PAD_BYTES = 16
MAX_GRID = 2**31 - 1


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    sm_count: int
    capability: tuple[int, int]
    max_smem_per_block_optin: int  # bytes
    l2_bytes: int = 50 * 2**20
    # Peak DRAM bandwidth (2 x memory clock x bus width), bytes/s; 0 where unknown (the H100's
    # rules apply then).
    dram_bytes_per_s: float = 0.0
    smem_per_sm: int = 228 * 1024  # shared memory per SM, bytes (the H100's and H200's)

    @property
    def arch(self) -> str:
        return f"{self.capability[0]}{self.capability[1]}"

    @property
    def dram_bytes_per_s_per_sm(self) -> float:
        return self.dram_bytes_per_s / self.sm_count


# For tests and for planning on a machine without a GPU. Peak bandwidths from the driver's memory
# clock and bus width: H100 SXM 2619 MHz x 5120 bits; H200 4.81e12 B/s and 60 MiB of L2 as the
# device's driver reports them (v17 run 7).
H100_SXM = DeviceInfo("NVIDIA H100 80GB HBM3", 132, (9, 0), 232448, 50 * 2**20, 2 * 2619e6 * 5120 / 8)
H200_SXM = DeviceInfo("NVIDIA H200", 132, (9, 0), 232448, 60 * 2**20, 4.814304e12)


@dataclass(frozen=True)
class SharedRule:
    """When the seed's shared-memory staging beats the register kernel: rows of at most
    max_row_bytes, and at least min_rows of them."""

    max_row_bytes: int
    min_rows: int


# Measured per architecture (docs/performance.md). H100, v5 (the register kernel at 59
# registers for 4 vectors per thread): at H=1368 (2736-byte rows) the shared path reached
# 76/86/91/96/98% of copy bandwidth at 32K/64K/128K/256K/512K rows against the register
# kernel's 73/79/82/84/85%, so short rows in large numbers went to shared memory. H100, v6 (the
# register kernel at 40 registers, 50% more rows resident per SM): the register kernel wins at
# every size (H=1368: 48.7 vs 53.0 us at 32K rows, 178.9 vs 186.7 us at 128K rows; H=2048 and
# up by more), so the H100's rule never picks shared for a row that fits in registers. This
# replaces the seed's `hidden < 2048` switch; architectures not measured use the H100's rule.
SHARED_RULES = {(9, 0): SharedRule(max_row_bytes=0, min_rows=0)}
DEFAULT_SHARED_RULE = SHARED_RULES[(9, 0)]


def prefers_shared(num_rows: int, row_bytes: int, device: "DeviceInfo") -> bool:
    rule = SHARED_RULES.get(device.capability, DEFAULT_SHARED_RULE)
    return 0 < row_bytes <= rule.max_row_bytes and num_rows >= rule.min_rows


@dataclass(frozen=True)
class Plan:
    staging: str
    vec: int  # elements per vector access
    vecs_per_thread: int  # registers staging only, else 0
    threads_per_row: int
    block_threads: int
    grid: int
    smem_bytes: int
    smem_row_stride: int  # bytes, shared staging only
    ctas_per_row: int = 1  # registers staging: CTAs sharing each row (a power of two)
    # registers staging under PDL: the next kernel may launch at this one's entry
    # (pdl_trigger_at_entry; smem_bytes then holds the shared memory reserved to bound the calls
    # in flight)
    trigger_at_entry: bool = False

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
    num_rows: int,
    num_vecs: int,
    device: DeviceInfo,
    input_bytes: int = 0,
    sixteen_bit: bool = True,
    vec_bytes: int = 16,
) -> int:
    """Threads per row for the register kernel.

    Many rows: the power of two that wastes the fewest vector slots (threads x vectors per
    thread - vectors) with at most PREFERRED_MAX_VECS_PER_THREAD vectors per thread; among
    equals, the one nearest 4 vectors per thread. Inputs of MID_INPUT_BYTES and more take 2
    vectors per thread first where those fill every slot; from LARGE_INPUT_BYTES also 16-bit rows
    where they fill at least 2/3 of them (float32 rows of 1368 at 256 x 2 measured 76.19 and
    149.95 us at 32768 and 65536 rows against 75.10 and 147.01 at 128 x 3, one run each, v8).
    Mid sizes, measured on an H100 with the row prefetched into L2 before the PDL wait (v10 run
    2, bf16, us per call): 2048x2048 4.92 at 128 x 2 vs 5.76 at 64 x 4; 1024x4096 4.87 at
    256 x 2 vs 5.93 at 128 x 4; 2048x4096 9.26 vs 9.61; 4096x2048 9.17 vs 9.69; 4096x4096 17.64
    vs 17.80; 1024x2048 3.16 vs 3.37; but 4096x1368 6.99 at 128 x 2 (1/3 padding) vs 6.60 at
    64 x 3, so padded rows wait for LARGE_INPUT_BYTES. Under LARGE_INPUT_BYTES at most
    MID_ROW_MAX_THREADS threads per row, up to 8 vectors each (the same run: 256x16384 5.28 at
    256 x 8 vs 5.64 at 512 x 4; 1024x16384 18.26 vs 18.33; 256x8192 3.45 at 256 x 4 vs 3.54
    at 512 x 2; v8: 128x16384 4.02 vs 4.54). Measured
    on an H100 (bfloat16, v8 runs 4-5, us per call, two rounds each): 16384x2048 35.34-35.66 at
    128 x 2 against 35.70-35.74 at 64 x 4; 4096x8192 35.81-35.89 vs 35.95-36.02; 32768x2048
    68.93-69.09 vs 69.41-69.47; 65536x4096 266.46-266.53 vs 267.33-267.87; 8192x4096 a tie;
    H=1368 at 128 x 2 (a third of the slots padding) 1.3-2% ahead of 64 x 3 from 8192 rows up
    (65536x1368 90.40-90.50 vs 91.58-91.68); 16384x7168 117.18-117.38 at 512 x 2 vs
    118.21-118.82 at 256 x 4; but 16384x5120 91.7-91.8 at 512 x 2 (3/8 padding) vs 85.8-85.9
    at 256 x 3. Mid sizes were not measured this way and keep the first rule. Devices with more
    DRAM bandwidth per SM than TWO_VECTORS_LARGE_MAX_DRAM_PER_SM (the H200) keep the mid-size
    preferences for large inputs too, with 2 vectors first only at up to 256 threads per row (v17
    run 6). Why at most 4: up to 4 vectors (16-bit input,
    16-byte vectors) the kernel takes 31-40 registers, so 1536 threads fit an SM; 5-8 vectors
    take 56-63 registers, 1024 threads. Measured on an H100 (docs/performance.md, v6, % of
    copy bandwidth): H=7168 at 16K rows 99.4% with 256 x 4 (12.5% of the slots wasted) against
    97.7% with 128 x 7 (none wasted), and 10.2 vs 11.3 us at 1K rows; H=5120 equal either way;
    H=1368 (171 vectors) best at 64 x 3. Rows longer than 512 x 4 vectors take the fewest
    threads that hold them (up to 8 vectors each).
    Few rows (at up to DECODE_MAX_THREADS_PER_ROW threads per row, the launch would have fewer
    than sm_count x FILL_THREADS_PER_SM threads): a
    handful of rows is latency-bound, so each row is spread to about 2 vectors per thread, at
    most DECODE_MAX_THREADS_PER_ROW threads (and at least as many as hold the row). Measured on
    an H100 (docs/performance.md, v6 decode sweep, us per call): 1x1368 1.82 at 128 threads x 2
    vectors vs 1.93 at 256 x 1 (the v5 rule) and 2.07 at 512; 1x4096 2.00 at 256 x 2 vs 2.18 at
    512 x 1; 1x16384 2.68 at 256 x 8 vs 2.88 at 512 x 4; 64x2048 2.06 at 128 vs 2.43 at 256.
    (v2-v5, with the 59-register kernel: 1x4096 4.09 us at 64 threads, 2.42 at 256.)
    Few rows that CTAs will share (rows_can_be_shared, v9): the fewest threads that hold the row
    in up to SPLIT_MAX_VECS_PER_THREAD vectors, at least SPLIT_MIN_THREADS_PER_ROW.
    """
    large = input_bytes >= LARGE_INPUT_BYTES
    # The H100's large-input rules (v8), on devices of up to TWO_VECTORS_LARGE_MAX_DRAM_PER_SM;
    # beyond it large inputs keep the mid-size preferences, and 2 vectors at most 256 threads.
    large_two = large and device.dram_bytes_per_s_per_sm <= TWO_VECTORS_LARGE_MAX_DRAM_PER_SM
    candidates = []
    tpr = 1
    while tpr <= MAX_THREADS_PER_ROW:
        per_thread = math.ceil(num_vecs / tpr)
        if per_thread <= PREFERRED_MAX_VECS_PER_THREAD:
            waste = tpr * per_thread - num_vecs
            # 2 vectors per thread first: from mid sizes where they fill their slots (large inputs
            # beyond the bandwidth bound only at up to 256 threads), from large sizes also where
            # they fill 2/3 of them (16-bit; the H100's rule).
            fill_all = input_bytes >= MID_INPUT_BYTES and waste == 0
            fill_all = fill_all and (large_two or not large or tpr <= MID_ROW_MAX_THREADS)
            fill_two_thirds = large_two and sixteen_bit and 3 * waste <= tpr * per_thread
            two_first = per_thread == 2 and (fill_all or fill_two_thirds)
            candidates.append((not two_first, waste, abs(per_thread - (2 if large_two else 4)), tpr))
        tpr *= 2
    if not candidates:  # very long rows: the fewest threads that hold them
        tpr = _pow2_at_least(math.ceil(num_vecs / MAX_VECS_PER_THREAD))
        return min(tpr, MAX_THREADS_PER_ROW)
    tpr = min(candidates)[-1]
    if not large:  # at most 256 threads per row (up to 8 vectors each) under LARGE_INPUT_BYTES
        tpr = min(tpr, max(MID_ROW_MAX_THREADS, _pow2_at_least(math.ceil(num_vecs / MAX_VECS_PER_THREAD))))
    # Few rows, judged at the threads per row the few-rows rule would give (at most 256): with
    # 512 (v7), 128x16384 took 512 x 4 at 4.54 us against 4.02 with 256 x 8 (docs/performance.md, v8).
    if num_rows * min(tpr, DECODE_MAX_THREADS_PER_ROW) < device.sm_count * FILL_THREADS_PER_SM:  # few rows
        if rows_can_be_shared(num_rows, num_vecs, vec_bytes, device):
            # Rows shared by CTAs (registers_ctas_per_row): the fewest threads that hold the row
            # in up to 5 vectors, at least 128. v9 run 1 (1 row, us): 4096 at 128 x 4 with 4
            # CTAs 1.11 vs 256 x 2 with 2 CTAs 1.35; 5120 at 128 x 5 (4 CTAs) 1.17 vs 256 x 3 (2)
            # 1.35; 7168 at 256 x 4 1.17 vs 128 x 7 1.23; 1368 at 128 x 2 1.11 vs 64 x 3 1.26.
            tpr = max(SPLIT_MIN_THREADS_PER_ROW, _pow2_at_least(math.ceil(num_vecs / SPLIT_MAX_VECS_PER_THREAD)))
            return min(tpr, MAX_THREADS_PER_ROW)
        tpr = min(DECODE_MAX_THREADS_PER_ROW, _pow2_at_least(math.ceil(num_vecs / 2)))
        tpr = max(tpr, _pow2_at_least(math.ceil(num_vecs / MAX_VECS_PER_THREAD)))
    return tpr


def rows_can_be_shared(num_rows: int, num_vecs: int, vec_bytes: int, device: DeviceInfo) -> bool:
    """Whether a few rows go to several CTAs each: at least two CTAs per row fit in one per SM,
    the row needs more than one vector per thread at SPLIT_MIN_THREADS_PER_ROW threads, and its
    vectors are 16 bytes (the kernel has instances for shared rows at that width only)."""
    return num_rows * 2 <= device.sm_count and num_vecs > SPLIT_MIN_THREADS_PER_ROW and vec_bytes == 16


def registers_ctas_per_row(
    num_rows: int, num_vecs: int, threads_per_row: int, vec_bytes: int, device: DeviceInfo, pdl: bool = False
) -> int:
    """CTAs that share each row in the register kernel: each reads the whole row and takes its
    max, then quantizes and stores its own part of the threads' vectors. For a few rows, where
    one SM per row leaves the rest idle and quantizing was ~8.5 of the ~10 instructions per
    element (v9). The largest power of two up to MAX_CTAS_PER_ROW that leaves every CTA at least one
    vector per thread and keeps the grid within one CTA per SM.
    Measured on an H100 (docs/performance.md, v9 run 1; bf16, us per call, every threads per row
    x CTAs per row): 1x16384 1.91 with one CTA (256 x 8) against 1.42 with 4 (512 x 4); 1x8192
    1.40 vs 1.18; 1x4096 1.38 vs 1.11 (128 x 4, 4 CTAs); 1x1368 1.21 vs 1.11 (128 x 2, 2 CTAs);
    16x16384 2.55 vs 2.07; 64x16384 3.25 vs 2.95 (2 CTAs). 8 CTAs were never faster than 4
    (1x16384 1.43 vs 1.42; 1x4096 at 64 x 8: 1.40 vs 1.25 at 64 x 4).
    Since v11 quantizing costs ~5 of ~6 instructions per element, and sharing gains less than
    the repeated reads cost once they pass ~1 MiB (SHARED_ROWS_MAX_READ_BYTES; v11 run 4, us):
    32x16384 1.79 with one CTA per row (512 x 4) vs 1.86 with 2 and 2.01 with 4; 64x16384 2.22
    vs 2.44 with 2; 64x8192 1.69 vs 1.75; 64x5120 1.57 vs 1.62; 32x8192 1.58 with 2 vs 1.62
    with 4; within 1 MiB sharing still wins (8x16384 1.55-1.57 with 4 vs 1.58 with one).
    Under PDL, past that bound, rows go to two CTAs each where that makes a call take the trigger
    at entry (pdl_split_for_trigger, v19)."""
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
    while split * 2 <= min(vecs_per_thread, MAX_CTAS_PER_ROW) and pdl_split_for_trigger(
        num_rows, row_bytes, split * 2, threads_per_row, device, pdl
    ):
        split *= 2
    return split


def pdl_split_for_trigger(
    num_rows: int, row_bytes: int, ctas_per_row: int, threads_per_row: int, device: DeviceInfo, pdl: bool
) -> bool:
    """Whether rows past SHARED_ROWS_MAX_READ_BYTES go to `ctas_per_row` CTAs each (2 or 4, from
    half that) under PDL: where the grid then takes the trigger at entry by the rule of grids that
    two calls fill (pdl_trigger_at_entry: at one CTA per SM, grids of 60-66 on 132 SMs; CTAs that
    quantize at most 16 KiB). That is 30-33 rows of 16-32 KiB to two CTAs each (v19) and 15-16 to
    four (v21). Measured (bf16, us per call, from DRAM / inputs in L2): on an H100
    (docs/performance.md v18 run 9) 32x16384 1.75 / 1.55-1.56 with two CTAs per row and the
    trigger against 1.80 / 1.67 with one CTA per row (the last decode shape over the line from
    L2); on an H200 1.68 / 1.49 against 1.72 / 1.55 (v19 run 1), and 16x16384 1.58 / 1.38 with four
    CTAs per row and the trigger against 1.60-1.61 / 1.44 with two and none (v21 run 2; two and the
    trigger: 1.69 / 1.39, on the H100 1.70 / 1.42-1.43 against 1.66 / 1.59, v18 run 9)."""
    grid = ctas_per_row * num_rows  # (not a small grid's rule: that one asks what a CTA reads)
    return pdl and 2 * grid <= device.sm_count and pdl_trigger_at_entry(grid, threads_per_row, row_bytes // ctas_per_row, device, pdl)[0]


def pdl_rows_per_cta(
    num_rows: int, num_vecs: int, vec_bytes: int, element_size: int, threads_per_row: int, device: DeviceInfo,
    pdl: bool, threads_forced: bool = False,
) -> tuple[int, int]:
    """(threads per row, rows per CTA) for the register kernel's rows, one row per CTA by the rules
    above, under PDL: where one row per CTA gives more than one CTA per SM and the rows are
    PDL_PACK_MIN_ROW_BYTES or more, k = ceil(rows / SMs) rows go to a CTA, so that the grid stays
    within one CTA per SM, with the threads per row halved (unless forced) until k rows fit
    MAX_THREADS_PER_ROW threads at up to MAX_VECS_PER_THREAD vectors each. Where they cannot, or k
    would pass PDL_MAX_ROWS_PER_CTA: one row per CTA, as the rules gave it. One exception (v16):
    where k is 3, the elements 16-bit and two rows per CTA give at most
    PDL_TWO_ROWS_MAX_CTAS_PER_SM CTAs per SM, two rows, at the threads per row of three.

    Why: under PDL the next call's CTAs are placed while this call's are resident, and the GPU
    places them on the SMs with the most room first. A grid of 256 leaves 8 of the H100's 132
    SMs one CTA short, and over a long chain of calls (the bench's graphs of 200) the
    placement drifts until the CTAs of a call sit on about half the SMs, 4 to an SM: 256x8192, %smid
    noted by every CTA of the last call (docs/performance.md, v14 run 3): early in a chain 124
    SMs held 2 CTAs and 8 held 1 (2.78-3.13 us per call); late in a chain of 200, 54 SMs held 4
    and 60 SMs none (3.33-3.66 us); 384x8192 late in a chain on 67 SMs, 53 of them holding 6 (v14
    run 9). With at most one CTA per SM (grid <= SMs) the SMs with the most room are the ones
    this call leaves idle, so the next call spreads one per SM again.
    Measured on an H100 (bf16, us per call, graphs of 2 GiB of calls, two rounds). v14 run 4, two
    rows: 256x16384 5.61-5.67 with one row per CTA, 5.14-5.17 with two (t256, 512 threads);
    256x8192 3.43-3.56 vs 3.15-3.16; 256x7168 3.06-3.15 vs 2.95-2.98; but 256x5120 2.40-2.41 vs
    2.48-2.49 and 256x4096 2.16-2.17 vs 2.23 (shorter rows: PDL_PACK_MIN_ROW_BYTES), 256x2048
    1.65-1.66 vs 1.73-1.75. v14 run 9, four rows at t128 x 8 vectors: 384x8192 4.60-4.90 vs
    4.12-4.18 (two rows, grid 192 still over the SMs: 4.49-4.52), 512x8192 5.99 vs 5.17-5.20,
    but 512x4096 3.05 vs 3.17. v15 runs 1-4, this rule against one row per CTA (t256): 384x8192
    4.87-4.90 vs 4.07-4.14, 512x8192 5.95 vs 5.13-5.18, 384x6144 3.43-3.46 vs 3.34-3.38, float32
    384x4096 4.77 vs 3.55-3.56; two rows per CTA lose 0.1-0.8 us from 360 rows, and three lag two
    or four by 0.25-0.4 us at grids of 89 and 94 (265x8192, 280x8192: the drift again, v15 run 5;
    265x8192 with one row per CTA 3.59-3.70 us, with three 3.53-3.55). v16 runs 3-9, two rows at
    t128 against three: 265x8192 3.22-3.28 vs 3.51-3.57, 316x8192 3.56-3.62 vs 3.85-3.90, 317x8192
    3.61-3.66 vs 3.71-3.74, 340x8192 3.74-3.79 vs 3.84-4.01, 346x8192 3.83-3.89 vs 3.82-4.02,
    352x8192 3.89-3.99 vs 3.93-3.98, 310x6144 2.94-2.98 vs 3.02-3.08, 310x7168 3.24-3.32 vs
    3.33-3.37, 360x8192 (past the bound) 3.90-4.03 vs 3.89-3.90; but float32 300x4096 3.07-3.16 vs
    3.03-3.05, 316x4096 3.18-3.38 vs 3.13-3.16, 360x4096 3.78-3.79 vs 3.40-3.41 (float32 keeps
    three). Two rows at t256 slower (float32 316x4096 3.40-3.54), and 2 rows of 24-32 KiB slower
    than one (300x12288 5.92-5.94 vs 5.15-5.19, 316x16384 8.07 vs 7.69-7.70). Without PDL a call
    starts on an idle GPU and nothing drifts; there two rows per CTA were slower (the committed run
    of 4bf8d71, "fp8quant:nopdl": 256x16384 7.15 us against 6.80 with one row per CTA in e9bcef3's,
    256x8192 4.69 vs 4.54, 256x7168 4.41 vs 4.27)."""
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
    two_rows_grid = math.ceil(num_rows / 2)
    if rows_per_cta == 3 and element_size == 2 and two_rows_grid <= PDL_TWO_ROWS_MAX_CTAS_PER_SM * device.sm_count:
        rows_per_cta = 2  # at the threads per row of 3 rows (t256 measured slower here: v16 run 4)
    return tpr, rows_per_cta


def two_calls_ctas_per_sm(grid: int, device: DeviceInfo) -> int:
    """CTAs per SM that two calls take: twice one call's, or one where two grids fit one per SM."""
    return 2 * math.ceil(grid / device.sm_count) if 2 * grid > device.sm_count else 1


def two_calls_fill_the_sms(grid: int, device: DeviceInfo) -> bool:
    """Whether two calls' CTAs fill at least EARLY_TRIGGER_MIN_FILL of the SMs' slots for them."""
    return 2 * grid >= EARLY_TRIGGER_MIN_FILL * two_calls_ctas_per_sm(grid, device) * device.sm_count


def small_grid_takes_trigger(num_rows: int, cta_read_bytes: int) -> bool:
    """For a grid of at most half the SMs (two calls fit at one CTA per SM, whether or not they
    fill the SMs): whether it takes the trigger at entry with one CTA per SM reserved
    (pdl_trigger_at_entry, v21): two rows or more, and CTAs that read at most
    EARLY_TRIGGER_MAX_CTA_INPUT_BYTES (the whole row where CTAs share it)."""
    return num_rows >= 2 and cta_read_bytes <= EARLY_TRIGGER_MAX_CTA_INPUT_BYTES


def pdl_trigger_at_entry(
    grid: int, block_threads: int, cta_input_bytes: int, device: DeviceInfo, pdl: bool,
    small_grid: bool = False,
) -> tuple[bool, int]:
    """(whether the register kernel lets the next kernel launch at its entry, the dynamic shared
    memory each CTA then reserves), under PDL.

    By default a call lets the next one launch after its griddepcontrol.wait, so the call after
    next is placed, and asks L2 for its rows, only once the next call's wait has returned (the
    call before completed). Let launch at entry, the call after next is placed as soon as an SM
    has room, which is as this call's CTAs exit where two calls' CTAs fill the SMs. Where they
    do not, every call of a graph becomes resident at once and waits (v12 run 2: decode up to
    0.6 us slower), so this holds only where two calls' CTAs fill the SMs: the grid fills at least
    EARLY_TRIGGER_MIN_FILL of its ceil(grid / SMs) CTAs per SM (or, for grids of at most half the
    SMs, two calls' grids fill that share of the SMs at one CTA each), and either the threads of
    two calls' CTAs fill an SM or each CTA reserves shared memory so that no more fit. And only for
    CTAs that quantize at most EARLY_TRIGGER_MAX_CTA_INPUT_BYTES of input (`cta_input_bytes`; a
    CTA that shares a row reads all of it, v19): where the SMs hold two of a call's larger CTAs,
    the few SMs that the two calls in flight leave empty take two of the next call's, and that
    SM's rows finish last.
    Measured on an H100 (bf16, us per call, inputs from DRAM, two rounds, docs/performance.md v18
    run 1), at entry with the reservation against after the wait: 128x4096 1.48 vs 1.69, 128x5120
    1.63 vs 1.85, 128x7168 1.93 vs 2.03-2.04, 128x8192 2.05-2.06 vs 2.16-2.17, 256x2048 1.45 vs
    1.66, 256x1368 1.37 vs 1.57, 256x4096 2.00-2.01 vs 2.15-2.16, 256x5120 2.25 vs 2.41; without
    it (no reservation) 128x4096 1.68, 256x2048 1.47. Larger CTAs: 256x7168 2.93 vs 2.94-2.96
    (2 rows, 28 KiB), 256x8192 3.15 vs 3.17, 128x16384 3.20 vs 3.13-3.14, 256x16384 5.62 vs
    5.17-5.18, 512x8192 5.56 vs 5.18-5.20 (4 rows, 64 KiB). Grids that a wave holds: 1024x4096
    4.87 vs 5.07, 2048x2048 4.94-4.95 vs 5.06; 16384x2048 33.28 vs 33.37-33.41. Grids under the
    SM count, no reservation: 64x8192 1.89 vs 1.70, 64x16384 2.77 vs 2.24, 32x16384 2.12 vs 1.79,
    16x16384 1.85 vs 1.65. Grids of 64 with one CTA per SM (174080 bytes reserved; v18 run 9, from
    DRAM / from L2): 64x5120 1.44 / 1.29-1.30 vs 1.58 / 1.42-1.43, 64x7168 1.54 / 1.34 vs
    1.65-1.66 / 1.54-1.55, 64x8192 1.63-1.64 / 1.37-1.38 vs 1.70 / 1.59-1.60; but 64x16384
    (32 KiB CTAs) 2.26-2.27 / 1.76-1.77 vs 2.23 / 1.82-1.83, and grids of 32 (not taken, 4 calls
    fit): 32x16384 1.75 / 1.57-1.59 vs 1.80 / 1.67, 16x16384 1.70 / 1.42-1.43 vs 1.66 / 1.59.

    Small grids (v21): a grid of at most half the SMs takes it whether or not two calls fill the
    SMs, with one CTA per SM reserved, where `small_grid` (small_grid_takes_trigger: two rows or
    more, CTAs that read at most 16 KiB). Measured on an H200 (v21 run 2, us, from DRAM / from L2,
    against v20's plans): 2-8 rows of 5120-8192 1.11-1.16 -> 1.04-1.09 both ways, 12x8192 1.22 /
    1.16 -> 1.14 / 1.08, 40x8192 1.50 / 1.33 -> 1.45 / 1.28, 20x8192 and 28x8192 (rows shared by
    two, grids 40 and 56) 1.39 / 1.23 -> 1.42 / 1.14 and 1.49 / 1.25 -> 1.53 / 1.17, 2-16 rows of
    1368-4096 0-0.03 faster; a single row of 5120-8192 0.01-0.02 slower (left out). CTAs that read
    32 KiB rows were slower or mixed (run 1: 2-8x16384 +0.02 both ways; 64x16384 +0.02-0.04 /
    -0.01-0.02).
    """
    if not pdl:
        return False, 0
    two_calls = two_calls_ctas_per_sm(grid, device)
    v18_rule = cta_input_bytes <= EARLY_TRIGGER_MAX_CTA_INPUT_BYTES and two_calls_fill_the_sms(grid, device)
    if not v18_rule and not (small_grid and two_calls == 1):
        return False, 0
    if min(MAX_THREADS_PER_SM // block_threads, MAX_CTAS_PER_SM) <= two_calls:
        return True, 0
    # A footprint midway between the most that fits two_calls CTAs and the least that keeps out
    # one more (in 128-byte steps), so that neither depends on the allocation's rounding.
    smem = device.smem_per_sm
    footprint = (smem // two_calls + smem // (two_calls + 1)) // 2 // 128 * 128
    reserve = footprint - SMEM_RESERVED_PER_CTA
    if not 0 < reserve <= device.max_smem_per_block_optin:
        return False, 0
    return True, reserve


def registers_fit(hidden: int, vec: int) -> bool:
    return math.ceil(hidden / vec) <= MAX_THREADS_PER_ROW * MAX_VECS_PER_THREAD


def plan_per_token(
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
    """Choose the launch for a (num_rows, hidden) input. `staging`/`threads_per_row`/
    `ctas_per_row` force a path (tests and the benchmark use them); a forced path that cannot run
    raises ValueError. `pdl`: the launch uses programmatic dependent launch (pdl_rows_per_cta)."""
    if num_rows < 1 or hidden < 1:
        raise ValueError(f"plan_per_token needs num_rows >= 1 and hidden >= 1, got {num_rows}, {hidden}")
    num_vecs = hidden // vec
    if staging is None:
        if prefers_shared(num_rows, hidden * element_size, device) and (
            shared_row_stride(hidden, element_size) * CTA_THREADS // 32 <= device.max_smem_per_block_optin
        ):
            staging = SHARED
        elif registers_fit(hidden, vec):
            staging = REGISTERS
        elif shared_row_stride(hidden, element_size) <= device.max_smem_per_block_optin:
            staging = SHARED
        else:
            staging = GLOBAL
    if staging not in STAGINGS:
        raise ValueError(f"staging must be one of {STAGINGS}, got {staging!r}")

    if staging == REGISTERS:
        if not registers_fit(hidden, vec):
            raise ValueError(f"a row of {hidden} elements does not fit in registers")
        threads_forced = threads_per_row is not None
        if threads_per_row is None:
            threads_per_row = registers_threads_per_row(
                num_rows, num_vecs, device, num_rows * hidden * element_size, element_size == 2, vec * element_size
            )
        if threads_per_row & (threads_per_row - 1) or not 1 <= threads_per_row <= MAX_THREADS_PER_ROW:
            raise ValueError(f"threads_per_row must be a power of two in [1, {MAX_THREADS_PER_ROW}], got {threads_per_row}")
        pdl_rows = 1  # rows per CTA under PDL (pdl_rows_per_cta), which may take fewer threads per row
        if ctas_per_row in (None, 1):
            threads_per_row, pdl_rows = pdl_rows_per_cta(
                num_rows, num_vecs, vec * element_size, element_size, threads_per_row, device, pdl,
                threads_forced,
            )
        vecs_per_thread = math.ceil(num_vecs / threads_per_row)
        if vecs_per_thread > MAX_VECS_PER_THREAD:
            raise ValueError(
                f"threads_per_row={threads_per_row} leaves {vecs_per_thread} vectors per thread "
                f"(at most {MAX_VECS_PER_THREAD})"
            )
        if ctas_per_row is None:
            ctas_per_row = registers_ctas_per_row(num_rows, num_vecs, threads_per_row, vec * element_size, device, pdl)
        if ctas_per_row & (ctas_per_row - 1) or not 1 <= ctas_per_row <= vecs_per_thread:
            raise ValueError(
                f"ctas_per_row must be a power of two in [1, {vecs_per_thread}] (the vectors per "
                f"thread at threads_per_row={threads_per_row}), got {ctas_per_row}"
            )
        if ctas_per_row > 1 and threads_per_row < 32:
            raise ValueError(f"ctas_per_row > 1 needs threads_per_row >= 32, got {threads_per_row}")
        if ctas_per_row > 1 and vec * element_size != 16:
            raise ValueError(f"ctas_per_row > 1 needs 16-byte vectors, got {vec} x {element_size} bytes")
        # CTAs of REGISTERS_CTA_THREADS (one row per CTA above that); full warps always, since
        # the shuffles use a full mask. Fewer rows per CTA when there are few rows, so that they
        # spread over the SMs; one row per CTA when CTAs share rows.
        block = max(threads_per_row, REGISTERS_CTA_THREADS if ctas_per_row == 1 else 32)
        while block > max(threads_per_row, 32) and math.ceil(num_rows * threads_per_row / block) < device.sm_count:
            block //= 2
        if pdl_rows > 1:  # (rows that CTAs share are at most half the SM count: never here)
            block = pdl_rows * threads_per_row
        rows_per_cta = block // threads_per_row
        # The register kernel has no grid-stride loop (a one-row call was faster without it):
        # the grid covers every row. At most 2^31 - 1 CTAs of at least one row each: more rows
        # than that need more than 2^31 x H elements, far past any GPU's memory.
        grid = math.ceil(num_rows / rows_per_cta) * ctas_per_row
        if grid > MAX_GRID:
            raise ValueError(f"{num_rows} rows of {hidden} elements need {grid} CTAs, more than one launch has ({MAX_GRID})")
        cta_read_bytes = min(rows_per_cta, num_rows) * hidden * element_size
        cta_input_bytes = cta_read_bytes // ctas_per_row  # what a CTA quantizes
        small_grid = small_grid_takes_trigger(num_rows, cta_read_bytes)
        trigger, reserve = pdl_trigger_at_entry(grid, block, cta_input_bytes, device, pdl, small_grid)
        return Plan(REGISTERS, vec, vecs_per_thread, threads_per_row, block, grid, reserve, 0, ctas_per_row, trigger)

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


def shared_row_stride(hidden: int, element_size: int, pad: int = SMEM_ROW_PAD_BYTES) -> int:
    """Bytes per warp's row in shared memory: the row rounded up to 16 bytes, plus the pad."""
    return -(-hidden * element_size // 16) * 16 + pad


def with_smem_pad(plan: Plan, hidden: int, element_size: int, pad: int) -> Plan:
    """The same shared-memory plan with another row padding (for the bank-conflict measurement)."""
    if pad % 16:
        raise ValueError(f"the shared-memory row pad must be a multiple of 16 bytes, got {pad}")
    stride = shared_row_stride(hidden, element_size, pad)
    return replace(plan, smem_row_stride=stride, smem_bytes=stride * plan.rows_per_cta)
