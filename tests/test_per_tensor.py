"""per_tensor_quant_fp8 on the CPU: the reference's rules, and the public call on the reference and
(under TRITON_INTERPRET=1) the Triton kernels, byte for byte, static and dynamic."""

import os

import numpy as np
import pytest
import torch

from fp8quant import per_tensor_quant_fp8
from fp8quant.reference import MIN_SCALE, per_tensor_quant_fp8_reference, per_token_quant_fp8_reference
from fp8_asserts import assert_codes_equal, assert_quant_equal, assert_scales_equal, edge_rows, random_rows

INTERPRETING = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
BACKENDS = ["torch"] + (["triton"] if INTERPRETING else [])
DTYPES = [torch.float16, torch.bfloat16, torch.float32]


def test_dynamic_is_per_token_over_the_flattened_tensor():
    x = random_rows(12, 300, torch.bfloat16, seed=1)
    q, s = per_tensor_quant_fp8_reference(x)
    q2, s2 = per_token_quant_fp8_reference(x.reshape(1, -1))
    assert_codes_equal(q.reshape(1, -1), q2)
    assert_scales_equal(s, s2.reshape(1))
    q, s = per_tensor_quant_fp8_reference(x, scale_ub=0.5)
    q2, s2 = per_token_quant_fp8_reference(x.reshape(1, -1), 0.5)
    assert_codes_equal(q.reshape(1, -1), q2)
    assert_scales_equal(s, s2.reshape(1))


def test_static_scale_divides_and_saturates():
    x = torch.tensor([[1.0, -3.0, 1000.0, -1e6, 0.0, float("inf")]])
    q, s = per_tensor_quant_fp8_reference(x, torch.tensor([0.5]))
    assert float(s) == 0.5
    assert q.float().tolist() == [[2.0, -6.0, 448.0, -448.0, 0.0, 448.0]]
    q, s = per_tensor_quant_fp8_reference(torch.zeros(3, 4))
    assert float(s) == np.float32(MIN_SCALE) and bool((q.float() == 0).all())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, hidden", [(1, 17), (7, 1368), (3, 9000), (64, 64)])
def test_public_call_bit_exact(backend, dtype, rows, hidden):
    x = random_rows(rows, hidden, dtype, seed=rows + hidden)
    for scale, ub in ((None, None), (None, 0.25), (torch.tensor([0.02]), None), (torch.tensor([3.0]), None)):
        got = per_tensor_quant_fp8(x, scale, scale_ub=ub, backend=backend)
        assert got[1].shape == (1,)
        assert_quant_equal(got, per_tensor_quant_fp8_reference(x, scale, ub), f"{backend} scale={scale} ub={ub}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_edge_rows_and_out(backend, dtype):
    x = edge_rows(40, dtype)
    assert_quant_equal(per_tensor_quant_fp8(x, backend=backend), per_tensor_quant_fp8_reference(x), f"{backend} NaN")
    finite = x[[0, 1, 2, 6, 7]]
    assert_quant_equal(per_tensor_quant_fp8(finite, backend=backend), per_tensor_quant_fp8_reference(finite), f"{backend} finite")
    out = torch.empty(x.shape, dtype=torch.float8_e4m3fn)
    out.view(torch.uint8).fill_(0xA5)
    scale_out = torch.full((1,), -1.0)
    q, s = per_tensor_quant_fp8(finite[:, 1:33], torch.tensor([0.125]), out=out[:5, :32].contiguous(), backend=backend)
    assert float(s) == 0.125
    q, s = per_tensor_quant_fp8(x[:, :8].contiguous(), out=out.view(-1)[:64].view(8, 8), scale_out=scale_out, backend=backend)
    assert s is scale_out and q.data_ptr() == out.data_ptr()
    assert_quant_equal((q, s), per_tensor_quant_fp8_reference(x[:, :8]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_static_scales_off_the_reciprocal_path(backend):
    # subnormal (1e-40: reciprocal inf; 1e-38: finite reciprocal), near FLT_MAX (subnormal reciprocal).
    # float32: the interpreter's bfloat16 -> float32 conversion mangles subnormals (-2.9e-39 -> -0.0);
    # tests/test_gpu_per_tensor.py has the bfloat16 case.
    x = edge_rows(40, torch.float32)
    finite = x[torch.isfinite(x.float()).all(dim=1)]
    for value in (1e-40, 1e-38, 3e38, 2.0**-126):
        scale = torch.tensor([value])
        got = per_tensor_quant_fp8(finite, scale, backend=backend)
        assert_quant_equal(got, per_tensor_quant_fp8_reference(finite, scale), f"{backend} static scale {value}")


def test_empty_input_gives_its_scale():
    q, s = per_tensor_quant_fp8(torch.empty(0, 16))
    assert q.shape == (0, 16) and float(s) == np.float32(MIN_SCALE)
    q, s = per_tensor_quant_fp8(torch.empty(0, 16), torch.tensor([2.0]))
    assert float(s) == 2.0


@pytest.mark.parametrize("hidden, vec", [(h, v) for h in (8, 17, 1368, 4096, 7168, 16384, 200000) for v in (1, 2, 4, 8)
                                         if h % v == 0])
def test_plan_covers_every_vector_once(hidden, vec):
    """The kernels' chunk walk (per_tensor.cuh: TensorChunk) under plan(): whole warps of at most 256
    threads, each chunk's vectors held once by its CTA's 4 slots a thread; a CTA per chunk when
    static, the amax and quantize grids the same (at most 8 CTAs per SM) when dynamic."""
    from fp8quant.ops.per_tensor import CHUNK_VECS_PER_THREAD, plan

    rows, vecs_per_row = 3, hidden // vec
    for dynamic in (True, False):
        p = plan(rows, hidden, vec, sm_count=132, dynamic=dynamic)
        assert p.block_threads % 32 == 0 and 32 <= p.block_threads <= 256
        chunk_vecs = -(-vecs_per_row // p.chunks_per_row)
        held = [0] * vecs_per_row
        for c in range(p.chunks_per_row):
            begin, end = c * chunk_vecs, min((c + 1) * chunk_vecs, vecs_per_row)
            for t in range(p.block_threads):
                for k in range(CHUNK_VECS_PER_THREAD):
                    if begin + t + k * p.block_threads < end:
                        held[begin + t + k * p.block_threads] += 1
        assert held == [1] * vecs_per_row
        chunks = rows * p.chunks_per_row
        assert (p.quant_grid == chunks) if not dynamic else (p.amax_grid == p.quant_grid == min(chunks, 8 * 132))
        assert not dynamic or p.block_threads == 256  # the dynamic kernels keep full CTAs (see plan)


def test_quantize_kernel_pdl_trigger_only_where_forced():
    """ops/per_tensor.py quant_pdl_launch: off by default (measured slower or no faster), on where
    forced; a forced static small grid reserves one CTA an SM (per-token's rule); never without PDL."""
    from fp8quant._device import H100_SXM
    from fp8quant.ops.pdl_plan import SMEM_RESERVED_PER_CTA
    from fp8quant.ops.per_tensor import STATIC_SMEM_BYTES, plan, quant_pdl_launch

    dynamic = plan(16, 4096, 8, H100_SXM.sm_count, dynamic=True)
    assert quant_pdl_launch(dynamic, 16, True, H100_SXM, pdl=True) == (False, 0)
    assert quant_pdl_launch(dynamic, 16, True, H100_SXM, pdl=True, forced=True) == (True, 0)
    assert quant_pdl_launch(dynamic, 16, True, H100_SXM, pdl=False, forced=True) == (False, 0)
    small = plan(1, 7168, 8, H100_SXM.sm_count, dynamic=False)
    assert 2 <= small.quant_grid <= H100_SXM.sm_count // 2, small
    assert quant_pdl_launch(small, 16, False, H100_SXM, pdl=True) == (False, 0)
    on, smem = quant_pdl_launch(small, 16, False, H100_SXM, pdl=True, forced=True)
    footprint = smem + STATIC_SMEM_BYTES + SMEM_RESERVED_PER_CTA
    assert on and footprint + 4096 <= H100_SXM.smem_per_sm < 2 * footprint - 4096, (small, smem)


def test_cluster_rule():
    """Dynamic on sm_90+ (clusters) with the tensor one chunk: one kernel (a cluster of one CTA)
    and no amax grid; more chunks, no clusters or static: as before; a forced cluster is cut to
    the chunks and refused outside 0-8."""
    from fp8quant._device import H100_SXM
    from fp8quant.ops.per_tensor import MAX_CLUSTER, plan

    sms = H100_SXM.sm_count
    p = plan(1, 4096, 8, sms, dynamic=True, clusters=True)
    assert (p.cluster, p.quant_grid, p.amax_grid) == (1, 1, 0), p
    assert plan(1, 7168, 8, sms, dynamic=True, clusters=True).cluster == 1
    assert plan(1, 16384, 8, sms, dynamic=True, clusters=True).cluster == 0  # 2 chunks
    assert plan(4, 16384, 8, sms, dynamic=True, clusters=True).cluster == 0  # 8 chunks: two kernels measured faster
    assert plan(1, 4096, 8, sms, dynamic=True, clusters=False).cluster == 0
    assert plan(1, 4096, 8, sms, dynamic=False, clusters=True).cluster == 0
    assert plan(1, 4096, 8, sms, dynamic=True, clusters=True, cluster=0).cluster == 0
    forced = plan(64, 4096, 8, sms, dynamic=True, clusters=True, cluster=MAX_CLUSTER)
    assert forced.cluster == forced.quant_grid == MAX_CLUSTER and forced.amax_grid == 0, forced
    assert plan(1, 4096, 8, sms, dynamic=True, clusters=True, cluster=8).cluster == 1
    with pytest.raises(ValueError, match="cluster"):
        plan(1, 4096, 8, sms, dynamic=True, clusters=True, cluster=9)


def test_one_row_rule():
    """Dynamic, rows one contiguous range (or one row), and per-token's plan for them as one row
    in registers (at most 512 x 8 vectors): that plan (ops/per_tensor.py: one_row_plan); strided
    rows, longer tensors and static calls keep the per-tensor kernels."""
    from fp8quant._device import H100_SXM
    from fp8quant.ops.per_tensor import one_row_plan
    from fp8quant.ops.per_token_plan import REGISTERS

    for rows, hidden in ((1, 4096), (1, 16384), (2, 16384), (4, 7168), (8, 4096), (3, 17)):
        p = one_row_plan(rows, hidden, hidden, 2, 8 if hidden % 8 == 0 else 1, H100_SXM, True)
        assert p is not None and p.staging == REGISTERS and p.vecs_per_thread <= 8, (rows, hidden, p)
        assert p.threads_per_row * p.vecs_per_thread * p.vec >= rows * hidden
    assert one_row_plan(1, 16384, 16384, 2, 8, H100_SXM, True).ctas_per_row == 4  # per-token's shared row
    assert one_row_plan(1, 4096, 9000, 2, 8, H100_SXM, True) is not None  # one row: its stride is no matter
    assert one_row_plan(2, 4096, 4104, 2, 8, H100_SXM, True) is None  # rows apart
    assert one_row_plan(8, 7168, 7168, 2, 8, H100_SXM, True) is None  # 57344 elements
    assert one_row_plan(16, 4096, 4096, 2, 8, H100_SXM, True) is None
    assert one_row_plan(1, 16384, 16384, 4, 4, H100_SXM, True) is not None  # float32: 4096 vectors
    assert one_row_plan(2, 16384, 16384, 4, 4, H100_SXM, True) is None
