"""The torch.library ops: fake kernels, opcheck, torch.compile(fullgraph=True); CPU runs."""

import sys

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from fp8quant import per_token_quant_fp8
from fp8quant.reference import per_token_quant_fp8_reference
from fp8_asserts import assert_quant_equal, random_rows


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_cpu_api_runs_reference(dtype):
    x = random_rows(5, 40, dtype).view(5, 2, 20)
    q, s = per_token_quant_fp8(x)
    assert q.shape == (5, 2, 20) and s.shape == (5, 2, 1)
    assert_quant_equal((q, s), per_token_quant_fp8_reference(x))


def test_cpu_out_and_strided_rows():
    base = random_rows(6, 48, torch.bfloat16)
    x = base[:, 3:43]  # strided rows
    out = torch.empty(6, 40, dtype=torch.float8_e4m3fn)
    out.view(torch.uint8).fill_(0xA5)
    scale_out = torch.full((6, 1), float("nan"))
    q, s = per_token_quant_fp8(x, 2.0, out=out, scale_out=scale_out)
    assert q is out and s is scale_out
    assert_quant_equal((q, s), per_token_quant_fp8_reference(x, 2.0))


def test_fake_kernels_give_shapes():
    with FakeTensorMode():
        x = torch.empty(3, 7, 128, dtype=torch.bfloat16)
        q, s = torch.ops.fp8quant.per_token_quant_fp8(x, None, None, "auto")
        assert q.shape == (3, 7, 128) and q.dtype == torch.float8_e4m3fn
        assert s.shape == (3, 7, 1) and s.dtype == torch.float32
    x = torch.empty(4, 16, device="meta", dtype=torch.float16)
    q, s = per_token_quant_fp8(x)
    assert q.device.type == "meta" and s.shape == (4, 1)


def test_cpu_and_meta_calls_go_through_the_ops():
    """Only CUDA tensors skip the dispatcher (per_token_quant_fp8.py, _dispatcher_not_needed):
    a meta tensor needs the fake kernel."""
    api = sys.modules["fp8quant.per_token_quant_fp8"]
    assert not api._dispatcher_not_needed(random_rows(2, 8, torch.bfloat16))
    assert not api._dispatcher_not_needed(torch.empty(2, 8, device="meta"))


def test_opcheck_cpu():
    x = random_rows(8, 64, torch.bfloat16)
    torch.library.opcheck(torch.ops.fp8quant.per_token_quant_fp8.default, (x, None, 3.0, "auto"))
    torch.library.opcheck(
        torch.ops.fp8quant.per_token_quant_fp8.default, (x, torch.tensor([0.5]), None, "torch")
    )
    out = torch.empty(8, 64, dtype=torch.float8_e4m3fn)
    scale_out = torch.empty(8, 1)
    # test_schema compares a mutated argument before and after with arithmetic that torch has
    # no float8 kernel for ("mul_cpu_reduced_float" not implemented for 'Float8_e4m3fn'), so the
    # out= op runs the other three checks; the functional op above runs all four.
    torch.library.opcheck(
        torch.ops.fp8quant.per_token_quant_fp8_out.default,
        (x, out, scale_out, None, None, "auto"),
        test_utils=("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"),
    )


def test_torch_compile_fullgraph_cpu():
    def f(x):
        q, s = per_token_quant_fp8(x)
        return q.float() * s

    x = random_rows(16, 256, torch.bfloat16)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), f(x), rtol=0, atol=0)


def test_torch_compile_fullgraph_out_cpu():
    """out= under torch.compile: the mutating op, functionalized from its schema's (a1!) and (a2!)."""

    def f(x, out, scale_out):
        per_token_quant_fp8(x, out=out, scale_out=scale_out)
        return out.float() * scale_out

    x = random_rows(16, 256, torch.bfloat16)
    out = torch.empty(16, 256, dtype=torch.float8_e4m3fn)
    out.view(torch.uint8).fill_(0xA5)
    scale_out = torch.full((16, 1), float("nan"))
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    got = compiled(x, out, scale_out)
    assert_quant_equal((out, scale_out), per_token_quant_fp8_reference(x))
    torch.testing.assert_close(got, out.float() * scale_out, rtol=0, atol=0)


def test_input_that_requires_grad_goes_through_the_op():
    """An input that requires grad is quantized through torch.ops (no autograd formula is
    registered, as for vLLM's ops: the forward gives the reference's bytes)."""
    x = random_rows(6, 96, torch.float32).requires_grad_()
    got = per_token_quant_fp8(x)
    assert_quant_equal(got, per_token_quant_fp8_reference(x.detach()))


def test_inference_mode_through_the_ops():
    """Engines run under torch.inference_mode: the out= op bumps no version counter there (inference
    tensors have none) and must not fail trying."""
    with torch.inference_mode():
        x = random_rows(5, 72, torch.bfloat16)
        out = torch.empty(5, 72, dtype=torch.float8_e4m3fn)
        scale_out = torch.empty(5, 1)
        torch.ops.fp8quant.per_token_quant_fp8_out(x, out, scale_out, None, None, "auto")
        assert_quant_equal((out, scale_out), per_token_quant_fp8_reference(x))
        assert_quant_equal(torch.ops.fp8quant.per_token_quant_fp8(x, None, None, "auto"), per_token_quant_fp8_reference(x))
