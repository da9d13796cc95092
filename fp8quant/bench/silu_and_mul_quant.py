"""`fp8quant bench silu`: silu_and_mul_quant_fp8 per token and per group 128; the shape's width is
x's, 2I (the codes have I columns)."""

from __future__ import annotations

from dataclasses import replace

from .fused import FusedSuite

NAME = "silu"


class SiluSuite(FusedSuite):
    def out_len(self, width):
        return width // 2

    def fused(self, x, out, backend):
        from .. import silu_and_mul_quant_fp8

        q, s = self.outputs(x, out)
        return lambda: silu_and_mul_quant_fp8(x, group_size=self.group, out=q, scale_out=s, backend=backend)

    def unfused(self, x, out):
        from .. import per_token_group_quant_fp8, per_token_quant_fp8
        from ..reference import silu_and_mul_reference

        q, s = self.outputs(x, out)
        if self.group is None:
            return lambda: per_token_quant_fp8(silu_and_mul_reference(x), out=q, scale_out=s)
        return lambda: per_token_group_quant_fp8(silu_and_mul_reference(x), self.group, out=q, scale_out=s)

    def forced(self, x, out, vecs_per_thread, trigger_at_entry=None, staged=False, ctas_per_row=1, bulk=False):
        from ..ops import row_quant
        from ..ops.silu_and_mul_quant import launch_cuda

        if ctas_per_row != 1 or (bulk and self.group is not None):
            raise ValueError("the SiLU kernels take a row a CTA (no :kK; :bulk per token only)")

        q, s = self.outputs(x, out)
        inner = x.shape[1] // 2
        vec = row_quant.vector_width(inner, x.element_size(), (x.stride(0), x.data_ptr()), (0, q.data_ptr()))
        plan = row_quant.plan(inner, vec, x.element_size(), self.group, vecs_per_thread, staged=staged,
                              staged_vecs_per_thread=vecs_per_thread)
        if plan is None:
            raise ValueError(f"no CUDA plan at {vecs_per_thread} vectors per thread for I = {inner}")
        plan = replace(plan, trigger_at_entry=trigger_at_entry)
        if bulk:
            plan = row_quant.bulk_rows(plan, x.element_size(), input_rows=2)

        def call():
            launch_cuda(x, q, s, self.group, None, False, False, plan)
            return q, s

        return call

    def reference(self, x):
        from ..reference import silu_and_mul_quant_fp8_reference

        return silu_and_mul_quant_fp8_reference(x, self.group)

    def truth(self, x):
        from ..fused_bounds import silu_and_mul_truth

        return silu_and_mul_truth(x)

    def bounds(self, x):
        from ..fused_bounds import silu_and_mul_bounds

        return silu_and_mul_bounds(x.cpu())


WIDTHS = tuple(2 * i for i in (1536, 2048, 11008, 14336, 18432))
VARIANTS = [SiluSuite(NAME, "silu_and_mul_quant_fp8", variant, WIDTHS, group) for variant, group in (("token", None), ("g128", 128))]
PROVIDERS = VARIANTS[0].PROVIDERS


def forced_provider(name: str):
    """The forced plans' names (for --providers): every variant takes the same ones."""
    return VARIANTS[0].forced_provider(name)
