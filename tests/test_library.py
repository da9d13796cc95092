"""Every registered op (fp8quant._library.OPS) through torch.library: opcheck, fake kernels,
torch.compile(fullgraph=True) with and without out=, inference_mode. CPU here; the GPU variants are
in the ops' GPU test files. A new op adds its sample call to SAMPLES."""

import pytest
import torch

import fp8quant
from fp8quant._library import OPS
from fp8_asserts import assert_quant_equal, random_rows

# name -> (public call on x, the op's inputs for torch.ops on x, the reference on x)
SAMPLES = {
    "per_token_quant_fp8": (
        lambda x, **kw: fp8quant.per_token_quant_fp8(x, **kw),
        lambda x: (x, None, 3.0, "auto"),
        lambda x: fp8quant.reference.per_token_quant_fp8_reference(x),
    ),
    "per_token_group_quant_fp8": (
        lambda x, **kw: fp8quant.per_token_group_quant_fp8(x, 64, **kw),
        lambda x: (x, 64, 1e-10, False, False, False, False, "auto"),
        lambda x: fp8quant.reference.per_token_group_quant_fp8_reference(x, 64),
    ),
    "per_tensor_quant_fp8": (
        lambda x, **kw: fp8quant.per_tensor_quant_fp8(x, **kw),
        lambda x: (x, None, None, 2.0, "auto"),
        lambda x: fp8quant.reference.per_tensor_quant_fp8_reference(x),
    ),
    # the weight a function of x's width; opcheck's inputs carry a residual (declared written)
    "rms_norm_quant_fp8": (
        lambda x, **kw: fp8quant.rms_norm_quant_fp8(x, _weight(x), group_size=32, **kw),
        lambda x: (x, _weight(x), 1e-6, x.flip(0).clone(), 32, None, None, False, False, False, False, "auto"),
        lambda x: fp8quant.reference.rms_norm_quant_fp8_reference(x, _weight(x), group_size=32)[:2],
    ),
    "silu_and_mul_quant_fp8": (
        lambda x, **kw: fp8quant.silu_and_mul_quant_fp8(x, **kw),
        lambda x: (x, None, None, 4.0, False, False, False, False, "auto"),
        lambda x: fp8quant.reference.silu_and_mul_quant_fp8_reference(x),
    ),
}


def _weight(x):
    return torch.linspace(0.5, 1.5, x.shape[-1], dtype=x.dtype, device=x.device)


def test_every_op_has_a_sample():
    assert set(OPS) == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_opcheck(name):
    op = OPS[name]
    x = random_rows(8, 64, torch.bfloat16)
    inputs = SAMPLES[name][1](x)
    # All four of opcheck's checks on the functional op.
    torch.library.opcheck(op.functional_op, inputs)
    # The out= op: test_schema is left out because it compares a mutated argument before and after
    # with arithmetic torch has no float8 CPU kernel for ("mul_cpu_reduced_float" not implemented
    # for 'Float8_e4m3fn'); the other three run.
    outs = op.allocate(*inputs)
    torch.library.opcheck(
        op.out_op, (inputs[0], *outs, *inputs[1:]),
        test_utils=("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"),
    )


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_torch_compile_fullgraph(name):
    call, _, reference = SAMPLES[name]

    def f(x):
        q, s = call(x)
        return q.view(torch.uint8).int(), s.float()

    x = random_rows(16, 256, torch.bfloat16)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    got, want = compiled(x), f(x)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_torch_compile_fullgraph_out(name):
    """out= under torch.compile: the mutating op, functionalized from its schema's (a1!) and (a2!)."""
    call, inputs_of, reference = SAMPLES[name]
    x = random_rows(16, 256, torch.bfloat16)
    out, scale_out = OPS[name].allocate(*inputs_of(x))
    out.view(torch.uint8).fill_(0xA5)
    scale_out.fill_(float("nan"))

    def f(x, out, scale_out):
        call(x, out=out, scale_out=scale_out)
        return out.view(torch.uint8).int()

    got = torch.compile(f, fullgraph=True, backend="aot_eager")(x, out, scale_out)
    assert_quant_equal((out, scale_out), reference(x))
    assert torch.equal(got, out.view(torch.uint8).int())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_compiled_bad_input_raises_the_op_error(name):
    """A bad input under torch.compile meets the op's checks in plain Python, before torch.ops (no
    fake-tensor error log): without fullgraph the graph breaks there and the call raises the op's
    own TypeError; with fullgraph=True Dynamo reports that TypeError in its "Unsupported" error."""
    call = SAMPLES[name][0]
    message = r"x must have dtype float16, bfloat16 or float32, got torch.float64"
    with pytest.raises(TypeError, match=message):
        torch.compile(lambda x: call(x), backend="aot_eager")(torch.ones(4, 8, dtype=torch.float64))
    with pytest.raises(Exception, match=message):
        torch.compile(lambda x: call(x), fullgraph=True, backend="aot_eager")(torch.ones(4, 8, dtype=torch.float64))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_inference_mode_through_the_ops(name):
    """Engines run under torch.inference_mode: the out= op bumps no version counter there
    (inference tensors have none) and must not fail trying."""
    op, inputs_of = OPS[name], SAMPLES[name][1]
    with torch.inference_mode():
        x = random_rows(5, 128, torch.bfloat16)
        inputs = inputs_of(x)  # fresh inputs per call: an op may write one (the residual)
        outs = op.allocate(*inputs)
        op.out_op(inputs[0], *outs, *inputs[1:])
        expected = op.functional_op(*inputs_of(x))
        assert_quant_equal(outs, expected)
        assert_quant_equal(op.functional_op(*inputs_of(x)), expected)


def test_ops_take_their_trailing_defaults():
    """torch.ops calls may leave out trailing arguments that have defaults (enable_pdl)."""
    x = random_rows(3, 32, torch.float16)
    assert_quant_equal(torch.ops.fp8quant.per_token_quant_fp8(x, None, None, "auto"),
                       fp8quant.reference.per_token_quant_fp8_reference(x))
