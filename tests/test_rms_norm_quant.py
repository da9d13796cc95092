"""rms_norm_quant_fp8 on the CPU: the public call is the unfused torch composition (reference.py);
the Triton kernel (under TRITON_INTERPRET=1) within fp8quant/fused_bounds.py's bounds of it, its
residual bit for bit, its SQNR against a float64 truth no worse; y rounded to the dtype vs kept in
fp32 (the choice docs/design.md records)."""

import os

import pytest
import torch

from fp8quant import rms_norm_quant_fp8
from fp8quant.reference import group_scales_layout, per_token_group_quant_fp8_reference, per_token_quant_fp8_reference
from fp8_asserts import assert_codes_equal, assert_layout_matches_row_major, assert_scales_equal, edge_rows, random_rows
from fp8quant.fused_bounds import assert_fused_within, rms_norm_bounds, rms_norm_truth, sqnr_db

DTYPES = [torch.float16, torch.bfloat16, torch.float32]
INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
KERNEL_BACKENDS = ["triton"] if INTERPRETING else []
needs_interpreter = pytest.mark.skipif(not INTERPRETING, reason="the Triton kernel runs on the CPU under TRITON_INTERPRET=1")


def _inputs(tokens, hidden, dtype, seed=0, device="cpu"):
    x = random_rows(tokens, hidden, dtype, device, seed)
    g = torch.Generator().manual_seed(seed + 1)
    weight = (1 + 0.25 * torch.randn(hidden, generator=g)).to(dtype).to(device)
    residual = random_rows(tokens, hidden, dtype, device, seed + 2)
    return x, weight, residual


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("group_size", [None, 64])
def test_public_call_on_cpu_is_the_unfused_composition(dtype, group_size):
    x, weight, residual = _inputs(6, 256, dtype)
    res = residual.clone()
    q, s = rms_norm_quant_fp8(x, weight, 1e-5, residual=res, group_size=group_size)
    h = x + residual
    hf = h.float()
    y = (hf * torch.rsqrt(hf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(dtype) * weight  # LlamaRMSNorm
    expected = per_token_quant_fp8_reference(y) if group_size is None else per_token_group_quant_fp8_reference(y, group_size)
    assert torch.equal(res, h)
    assert_codes_equal(q, expected[0])
    assert_scales_equal(s, expected[1])


def test_column_major_and_ue8m0_scales():
    x, weight, _ = _inputs(5, 512, torch.bfloat16)
    q, s = rms_norm_quant_fp8(x, weight, group_size=128, column_major_scales=True, scale_ue8m0=True)
    y = (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)).bfloat16() * weight
    q_ref, s_ref = per_token_group_quant_fp8_reference(y, 128, 1e-10, True)
    assert s.shape == (5, 4) and s.stride() == (1, 5)
    assert_codes_equal(q, q_ref)
    assert_scales_equal(s, group_scales_layout(s_ref, column_major=True))


@pytest.mark.parametrize("backend", ["torch"] + KERNEL_BACKENDS)
@pytest.mark.parametrize("layout", ["column", "tma", "packed"])
@pytest.mark.parametrize("rows, hidden, group_size", [(5, 384, 128), (6, 512, 16)])
def test_every_scale_layout(backend, layout, rows, hidden, group_size):
    """Per group, each scale layout of the group contract (column-major, TMA-aligned, packed UE8M0):
    the row-major call's codes and scales in that layout, padding rows unwritten, a packed row's
    bytes past its last group zero (3 groups)."""
    x, weight, residual = _inputs(rows, hidden, torch.bfloat16, seed=rows)
    assert_layout_matches_row_major(
        lambda **kw: rms_norm_quant_fp8(x, weight, residual=residual.clone(), group_size=group_size, backend=backend, **kw),
        (rows, hidden), group_size, layout, context=backend)


def _check_kernel(x, weight, eps, residual, group_size, backend, scale_ub=None, context=""):
    res = None if residual is None else residual.clone()
    q, s = rms_norm_quant_fp8(x, weight, eps, residual=res, group_size=group_size, scale_ub=scale_ub, backend=backend)
    if residual is not None:
        assert torch.equal(res.cpu(), (x + residual).cpu()), f"{context}: residual"
    undetermined = assert_fused_within(q, s, rms_norm_bounds(x.cpu(), weight.cpu(), eps, None if residual is None else residual.cpu()),
                                       group_size, scale_ub, context=context)
    return q, s, undetermined


@needs_interpreter
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("group_size", [None, 16, 128])
@pytest.mark.parametrize("with_residual", [False, True])
def test_triton_within_bounds_and_no_less_accurate(dtype, group_size, with_residual):
    x, weight, residual = _inputs(9, 384, dtype, seed=5)
    residual = residual if with_residual else None
    q, s, _ = _check_kernel(x, weight, 1e-6, residual, group_size, "triton", context=f"{dtype} {group_size}")
    q_ref, s_ref, _ = __import__("fp8quant").reference.rms_norm_quant_fp8_reference(x, weight, 1e-6, residual, group_size)
    truth = rms_norm_truth(x, weight, 1e-6, residual)
    assert sqnr_db(q, s, truth, group_size) >= sqnr_db(q_ref, s_ref, truth, group_size) - 0.05


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_triton_edge_rows_and_odd_length(dtype):
    x = edge_rows(200, dtype)  # zero, -0, denormal, NaN, +-Inf, dtype max, tiny rows
    weight = torch.ones(200, dtype=dtype)
    _check_kernel(x, weight, 1e-6, None, None, "triton", context="edge")
    _check_kernel(x, weight, 1e-6, None, None, "triton", scale_ub=2.0, context="edge, scale_ub")
    x, weight, residual = _inputs(3, 1001, dtype)
    _check_kernel(x, weight, 1e-6, residual, None, "triton", context="H=1001")


def test_the_bounds_can_fail():
    """A code one step off, or a scale one ulp off, is caught."""
    x, weight, _ = _inputs(4, 256, torch.bfloat16)
    q, s = rms_norm_quant_fp8(x, weight)
    bounds = rms_norm_bounds(x, weight, 1e-6)
    assert_fused_within(q, s, bounds)
    bad_q = q.clone()
    bad_q.view(torch.uint8)[1, 7] += 1
    with pytest.raises(AssertionError, match="codes outside their bounds"):
        assert_fused_within(bad_q, s, bounds)
    bad_s = s.clone()
    bad_s.view(torch.int32)[2] += 1
    with pytest.raises(AssertionError, match="scales outside their bounds"):
        assert_fused_within(q, bad_s, bounds)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_rounding_y_to_the_dtype_costs_almost_no_accuracy(dtype):
    """The design choice: y is rounded to the input dtype before quantization (bit-compatible with
    the unfused path). Keeping it in fp32 would gain under 0.05 dB of SQNR against a float64 truth."""
    x, weight, _ = _inputs(64, 4096, dtype, seed=7)
    truth = rms_norm_truth(x, weight, 1e-6)
    xf = x.float()
    y32 = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()
    rounded = sqnr_db(*per_token_quant_fp8_reference(y32.to(dtype)), truth)
    kept = sqnr_db(*per_token_quant_fp8_reference(y32), truth)
    assert abs(kept - rounded) < 0.05, (kept, rounded)


def test_row_plan_holds_the_row_in_whole_warps():
    """ops/row_quant.plan: about 4 vectors per thread, whole warps, at most 512 threads x 6 vectors;
    None where a group would span more than a warp or the row does not fit."""
    from fp8quant.ops.row_quant import plan

    for row_len, vec in ((2048, 8), (4096, 8), (7168, 8), (18432, 8), (24576, 8), (1000, 8), (1001, 1), (4096, 4)):
        p = plan(row_len, vec, 2, None)
        vecs = row_len // vec
        assert p.block_threads % 32 == 0 and p.block_threads <= 512
        assert p.vecs_per_thread in (1, 2, 4, 6) and p.block_threads * p.vecs_per_thread >= vecs
        smaller = max([n for n in (1, 2, 4, 6) if n < p.vecs_per_thread], default=0)
        assert p.block_threads * smaller < vecs  # no fewer vectors per thread would hold the row
    assert plan(4096, 8, 2, None).block_threads == 128  # 512 vectors: 128 threads x 4
    assert plan(24576 + 8, 8, 2, None) is None
    assert plan(4096, 4, 4, 256) is None and plan(4096, 8, 2, 256) is not None


@pytest.mark.parametrize("rows, hidden, residual, per_token, expect", [
    (1, 4096, False, True, "v1"),        # a row an SM: one vector a thread
    (64, 8192, True, False, "v1"),
    (66, 4096, False, True, "v1"),       # rows = SMs / 2 (H100: 132)
    (67, 4096, False, True, "v2"),       # up to 8 rows an SM without the residual: 2 vectors
    (1056, 4096, False, False, "v2"),
    (256, 4096, True, True, "v4"),
    (1057, 4096, False, True, "v4"),
    (16384, 8192, False, True, "staged"),  # per token, no residual, 256-thread CTAs, over 8 waves
    (4096, 8192, False, True, "v4"),       # 2 waves
    (16384, 7168, False, True, "v4"),      # 224 threads
    (16384, 8192, True, True, "v4"),       # the residual keeps the register kernel
    (16384, 8192, False, False, "v4"),     # per group too
])
def test_rms_norm_plan_rule(rows, hidden, residual, per_token, expect):
    """ops/rms_norm_quant.plan_rule at the shapes its numbers were measured on (bf16, H100)."""
    from fp8quant.ops import row_quant
    from fp8quant.ops.rms_norm_quant import plan_rule

    registers = row_quant.plan(hidden, 8, 2, None if per_token else 128)
    assert plan_rule(rows, residual, per_token, 132, registers) == expect


@pytest.mark.parametrize("group_size", [16, 32, 64, 128, 256])
@pytest.mark.parametrize("target", [1, 2, 4, 6])
def test_group_row_plan_gives_a_thread_vectors_of_one_group(group_size, target):
    """Per group, the register kernel's thread holds vectors of one group (row_quant.cuh:
    row_slots): a power of two of them dividing the group, and the row still covered."""
    from fp8quant.ops.row_quant import plan

    for row_len, vec, size in ((2048, 8, 2), (4096, 8, 2), (7168, 8, 2), (18432, 8, 2), (4096, 4, 4), (7168, 2, 2)):
        p = plan(row_len, vec, size, group_size, target)
        if group_size // vec > 32 or row_len % group_size:
            continue
        if p is None:  # only where even a whole group a thread would not fit 512 threads
            assert row_len // vec > 512 * min(4, group_size // vec)
            continue
        n = p.vecs_per_thread
        assert n & (n - 1) == 0 and (group_size // vec) % n == 0
        assert p.block_threads % 32 == 0 and p.block_threads <= 512 and p.block_threads * n >= row_len // vec


def test_staged_row_plan_bounds_a_threads_share_of_the_row():
    """The staged plans: whole warps, at most 8 vectors a thread (so at most 64 of the norm's terms,
    fused_bounds.py), the row's bytes in shared memory; None past 512 x 8 vectors."""
    from fp8quant.ops.row_quant import plan

    for row_len, vec, size in ((2048, 8, 2), (7168, 8, 2), (18432, 8, 2), (32768, 8, 2), (8192, 4, 4), (1001, 1, 2)):
        p = plan(row_len, vec, size, None, staged=True)
        vecs = row_len // vec
        assert p.vecs_per_thread == 0 and p.block_threads % 32 == 0 and p.block_threads <= 512
        assert vecs <= 8 * p.block_threads < vecs + 8 * 32 and vecs * vec * 1.0 / p.block_threads <= 64
        assert p.smem_bytes == row_len * size
    assert plan(32768 + 8, 8, 2, None, staged=True) is None
    # Fewer vectors a thread where asked (the bench's "fp8quant:plan:s4"), within 512 threads.
    assert plan(8192, 8, 2, None, staged=True, staged_vecs_per_thread=4).block_threads == 256
    assert plan(32768, 8, 2, None, staged=True, staged_vecs_per_thread=4).block_threads == 512


@pytest.mark.parametrize("rows, row_bytes, reserves", [
    (16, 8192, True),       # 2 rows up to half the SMs, rows of <= 16 KiB read: one CTA an SM
    (66, 16384, True),
    (1, 8192, False),
    (67, 8192, False),      # more than half the SMs
    (16, 32768, False),     # rows over 16 KiB
])
def test_fused_row_kernels_pdl_trigger_only_where_forced(rows, row_bytes, reserves):
    """ops/row_quant.py pdl_launch: off by default (measured no faster); forced on, the register
    kernel reserves one CTA an SM where per-token's small-grid rule would, the staged kernel never;
    nothing without PDL."""
    from dataclasses import replace

    from fp8quant._device import H100_SXM
    from fp8quant.ops import row_quant
    from fp8quant.ops.pdl_plan import SMEM_RESERVED_PER_CTA

    p = row_quant.plan(4096, 8, 2, None)
    assert row_quant.pdl_launch(p, rows, row_bytes, H100_SXM, pdl=True) == (False, 0)
    on, smem = row_quant.pdl_launch(replace(p, trigger_at_entry=True), rows, row_bytes, H100_SXM, pdl=True)
    assert on and (smem > 0) == reserves, (on, smem)
    if reserves:
        footprint = smem + row_quant.STATIC_SMEM_BYTES + SMEM_RESERVED_PER_CTA
        assert footprint + 4096 <= H100_SXM.smem_per_sm < 2 * footprint - 4096, smem
    assert row_quant.pdl_launch(replace(p, trigger_at_entry=True), rows, row_bytes, H100_SXM, pdl=False) == (False, 0)
    staged = replace(row_quant.plan(4096, 8, 2, None, staged=True), trigger_at_entry=True)
    assert row_quant.pdl_launch(staged, rows, row_bytes, H100_SXM, pdl=True) == (True, 0)


def test_shared_rows_plan():
    """row_quant.shared_rows: a power of two up to the register plan's warps; the staged kernel and
    other counts refused; the launch config's grid and shift follow (rows x CTAs, log2)."""
    from fp8quant.ops import row_quant

    plan = row_quant.plan(4096, 8, 2, None, 1)  # 512 threads, 16 warps
    assert plan.block_threads == 512 and row_quant.shared_rows(plan, 4).ctas_per_row == 4
    assert row_quant.shared_rows(plan, 16).ctas_per_row == 16
    for bad in (0, 3, 32):
        with pytest.raises(ValueError, match="ctas_per_row must be a power of two up to the register plan's 16 warps"):
            row_quant.shared_rows(plan, bad)
    with pytest.raises(ValueError, match="the staged kernel takes 1"):
        row_quant.shared_rows(row_quant.plan(4096, 8, 2, None, staged=True), 2)
    names = [n for n, _ in row_quant.CONFIG]
    assert names.index("ctas_per_row_shift") == names.index("smem_bytes") + 1


def test_bulk_rows_plan():
    """row_quant.bulk_rows: the staged plan of 16-byte vectors only; the launch config marks it
    (staged 2)."""
    from fp8quant.ops import row_quant

    staged = row_quant.plan(8192, 8, 2, None, staged=True)
    assert row_quant.bulk_rows(staged, 2).bulk and row_quant.bulk_rows(staged, 2).smem_bytes == staged.smem_bytes
    assert row_quant.bulk_rows(staged, 2, input_rows=2).smem_bytes == 2 * 8192 * 2  # SiLU's [gate | up]
    with pytest.raises(ValueError, match="needs the staged kernel and 16-byte vectors, got a staged plan of 8-byte"):
        row_quant.bulk_rows(row_quant.plan(8192, 4, 2, None, staged=True), 2)
    with pytest.raises(ValueError, match="got a register plan"):
        row_quant.bulk_rows(row_quant.plan(8192, 8, 2, None), 2)
