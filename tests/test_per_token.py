"""per_token_quant_fp8 on the CPU: the public call, out=, strided rows, the ops' fake kernels,
requires_grad (registry-wide checks: tests/test_library.py)."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from fp8quant import per_token_quant_fp8
from fp8quant._library import dispatcher_not_needed
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
    """Only CUDA tensors skip the dispatcher (_library.dispatcher_not_needed): a meta tensor needs
    the fake kernel."""
    assert not dispatcher_not_needed([random_rows(2, 8, torch.bfloat16)])
    assert not dispatcher_not_needed([torch.empty(2, 8, device="meta")])


def test_input_that_requires_grad_gives_outputs_that_do_not():
    """No autograd formula is registered (as for vLLM's ops): the public call runs the op under
    no_grad, so the outputs never require grad and carry no grad_fn; the bytes are the reference's."""
    x = random_rows(6, 96, torch.float32).requires_grad_()
    q, s = per_token_quant_fp8(x)
    assert not q.requires_grad and not s.requires_grad and s.grad_fn is None
    assert_quant_equal((q, s), per_token_quant_fp8_reference(x.detach()))
    out, scale_out = torch.empty(6, 96, dtype=torch.float8_e4m3fn), torch.empty(6, 1)
    per_token_quant_fp8(x, out=out, scale_out=scale_out)
    assert not scale_out.requires_grad
    assert_quant_equal((out, scale_out), per_token_quant_fp8_reference(x.detach()))
