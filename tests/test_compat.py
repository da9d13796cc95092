"""fp8quant.compat: vLLM's and SGLang's signatures (names, defaults), shapes, dtypes and padding,
and the numbers our reference gives."""

import inspect

import pytest
import torch

from fp8quant.compat import sglang, vllm
from fp8quant.reference import (
    group_scales_layout,
    per_tensor_quant_fp8_reference,
    per_token_group_quant_fp8_reference,
    per_token_quant_fp8_reference,
    rms_norm_quant_fp8_reference,
)
from fp8_asserts import assert_codes_equal, assert_quant_equal, assert_scales_equal, random_rows


def _params(f):
    return [(p.name, p.default) for p in inspect.signature(f).parameters.values()]


def test_signatures_are_the_peers():
    e = inspect.Parameter.empty
    assert _params(vllm.scaled_fp8_quant) == [("input", e), ("scale", None), ("num_token_padding", None), ("scale_ub", None),
                                               ("use_per_token_if_dynamic", False), ("output", None)]
    assert _params(vllm.per_token_group_quant_fp8) == [("x", e), ("group_size", e), ("eps", 1e-10), ("dtype", None),
                                                       ("column_major_scales", False), ("tma_aligned_scales", False),
                                                       ("out_q", None), ("use_ue8m0", None)]
    assert _params(vllm.rms_norm_dynamic_per_token_quant) == [("input", e), ("weight", e), ("epsilon", e), ("quant_dtype", e),
                                                              ("scale_ub", None), ("residual", None)]
    assert _params(vllm.rms_norm_per_block_quant) == [
        ("input", e), ("weight", e), ("epsilon", e), ("quant_dtype", e), ("group_size", e), ("scale_ub", None),
        ("residual", None), ("is_scale_transposed", False), ("has_tma_aligned_scales", False)]
    assert _params(sglang.sgl_per_token_quant_fp8) == [("input", e), ("output_q", e), ("output_s", e)]
    assert _params(sglang.sgl_per_tensor_quant_fp8) == [("input", e), ("output_q", e), ("output_s", e), ("is_static", e)]
    assert [n for n, _ in _params(sglang.sgl_per_token_group_quant_fp8)] == [
        "input", "output_q", "output_s", "group_size", "eps", "fp8_min", "fp8_max", "scale_ue8m0"]


def test_vllm_scaled_fp8_quant_modes_and_padding():
    x = random_rows(5, 64, torch.bfloat16, seed=2)
    q, s = vllm.scaled_fp8_quant(x)
    assert q.shape == (5, 64) and s.shape == (1,)
    assert_quant_equal((q, s), per_tensor_quant_fp8_reference(x))
    q, s = vllm.scaled_fp8_quant(x, num_token_padding=8, use_per_token_if_dynamic=True, scale_ub=torch.tensor([0.5]))
    assert q.shape == (8, 64) and s.shape == (8, 1)
    assert_quant_equal((q[:5], s[:5]), per_token_quant_fp8_reference(x, torch.tensor([0.5])))
    static = torch.tensor([0.05])
    q, s = vllm.scaled_fp8_quant(x, static, num_token_padding=3)  # padding below the rows: none
    assert s is static and q.shape == (5, 64)
    assert_codes_equal(q, per_tensor_quant_fp8_reference(x, static)[0])
    out = torch.empty(7, 64, dtype=torch.float8_e4m3fn)
    q, _ = vllm.scaled_fp8_quant(x, num_token_padding=7, output=out)
    assert q is out
    with pytest.raises(ValueError, match="2-D"):
        vllm.scaled_fp8_quant(x.view(5, 8, 8))
    with pytest.raises(ValueError, match="one element"):
        vllm.scaled_fp8_quant(x, torch.ones(2))


def test_vllm_per_token_group_quant_fp8():
    x = random_rows(6, 256, torch.bfloat16, seed=3)
    q, s = vllm.per_token_group_quant_fp8(x, 128)
    eq, es = per_token_group_quant_fp8_reference(x, 128)
    assert_codes_equal(q, eq)
    assert_scales_equal(s, es)
    q, s = vllm.per_token_group_quant_fp8(x, 64, column_major_scales=True, use_ue8m0=True)
    eq, es = per_token_group_quant_fp8_reference(x, 64, scale_ue8m0=True)
    assert s.stride() == (1, 6)
    assert_scales_equal(s, es)
    with pytest.raises(ValueError, match="float8_e4m3fn"):
        vllm.per_token_group_quant_fp8(x, 128, dtype=torch.float8_e5m2)


def test_vllm_fused_rms_norm_quant():
    """rms_norm_dynamic_per_token_quant / rms_norm_per_block_quant: our contract's numbers (the
    unfused composition), the residual made x + residual, vLLM's shapes and scale layouts."""
    x = random_rows(6, 256, torch.bfloat16, seed=6)
    weight = (1 + 0.1 * random_rows(1, 256, torch.float32, seed=7)[0]).to(torch.bfloat16)
    residual = random_rows(6, 256, torch.bfloat16, seed=8)
    res = residual.clone()
    q, s = vllm.rms_norm_dynamic_per_token_quant(x, weight, 1e-6, torch.float8_e4m3fn, torch.tensor([0.5]), res)
    eq, es, eh = rms_norm_quant_fp8_reference(x, weight, 1e-6, residual, None, torch.tensor([0.5]))
    assert s.shape == (6, 1) and torch.equal(res, eh)
    assert_quant_equal((q, s), (eq, es))
    q, s = vllm.rms_norm_dynamic_per_token_quant(x.view(2, 3, 256), weight, 1e-6, torch.float8_e4m3fn)
    assert q.shape == (2, 3, 256) and s.shape == (6, 1)
    eq, es, _ = rms_norm_quant_fp8_reference(x, weight, 1e-6, None, 64)
    for transposed, tma, stride in ((False, False, (4, 1)), (True, False, (1, 6)), (True, True, (1, 8))):
        q, s = vllm.rms_norm_per_block_quant(x.view(2, 3, 256), weight, 1e-6, torch.float8_e4m3fn, [1, 64],
                                             is_scale_transposed=transposed, has_tma_aligned_scales=tma)
        assert q.shape == (2, 3, 256) and s.shape == (6, 4) and s.stride() == stride, (transposed, tma, s.stride())
        assert_codes_equal(q.view(6, 256), eq)
        assert_scales_equal(s, es)
    with pytest.raises(ValueError, match="quant_dtype must be torch.float8_e4m3fn, got torch.int8"):
        vllm.rms_norm_dynamic_per_token_quant(x, weight, 1e-6, torch.int8)
    with pytest.raises(ValueError, match=r"group_size must be \[1, g\]"):
        vllm.rms_norm_per_block_quant(x, weight, 1e-6, torch.float8_e4m3fn, [128, 128])
    with pytest.raises(ValueError, match="scale_ub must be None"):
        vllm.rms_norm_per_block_quant(x, weight, 1e-6, torch.float8_e4m3fn, [1, 64], scale_ub=torch.tensor([1.0]))


def test_sglang_out_parameter_style():
    x = random_rows(4, 96, torch.float16, seed=4)
    q = torch.empty(4, 96, dtype=torch.float8_e4m3fn)
    s = torch.empty(4)
    sglang.sgl_per_token_quant_fp8(x, q, s)
    assert_quant_equal((q, s.view(4, 1)), per_token_quant_fp8_reference(x))
    s1 = torch.full((1,), 123.0)  # not zeroed: ours writes it
    sglang.sgl_per_tensor_quant_fp8(x, q, s1, is_static=False)
    assert_quant_equal((q, s1), per_tensor_quant_fp8_reference(x))
    static = torch.tensor([0.01])
    sglang.sgl_per_tensor_quant_fp8(x, q, static, is_static=True)
    assert_codes_equal(q, per_tensor_quant_fp8_reference(x, static)[0])
    xg = random_rows(6, 256, torch.bfloat16, seed=5)
    qg = torch.empty(6, 256, dtype=torch.float8_e4m3fn)
    eq, es = per_token_group_quant_fp8_reference(xg, 128)
    for sg in (torch.empty(6, 2), torch.empty(2, 6).t(), torch.empty(2, 8)[:, :6].t()):
        sglang.sgl_per_token_group_quant_fp8(xg, qg, sg, 128, 1e-10, -448.0, 448.0)
        assert_codes_equal(qg, eq)
        assert_scales_equal(sg, es)
    with pytest.raises(ValueError, match="fp8_min, fp8_max must be -448, 448"):
        sglang.sgl_per_token_group_quant_fp8(xg, qg, torch.empty(6, 2), 128, 1e-10, -57344.0, 57344.0)
    assert group_scales_layout(es, True, True).stride() == (1, 8)
