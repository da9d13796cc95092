"""Bad input raises a clear exception before anything runs, and nothing is written: a table of cases
per op (BAD_INPUTS), every one run on the CPU, where the checks are the same as on a GPU (they run
before torch.ops or a kernel)."""

import pytest
import torch

import fp8quant
from fp8quant import per_token_quant_fp8
from fp8quant.reference import per_token_quant_fp8_reference

FP8 = torch.float8_e4m3fn


def _poisoned(shape, dtype):
    t = torch.empty(shape, dtype=dtype)
    t.view(torch.uint8).fill_(0xA5)
    return t


def _assert_untouched(*tensors):
    for t in tensors:
        assert bool((t.view(torch.uint8) == 0xA5).all()), "a refused call wrote its output"


PER_TOKEN_CASES = [
    (dict(x=torch.ones(4, 8, dtype=torch.int32)), TypeError, "x must have dtype float16, bfloat16 or float32, got torch.int32"),
    (dict(x=torch.ones(4, 8, dtype=torch.float64)), TypeError, "got torch.float64"),
    (dict(x=[1.0, 2.0]), TypeError, "x must be a torch.Tensor, got list"),
    (dict(x=torch.tensor(1.0)), ValueError, "at least one dimension"),
    (dict(x=torch.ones(4, 0)), ValueError, "last dimension H must be at least 1"),
    (dict(x=torch.ones(8, 4).t()), ValueError, "last dimension must be contiguous"),
    (dict(x=torch.ones(4, 8), backend="cuDNN"), ValueError, "backend must be one of"),
    (dict(x=torch.ones(4, 8), backend="cuda"), ValueError, "backend='cuda' needs x on an NVIDIA GPU, got x on cpu"),
    (dict(x=torch.ones(4, 8), scale_ub=-1.0), ValueError, "scale_ub must be finite and positive, got -1.0"),
    (dict(x=torch.ones(4, 8), scale_ub=float("nan")), ValueError, "finite and positive"),
    (dict(x=torch.ones(4, 8), scale_ub="big"), TypeError, "scale_ub must be None, a float or a 1-element"),
    (dict(x=torch.ones(4, 8), scale_ub=torch.ones(2)), ValueError, "scale_ub must be a float or a 1-element float32"),
    (dict(x=torch.ones(4, 8), scale_ub=torch.ones(1, dtype=torch.float16)), ValueError, "dtype=torch.float16"),
    (dict(x=torch.ones(4, 8), enable_pdl=1), TypeError, "enable_pdl must be None, True or False, got 1"),
    (dict(x=torch.ones(4, 8), enable_pdl="yes"), TypeError, "enable_pdl must be None, True or False, got 'yes'"),
    (dict(x=torch.ones(4, 8), scale_ub=1e39), ValueError, "scale_ub must be finite and positive, got 1e\\+39 .a float32 value"),
    (dict(x=torch.ones(4, 8), scale_ub=float("inf")), ValueError, "scale_ub must be finite and positive, got inf"),
    (dict(x=torch.ones(4, 8), scale_ub=torch.tensor([-1.0])), ValueError, "scale_ub must be finite and positive, got a tensor holding -1.0"),
    (dict(x=torch.ones(4, 8), scale_ub=torch.tensor([0.0])), ValueError, "got a tensor holding 0.0"),
    (dict(x=torch.ones(4, 8), scale_ub=torch.tensor([float("nan")])), ValueError, "got a tensor holding nan"),
    (dict(x=torch.ones(4, 8), backend=None), TypeError, "backend must be one of .* got None"),
    (dict(x=torch.ones(4, 8), out=[0] * 32), TypeError, "out must be a torch.Tensor or None, got list"),
    (dict(x=torch.ones(4, 8), scale_out="s"), TypeError, "scale_out must be a torch.Tensor or None, got str"),
]

def _group(x, **kwargs):
    group_size = kwargs.pop("group_size", 16)
    return fp8quant.per_token_group_quant_fp8(x, group_size, **kwargs)


# x is (4, 8) where the per-token table has it; the group op's x is (4, 32) unless a case says.
GROUP_CASES = [
    (dict(x=torch.ones(4, 32, dtype=torch.int32)), TypeError, "x must have dtype float16, bfloat16 or float32, got torch.int32"),
    (dict(x=torch.ones(4, 24)), ValueError, "H must be a multiple of group_size 16, got H=24"),
    (dict(x=torch.ones(4, 32), group_size=0), ValueError, "group_size must be one of (16, 32, 64, 128, 256), got 0"),
    (dict(x=torch.ones(4, 32), group_size=3), ValueError, "group_size must be one of"),
    (dict(x=torch.ones(4, 512), group_size=512), ValueError, "group_size must be one of .* got 512"),
    (dict(x=torch.ones(4, 32), group_size=16.0), TypeError, "group_size must be an int, got float"),
    (dict(x=torch.ones(4, 32), eps=1), TypeError, "eps must be a float, got int"),
    (dict(x=torch.ones(4, 32), eps=0.0), ValueError, "eps must be finite and at least 448 \\* 2\\^-126"),
    (dict(x=torch.ones(4, 32), eps=float("nan")), ValueError, "eps must be finite"),
    (dict(x=torch.ones(4, 32), tma_aligned_scales=True), ValueError, "tma_aligned_scales needs column_major_scales=True"),
    (dict(x=torch.ones(4, 32), column_major_scales=1), TypeError, "column_major_scales must be True or False, got 1"),
    (dict(x=torch.ones(4, 64), scale_out=torch.empty(4, 2)), ValueError, "scale_out must be a tensor of shape .4, 4., strides .4, 1."),
    (dict(x=torch.ones(4, 32), column_major_scales=True, scale_out=torch.empty(4, 2)), ValueError, "strides .1, 4."),
    (dict(x=torch.ones(4, 32), backend=None), TypeError, "backend must be one of"),
]

TENSOR_CASES = [
    (dict(x=torch.ones(4, 8, dtype=torch.int32)), TypeError, "x must have dtype float16, bfloat16 or float32, got torch.int32"),
    (dict(x=torch.ones(4, 8), scale=0.5), TypeError, "scale must be None or a 1-element float32 tensor, got float"),
    (dict(x=torch.ones(4, 8), scale=torch.ones(2)), ValueError, "scale must be a 1-element float32 tensor on cpu"),
    (dict(x=torch.ones(4, 8), scale=torch.tensor([-1.0])), ValueError, "scale must be finite and positive, got a tensor holding -1.0"),
    (dict(x=torch.ones(4, 8), scale=torch.tensor([1.0]), scale_ub=2.0), ValueError, "scale_ub bounds a dynamic scale"),
    (dict(x=torch.ones(4, 8), scale_ub=-1.0), ValueError, "scale_ub must be finite and positive, got -1.0"),
    (dict(x=torch.ones(4, 8), scale_out=torch.empty(2)), ValueError, "scale_out must be a contiguous tensor of shape .1,."),
    (dict(x=torch.ones(4, 8), backend="cuda"), ValueError, "backend='cuda' needs x on an NVIDIA GPU"),
]

def _rms(x, **kwargs):
    weight = kwargs.pop("weight", torch.ones(x.shape[-1]) if isinstance(x, torch.Tensor) else None)
    return fp8quant.rms_norm_quant_fp8(x, weight, **kwargs)


RESIDUAL = torch.full((4, 32), 0.5)  # a refused call must leave it as it is (checked after each case)
RMS_CASES = [
    (dict(x=torch.ones(4, 32, dtype=torch.int32)), TypeError, "x must have dtype float16, bfloat16 or float32, got torch.int32"),
    (dict(x=torch.ones(4, 32), weight=torch.ones(16)), ValueError, "weight must be a contiguous tensor of shape (32,)"),
    (dict(x=torch.ones(4, 32), weight=torch.ones(32, dtype=torch.float16)), ValueError, "dtype torch.float32 on cpu (x's)"),
    (dict(x=torch.ones(4, 32), weight=[1.0] * 32), TypeError, "weight must be a torch.Tensor, got list"),
    (dict(x=torch.ones(4, 32), eps=0.0), ValueError, "eps must be finite and positive, got 0.0"),
    (dict(x=torch.ones(4, 32), eps=1), TypeError, "eps must be a float, got int"),
    (dict(x=torch.ones(4, 32), residual=torch.ones(4, 16)), ValueError, "residual must have x's shape (4, 32)"),
    (dict(x=torch.ones(4, 32), residual=torch.ones(4, 32, dtype=torch.float16)), ValueError, "residual must have x's shape"),
    (dict(x=torch.ones(4, 32), residual=RESIDUAL, group_size=24), ValueError, "group_size must be None (per token) or one of"),
    (dict(x=torch.ones(4, 48), group_size=32), ValueError, "row length must be a multiple of group_size 32, got 48"),
    (dict(x=torch.ones(4, 32), residual=RESIDUAL, group_size=16, scale_ub=2.0), ValueError, "scale_ub bounds per-token scales"),
    (dict(x=torch.ones(4, 32), column_major_scales=True), ValueError, "they need a group_size"),
    (dict(x=torch.ones(4, 32), residual=RESIDUAL, scale_ub=-1.0), ValueError, "scale_ub must be finite and positive, got -1.0"),
    (dict(x=torch.ones(4, 32), residual=RESIDUAL, scale_out=torch.empty(4, 2)), ValueError, "scale_out must be a contiguous tensor of shape (4, 1), dtype torch.float32"),
    (dict(x=torch.ones(4, 32), packed_ue8m0=True), ValueError, "they need a group_size"),
    (dict(x=torch.ones(4, 32), group_size=16, tma_aligned_scales=True), ValueError, "tma_aligned_scales needs column_major_scales=True"),
    (dict(x=torch.ones(4, 32), group_size=16, tma_aligned_scales=1), TypeError, "tma_aligned_scales must be True or False, got 1"),
    (dict(x=torch.ones(3, 32), group_size=16, column_major_scales=True, tma_aligned_scales=True, scale_out=torch.empty(3, 2)),
     ValueError, "strides (1, 4)"),
    (dict(x=torch.ones(4, 32), group_size=16, packed_ue8m0=True, scale_out=torch.empty(4, 1)), ValueError, "dtype torch.int32"),
    (dict(x=torch.ones(4, 32), residual=RESIDUAL, out=torch.empty(4, 32)), ValueError, "out must be a contiguous tensor of shape (4, 32), dtype torch.float8_e4m3fn"),
    (dict(x=RESIDUAL, residual=RESIDUAL), ValueError, "residual overlaps x in memory"),
    (dict(x=torch.ones(4, 32), residual=RESIDUAL, backend="cuda"), ValueError, "backend='cuda' needs x on an NVIDIA GPU"),
]

SILU_CASES = [
    (dict(x=torch.ones(4, 33)), ValueError, "x's last dimension must be even (gate and up halves), got 33"),
    (dict(x=torch.ones(4, 64), group_size=64), ValueError, "row length must be a multiple of group_size 64, got 32"),
    (dict(x=torch.ones(4, 64), group_size=True), TypeError, "group_size must be None or an int, got bool"),
    (dict(x=torch.ones(4, 64), scale_ue8m0=True), ValueError, "they need a group_size"),
    (dict(x=torch.ones(4, 64), tma_aligned_scales=True), ValueError, "they need a group_size"),
    (dict(x=torch.ones(4, 64), group_size=16, packed_ue8m0=True, scale_out=torch.empty(4, 1, dtype=torch.int32)),
     ValueError, "strides (1, 4)"),
    (dict(x=torch.ones(4, 64), out=torch.empty(4, 64, dtype=FP8)), ValueError, "out must be a contiguous tensor of shape (4, 32)"),
    (dict(x=torch.ones(4, 64), group_size=16, column_major_scales=True, scale_out=torch.empty(4, 2)), ValueError, "strides (1, 4)"),
    (dict(x=torch.ones(4, 64), scale_ub="big"), TypeError, "scale_ub must be None, a float or a 1-element"),
    (dict(x=torch.ones(4, 64), enable_pdl=1), TypeError, "enable_pdl must be None, True or False, got 1"),
]

# op name -> (the public call, its cases); each new op adds its own table.
BAD_INPUTS = {
    "per_token_quant_fp8": (per_token_quant_fp8, PER_TOKEN_CASES),
    "per_token_group_quant_fp8": (_group, GROUP_CASES),
    "per_tensor_quant_fp8": (fp8quant.per_tensor_quant_fp8, TENSOR_CASES),
    "rms_norm_quant_fp8": (_rms, RMS_CASES),
    "silu_and_mul_quant_fp8": (fp8quant.silu_and_mul_quant_fp8, SILU_CASES),
}
CASES = [(name, *case) for name, (_, cases) in BAD_INPUTS.items() for case in cases]


@pytest.mark.parametrize("op, kwargs, exc, message", CASES)
def test_bad_arguments(op, kwargs, exc, message):
    call = BAD_INPUTS[op][0]
    out = _poisoned((4, 8), FP8)
    scale_out = _poisoned((4, 1), torch.float32)
    kwargs = dict(kwargs)
    x = kwargs.pop("x")
    if op == "per_token_quant_fp8" and isinstance(x, torch.Tensor) and x.shape == (4, 8) and x.dtype == torch.float32:
        kwargs.setdefault("out", out)
        kwargs.setdefault("scale_out", scale_out)
    with pytest.raises(exc, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        call(x, **kwargs)
    _assert_untouched(out, scale_out)
    assert bool((RESIDUAL == 0.5).all()), "a refused call wrote the residual"


@pytest.mark.parametrize(
    "out_shape, out_dtype, scale_shape, scale_dtype, message",
    [
        ((4, 9), FP8, (4, 1), torch.float32, r"out must be a contiguous tensor of shape \(4, 8\), dtype torch.float8_e4m3fn on cpu, got tensor\(shape=\(4, 9\)"),
        ((4, 8), torch.uint8, (4, 1), torch.float32, r"out must be .* got tensor\(shape=\(4, 8\), dtype=torch.uint8"),
        ((4, 8), FP8, (4,), torch.float32, r"scale_out must be a contiguous tensor of shape \(4, 1\)"),
        ((4, 8), FP8, (4, 1), torch.float16, r"scale_out must be .* dtype=torch.float16"),
    ],
)
def test_bad_outputs(out_shape, out_dtype, scale_shape, scale_dtype, message):
    x = torch.randn(4, 8)
    out = _poisoned(out_shape, out_dtype)
    scale_out = _poisoned(scale_shape, scale_dtype)
    with pytest.raises(ValueError, match=message):
        per_token_quant_fp8(x, out=out, scale_out=scale_out)
    _assert_untouched(out, scale_out)


def test_non_contiguous_out():
    x = torch.randn(4, 8)
    big = _poisoned((4, 16), FP8)
    with pytest.raises(ValueError, match="out must be contiguous"):
        per_token_quant_fp8(x, out=big[:, :8])
    _assert_untouched(big)


def test_outputs_overlapping_input_or_each_other():
    buf = torch.randn(4, 64)
    x = buf[:, :8]
    alias = buf.view(torch.uint8)[0, :32].view(FP8).view(4, 8)
    before = buf.clone()
    with pytest.raises(ValueError, match="out overlaps x in memory"):
        per_token_quant_fp8(x, out=alias)
    assert torch.equal(buf, before)
    raw = _poisoned((64,), torch.uint8)
    with pytest.raises(ValueError, match="out and scale_out overlap"):
        per_token_quant_fp8(torch.randn(4, 8), out=raw[:32].view(FP8).view(4, 8), scale_out=raw[16:32].view(torch.float32).view(4, 1))
    _assert_untouched(raw)


def test_overlap_of_contiguous_tensors_is_byte_exact():
    # Contiguous spans are start + numel * element_size (v20's shortcut): an output over x's last
    # 32 bytes overlaps, one starting at x's end does not.
    raw = _poisoned((160,), torch.uint8)
    x = raw[:128].view(torch.float32).view(4, 8)
    x.copy_(torch.randn(4, 8))
    before = raw.clone()
    with pytest.raises(ValueError, match="out overlaps x in memory"):
        per_token_quant_fp8(x, out=raw[96:128].view(FP8).view(4, 8))
    assert torch.equal(raw, before)
    q, s = per_token_quant_fp8(x, out=raw[128:160].view(FP8).view(4, 8))
    ref_q, ref_s = per_token_quant_fp8_reference(x)
    assert torch.equal(q.view(torch.uint8), ref_q.view(torch.uint8)) and torch.equal(s, ref_s)


def test_wrong_device_output():
    x = torch.randn(4, 8)
    out = torch.empty(4, 8, dtype=FP8, device="meta")
    with pytest.raises(ValueError, match="out must be .* on cpu, got .*device=meta"):
        per_token_quant_fp8(x, out=out)


def test_zero_rows_return_empty():
    q, s = per_token_quant_fp8(torch.empty(0, 16, dtype=torch.bfloat16))
    assert q.shape == (0, 16) and s.shape == (0, 1)
    q, s = per_token_quant_fp8(torch.empty(3, 0, 16, dtype=torch.bfloat16))
    assert q.shape == (3, 0, 16) and s.shape == (3, 0, 1)


def test_public_api():
    assert fp8quant.__version__
    assert callable(fp8quant.per_token_quant_fp8)
