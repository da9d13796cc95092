"""Runs every CUDA kernel path on small odd inputs, for compute-sanitizer (memcheck, racecheck):

    compute-sanitizer --tool memcheck python3 tests/sanitize_cuda.py
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fp8quant import _device  # noqa: E402
from fp8quant.ops import per_token as api  # noqa: E402
from fp8quant.ops import per_token_plan as planner  # noqa: E402
from fp8quant.reference import per_token_quant_fp8_reference  # noqa: E402


def main() -> int:
    torch.manual_seed(0)
    launched = 0
    for dtype in (torch.bfloat16, torch.float32):
        for hidden in (17, 1368, 4096, 40000):
            base = torch.randn(37, hidden + 8, device="cuda").to(dtype)
            for x in (base[:, :hidden], base[:, 1 : hidden + 1]):
                q = torch.empty(x.shape, dtype=torch.float8_e4m3fn, device="cuda")
                s = torch.empty(x.shape[0], device="cuda")
                ref = per_token_quant_fp8_reference(x)
                vec = planner.vector_width(hidden, x.element_size(), x.stride(0), x.data_ptr(), q.data_ptr())
                options = [dict(staging="shared"), dict(staging="global"), {}]
                if planner.registers_fit(hidden, vec):
                    options.append(dict(staging="registers", threads_per_row=planner.MAX_THREADS_PER_ROW))
                pdl = _device.pdl_supported(x.device.index)  # every other launch with PDL
                for i, kw in enumerate(options):
                    try:
                        plan = api.plan_for(x, q, pdl and i % 2 == 1, **kw)
                    except ValueError:
                        continue
                    api.launch_cuda(x, q, s, None, enable_pdl=pdl and i % 2 == 1, plan=plan)
                    torch.cuda.synchronize()
                    launched += 1
                    if not torch.equal(q.view(torch.uint8), ref[0].view(torch.uint8)):
                        print(f"MISMATCH {plan.name} {dtype} H={hidden}")
                        return 1
    # Several rows per CTA under PDL (per_token_plan.pdl_rows_per_cta: 3 and 4 rows of 14-16 KiB
    # on an H100), the last CTA partly past the end.
    if _device.pdl_supported(torch.cuda.current_device()):
        for dtype, hidden in ((torch.bfloat16, 7168), (torch.float32, 4096)):
            for rows in (301, 397):
                x = torch.randn(rows, hidden, device="cuda").to(dtype)
                q = torch.empty(x.shape, dtype=torch.float8_e4m3fn, device="cuda")
                s = torch.empty(rows, device="cuda")
                plan = api.plan_for(x, q, True)
                api.launch_cuda(x, q, s, None, enable_pdl=True, plan=plan)
                torch.cuda.synchronize()
                launched += 1
                if not torch.equal(q.view(torch.uint8), per_token_quant_fp8_reference(x)[0].view(torch.uint8)):
                    print(f"MISMATCH {plan.name} x{plan.rows_per_cta} rows {dtype} {rows}x{hidden}")
                    return 1
    # per_token_group_quant_fp8: every layout, aligned and not, through the CUDA backend.
    from fp8quant import per_token_group_quant_fp8
    from fp8quant.reference import group_scales_layout, per_token_group_quant_fp8_reference

    for dtype in (torch.bfloat16, torch.float32):
        base = torch.randn(37, 7168 + 8, device="cuda").to(dtype)
        for x in (base[:, :7168], base[:, 1:1025]):
            for kw, col, tma, packed in ((dict(), False, False, False), (dict(column_major_scales=True), True, False, False),
                                         (dict(column_major_scales=True, tma_aligned_scales=True), True, True, False),
                                         (dict(packed_ue8m0=True), True, True, True)):
                q, s = per_token_group_quant_fp8(x, 128, backend="cuda", **kw)
                torch.cuda.synchronize()
                launched += 1
                rq, rs = per_token_group_quant_fp8_reference(x, 128, scale_ue8m0=packed)
                want = group_scales_layout(rs, col, tma, packed) if col else rs
                if not (torch.equal(q.view(torch.uint8), rq.view(torch.uint8)) and torch.equal(s, want)):
                    print(f"MISMATCH group {kw} {dtype} {tuple(x.stride())}")
                    return 1
    # per_tensor_quant_fp8: dynamic (two kernels) and static, aligned and not.
    from fp8quant import per_tensor_quant_fp8
    from fp8quant.reference import per_tensor_quant_fp8_reference

    for dtype in (torch.bfloat16, torch.float32):
        base = torch.randn(37, 4096 + 8, device="cuda").to(dtype)
        for x in (base[:, :4096], base[:, 1:1368]):
            for scale in (None, torch.tensor([0.01], device="cuda")):
                q, s = per_tensor_quant_fp8(x, scale, backend="cuda")
                torch.cuda.synchronize()
                launched += 1
                rq, rs = per_tensor_quant_fp8_reference(x, scale)
                if not (torch.equal(q.view(torch.uint8), rq.view(torch.uint8)) and torch.equal(s, rs)):
                    print(f"MISMATCH tensor scale={scale} {dtype} {tuple(x.stride())}")
                    return 1
    # per_tensor_quant_fp8 dynamic in one cluster of 1-8 CTAs (sm_90+; forced at any size), and the
    # quantize kernel with the next launch let in at its entry.
    from fp8quant.ops.per_tensor import launch_cuda as tensor_launch

    if torch.cuda.get_device_capability() >= (9, 0):
        x = torch.randn(37, 4096 + 8, device="cuda").to(torch.bfloat16)[:, 1:1368]
        for cluster, trigger in ((1, None), (3, None), (8, None), (0, True), (0, False)):
            q = torch.empty(x.shape, dtype=torch.float8_e4m3fn, device="cuda")
            s = torch.empty(1, device="cuda")
            tensor_launch(x, q, s, None, None, True, trigger, cluster)
            torch.cuda.synchronize()
            launched += 1
            rq, rs = per_tensor_quant_fp8_reference(x)
            if not (torch.equal(q.view(torch.uint8), rq.view(torch.uint8)) and torch.equal(s, rs)):
                print(f"MISMATCH tensor cluster={cluster} trigger={trigger}")
                return 1
    # The fused ops: register and staged kernels, per token and per group, RMSNorm with a residual
    # (launched only: their numbers are checked against bounds by the GPU tests).
    from fp8quant.ops import per_token_group, rms_norm_quant, row_quant, silu_and_mul_quant

    for rows in (3, 37):
        x = torch.randn(rows, 5120, device="cuda").to(torch.bfloat16)
        weight = torch.rand(5120, device="cuda").to(torch.bfloat16)
        gate_up = torch.randn(rows, 2 * 5120, device="cuda").to(torch.bfloat16)
        for group in (None, 128):
            for staged in (False, True):
                q = torch.empty(x.shape, dtype=torch.float8_e4m3fn, device="cuda")
                s = torch.empty(rows, 1 if group is None else 5120 // group, device="cuda")
                residual = torch.randn_like(x)
                plan = rms_norm_quant._plan_for(x, residual, weight, q, group, staged=staged)
                rms_norm_quant.launch_cuda(x, residual, weight, q, s, 1e-6, group, None, False, False, plan, True)
                plan = row_quant.plan(5120, 8, 2, group, staged=staged)
                silu_and_mul_quant.launch_cuda(gate_up, q, s, group, None, False, False, plan, True)
                torch.cuda.synchronize()
                launched += 2
        # a row shared by 4 CTAs (RMSNorm's register kernel, forced), per token and per group
        for group in (None, 128):
            s = torch.empty(rows, 1 if group is None else 5120 // group, device="cuda")
            plan = row_quant.shared_rows(rms_norm_quant._plan_for(x, residual, weight, q, group, 1), 4)
            rms_norm_quant.launch_cuda(x, residual, weight, q, s, 1e-6, group, None, 0, False, plan, True)
            torch.cuda.synchronize()
            launched += 1
        # the staged kernel's row in by one bulk copy (RMSNorm without the residual, forced; sm_90)
        for group in (None, 128):
            s = torch.empty(rows, 1 if group is None else 5120 // group, device="cuda")
            plan = row_quant.bulk_rows(rms_norm_quant._plan_for(x, None, weight, q, group, staged=True), 2)
            rms_norm_quant.launch_cuda(x, None, weight, q, s, 1e-6, group, None, 0, False, plan, True)
            torch.cuda.synchronize()
            launched += 1
        s = torch.empty(rows, 1, device="cuda")
        plan = row_quant.bulk_rows(row_quant.plan(5120, 8, 2, None, staged=True), 2, input_rows=2)
        silu_and_mul_quant.launch_cuda(gate_up, q, s, None, None, 0, False, plan, True)
        torch.cuda.synchronize()
        launched += 1
        # packed UE8M0 scales (byte stores into int32 words, TMA-aligned rows) from both row kernels
        for staged in (False, True):
            packed = row_quant.ScaleFlags(True, True, True, True)
            s = per_token_group.allocate_scales((rows, 5120), 128, True, True, True, "cuda")
            plan = rms_norm_quant._plan_for(x, None, weight, q, 128, staged=staged)
            rms_norm_quant.launch_cuda(x, None, weight, q, s, 1e-6, 128, None, packed.layout, True, plan, True)
            plan = row_quant.plan(5120, 8, 2, 128, staged=staged)
            silu_and_mul_quant.launch_cuda(gate_up, q, s, 128, None, packed.layout, True, plan, True)
            torch.cuda.synchronize()
            launched += 2
    print(f"sanitize_cuda: {launched} launches, all bit-exact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
