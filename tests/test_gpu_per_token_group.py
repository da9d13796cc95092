"""per_token_group_quant_fp8 on the GPU: both backends bit-exact against the reference in every
scale layout, on poisoned outputs, odd sizes, strided rows and edge groups; CUDA graphs,
torch.compile and PDL chains. Skipped without an NVIDIA GPU."""

import pytest
import torch

from fp8quant import per_token_group_quant_fp8
from fp8quant.reference import per_token_group_quant_fp8_reference
from conftest import HAS_GPU
from fp8_asserts import (
    SCALE_LAYOUTS, assert_codes_equal, assert_layout_scales_equal, edge_rows, poisoned_scales, scales_in_layout,
)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU")]

LAYOUTS = SCALE_LAYOUTS


def gpu_random(tokens, hidden, dtype, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(tokens, hidden, device="cuda", generator=g)
    x *= torch.exp2(torch.randint(-8, 9, (tokens, hidden // 16), device="cuda", generator=g).float()).repeat_interleave(16, 1)
    return x.to(dtype)


def poisoned(x, group_size, layout):
    q = torch.empty(x.shape, dtype=torch.float8_e4m3fn, device="cuda")
    q.view(torch.uint8).fill_(0xA5)
    return q, poisoned_scales(tuple(x.shape), group_size, layout, "cuda")


def expected(x, group_size, layout, ue8m0=False):
    q, s = per_token_group_quant_fp8_reference(x, group_size, scale_ue8m0=ue8m0 or layout == "packed")
    return q, scales_in_layout(s, layout)


def check(got, want, context, poisoned=False):
    assert_codes_equal(got[0], want[0], context)
    assert_layout_scales_equal(got[1], want[1], context, poisoned)


@pytest.mark.parametrize("backend", ["cuda", "triton"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("tokens, hidden, group_size", [
    (1, 128, 128), (7, 384, 128), (133, 7168, 128), (5, 18432, 128), (64, 4096, 64), (33, 7168, 32),
    (3, 16, 16), (9, 256, 256), (1024, 2048, 128),
])
def test_every_layout_bit_exact(backend, layout, dtype, tokens, hidden, group_size):
    x = gpu_random(tokens, hidden, dtype, seed=tokens + hidden)
    q, s = poisoned(x, group_size, layout)
    got = per_token_group_quant_fp8(x, group_size, out=q, scale_out=s, backend=backend, **LAYOUTS[layout])
    check(got, expected(x, group_size, layout), f"{backend} {layout} {dtype} {tokens}x{hidden}/{group_size}", True)
    fresh = per_token_group_quant_fp8(x, group_size, backend=backend, **LAYOUTS[layout])
    check(fresh, expected(x, group_size, layout), f"{backend} {layout} fresh")


@pytest.mark.parametrize("backend", ["cuda", "triton"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_edge_groups_ue8m0_and_strided_rows(backend, dtype):
    x = torch.cat([edge_rows(512, dtype).cuda(), gpu_random(24, 512, dtype)])
    x[9, 3] = torch.finfo(dtype).max
    for ue8m0 in (False, True):
        got = per_token_group_quant_fp8(x, 128, scale_ue8m0=ue8m0, backend=backend)
        check(got, expected(x, 128, "row", ue8m0), f"{backend} edge ue8m0={ue8m0}")
    base = gpu_random(40, 1040, dtype, seed=3)
    for xs in (base[:, 16:1040], base[::2, 8:1032], base[:, 1:129]):
        got = per_token_group_quant_fp8(xs, 128, backend=backend, column_major_scales=True)
        check(got, expected(xs, 128, "column"), f"{backend} strided {tuple(xs.stride())}")
    x3 = gpu_random(12, 256, dtype, seed=9).view(3, 4, 256)
    check(per_token_group_quant_fp8(x3, 64, backend=backend), expected(x3, 64, "row"), f"{backend} 3-d")


@pytest.mark.parametrize("backend", ["cuda", "triton"])
def test_scales_just_around_powers_of_two(backend):
    """amax = 448 x (2^k, its float32 neighbours): scales on, just above and just below a power of
    two, UE8M0-rounded exactly from their bits."""
    p = torch.tensor([2.0**k for k in range(-20, 20, 3)], device="cuda")
    vals = torch.cat([p, torch.nextafter(p, p * 2), torch.nextafter(p, p / 2)]) * 448
    x = torch.ones(vals.numel(), 128, device="cuda") * 0.5
    x[:, 0] = vals
    for layout in ("row", "packed"):
        got = per_token_group_quant_fp8(x, 128, scale_ue8m0=True, backend=backend, **LAYOUTS[layout])
        check(got, expected(x, 128, layout, True), f"{backend} ue8m0 {layout}")


@pytest.mark.parametrize("backend", ["cuda", "triton"])
def test_cuda_graph_and_compile(backend):
    x = gpu_random(64, 7168, torch.bfloat16)
    per_token_group_quant_fp8(x, 128, backend=backend, column_major_scales=True)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        q, s = per_token_group_quant_fp8(x, 128, backend=backend, column_major_scales=True)
    for seed in range(3):
        x.copy_(gpu_random(64, 7168, torch.bfloat16, seed=seed + 1))
        g.replay()
        torch.cuda.synchronize()
        check((q, s), expected(x, 128, "column"), f"graph {seed}")
    compiled = torch.compile(lambda x: per_token_group_quant_fp8(x, 128, backend=backend, packed_ue8m0=True), fullgraph=True)
    for tokens in (7, 133):
        xt = gpu_random(tokens, 4096, torch.bfloat16, seed=tokens)
        check(compiled(xt), expected(xt, 128, "packed"), f"compiled {tokens}")


@pytest.mark.parametrize("backend", ["cuda", "triton"])
def test_pdl_chain_reads_the_previous_output(backend):
    """Call 2 quantizes call 1's scales (read after write) under PDL, queued behind a sleep."""
    x1 = gpu_random(8, 2**15, torch.float32, seed=2)
    want1 = expected(x1, 128, "row")
    for trial in range(20):
        torch.cuda.synchronize()
        torch.cuda._sleep(1_000_000)
        q1, s1 = per_token_group_quant_fp8(x1, 128, backend=backend, enable_pdl=True)
        q2, s2 = per_token_group_quant_fp8(s1, 16, backend=backend, enable_pdl=True)
        torch.cuda.synchronize()
        check((q1, s1), want1, f"call 1 trial {trial}")
        check((q2, s2), expected(want1[1], 16, "row"), f"call 2 trial {trial}")


@pytest.mark.parametrize("scale_tile", [None, False, True])
@pytest.mark.parametrize("layout", ["row", "column", "packed"])
@pytest.mark.parametrize("tokens, hidden, group_size", [(133, 7168, 128), (33, 7168, 32), (1024, 2048, 64), (5, 384, 128), (1, 4096, 16),
                                                        (9, 384, 128), (17, 256, 128)])
def test_forced_plans_bit_exact(scale_tile, layout, tokens, hidden, group_size):
    """The bench's forced plans (one vector per thread; scales through a
    shared-memory tile or not) write what the planner's do."""
    from fp8quant._device import device_info
    from fp8quant.ops.backends import tensor_vector_width
    from fp8quant.ops.per_token_group import COLUMN_MAJOR, PACKED_UE8M0, ROW_MAJOR, launch_cuda, plan

    x = gpu_random(tokens, hidden, torch.bfloat16, seed=tokens * 7 + group_size)
    code = {"row": ROW_MAJOR, "column": COLUMN_MAJOR, "packed": PACKED_UE8M0}[layout]
    for vecs_per_thread in (None, 1):
        q, s = poisoned(x, group_size, layout)
        forced = plan(tokens, hidden, group_size, tensor_vector_width(x, q), device_info(0).sm_count,
                      vecs_per_thread=vecs_per_thread, layout=code, scale_tile=scale_tile)
        launch_cuda(x, q, s, group_size, 1e-10, code, layout == "packed", None, forced)
        check((q, s), expected(x, group_size, layout), f"{layout} {tokens}x{hidden}/{group_size} {forced}")


@pytest.mark.parametrize("trigger_at_entry", [False, True])
@pytest.mark.parametrize("layout", ["row", "column", "packed"])
@pytest.mark.parametrize("tokens, hidden", [(4, 7168), (16, 4096), (256, 2048), (256, 4096), (1024, 4096)])
def test_trigger_at_entry_in_a_graph_chain(trigger_at_entry, layout, tokens, hidden):
    """The next kernel let launch at entry or after the wait (the planner's PDL rule, forced either
    way, with its shared-memory reservation): a graph of calls that overwrite each other's outputs
    leaves the last call's numbers, bit for bit."""
    from fp8quant._device import device_info
    from fp8quant.ops.backends import tensor_vector_width
    from fp8quant.ops.per_token_group import COLUMN_MAJOR, PACKED_UE8M0, ROW_MAJOR, launch_cuda, plan

    code = {"row": ROW_MAJOR, "column": COLUMN_MAJOR, "packed": PACKED_UE8M0}[layout]
    xs = [gpu_random(tokens, hidden, torch.bfloat16, seed=tokens + k) for k in range(3)]
    q, s = poisoned(xs[0], 128, layout)
    forced = plan(tokens, hidden, 128, tensor_vector_width(xs[0], q), device_info(0).sm_count, layout=code,
                  trigger_at_entry=trigger_at_entry)
    launch_cuda(xs[0], q, s, 128, 1e-10, code, layout == "packed", True, forced)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for x in xs:
            launch_cuda(x, q, s, 128, 1e-10, code, layout == "packed", True, forced)
    for _ in range(3):
        q.view(torch.uint8).fill_(0xA5)
        g.replay()
        torch.cuda.synchronize()
        check((q, s), expected(xs[-1], 128, layout), f"{layout} {tokens}x{hidden} trigger={trigger_at_entry}")
