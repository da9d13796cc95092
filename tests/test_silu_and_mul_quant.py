"""silu_and_mul_quant_fp8 on the CPU: the public call is the unfused torch composition (reference.py);
the Triton kernel (under TRITON_INTERPRET=1) within fp8quant/fused_bounds.py's bounds of it and its
SQNR against a float64 truth no worse."""

import os

import pytest
import torch

from fp8quant import silu_and_mul_quant_fp8
from fp8quant.reference import per_token_group_quant_fp8_reference, per_token_quant_fp8_reference, silu_and_mul_quant_fp8_reference
from fp8_asserts import assert_codes_equal, assert_layout_matches_row_major, assert_scales_equal, edge_rows, random_rows
from fp8quant.fused_bounds import assert_fused_within, silu_and_mul_bounds, silu_and_mul_truth, sqnr_db

DTYPES = [torch.float16, torch.bfloat16, torch.float32]
INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
needs_interpreter = pytest.mark.skipif(not INTERPRETING, reason="the Triton kernel runs on the CPU under TRITON_INTERPRET=1")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("group_size", [None, 32])
def test_public_call_on_cpu_is_the_unfused_composition(dtype, group_size):
    x = random_rows(6, 512, dtype)
    q, s = silu_and_mul_quant_fp8(x, group_size=group_size)
    y = torch.nn.functional.silu(x[:, :256]) * x[:, 256:]  # gate first, as vLLM and SGLang
    expected = per_token_quant_fp8_reference(y) if group_size is None else per_token_group_quant_fp8_reference(y, group_size)
    assert q.shape == (6, 256)
    assert_codes_equal(q, expected[0])
    assert_scales_equal(s, expected[1])


@pytest.mark.parametrize("backend", ["torch"] + (["triton"] if INTERPRETING else []))
@pytest.mark.parametrize("layout", ["column", "tma", "packed"])
@pytest.mark.parametrize("rows, inner, group_size", [(5, 384, 128), (6, 512, 16)])
def test_every_scale_layout(backend, layout, rows, inner, group_size):
    """Per group, each scale layout of the group contract: the row-major call's codes and scales in
    that layout, padding rows unwritten, a packed row's bytes past its last group zero."""
    x = random_rows(rows, 2 * inner, torch.bfloat16, seed=rows) / 16
    assert_layout_matches_row_major(lambda **kw: silu_and_mul_quant_fp8(x, group_size=group_size, backend=backend, **kw),
                                    (rows, inner), group_size, layout, context=backend)


@needs_interpreter
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("group_size", [None, 16, 128])
def test_triton_within_bounds_and_no_less_accurate(dtype, group_size):
    x = random_rows(7, 768, dtype, seed=3) * 4  # silu's exp over a wide range
    q, s = silu_and_mul_quant_fp8(x, group_size=group_size, backend="triton")
    assert_fused_within(q, s, silu_and_mul_bounds(x), group_size, context=f"{dtype} {group_size}")
    truth = silu_and_mul_truth(x)
    q_ref, s_ref = silu_and_mul_quant_fp8_reference(x, group_size)
    assert sqnr_db(q, s, truth, group_size) >= sqnr_db(q_ref, s_ref, truth, group_size) - 0.05


@needs_interpreter
def test_triton_edge_rows_and_odd_length():
    x = edge_rows(400, torch.bfloat16)
    for ub in (None, 3.0):
        q, s = silu_and_mul_quant_fp8(x, scale_ub=ub, backend="triton")
        assert_fused_within(q, s, silu_and_mul_bounds(x), None, ub, context=f"edge, scale_ub={ub}")
    x = random_rows(3, 2 * 1001, torch.float16)
    q, s = silu_and_mul_quant_fp8(x, backend="triton")
    assert_fused_within(q, s, silu_and_mul_bounds(x), context="I=1001")


def test_staged_kernel_for_long_rows_past_one_wave():
    """row_quant.staged_pays: the staged kernel where the register plan's CTAs exceed 256 threads and
    its grid more than fills the SMs once; the register kernel at decode sizes and short rows."""
    from fp8quant.ops.row_quant import plan, staged_pays

    for rows, inner, staged in ((16384, 11008, True), (16384, 18432, True), (256, 14336, False),
                                (16384, 2048, False), (1, 18432, False), (16384, 32768, True)):
        assert staged_pays(plan(inner, 8, 2, None), rows, 132) == staged, (rows, inner)
