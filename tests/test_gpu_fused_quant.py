"""rms_norm_quant_fp8 and silu_and_mul_quant_fp8 on the GPU: both backends within
fp8quant/fused_bounds.py's bounds of the unfused composition (computed on the CPU), the residual bit
for bit, the SQNR against a float64 truth no worse, on poisoned outputs, every scale layout, odd
sizes, strided rows and edge rows; CUDA graphs and torch.compile. Skipped without an NVIDIA GPU."""

import pytest
import torch

from fp8quant import rms_norm_quant_fp8, silu_and_mul_quant_fp8
from fp8quant.reference import rms_norm_quant_fp8_reference, silu_and_mul_quant_fp8_reference
from conftest import HAS_GPU
from fp8_asserts import assert_codes_equal, assert_layout_matches_row_major, edge_rows, poisoned_scales, random_rows
from fp8quant.fused_bounds import assert_fused_within, rms_norm_bounds, rms_norm_truth, silu_and_mul_bounds, silu_and_mul_truth, sqnr_db

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU")]

BACKENDS = ["cuda", "triton"]
DTYPES = [torch.bfloat16, torch.float16, torch.float32]
# (tokens, H): decode and prefill rows, the bench's widths, odd lengths (vector width 1 and 2),
# the longest rows the CUDA kernel holds and one it does not (runs on Triton)
SHAPES = [(1, 4096), (7, 2048), (64, 7168), (300, 5120), (3, 1000), (5, 1026), (2, 18432), (2, 24576), (1, 32768)]
GROUPS = [None, 16, 128, 256]


def _poisoned_outputs(q_shape, group_size, column_major):
    q = torch.empty(q_shape, dtype=torch.float8_e4m3fn, device="cuda")
    q.view(torch.uint8).fill_(0xA5)
    rows = q.numel() // q_shape[-1]
    if group_size is None:
        s = torch.full((*q_shape[:-1], 1), -7.0, device="cuda")
    elif column_major:
        s = torch.full((q_shape[-1] // group_size, rows), -7.0, device="cuda").t()
    else:
        s = torch.full((*q_shape[:-1], q_shape[-1] // group_size), -7.0, device="cuda")
    return q, s


def _rms_case(tokens, hidden, dtype, seed):
    x = random_rows(tokens, hidden, dtype, "cuda", seed)
    g = torch.Generator().manual_seed(seed)
    weight = (1 + 0.25 * torch.randn(hidden, generator=g)).to(dtype).cuda()
    residual = random_rows(tokens, hidden, dtype, "cuda", seed + 1)
    return x, weight, residual


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("group_size", GROUPS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_rms_norm_quant(backend, dtype, group_size, shape):
    tokens, hidden = shape
    if group_size is not None and hidden % group_size:
        pytest.skip("H not a multiple of the group")
    x, weight, residual = _rms_case(tokens, hidden, dtype, seed=hidden + tokens)
    for with_residual, column_major in ((False, False), (True, group_size is not None)):
        res = residual.clone() if with_residual else None
        q, s = _poisoned_outputs(x.shape, group_size, column_major)
        rms_norm_quant_fp8(x, weight, 1e-6, residual=res, group_size=group_size, column_major_scales=column_major,
                           out=q, scale_out=s, backend=backend)
        torch.cuda.synchronize()
        r_cpu = residual.cpu() if with_residual else None
        if with_residual:
            assert torch.equal(res.cpu(), x.cpu() + r_cpu), "residual"
        ctx = f"{backend} {dtype} g={group_size} {tokens}x{hidden} residual={with_residual} column_major={column_major}"
        s_rows = s.cpu().contiguous()
        assert_fused_within(q, s_rows, rms_norm_bounds(x.cpu(), weight.cpu(), 1e-6, r_cpu), group_size, context=ctx)
        q_ref, s_ref, _ = rms_norm_quant_fp8_reference(x.cpu(), weight.cpu(), 1e-6, r_cpu, group_size)
        truth = rms_norm_truth(x.cpu(), weight.cpu(), 1e-6, r_cpu)
        assert sqnr_db(q, s_rows, truth, group_size) >= sqnr_db(q_ref, s_ref, truth, group_size) - 0.05, ctx


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("group_size", GROUPS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_silu_and_mul_quant(backend, dtype, group_size, shape):
    tokens, inner = shape
    if group_size is not None and inner % group_size:
        pytest.skip("I not a multiple of the group")
    x = random_rows(tokens, 2 * inner, dtype, "cuda", seed=inner) / 16
    for column_major in (False, True) if group_size else (False,):
        q, s = _poisoned_outputs((tokens, inner), group_size, column_major)
        silu_and_mul_quant_fp8(x, group_size=group_size, column_major_scales=column_major, out=q, scale_out=s,
                               backend=backend)
        torch.cuda.synchronize()
        ctx = f"{backend} {dtype} g={group_size} {tokens}x{inner} column_major={column_major}"
        s_rows = s.cpu().contiguous()
        assert_fused_within(q, s_rows, silu_and_mul_bounds(x.cpu()), group_size, context=ctx)
        q_ref, s_ref = silu_and_mul_quant_fp8_reference(x.cpu(), group_size)
        truth = silu_and_mul_truth(x.cpu())
        assert sqnr_db(q, s_rows, truth, group_size) >= sqnr_db(q_ref, s_ref, truth, group_size) - 0.05, ctx


@pytest.mark.parametrize("kernel", ["registers:v1", "registers:v2", "registers:v4", "staged"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("group_size", [None, 16, 128])
@pytest.mark.parametrize("shape", [(3, 1000), (5, 2048), (4, 7168), (2, 11008), (2, 18432)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_forced_row_kernels(kernel, dtype, group_size, shape):
    """Both CUDA row kernels of each op (the register kernel at about 1, 2 and 4 vectors a thread,
    the staged kernel) forced, whatever the planner picks: within the bounds, the residual bit for
    bit, nothing written past the rows."""
    from fp8quant.ops import rms_norm_quant, row_quant, silu_and_mul_quant

    tokens, width = shape
    if group_size is not None and width % group_size:
        pytest.skip("not a multiple of the group")
    staged = kernel == "staged"
    target = row_quant.STAGED_VECS_PER_THREAD if staged else int(kernel[-1])
    ctx = f"{kernel} {dtype} g={group_size} {tokens}x{width}"
    x, weight, residual = _rms_case(tokens, width, dtype, seed=width)
    res = residual.clone()
    plan = rms_norm_quant._plan_for(x, res, weight, x.new_empty(x.shape, dtype=torch.float8_e4m3fn), group_size,
                                    target, staged=staged)
    if plan is None:
        pytest.skip("no such plan for the row")
    q, s = _poisoned_outputs(x.shape, group_size, False)
    rms_norm_quant.launch_cuda(x, res, weight, q, s, 1e-6, group_size, None, False, False, plan)
    torch.cuda.synchronize()
    assert torch.equal(res.cpu(), x.cpu() + residual.cpu()), "residual " + ctx
    assert_fused_within(q, s.cpu(), rms_norm_bounds(x.cpu(), weight.cpu(), 1e-6, residual.cpu()), group_size,
                        context="rms " + ctx)
    gate_up = random_rows(tokens, 2 * width, dtype, "cuda", seed=width) / 16
    vec = row_quant.vector_width(width, gate_up.element_size(), (gate_up.stride(0), gate_up.data_ptr()))
    plan = row_quant.plan(width, vec, gate_up.element_size(), group_size, target, staged=staged)
    if plan is None:
        return
    q, s = _poisoned_outputs((tokens, width), group_size, False)
    silu_and_mul_quant.launch_cuda(gate_up, q, s, group_size, None, False, False, plan)
    torch.cuda.synchronize()
    assert_fused_within(q, s.cpu(), silu_and_mul_bounds(gate_up.cpu()), group_size, context="silu " + ctx)


@pytest.mark.parametrize("ctas_per_row", [2, 4])
@pytest.mark.parametrize("vecs_per_thread", [1, 2, 4])
@pytest.mark.parametrize("group_size, layout", [(None, "row"), (16, "row"), (128, "row"), (128, "packed")])
@pytest.mark.parametrize("shape", [(1, 2048), (3, 4096), (5, 7168), (2, 1000)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_shared_rows_as_one_cta(ctas_per_row, vecs_per_thread, group_size, layout, shape):
    """RMSNorm's register kernel with each row shared by 2 or 4 CTAs (forced, row_quant.shared_rows):
    the same codes, scales and residual as with a CTA a row, bit for bit (every CTA sums the same
    row in the same order), into poisoned outputs (nothing written past them)."""
    from fp8quant.ops import rms_norm_quant, row_quant

    tokens, hidden = shape
    if group_size is not None and hidden % group_size:
        pytest.skip("H not a multiple of the group")
    x, weight, residual = _rms_case(tokens, hidden, torch.bfloat16, seed=hidden + tokens)
    q_probe = torch.empty_like(x, dtype=torch.float8_e4m3fn)
    plan = rms_norm_quant._plan_for(x, residual, weight, q_probe, group_size, vecs_per_thread)
    if plan is None or plan.block_threads // 32 < ctas_per_row:
        pytest.skip("no such plan, or fewer warps than CTAs")
    flags = row_quant.ScaleFlags(*(layout == "packed",) * 4)
    results = []
    for k in (1, ctas_per_row):
        res = residual.clone()
        q = torch.empty_like(x, dtype=torch.float8_e4m3fn)
        q.view(torch.uint8).fill_(0xA5)
        s = poisoned_scales(tuple(x.shape), group_size, layout, "cuda") if group_size else torch.full((tokens, 1), -7.0, device="cuda")
        rms_norm_quant.launch_cuda(x, res, weight, q, s, 1e-6, group_size, None, flags.layout, flags.ue8m0,
                                   row_quant.shared_rows(plan, k))
        torch.cuda.synchronize()
        results.append((q, s, res))
    (q1, s1, r1), (qk, sk, rk) = results
    ctx = f"k={ctas_per_row} v{vecs_per_thread} g={group_size} {layout} {tokens}x{hidden}"
    assert torch.equal(r1, x + residual) and torch.equal(rk, r1), "residual " + ctx
    assert_codes_equal(qk, q1, ctx)
    assert torch.equal(sk.view(torch.int32), s1.view(torch.int32)), "scales " + ctx


@pytest.mark.parametrize("group_size", [None, 16, 128])
@pytest.mark.parametrize("shape", [(3, 1000), (2, 4096), (5, 8192), (4, 16384)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_bulk_row_load_as_the_staged_loop(group_size, shape):
    """The staged kernels with the input row in by one bulk copy (forced, row_quant.bulk_rows; sm_90):
    RMSNorm without the residual, SiLU per token ([gate | up] in shared memory): the same bits as
    the staged kernel's loop, into poisoned outputs."""
    from fp8quant.ops import rms_norm_quant, row_quant, silu_and_mul_quant

    tokens, hidden = shape
    if group_size is not None and hidden % group_size:
        pytest.skip("H not a multiple of the group")
    if torch.cuda.get_device_capability() < (9, 0):
        pytest.skip("the bulk copy needs sm_90 (elsewhere the kernel takes the loop)")
    x, weight, _ = _rms_case(tokens, hidden, torch.bfloat16, seed=hidden)
    plan = rms_norm_quant._plan_for(x, None, weight, torch.empty_like(x, dtype=torch.float8_e4m3fn), group_size,
                                    staged=True, target_vecs_per_thread=row_quant.STAGED_VECS_PER_THREAD)
    results = []
    for p in (plan, row_quant.bulk_rows(plan, x.element_size())):
        q, s = _poisoned_outputs(x.shape, group_size, False)
        rms_norm_quant.launch_cuda(x, None, weight, q, s, 1e-6, group_size, None, 0, False, p)
        torch.cuda.synchronize()
        results.append((q, s))
    ctx = f"bulk g={group_size} {tokens}x{hidden}"
    assert_codes_equal(results[1][0], results[0][0], ctx)
    assert torch.equal(results[1][1].view(torch.int32), results[0][1].view(torch.int32)), "scales " + ctx
    if group_size is not None:
        return
    gate_up = random_rows(tokens, 2 * hidden, torch.bfloat16, "cuda", seed=hidden) / 16
    vec = row_quant.vector_width(hidden, gate_up.element_size(), (gate_up.stride(0), gate_up.data_ptr()))
    plan = row_quant.plan(hidden, vec, gate_up.element_size(), None, staged=True)
    silu = []
    for p in (plan, row_quant.bulk_rows(plan, gate_up.element_size(), input_rows=2)):
        q, s = _poisoned_outputs((tokens, hidden), None, False)
        silu_and_mul_quant.launch_cuda(gate_up, q, s, None, None, 0, False, p)
        torch.cuda.synchronize()
        silu.append((q, s))
    assert_codes_equal(silu[1][0], silu[0][0], "silu " + ctx)
    assert torch.equal(silu[1][1], silu[0][1]), "silu scales " + ctx


@pytest.mark.parametrize("kernel", ["cuda", "triton", "registers:v1", "registers:v2", "registers:v4", "staged"])
@pytest.mark.parametrize("layout", ["column", "tma", "packed"])
@pytest.mark.parametrize("shape, group_size", [((5, 384), 128), ((3, 1152), 128), ((7, 2048), 64), ((2, 4096), 16)],
                         ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_every_scale_layout(kernel, layout, shape, group_size):
    """Each op's kernels per group (the planner's CUDA kernel: the row kernel for RMSNorm, the group
    kernel for SiLU; Triton; the row kernels forced) in each scale layout: the codes of the same
    kernel's row-major call and its scales in the layout, padding rows unwritten, a packed row's
    bytes past its last group zero (3 and 9 groups of 128)."""
    from fp8quant.ops import rms_norm_quant, row_quant, silu_and_mul_quant

    tokens, width = shape
    x, weight, residual = _rms_case(tokens, width, torch.bfloat16, seed=width)
    gate_up = random_rows(tokens, 2 * width, torch.bfloat16, "cuda", seed=width) / 16
    forced = kernel not in BACKENDS
    staged = kernel == "staged"
    target = row_quant.STAGED_VECS_PER_THREAD if staged else int(kernel[-1]) if forced else 0

    def flags(kw):
        return row_quant.ScaleFlags(kw.get("column_major_scales", False) or kw.get("packed_ue8m0", False),
                                    kw.get("tma_aligned_scales", False) or kw.get("packed_ue8m0", False),
                                    kw.get("scale_ue8m0", False), kw.get("packed_ue8m0", False))

    if forced:
        rms_plan = rms_norm_quant._plan_for(x, residual, weight, torch.empty_like(x, dtype=torch.float8_e4m3fn),
                                            group_size, target, staged=staged)
        vec = row_quant.vector_width(width, gate_up.element_size(), (gate_up.stride(0), gate_up.data_ptr()))
        silu_plan = row_quant.plan(width, vec, gate_up.element_size(), group_size, target, staged=staged)
        if rms_plan is None or silu_plan is None:
            pytest.skip("no such plan for the row")

    def rms(out, scale_out, **kw):
        if not forced:
            return rms_norm_quant_fp8(x, weight, residual=residual.clone(), group_size=group_size, out=out,
                                      scale_out=scale_out, backend=kernel, **kw)
        f = flags(kw)
        rms_norm_quant.launch_cuda(x, residual.clone(), weight, out, scale_out, 1e-6, group_size, None, f.layout,
                                   f.ue8m0, rms_plan)

    def silu(out, scale_out, **kw):
        if not forced:
            return silu_and_mul_quant_fp8(gate_up, group_size=group_size, out=out, scale_out=scale_out, backend=kernel,
                                          **kw)
        f = flags(kw)
        silu_and_mul_quant.launch_cuda(gate_up, out, scale_out, group_size, None, f.layout, f.ue8m0, silu_plan)

    assert_layout_matches_row_major(rms, shape, group_size, layout, "cuda", f"rms {kernel}")
    assert_layout_matches_row_major(silu, shape, group_size, layout, "cuda", f"silu {kernel}")
    torch.cuda.synchronize()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("group_size", [None, 16])
def test_silu_over_its_whole_input_range(backend, dtype, group_size):
    """Gates across silu's range, dense where the CUDA kernel's reciprocal changes form (1 + e over
    2^64: g < -44.36) and where expf overflows (g < -88.72), up = 1, one magnitude per row so each
    row's scale follows its values: every code within the bounds."""
    info = torch.finfo(dtype)
    edges = torch.cat([torch.linspace(-44.5, -44.2, 256), torch.linspace(-89.0, -87.0, 256)])
    spread = torch.linspace(-1, 1, 1024) * min(info.max, 1e4)
    specials = torch.tensor([-info.max, info.max, float("-inf"), float("inf")] * 32)
    gate = torch.cat([specials, edges, spread, -edges.flip(0)]).to(dtype).reshape(-1, 128)  # 2176 values
    x = torch.cat([gate, torch.ones_like(gate)], dim=-1).cuda()
    q, s = silu_and_mul_quant_fp8(x, group_size=group_size, backend=backend)
    assert_fused_within(q, s, silu_and_mul_bounds(x.cpu()), group_size, context=f"silu range {dtype} g={group_size}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_edge_rows_strided_rows_and_scale_ub(backend, dtype):
    x = edge_rows(512, dtype).cuda()
    weight = torch.ones(512, dtype=dtype, device="cuda")
    for ub in (None, 2.0, torch.tensor([2.0], device="cuda")):
        q, s = rms_norm_quant_fp8(x, weight, scale_ub=ub, backend=backend)
        assert_fused_within(q, s, rms_norm_bounds(x.cpu(), weight.cpu(), 1e-6), None,
                            None if ub is None else float(ub), context=f"rms edge ub={ub}")
        q, s = silu_and_mul_quant_fp8(x, scale_ub=ub, backend=backend)
        assert_fused_within(q, s, silu_and_mul_bounds(x.cpu()), None, None if ub is None else float(ub),
                            context=f"silu edge ub={ub}")
    wide = random_rows(6, 3000, dtype, "cuda")[:, :2048]  # rows 3000 apart
    q, s = rms_norm_quant_fp8(wide, weight.new_ones(2048), group_size=128, backend=backend)
    assert_fused_within(q, s, rms_norm_bounds(wide.cpu(), torch.ones(2048, dtype=dtype), 1e-6), 128, context="strided")
    q, s = silu_and_mul_quant_fp8(wide, group_size=128, backend=backend)
    assert_fused_within(q, s, silu_and_mul_bounds(wide.cpu()), 128, context="strided silu")


@pytest.mark.parametrize("backend", BACKENDS)
def test_cuda_graph_replay_and_torch_compile(backend):
    x, weight, residual = _rms_case(16, 4096, torch.bfloat16, seed=2)
    res = residual.clone()
    q, s = _poisoned_outputs(x.shape, 128, False)
    rms_norm_quant_fp8(x, weight, residual=res, group_size=128, out=q, scale_out=s, backend=backend)  # warm up
    graph = torch.cuda.CUDAGraph()
    res.copy_(residual)
    with torch.cuda.graph(graph):
        rms_norm_quant_fp8(x, weight, residual=res, group_size=128, out=q, scale_out=s, backend=backend)
    res.copy_(residual)
    q.view(torch.uint8).fill_(0xA5)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(res.cpu(), (x + residual).cpu())
    assert_fused_within(q, s, rms_norm_bounds(x.cpu(), weight.cpu(), 1e-6, residual.cpu()), 128, context="graph")

    xs = random_rows(8, 2 * 4096, torch.bfloat16, "cuda") / 16
    compiled = torch.compile(lambda t: silu_and_mul_quant_fp8(t, group_size=128, backend=backend), fullgraph=True)
    q, s = compiled(xs)
    assert_fused_within(q, s, silu_and_mul_bounds(xs.cpu()), 128, context="compiled")


@pytest.mark.parametrize("trigger_at_entry", [False, True])
@pytest.mark.parametrize("staged", [False, True], ids=["registers", "staged"])
@pytest.mark.parametrize("tokens, hidden", [(2, 4096), (16, 7168), (64, 2048), (256, 4096)])
def test_trigger_at_entry_in_a_graph_chain(trigger_at_entry, staged, tokens, hidden):
    """RMSNorm with a residual, three calls in a graph, each reading the residual the one before
    wrote in place, with the next kernel let launch at entry or after the wait (forced either way;
    the planner's rule reserves shared memory where it takes it): the residual bit for bit, the
    last call's codes within the bounds."""
    from dataclasses import replace

    from fp8quant.ops import rms_norm_quant

    x, weight, residual = _rms_case(tokens, hidden, torch.bfloat16, seed=hidden + tokens)
    res = residual.clone()
    q, s = _poisoned_outputs(x.shape, None, False)
    plan = rms_norm_quant._plan_for(x, res, weight, q, None, staged=staged)
    plan = replace(plan, trigger_at_entry=trigger_at_entry)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(3):
            rms_norm_quant.launch_cuda(x, res, weight, q, s, 1e-6, None, None, False, False, plan, True)
    res.copy_(residual)
    g.replay()
    torch.cuda.synchronize()
    before = residual.cpu()
    for _ in range(2):
        before = x.cpu() + before
    assert torch.equal(res.cpu(), x.cpu() + before), f"residual {tokens}x{hidden}"
    assert_fused_within(q, s.cpu(), rms_norm_bounds(x.cpu(), weight.cpu(), 1e-6, before), None,
                        context=f"rms chain {tokens}x{hidden} staged={staged} trigger={trigger_at_entry}")
