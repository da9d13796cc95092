"""per_tensor_quant_fp8 on the GPU: both backends bit-exact against the reference, static and
dynamic, on poisoned outputs, odd sizes, strided rows, edge values and odd static scales; CUDA
graphs, torch.compile and a PDL chain (the dynamic scale of call 1 read by call 2). Skipped
without an NVIDIA GPU."""

import pytest
import torch

from fp8quant import per_tensor_quant_fp8
from fp8quant.reference import per_tensor_quant_fp8_reference
from conftest import HAS_GPU
from fp8_asserts import assert_quant_equal, edge_rows

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU")]


def gpu_random(tokens, hidden, dtype, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    return (torch.randn(tokens, hidden, device="cuda", generator=g) * 7).to(dtype)


def poisoned(shape):
    q = torch.empty(shape, dtype=torch.float8_e4m3fn, device="cuda")
    q.view(torch.uint8).fill_(0xA5)
    return q, torch.full((1,), -12345.0, device="cuda")


def check_graph_chain(x, quantize_dynamic, quantize_static, label, refills=()):
    """Two dynamic calls, each followed by a static call taking its scale, captured in one CUDA
    graph and replayed (again after each refill of x): all bit-exact."""
    outs = [poisoned(x.shape) for _ in range(4)]
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for k in range(2):
            quantize_dynamic(x, *outs[2 * k])
            quantize_static(x, *outs[2 * k + 1], outs[2 * k][1])
    for refill in (None, *refills):
        if refill is not None:
            x.copy_(refill)
        g.replay()
        torch.cuda.synchronize()
        want = per_tensor_quant_fp8_reference(x)
        for k in range(2):
            assert_quant_equal(outs[2 * k], want, f"graph dynamic {k} {label}")
            assert_quant_equal(outs[2 * k + 1], per_tensor_quant_fp8_reference(x, want[1]), f"graph static {k} {label}")


@pytest.mark.parametrize("backend", ["cuda", "triton"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("tokens, hidden", [(1, 17), (1, 4096), (7, 1368), (256, 7168), (4096, 4096), (3, 200000), (65536, 8)])
def test_static_and_dynamic_bit_exact(backend, dtype, tokens, hidden):
    x = gpu_random(tokens, hidden, dtype, seed=tokens + hidden)
    for scale, ub in ((None, None), (None, 0.5), (None, torch.tensor([0.25], device="cuda")),
                      (torch.tensor([0.05], device="cuda"), None), (torch.tensor([1e-3], device="cuda"), None)):
        q, s = poisoned(x.shape)
        got = per_tensor_quant_fp8(x, scale, scale_ub=ub, out=q, scale_out=s, backend=backend)
        assert_quant_equal(got, per_tensor_quant_fp8_reference(x, scale, ub), f"{backend} {tokens}x{hidden} scale={scale} ub={ub}")


@pytest.mark.parametrize("backend", ["cuda", "triton"])
def test_edge_values_strided_rows_and_odd_static_scales(backend):
    x = torch.cat([edge_rows(1368, torch.bfloat16).cuda(), gpu_random(30, 1368, torch.bfloat16)])
    assert_quant_equal(per_tensor_quant_fp8(x, backend=backend), per_tensor_quant_fp8_reference(x), "NaN tensor")
    finite = x[torch.isfinite(x.float()).all(dim=1)]
    assert_quant_equal(per_tensor_quant_fp8(finite, backend=backend), per_tensor_quant_fp8_reference(finite), "finite")
    base = gpu_random(40, 3000, torch.bfloat16, seed=4)
    xs = base[::2, 1:2049]
    assert_quant_equal(per_tensor_quant_fp8(xs, backend=backend), per_tensor_quant_fp8_reference(xs), "strided")
    # device scales the host does not check: zero, negative, subnormal, near FLT_MAX, inf, NaN
    for value in (0.0, -0.5, 1e-40, 3e38, float("inf"), float("-inf"), float("nan")):
        scale = torch.tensor([value], device="cuda")
        got = per_tensor_quant_fp8(finite, scale, backend=backend)
        assert_quant_equal(got, per_tensor_quant_fp8_reference(finite, scale), f"{backend} static scale {value}")


@pytest.mark.parametrize("backend", ["cuda", "triton"])
def test_cuda_graph_compile_and_pdl_chain(backend):
    x = gpu_random(64, 7168, torch.bfloat16)
    per_tensor_quant_fp8(x, backend=backend)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        q, s = per_tensor_quant_fp8(x, backend=backend)
        q2, s2 = per_tensor_quant_fp8(x, s, backend=backend)  # static, with call 1's dynamic scale
    for seed in range(3):
        x.copy_(gpu_random(64, 7168, torch.bfloat16, seed=seed + 1))
        g.replay()
        torch.cuda.synchronize()
        want = per_tensor_quant_fp8_reference(x)
        assert_quant_equal((q, s), want, f"graph {seed}")
        assert_quant_equal((q2, s2), per_tensor_quant_fp8_reference(x, want[1]), f"graph static {seed}")
    compiled = torch.compile(lambda x: per_tensor_quant_fp8(x, backend=backend), fullgraph=True)
    for tokens in (7, 133):
        xt = gpu_random(tokens, 4096, torch.bfloat16, seed=tokens)
        assert_quant_equal(compiled(xt), per_tensor_quant_fp8_reference(xt), f"compiled {tokens}")
    for trial in range(20):
        x1 = gpu_random(8, 2**16, torch.float32, seed=trial)
        torch.cuda.synchronize()
        torch.cuda._sleep(1_000_000)
        q1, s1 = per_tensor_quant_fp8(x1, backend=backend, enable_pdl=True)
        q2, s2 = per_tensor_quant_fp8(x1, s1, backend=backend, enable_pdl=True)
        torch.cuda.synchronize()
        want = per_tensor_quant_fp8_reference(x1)
        assert_quant_equal((q1, s1), want, f"pdl call 1 trial {trial}")
        assert_quant_equal((q2, s2), per_tensor_quant_fp8_reference(x1, want[1]), f"pdl call 2 trial {trial}")



@pytest.mark.parametrize("trigger_at_entry", [False, True])
@pytest.mark.parametrize("tokens, hidden", [(1, 7168), (16, 4096), (16, 16384), (256, 7168), (4096, 4096)])
def test_quantize_kernel_trigger_at_entry_in_a_graph_chain(trigger_at_entry, tokens, hidden):
    """The quantize kernel lets the next launch at entry or once its scale is known (forced either
    way): dynamic and static calls alternating in a graph, each static one taking the previous
    dynamic scale, all bit-exact."""
    from fp8quant.ops.per_tensor import launch_cuda

    xs = [gpu_random(tokens, hidden, torch.bfloat16, seed=tokens + k) for k in range(3)]
    outs = [poisoned(x.shape) for x in xs for _ in range(2)]
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for k, x in enumerate(xs):
            dq, ds = outs[2 * k]
            launch_cuda(x, dq, ds, None, None, True, trigger_at_entry)
            sq, ss = outs[2 * k + 1]
            launch_cuda(x, sq, ss, ds, None, True, trigger_at_entry)
    for _ in range(3):
        g.replay()
        torch.cuda.synchronize()
        for k, x in enumerate(xs):
            want = per_tensor_quant_fp8_reference(x)
            assert_quant_equal(outs[2 * k], want, f"dynamic {k} {tokens}x{hidden} trigger={trigger_at_entry}")
            assert_quant_equal(outs[2 * k + 1], per_tensor_quant_fp8_reference(x, want[1]), f"static {k}")


@pytest.mark.parametrize("cluster", [0, 1, 2, 5, 8])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("tokens, hidden", [(1, 17), (1, 4096), (4, 16384), (7, 1368), (64, 7168), (3, 200000)])
def test_forced_cluster_bit_exact(cluster, dtype, tokens, hidden):
    """Dynamic in one cluster of 1-8 CTAs (or two kernels), forced at any size (the CTAs loop over
    their chunks), with and without scale_ub, an edge tensor with NaN, and in a graph chain whose
    static calls read each dynamic scale."""
    from fp8quant.ops.per_tensor import launch_cuda

    if torch.cuda.get_device_capability() < (9, 0) and cluster:
        pytest.skip("thread block clusters need sm_90")
    x = gpu_random(tokens, hidden, dtype, seed=tokens * 3 + hidden)
    for ub in (None, 0.5, torch.tensor([0.25], device="cuda")):
        q, s = poisoned(x.shape)
        launch_cuda(x, q, s, None, ub, True, None, cluster)
        assert_quant_equal((q, s), per_tensor_quant_fp8_reference(x, None, ub), f"cluster {cluster} ub={ub}")
    edge = torch.cat([edge_rows(1368, dtype).cuda(), gpu_random(6, 1368, dtype)])
    q, s = poisoned(edge.shape)
    launch_cuda(edge, q, s, None, None, True, None, cluster)
    assert_quant_equal((q, s), per_tensor_quant_fp8_reference(edge), f"cluster {cluster} edge rows")
    check_graph_chain(x, lambda x, q, s: launch_cuda(x, q, s, None, None, True, None, cluster),
                      lambda x, q, s, scale: launch_cuda(x, q, s, scale, None, True), f"cluster {cluster}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("tokens, hidden", [(1, 17), (3, 17), (1, 1368), (1, 7168), (2, 16384), (4, 7168), (8, 4096)])
def test_one_row_rule_bit_exact(dtype, tokens, hidden):
    """Dynamic tensors that per-token's register kernel holds as one row (ops/per_tensor.py:
    one_row_plan) run that kernel: bit-exact with and without scale_ub (a device one too), on edge
    tensors (NaN; Inf, zeros, denormals and dtype max without NaN), a 3-D input, a strided single
    row, and in a graph chain of dynamic calls and static calls reading their scales."""
    from fp8quant._device import device_info
    from fp8quant.ops.per_tensor import one_row_plan
    from fp8quant.ops.per_token_plan import vector_width

    x = gpu_random(tokens, hidden, dtype, seed=tokens * 5 + hidden)
    if dtype != torch.float32 or tokens * hidden <= 16384:
        numel = tokens * hidden
        vec = vector_width(numel, x.element_size(), numel, x.data_ptr(), x.data_ptr())
        assert one_row_plan(tokens, hidden, hidden, x.element_size(), vec, device_info(0), True) is not None
    for ub in (None, 0.5, torch.tensor([0.25], device="cuda")):
        q, s = poisoned(x.shape)
        got = per_tensor_quant_fp8(x, scale_ub=ub, out=q, scale_out=s)
        assert_quant_equal(got, per_tensor_quant_fp8_reference(x, None, ub), f"{tokens}x{hidden} ub={ub}")
    x3 = x.view(1, tokens, hidden)
    assert_quant_equal(per_tensor_quant_fp8(x3), per_tensor_quant_fp8_reference(x3), "3-D")
    edge = edge_rows(1368, dtype).cuda()
    assert_quant_equal(per_tensor_quant_fp8(edge), per_tensor_quant_fp8_reference(edge), "edge rows")
    finite = edge[[0, 1, 2, 4, 6, 7]]
    assert_quant_equal(per_tensor_quant_fp8(finite), per_tensor_quant_fp8_reference(finite), "Inf, no NaN")
    wide = gpu_random(3, hidden + 24, dtype, seed=hidden)
    row = wide[1:2, 8:8 + hidden]
    assert_quant_equal(per_tensor_quant_fp8(row), per_tensor_quant_fp8_reference(row), "strided single row")
    check_graph_chain(x, lambda x, q, s: per_tensor_quant_fp8(x, out=q, scale_out=s, enable_pdl=True),
                      lambda x, q, s, scale: per_tensor_quant_fp8(x, scale, out=q, scale_out=s, enable_pdl=True),
                      f"{tokens}x{hidden}", [gpu_random(tokens, hidden, dtype, seed=seed) for seed in (100, 101)])
