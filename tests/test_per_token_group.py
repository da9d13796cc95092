"""per_token_group_quant_fp8 on the CPU: the reference against a float64 model, UE8M0 rounding at
powers of two, every scale layout read back by position, the public call on the reference and
(under TRITON_INTERPRET=1) the Triton kernel, byte for byte."""

import itertools
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from fp8quant import per_token_group_quant_fp8
from fp8quant.reference import (
    GROUP_SIZES,
    group_scales_layout,
    per_token_group_quant_fp8_reference,
    per_token_quant_fp8_reference,
    ue8m0_round_up,
)
from fp8_asserts import assert_codes_equal, assert_scales_equal, edge_rows, random_rows

DTYPES = [torch.float16, torch.bfloat16, torch.float32]
INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
BACKENDS = ["torch"] + (["triton"] if INTERPRETING else [])


def _layout_kwargs(layout):
    return {
        "row": {},
        "column": dict(column_major_scales=True),
        "tma": dict(column_major_scales=True, tma_aligned_scales=True),
        "packed": dict(packed_ue8m0=True),
    }[layout]


def _expected(x, group_size, layout, ue8m0=False, eps=1e-10):
    q, s = per_token_group_quant_fp8_reference(x, group_size, eps, ue8m0 or layout == "packed")
    if layout == "row":
        return q, s
    return q, group_scales_layout(s.reshape(-1, s.shape[-1]), True, layout in ("tma", "packed"), layout == "packed")


def test_groups_of_the_whole_row_are_the_per_token_op_without_its_floor():
    """group_size = H is per-token quantization with eps in place of the scale floor."""
    x = random_rows(16, 128, torch.bfloat16, seed=3)
    q, s = per_token_group_quant_fp8_reference(x, 128)
    q2, s2 = per_token_quant_fp8_reference(x)
    assert_codes_equal(q, q2)
    assert_scales_equal(s, s2)


@pytest.mark.parametrize("group_size", GROUP_SIZES)
def test_reference_matches_a_float64_model(group_size):
    x = random_rows(8, 4 * group_size, torch.float32, seed=group_size).view(8, 4, group_size)
    q, s = per_token_group_quant_fp8_reference(x.view(8, -1), group_size)
    amax = np.maximum(np.abs(x.double().numpy()).max(axis=-1), np.float64(np.float32(1e-10)))
    scale = (amax / 448.0).astype(np.float32)  # one rounding of the exact quotient
    assert_scales_equal(s, torch.from_numpy(scale))
    y = (x.double() / torch.from_numpy(scale).double()[..., None]).float().clamp(-448, 448)
    assert_codes_equal(q, y.to(torch.float8_e4m3fn).view(8, -1))


def test_ue8m0_round_up_at_and_around_powers_of_two():
    """The smallest power of two >= s, exactly, where exp2(ceil(log2(s))) in float32 can land one
    power below: just above a power of two log2 rounds down to the integer."""
    p = torch.tensor([2.0**-20, 0.5, 1.0, 2.0**20], dtype=torch.float32)
    above = torch.nextafter(p, torch.full_like(p, float("inf")))
    below = torch.nextafter(p, torch.zeros_like(p))
    assert torch.equal(ue8m0_round_up(p), p)
    assert torch.equal(ue8m0_round_up(above), p * 2)
    assert torch.equal(ue8m0_round_up(below), p)
    vllm_style = torch.exp2(torch.ceil(torch.log2(above)))
    assert bool((vllm_style < above).any()), "the float32 log2 form no longer lands below: update the docstring"
    odd = torch.tensor([3.0, 0.7, float("inf"), float("nan")])
    got = ue8m0_round_up(odd)
    assert got[0] == 4.0 and got[1] == 1.0 and got[2] == float("inf") and torch.isnan(got[3])


def test_layouts_by_position():
    rows, groups = 5, 6
    s = torch.arange(rows * groups, dtype=torch.float32).view(rows, groups) + 1
    col = group_scales_layout(s, column_major=True)
    assert col.stride() == (1, rows) and torch.equal(col, s)
    tma = group_scales_layout(s, column_major=True, tma_aligned=True)
    assert tma.stride() == (1, 8) and torch.equal(tma, s)
    pow2 = ue8m0_round_up(s)
    packed = group_scales_layout(pow2, packed_ue8m0=True)
    assert packed.dtype == torch.int32 and packed.shape == (rows, 2) and packed.stride() == (1, 8)
    words = packed.contiguous().view(torch.uint8).view(rows, 2, 4)
    for r in range(rows):
        for g in range(groups):
            assert int(words[r, g // 4, g % 4]) == int(pow2[r, g].view(torch.int32)) >> 23
        assert int(words[r, 1, 2]) == 0 and int(words[r, 1, 3]) == 0  # past the last group


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["row", "column", "tma", "packed"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, hidden, group_size", [(7, 384, 128), (3, 128, 128), (5, 96, 16), (2, 768, 256), (9, 64, 32)])
def test_public_call_bit_exact(backend, layout, dtype, rows, hidden, group_size):
    x = random_rows(rows, hidden, dtype, seed=rows * hidden)
    q, s = per_token_group_quant_fp8(x, group_size, backend=backend, **_layout_kwargs(layout))
    eq, es = _expected(x, group_size, layout)
    assert_codes_equal(q, eq, f"{backend} {layout}")
    assert s.shape == es.shape and s.stride() == es.stride() and s.dtype == es.dtype
    assert_scales_equal(s.float() if s.dtype == torch.float32 else s.view(torch.float32), es.float() if es.dtype == torch.float32 else es.view(torch.float32))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_edge_groups_and_ue8m0(backend, dtype):
    """Zero, denormal, NaN and Inf rows (one group each of 128 at H=256), a group with one huge
    value, and UE8M0 scales."""
    x = edge_rows(256, dtype)
    x[7, 3] = torch.finfo(dtype).max
    for ue8m0 in (False, True):
        q, s = per_token_group_quant_fp8(x, 128, scale_ue8m0=ue8m0, backend=backend)
        eq, es = per_token_group_quant_fp8_reference(x, 128, scale_ue8m0=ue8m0)
        assert_codes_equal(q, eq, f"{backend} ue8m0={ue8m0}")
        assert_scales_equal(s, es, f"{backend} ue8m0={ue8m0}")
    _, s = per_token_group_quant_fp8(x, 128, backend=backend)
    assert bool(torch.isnan(s[3]).any()) and float(s[0, 0]) == np.float32(np.float32(1e-10) / np.float32(448))


def test_strided_and_3d_inputs_and_out():
    base = random_rows(6, 520, torch.bfloat16, seed=4)
    x = base[:, 8:520]
    out = torch.empty(6, 512, dtype=torch.float8_e4m3fn)
    out.view(torch.uint8).fill_(0xA5)
    _, _, size, _ = __import__("fp8quant.ops.per_token_group", fromlist=["x"]).scale_shape_and_stride((6, 512), 128, True, True, False)
    storage = torch.full((size,), -1.0)
    scale_out = storage.as_strided((6, 4), (1, 8))
    q, s = per_token_group_quant_fp8(x, 128, column_major_scales=True, tma_aligned_scales=True, out=out, scale_out=scale_out)
    assert q is out and s is scale_out
    eq, es = _expected(x, 128, "tma")
    assert_codes_equal(q, eq)
    assert_scales_equal(s, es)
    assert bool((storage.view(4, 8)[:, 6:] == -1.0).all()), "padding rows are not written"
    x3 = random_rows(12, 256, torch.float16, seed=5).view(3, 4, 256)
    q3, s3 = per_token_group_quant_fp8(x3, 64)
    assert q3.shape == (3, 4, 256) and s3.shape == (3, 4, 4)
    eq3, es3 = per_token_group_quant_fp8_reference(x3, 64)
    assert_codes_equal(q3, eq3)
    assert_scales_equal(s3, es3)


def test_cuda_plan_covers_every_group_with_full_ctas():
    from fp8quant.ops.per_token_group import CTA_THREADS, MAX_CTA_THREADS, plan

    for group_size, vec, groups, rows in itertools.product((16, 32, 64, 128, 256), (1, 2, 4, 8), (1, 3, 12, 56, 144),
                                                            (1, 7, 256, 65536)):
        if vec > group_size:
            continue
        p = plan(rows, groups * group_size, group_size, vec, sm_count=132)
        case = f"{rows}x{groups}x{group_size} vec {vec}: {p}"
        assert p.threads_per_group * p.vecs_per_thread * vec == group_size and p.threads_per_group <= 32, case
        assert groups % p.groups_per_cta == 0, case
        assert p.block_threads % 32 == 0 and p.block_threads <= MAX_CTA_THREADS, case
        assert p.grid == -(-rows // p.rows_per_cta) * (groups // p.groups_per_cta), case
        if rows * groups * p.threads_per_group >= 2 * 132 * CTA_THREADS:
            # threads enough for two full CTAs an SM: CTAs of CTA_THREADS, however few groups divide
            # a row (1536 = 12 x 128)
            assert p.block_threads == CTA_THREADS, case


@pytest.mark.parametrize("rows, hidden, trigger, ctas_per_sm", [
    (256, 4096, True, 4),     # 256 CTAs of 256 threads: two calls' 4 an SM, a fifth kept out by shared memory
    (256, 2048, True, 4),
    (16, 4096, True, 1),      # a grid of at most half the SMs: one CTA an SM
    (4, 7168, True, 1),
    (1024, 4096, True, 0),    # two calls' 16 CTAs an SM are more than fit: no reservation
    (1, 7168, False, None),   # one row (per-token measured it 0.01-0.02 us slower)
    (64, 7168, False, None),  # 448 CTAs of 64 threads: two calls fill 0.85 of 8 slots an SM
])
def test_pdl_trigger_at_entry_as_the_per_token_rule(rows, hidden, trigger, ctas_per_sm):
    from fp8quant._device import H100_SXM
    from fp8quant.ops.pdl_plan import SMEM_RESERVED_PER_CTA
    from fp8quant.ops.per_token_group import STATIC_SMEM_BYTES, pdl_launch, plan

    p = plan(rows, hidden, 128, 8, H100_SXM.sm_count)
    assert pdl_launch(p, rows, 128, 2, H100_SXM, pdl=False) == (False, 0)
    assert pdl_launch(replace(p, trigger_at_entry=False), rows, 128, 2, H100_SXM, pdl=True) == (False, 0)
    on, smem = pdl_launch(p, rows, 128, 2, H100_SXM, pdl=True)
    assert on == trigger, p
    if ctas_per_sm:  # fits ctas_per_sm, not one more, with room for the allocation's rounding
        footprint = smem + STATIC_SMEM_BYTES + SMEM_RESERVED_PER_CTA
        assert ctas_per_sm * footprint + 4096 <= H100_SXM.smem_per_sm < (ctas_per_sm + 1) * footprint - 4096, smem
    else:
        assert smem == 0
    assert pdl_launch(replace(p, trigger_at_entry=True), rows, 128, 2, H100_SXM, pdl=True)[0]


def _tile_scales_model(p, rows, groups, layout, scale_of):
    """per_token_group.cuh's scale_tile write-out, in Python: each CTA's tile (groups x rows,
    column-major), then consecutive threads writing consecutive rows of a column (column-major)
    or packed words of four exponent bytes. Returns {(column or word, row): value} and the count
    of writes per address."""
    from fp8quant.ops.per_token_group import PACKED_UE8M0

    R, G = p.rows_per_cta, p.groups_per_cta
    group_blocks = groups // G
    out, writes = {}, {}
    for block in range(p.grid):
        row0, group0 = block // group_blocks * R, block % group_blocks * G
        tile = {(g, r): scale_of(row0 + r, group0 + g) for g in range(G) for r in range(R)}
        if layout != PACKED_UE8M0:
            entries = [((group0 + t // R), row0 + t % R, tile[(t // R, t % R)]) for t in range(G * R)]
        else:
            assert group0 % 4 == 0
            entries = []
            for t in range(-(-G // 4) * R):
                w, r = t // R, t % R
                word = [tile[(4 * w + b, r)] if 4 * w + b < G and group0 + 4 * w + b < groups else 0 for b in range(4)]
                entries.append((group0 // 4 + w, row0 + r, tuple(word)))
        for column, row, value in entries:
            if row < rows:
                out[(column, row)] = value
                writes[(column, row)] = writes.get((column, row), 0) + 1
    return out, writes


def test_scale_tile_writes_every_scale_once_in_its_layout():
    """The tiled plans of the column-major and packed layouts: every scale (or packed word) written
    exactly once at its layout position, whole words for packed, runs of up to 8 rows."""
    from fp8quant.ops.per_token_group import COLUMN_MAJOR, PACKED_UE8M0, plan

    for group_size, vec, groups, rows, layout in itertools.product(
            (16, 32, 128, 256), (1, 8), (1, 2, 3, 12, 56, 224), (1, 7, 9, 256), (COLUMN_MAJOR, PACKED_UE8M0)):
        if vec > group_size:
            continue
        p = plan(rows, groups * group_size, group_size, vec, sm_count=132, layout=layout, scale_tile=True)
        case = f"{rows}x{groups}x{group_size} vec {vec} layout {layout}: {p}"
        if not p.scale_tile:
            assert layout == PACKED_UE8M0, case  # a tile whose groups are not whole words
            continue
        assert p.rows_per_cta * p.groups_per_cta <= 512, case
        assert p.rows_per_cta >= min(8, rows) or p.rows_per_cta * 2 * p.threads_per_group > 256, case
        out, writes = _tile_scales_model(p, rows, groups, layout, lambda r, g: (r, g))
        assert set(writes.values()) == {1}, case
        if layout == COLUMN_MAJOR:
            assert out == {(g, r): (r, g) for g in range(groups) for r in range(rows)}, case
        else:
            want = {(w, r): tuple((r, 4 * w + b) if 4 * w + b < groups else 0 for b in range(4))
                    for w in range(-(-groups // 4)) for r in range(rows)}
            assert out == want, case


def test_scale_tile_only_for_inputs_larger_than_the_l2():
    """Column-major and packed scales go through the tile by default only where the input does not
    fit the L2 (measured faster there, slower at decode sizes); row-major never."""
    from fp8quant.ops.per_token_group import COLUMN_MAJOR, PACKED_UE8M0, ROW_MAJOR, plan

    for layout in (COLUMN_MAJOR, PACKED_UE8M0):
        assert plan(65536, 7168, 128, 8, 132, layout=layout, input_bytes=65536 * 7168 * 2).scale_tile
        assert not plan(256, 4096, 128, 8, 132, layout=layout, input_bytes=256 * 4096 * 2).scale_tile
    assert not plan(65536, 7168, 128, 8, 132, layout=ROW_MAJOR, input_bytes=65536 * 7168 * 2).scale_tile
