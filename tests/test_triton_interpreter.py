"""The Triton kernel's logic on the CPU, under TRITON_INTERPRET=1 (set by conftest.py when there
is no GPU), bit for bit against the reference.

What the interpreter computes exactly: loads, the NaN-propagating amax, tl.math.div_rn (numpy's
IEEE division), tl.fma (a single-rounding fp32 FMA in the interpreter's C helper, so the
reciprocal-plus-correction division of _divide runs as on the GPU), the clamp, and the store. What it does not: its fp32 -> e4m3 conversion
(Triton 3.9) drops the carry when rounding up crosses a power of two (125.3 -> 64 instead of 128;
this is what differed on an 8x1368 bfloat16 input), rounds 0.75 * 2^-9 to 0, and turns NaN into
0x7c. So under the interpreter the kernel converts in integer arithmetic
(triton/common.py: e4m3_software) and the conversion instruction path (SOFTWARE_E4M3=False) is
GPU-only: tests/test_gpu_per_token.py checks both variants there.
"""

import os

import pytest
import torch

from fp8quant.reference import per_token_quant_fp8_reference
from fp8_asserts import (
    all_ones_significand_ubs,
    assert_quant_equal,
    edge_rows,
    every_finite_16bit,
    odd_significand_ubs,
    random_rows,
)

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET", "0") in ("", "0"), reason="runs under the Triton interpreter"
)
triton_kernels = pytest.importorskip("fp8quant.triton.per_token")


def _run(x2d, scale_ub=None, software_e4m3=None):
    q = torch.empty(x2d.shape, dtype=torch.float8_e4m3fn)
    q.view(torch.uint8).fill_(0xA5)
    s = torch.full((x2d.shape[0],), -1.0)
    triton_kernels.per_token_quant_fp8_triton(x2d, q, s, scale_ub, software_e4m3)
    return q, s.view(-1, 1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("tokens, hidden", [(8, 1368), (3, 1), (5, 17), (2, 1025), (4, 4096)])
def test_interpreter_bit_exact(dtype, tokens, hidden):
    x = random_rows(tokens, hidden, dtype, seed=tokens * hidden)
    assert_quant_equal(_run(x), per_token_quant_fp8_reference(x), f"{dtype} {tokens}x{hidden}")


def test_interpreter_two_pass_long_rows():
    x = random_rows(2, 40000, torch.bfloat16, seed=7)
    assert triton_kernels.triton_config(40000, 2)["SINGLE_PASS"] is False
    assert_quant_equal(_run(x), per_token_quant_fp8_reference(x), "two-pass")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_interpreter_edge_rows(dtype):
    x = edge_rows(40, dtype)
    assert_quant_equal(_run(x), per_token_quant_fp8_reference(x), f"edge rows {dtype}")


def test_interpreter_strided_rows_and_scale_ub():
    base = random_rows(6, 300, torch.bfloat16, seed=2) * 50
    x = base[:, 1:257]
    assert_quant_equal(_run(x, 3.0), per_token_quant_fp8_reference(x, 3.0), "float ub")
    ub = torch.tensor([0.25])
    assert_quant_equal(_run(x, ub), per_token_quant_fp8_reference(x, ub), "tensor ub")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_interpreter_division_exact_on_every_16bit_value(dtype):
    """_divide (reciprocal + one FMA correction) against IEEE division: every finite value of the
    dtype against scales with small odd significands (3, 5, 7, ... x 2^k: their reciprocals are
    inexact and many quotients fall exactly on an e4m3 rounding tie, where an uncorrected
    x * (1 / scale) rounds the wrong way), all-ones significands and random ones."""
    x = every_finite_16bit(dtype, 512)
    g = torch.Generator().manual_seed(0)
    odd = odd_significand_ubs(((3, -7), (5, 2), (7, -20), (11, 9), (13, -3), (15, 0)))
    for ub in odd + all_ones_significand_ubs(6) + torch.exp2(torch.empty(3).uniform_(-30, 30, generator=g)).tolist():
        assert_quant_equal(_run(x, ub), per_token_quant_fp8_reference(x, ub), f"{dtype} ub={ub!r}")


def test_interpreter_rounding_ties_and_carries():
    vals = [448.0, 1.0625, 1.1875, 17.0, 19.0, 240.0, 208.0, 127.9, 125.3, 31.9, 0.99, 0.0155, 2.0**-10, 3 * 2.0**-10]
    x = torch.tensor([vals + [-v for v in vals]], dtype=torch.float32)
    assert_quant_equal(_run(x), per_token_quant_fp8_reference(x), "ties and carries")


def test_interpreter_conversion_needs_the_software_path():
    """Documents why the software conversion exists: without it the interpreter is off at
    rounding carries and NaN. If a Triton release fixes that, this test says so and the
    workaround can go."""
    x = torch.tensor([[448.0, 125.3, -127.9, 31.9, float("nan")]], dtype=torch.float32)
    q, _ = _run(x, software_e4m3=False)
    ref, _ = per_token_quant_fp8_reference(x)
    if torch.equal(q.view(torch.uint8), ref.view(torch.uint8)):
        pytest.fail("the interpreter's e4m3 conversion is now right: drop SOFTWARE_E4M3")


def test_public_call_takes_backend_triton_on_cpu_under_the_interpreter():
    """backend="triton" runs on CPU tensors where TRITON_INTERPRET=1, through the public call (its
    checks included), not only through the module's internal function."""
    from fp8quant import per_token_quant_fp8

    x = random_rows(6, 1368, torch.bfloat16, seed=9)
    assert_quant_equal(per_token_quant_fp8(x, 2.0, backend="triton"), per_token_quant_fp8_reference(x, 2.0), "public")
    with pytest.raises(ValueError, match="scale_ub must be finite and positive"):
        per_token_quant_fp8(x, -2.0, backend="triton")
