"""The host planner's decisions, without a GPU."""

import math
from dataclasses import replace

import pytest

from fp8quant import _device
from fp8quant.ops import per_token_plan as planner
from fp8quant._device import H100_SXM, H200_SXM
from fp8quant.ops.per_token_plan import GLOBAL, REGISTERS, SHARED, vector_width
from fp8quant.ops.per_token_plan import plan as plan_per_token


def test_vector_width_follows_alignment():
    assert vector_width(4096, 2, 4096, 0, 0) == 8  # 16-byte bf16 vectors
    assert vector_width(4096, 4, 4096, 0, 0) == 4  # 16-byte fp32 vectors
    assert vector_width(1368, 2, 1368, 0, 0) == 8  # 2736 bytes = 171 x 16
    assert vector_width(17, 2, 17, 0, 0) == 1
    assert vector_width(1025, 2, 1025, 0, 0) == 1
    assert vector_width(1, 4, 1, 0, 0) == 1
    assert vector_width(4095, 2, 4096, 2, 1) == 1  # x[:, 1:] of a 4096-wide tensor
    assert vector_width(4096, 2, 4097, 0, 0) == 1  # odd row stride
    assert vector_width(4096, 2, 4100, 0, 0) == 4  # stride multiple of 4 only
    assert vector_width(4096, 2, 4096, 8, 0) == 4  # x 8-byte aligned
    assert vector_width(4096, 2, 4096, 0, 4) == 4  # q 4-byte aligned


@pytest.mark.parametrize(
    "hidden, expect_tpr, expect_nv",
    [(1368, 64, 3), (2048, 128, 2), (4096, 256, 2), (5120, 256, 3), (7168, 256, 4), (8192, 256, 4), (16384, 256, 8), (32768, 512, 8)],
)
def test_registers_plan_for_model_sizes(hidden, expect_tpr, expect_nv):
    # inputs of 2.7-64 MiB: 2 vectors per thread where they fill every slot from 4 MiB (2048,
    # 4096; 1368 stays at 64 x 3), at most 256 threads per row up to 8 vectors (16384; )
    p = plan_per_token(1024, hidden, 2, 8, H100_SXM, staging=REGISTERS)
    assert p.staging == REGISTERS
    assert (p.threads_per_row, p.vecs_per_thread) == (expect_tpr, expect_nv)
    assert p.threads_per_row * p.vecs_per_thread * p.vec >= hidden
    assert p.block_threads % 32 == 0 and p.block_threads <= 512
    assert p.grid * p.rows_per_cta >= 1024


@pytest.mark.parametrize(
    "hidden, expect_tpr, expect_nv",
    [(1368, 128, 2), (2048, 128, 2), (4096, 256, 2), (5120, 256, 3), (7168, 512, 2), (8192, 512, 2), (16384, 512, 4)],
)
def test_large_inputs_prefer_two_vectors_filling_two_thirds(hidden, expect_tpr, expect_nv):
    # 1368: 171 of 256 slots (2/3) -> 128 x 2; 5120: 640 of 1024 -> 256 x 3
    p = plan_per_token(32768, hidden, 2, 8, H100_SXM)  # 85-1024 MiB of bf16
    assert (p.threads_per_row, p.vecs_per_thread) == (expect_tpr, expect_nv)


@pytest.mark.parametrize(
    "hidden, expect_tpr, expect_nv",
    [(1368, 64, 3), (2048, 128, 2), (4096, 256, 2), (5120, 256, 3), (7168, 256, 4), (8192, 256, 4), (16384, 512, 4)],
)
def test_large_inputs_on_a_device_with_more_bandwidth_per_sm(hidden, expect_tpr, expect_nv):
    # H200 (36.5 GB/s of DRAM per SM against the H100's 25.4), 1368 at 64 x 3 0.78x the
    # time of 128 x 2, 7168 and 8192 at 256 x 4 0.92-0.98x that of 512 x 2; 2048 and 4096 keep
    # 2 vectors (at most 256 threads per row)
    assert H200_SXM.dram_bytes_per_s_per_sm > planner.TWO_VECTORS_LARGE_MAX_DRAM_PER_SM
    assert H100_SXM.dram_bytes_per_s_per_sm <= planner.TWO_VECTORS_LARGE_MAX_DRAM_PER_SM
    p = plan_per_token(32768, hidden, 2, 8, H200_SXM)
    assert (p.threads_per_row, p.vecs_per_thread) == (expect_tpr, expect_nv)
    # under 64 MiB both devices plan alike
    assert plan_per_token(1024, hidden, 2, 8, H200_SXM) == plan_per_token(1024, hidden, 2, 8, H100_SXM)


def test_unknown_bandwidth_plans_as_the_h100():
    unknown = _device.DeviceInfo(H100_SXM.name, 132, (9, 0), H100_SXM.max_smem_per_block_optin)
    assert unknown.dram_bytes_per_s == 0.0
    for tokens in (1, 300, 32768, 65536):
        for hidden in (1368, 4096, 7168, 8192):
            assert plan_per_token(tokens, hidden, 2, 8, unknown, pdl=True) == plan_per_token(
                tokens, hidden, 2, 8, H100_SXM, pdl=True
            )


def test_large_float32_rows_take_two_vectors_only_without_padding():
    assert plan_per_token(32768, 4096, 4, 4, H100_SXM).name == "registers/v4/t512x2"
    assert plan_per_token(32768, 1368, 4, 4, H100_SXM).name == "registers/v4/t128x3"  # 256 x 2 measured slower


@pytest.mark.parametrize("tokens", [1, 7, 133, 4096, 65536])
@pytest.mark.parametrize("hidden", [1, 17, 1000, 1024, 1025, 1368, 2047, 2048, 4096, 8193, 16384, 32768])
def test_plans_cover_every_row_and_column(tokens, hidden):
    for elem in (2, 4):
        vec = vector_width(hidden, elem, hidden, 0, 0)
        p = plan_per_token(tokens, hidden, elem, vec, H100_SXM)
        assert p.block_threads % 32 == 0 and 32 <= p.block_threads <= 512
        assert 1 <= p.grid <= planner.MAX_GRID
        assert p.grid * p.rows_per_cta >= tokens  # one pass covers every row
        if p.staging == REGISTERS:
            assert p.threads_per_row * p.vecs_per_thread * p.vec >= hidden
            assert 1 <= p.vecs_per_thread <= planner.MAX_VECS_PER_THREAD
        assert p.smem_bytes <= H100_SXM.max_smem_per_block_optin


def test_few_rows_spread_over_sms_and_threads():
    # latency-bound, rows too many to share (more than sm_count / 2): about 2 vectors per
    # thread, at most 256 threads per row
    p = plan_per_token(100, 4096, 2, 8, H100_SXM)
    assert p.grid == 100 and p.rows_per_cta == 1 and p.ctas_per_row == 1
    assert (p.threads_per_row, p.vecs_per_thread) == (256, 2)
    # too short to share (at most one vector per thread at 128 threads): the same rule
    for hidden, expect in [(1024, (64, 2)), (64, (4, 2)), (17, (16, 2))]:
        p = plan_per_token(1, hidden, 2, vector_width(hidden, 2, hidden, 0, 0), H100_SXM)
        assert (p.threads_per_row, p.vecs_per_thread, p.ctas_per_row) == (*expect, 1), hidden
    # judged at 256 threads per row: 128 rows of 16384 are few
    assert plan_per_token(128, 16384, 2, 8, H100_SXM).name == "registers/v8/t256x8"
    # more rows, under 64 MiB: at most 256 threads per row
    assert plan_per_token(256, 16384, 2, 8, H100_SXM).name == "registers/v8/t256x8"
    assert plan_per_token(2048, 16384, 2, 8, H100_SXM).name == "registers/v8/t512x4"  # 64 MiB


def test_mid_inputs_take_two_vectors_only_where_they_fill_every_slot():
    assert plan_per_token(511, 4096, 2, 8, H100_SXM).name == "registers/v8/t128x4"  # 4 MiB - 1 row
    assert plan_per_token(1024, 2048, 2, 8, H100_SXM).name == "registers/v8/t128x2"  # 4 MiB
    assert plan_per_token(4096, 1368, 2, 8, H100_SXM).name == "registers/v8/t64x3"  # 128 x 2 pads 1/3
    assert plan_per_token(256, 8192, 2, 8, H100_SXM).name == "registers/v8/t256x4"  # not 512 x 2


@pytest.mark.parametrize(
    "tokens, hidden, expect",
    [
        (1, 1368, "t128x2/s2"), (1, 2048, "t128x2/s2"), (1, 4096, "t128x4/s4"), (1, 5120, "t128x5/s4"),
        (1, 7168, "t256x4/s4"), (1, 8192, "t256x4/s4"), (1, 16384, "t512x4/s4"), (1, 32768, "t512x8/s4"),
        (33, 3840, "t128x4/s4"), (34, 3840, "t128x4/s2"), (66, 3840, "t128x4/s2"),
        (67, 4096, "t256x2"), (67, 16384, "t256x8"), (4096, 16384, "t512x4"),
        # the CTAs' reads within 1 MiB (rows x CTAs per row x row bytes)
        (8, 16384, "t512x4/s4"), (16, 16384, "t512x4/s2"), (32, 16384, "t512x4"), (32, 8192, "t256x4/s2"),
        (64, 8192, "t256x4"), (64, 4096, "t128x4/s2"), (66, 4096, "t128x4"),
    ],
)
def test_few_long_rows_are_shared_by_ctas(tokens, hidden, expect):
    # up to 4 CTAs per row, at most one CTA per SM, each with at least one vector per
    # thread to store; threads per row: the fewest holding the row in <= 5 vectors, at least 128.
    # (33-66 rows of 3840: the SM count binds before the 1 MiB of reads.)
    p = plan_per_token(tokens, hidden, 2, 8, H100_SXM)
    assert p.name == f"registers/v8/{expect}"
    assert p.grid == math.ceil(tokens / p.rows_per_cta) * p.ctas_per_row
    assert p.ctas_per_row <= p.vecs_per_thread
    if p.ctas_per_row > 1:
        assert p.rows_per_cta == 1 and p.grid <= H100_SXM.sm_count


def test_forced_ctas_per_row():
    assert plan_per_token(133, 4096, 2, 8, H100_SXM, REGISTERS, 64, 8).grid == 133 * 8
    assert plan_per_token(133, 5120, 2, 8, H100_SXM, REGISTERS, 256, 2).name == "registers/v8/t256x3/s2"
    for hidden, tpr, split, match in [
        (4096, 256, 4, "power of two in \\[1, 2\\]"), (4096, 64, 3, "power of two"), (512, 16, 2, ">= 32")
    ]:
        with pytest.raises(ValueError, match=match):
            plan_per_token(1, hidden, 2, 8, H100_SXM, REGISTERS, tpr, split)
    with pytest.raises(ValueError, match="16-byte vectors"):  # instances for shared rows: 16 bytes only
        plan_per_token(1, 4096, 2, 4, H100_SXM, REGISTERS, 128, 2)
    # rows that are not 16-byte aligned are not shared; they keep the few-rows rule
    assert plan_per_token(1, 4096, 2, 4, H100_SXM).name == "registers/v4/t256x4"
    assert plan_per_token(1, 4096, 4, 4, H100_SXM).name == "registers/v4/t256x4/s4"  # float32, 16 bytes


def test_registers_whenever_the_row_fits():
    # The register kernel beats the seed's shared-memory staging at every size once it took 40
    # registers (H=1368: 48.7 vs 53.0 us at 32K rows, 178.9 vs 186.7 at 128K rows; docs/design.md)
    for tokens in (1024, 65536, 524288):
        assert plan_per_token(tokens, 1368, 2, 8, H100_SXM).staging == REGISTERS
    other = _device.DeviceInfo("unmeasured", 100, (12, 0), 100 * 1024)
    assert plan_per_token(65536, 1368, 2, 8, other).staging == REGISTERS


def test_long_rows_use_shared_then_global():
    p = plan_per_token(100, 65536, 2, 8, H100_SXM)
    assert p.staging == SHARED
    assert p.smem_row_stride == 65536 * 2 + planner.SMEM_ROW_PAD_BYTES
    assert p.smem_bytes == p.smem_row_stride * p.rows_per_cta <= H100_SXM.max_smem_per_block_optin
    p = plan_per_token(100, 200_000, 2, 8, H100_SXM)
    assert p.staging == GLOBAL and p.smem_bytes == 0
    small_smem = _device.DeviceInfo("old", 80, (8, 0), 48 * 1024)
    assert plan_per_token(100, 65536, 2, 8, small_smem).staging == GLOBAL


def test_forced_paths_and_refusals():
    p = plan_per_token(1000, 4096, 2, 8, H100_SXM, staging=SHARED)
    assert p.staging == SHARED and p.smem_bytes == p.rows_per_cta * (4096 * 2 + 16)
    p = plan_per_token(1000, 4096, 2, 8, H100_SXM, staging=GLOBAL)
    assert p.staging == GLOBAL and p.smem_bytes == 0
    p = plan_per_token(1000, 4096, 2, 8, H100_SXM, staging=REGISTERS, threads_per_row=512)
    assert p.vecs_per_thread == 1
    with pytest.raises(ValueError, match="vectors per thread"):
        plan_per_token(1000, 4096, 2, 8, H100_SXM, staging=REGISTERS, threads_per_row=32)
    with pytest.raises(ValueError, match="power of two"):
        plan_per_token(1000, 4096, 2, 8, H100_SXM, threads_per_row=48)
    with pytest.raises(ValueError, match="does not fit in registers"):
        plan_per_token(10, 1 << 20, 2, 8, H100_SXM, staging=REGISTERS)
    with pytest.raises(ValueError, match="staging must be"):
        plan_per_token(10, 64, 2, 8, H100_SXM, staging="texture")


def test_more_rows_than_one_launch_covers_is_refused():
    # The register kernel has no grid-stride loop: a grid past 2^31 - 1 CTAs is an error, not a
    # silent partial result.
    with pytest.raises(ValueError, match="rows of 1 elements need"):
        plan_per_token(2**40, 1, 2, 1, H100_SXM)


@pytest.mark.parametrize(
    "tokens, hidden, element_size, rows_per_cta, threads_per_row",
    [
        # 256 rows of 14-32 KiB go two to a CTA (a grid of 128 <= 132 SMs) ...
        (256, 7168, 2, 2, 256), (256, 8192, 2, 2, 256), (256, 16384, 2, 2, 256), (264, 8192, 2, 2, 256),
        (256, 4096, 4, 2, 256),
        # ... 265-396 rows three (two at 265-352 16-bit rows bought 0.25 us at 265x8192 only:
        # docs/design.md, dropped rules) ...
        (265, 8192, 2, 3, 128), (352, 8192, 2, 3, 128), (270, 6144, 2, 3, 128), (340, 7168, 2, 3, 128),
        # ... and up to 528 rows of 12-16 KiB k = ceil(rows / 132) to a CTA, at 128 threads per row
        # (384x8192 and 512x8192 at t128 x 8, 4 rows; float32 from 265 rows, where
        # two rows lost) ...
        (353, 8192, 2, 3, 128), (265, 4096, 4, 3, 128), (352, 4096, 4, 3, 128), (384, 6144, 2, 3, 128),
        (396, 7168, 2, 3, 128), (397, 8192, 2, 4, 128), (512, 8192, 2, 4, 128), (528, 4096, 4, 4, 128),
        # ... not rows under 12 KiB (256x5120 and 256x4096 measured slower that way, 512x4096 too),
        # nor where one row per CTA already gives at most one CTA per SM, nor past 4 rows per CTA
        (256, 5120, 2, 1, None), (256, 4096, 2, 1, None), (512, 4096, 2, 1, None), (132, 8192, 2, 1, None),
        (529, 8192, 2, 1, None), (1024, 8192, 2, 1, None),
        # ... nor where k rows would need more than 512 threads at up to 8 vectors each (float32
        # rows of 16384 take 512 threads; bf16 rows of 16384 take 256, so at most 2 rows)
        #
        (256, 16384, 4, 1, None), (265, 16384, 2, 1, None), (300, 12288, 2, 1, None), (384, 12288, 2, 1, None),
    ],
)
def test_pdl_rows_per_cta_keep_the_grid_near_the_sms(tokens, hidden, element_size, rows_per_cta, threads_per_row):
    vec = 16 // element_size
    p = plan_per_token(tokens, hidden, element_size, vec, H100_SXM, pdl=True)
    one = plan_per_token(tokens, hidden, element_size, vec, H100_SXM)  # without PDL
    assert p.rows_per_cta == rows_per_cta, p
    assert p.grid == math.ceil(tokens / rows_per_cta) and p.ctas_per_row == 1
    assert p.block_threads == rows_per_cta * p.threads_per_row
    if rows_per_cta > 1:
        assert p.threads_per_row == threads_per_row and p.vecs_per_thread <= planner.MAX_VECS_PER_THREAD
        # at most one CTA per SM
        assert p.grid <= H100_SXM.sm_count < tokens
        assert p.block_threads <= planner.MAX_THREADS_PER_ROW
    else:  # the same plan, but for the trigger at entry (pdl_trigger_at_entry)
        assert replace(p, trigger_at_entry=False, smem_bytes=0) == one
    # forcing the threads per row keeps the rule where ceil(rows / SMs) rows fit at that width,
    # else one row
    forced = plan_per_token(tokens, hidden, element_size, vec, H100_SXM, REGISTERS, one.threads_per_row, pdl=True)
    fits = math.ceil(tokens / H100_SXM.sm_count) * one.threads_per_row <= planner.MAX_THREADS_PER_ROW
    assert forced.rows_per_cta == (rows_per_cta if fits else 1), forced
    # without PDL a call starts on an idle GPU: one row per CTA (two measured slower there)
    assert one.rows_per_cta == 1 and one.grid == tokens


def test_peak_dram_bandwidth_is_known_or_zero():
    # 0.0 where no driver answers (this machine, CI); the GPU test checks the H100's and H200's
    bandwidth = _device.peak_dram_bytes_per_s(0)
    assert isinstance(bandwidth, float) and bandwidth >= 0.0


def _ctas_that_fit(plan, device=H100_SXM):
    """CTAs of `plan` an SM holds by threads, CTA slots and shared memory (not registers)."""
    by_smem = device.smem_per_sm // (plan.smem_bytes + planner.SMEM_RESERVED_PER_CTA)
    return min(planner.MAX_THREADS_PER_SM // plan.block_threads, planner.MAX_CTAS_PER_SM, by_smem)


@pytest.mark.parametrize(
    "tokens,hidden,element_size,trigger",
    [
        # grids of one or two CTAs per SM, CTAs of at most 16 KiB of input (0.1-0.2 us
        # faster), and grids that a wave holds (1024x4096, 2048x2048) or that take several
        (128, 4096, 2, True), (128, 8192, 2, True), (256, 2048, 2, True), (256, 5120, 2, True),
        (64, 4096, 2, True), (1024, 4096, 2, True), (2048, 2048, 2, True), (16384, 2048, 2, True),
        # grids of 64: two calls fill 128 of the 132 SMs at one CTA each
        (64, 5120, 2, True), (64, 7168, 2, True), (64, 8192, 2, True), (60, 8192, 2, True),
        # rows of 16-32 KiB shared by two CTAs to make such a grid (registers_ctas_per_row under PDL)
        (32, 16384, 2, True), (30, 12288, 2, True), (33, 8192, 2, True), (32, 8192, 4, True),
        # CTAs of more input (256x16384 5.17 -> 5.62 us, 512x8192 5.18 -> 5.56; 128x16384 +0.06)
        (256, 16384, 2, False), (512, 8192, 2, False), (128, 16384, 2, False), (256, 8192, 2, False),
        (128, 8192, 4, False),
        # grids of at most half the SMs, one CTA per SM reserved: two rows or more, CTAs
        # that read at most 16 KiB (H200, 8x8192 1.16 -> 1.08-1.09 us, 40x8192 1.50 ->
        # 1.45); rows of 16-32 KiB shared by four CTAs (16x16384: 1.60 / 1.44 -> 1.58 / 1.38)
        (2, 4096, 2, True), (2, 8192, 2, True), (8, 5120, 2, True), (2, 1368, 2, True),
        (59, 8192, 2, True), (40, 8192, 2, True), (20, 8192, 2, True), (16, 16384, 2, True),
        (8, 4096, 4, True),
        # not: a single row (1x5120-8192 0.01-0.02 us slower), CTAs that read rows of more than
        # 16 KiB (2-8x16384 0.02 slower both ways, 64x16384 mixed), grids over half the SMs whose
        # two calls fill under 90% of them
        (1, 8192, 2, False), (1, 1368, 2, False), (2, 16384, 2, False), (8, 16384, 2, False),
        (8, 8192, 4, False), (29, 16384, 2, False), (34, 16384, 2, False), (64, 16384, 2, False),
        (32, 20480, 2, False), (1, 32768, 2, False), (100, 4096, 2, False), (80, 4096, 2, False),
    ],
)
def test_pdl_trigger_at_entry_where_two_calls_fill_the_sms(tokens, hidden, element_size, trigger):
    vec = 16 // element_size
    p = plan_per_token(tokens, hidden, element_size, vec, H100_SXM, pdl=True)
    assert p.trigger_at_entry == trigger, p
    if trigger:
        # no third call's CTAs fit an SM; where shared memory is reserved, two calls' do (at one
        # CTA per SM for grids of at most half the SMs)
        two_calls = 2 * math.ceil(p.grid / H100_SXM.sm_count) if 2 * p.grid > H100_SXM.sm_count else 1
        assert _ctas_that_fit(p) <= two_calls, p
        assert p.smem_bytes == 0 or _ctas_that_fit(p) == two_calls, p
        assert p.smem_bytes <= H100_SXM.max_smem_per_block_optin
    else:
        assert p.smem_bytes == 0
    # without PDL never, and nothing reserved
    no_pdl = plan_per_token(tokens, hidden, element_size, vec, H100_SXM)
    assert not no_pdl.trigger_at_entry and no_pdl.smem_bytes == 0


@pytest.mark.parametrize(
    "tokens,hidden,element_size,split,split_no_pdl",
    [(32, 16384, 2, 2, 1), (30, 16384, 2, 2, 1), (33, 8192, 2, 2, 1), (32, 8192, 4, 2, 1),
     (16, 16384, 2, 4, 2), (15, 10240, 2, 4, 2), (16, 8192, 4, 4, 2)],
)
def test_pdl_split_for_trigger_shares_rows_past_the_read_bound(tokens, hidden, element_size, split, split_no_pdl):
    # Under PDL, rows of 16-32 KiB go to more CTAs than the read bound (SHARED_ROWS_MAX_READ_BYTES)
    # allows where that makes two calls' grids of 60-66 fill the SMs at one CTA each, so that the
    # call takes the trigger at entry: 30-33 rows to two (; H100, 32x16384 1.80 ->
    # 1.75 us from DRAM, 1.67 -> 1.55 in L2), 15-16 to four (; H200, run 2: 16x16384 1.60 / 1.44
    # -> 1.58 / 1.38). Without PDL the read bound holds.
    vec = 16 // element_size
    p = plan_per_token(tokens, hidden, element_size, vec, H100_SXM, pdl=True)
    assert p.ctas_per_row == split and p.grid == split * tokens and p.trigger_at_entry, p
    assert p.smem_bytes == 174080 and _ctas_that_fit(p) == 1, p
    assert tokens * split * hidden * element_size > planner.SHARED_ROWS_MAX_READ_BYTES
    no_pdl = plan_per_token(tokens, hidden, element_size, vec, H100_SXM)
    assert no_pdl.ctas_per_row == split_no_pdl and not no_pdl.trigger_at_entry
    assert replace(p, ctas_per_row=split_no_pdl, grid=split_no_pdl * tokens, smem_bytes=0, trigger_at_entry=False) == no_pdl


def test_pdl_trigger_at_entry_reserves_shared_memory_midway():
    # 128 CTAs of 256 threads (8 would fit an SM): each reserves enough that 2 fit and 3 do not,
    # with room either way for the allocation's rounding
    p = plan_per_token(128, 4096, 2, 8, H100_SXM, pdl=True)
    footprint = p.smem_bytes + planner.SMEM_RESERVED_PER_CTA
    assert 2 * footprint + 8192 <= H100_SXM.smem_per_sm < 3 * footprint - 8192, p
    # 256 CTAs of 128 threads: 4 fit, 5 do not
    p = plan_per_token(256, 2048, 2, 8, H100_SXM, pdl=True)
    footprint = p.smem_bytes + planner.SMEM_RESERVED_PER_CTA
    assert 4 * footprint + 8192 <= H100_SXM.smem_per_sm < 5 * footprint - 8192, p
    # 64 CTAs: one fits, two do not
    p = plan_per_token(64, 8192, 2, 8, H100_SXM, pdl=True)
    footprint = p.smem_bytes + planner.SMEM_RESERVED_PER_CTA
    assert p.grid == 64 and footprint + 8192 <= H100_SXM.smem_per_sm < 2 * footprint - 8192, p
    assert p.smem_bytes == 174080  # as measured (docs/design.md)
