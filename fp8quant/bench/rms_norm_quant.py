"""`fp8quant bench rmsnorm`: rms_norm_quant_fp8 in four variants (per token / group 128, without /
with the residual), the shape's width being H. The weight is a function of H; the residual of
x (x flipped along its rows), so the reference and every provider see the same one."""

from __future__ import annotations

from dataclasses import replace

import functools

import torch

from .fused import EPS, FusedSuite

NAME = "rmsnorm"


@functools.lru_cache(maxsize=16)
def _weight(width: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    return torch.linspace(0.5, 1.5, width, device=device).to(dtype)


def _residual(x):
    return x.flip(-1).contiguous()


class RmsNormSuite(FusedSuite):
    def out_len(self, width):
        return width

    def extra_bytes(self, tokens, width, element_size):
        return (2 * tokens * width * element_size if self.residual else 0) + width * element_size

    def _inputs(self, x):
        return _weight(x.shape[1], x.dtype, str(x.device)), (_residual(x) if self.residual else None)

    def fused(self, x, out, backend):
        from .. import rms_norm_quant_fp8

        q, s = self.outputs(x, out)
        weight, residual = self._inputs(x)
        return lambda: rms_norm_quant_fp8(x, weight, EPS, residual=residual, group_size=self.group, out=q, scale_out=s,
                                          backend=backend)

    def unfused(self, x, out):
        """torch's own RMSNorm (F.rms_norm: one kernel on CUDA, its fp32 math rounded once, so its
        codes are not the reference's) after the residual's add in place, then our quant op: the
        unfused path an engine without the fusion runs. (The reference's eager LlamaRMSNorm
        composition, ~6 kernels with fp32 intermediates, took 14-2500 us, H100.)"""
        from .. import per_token_group_quant_fp8, per_token_quant_fp8

        q, s = self.outputs(x, out)
        weight, residual = self._inputs(x)

        def call():
            h = x if residual is None else residual.add_(x)
            y = torch.nn.functional.rms_norm(h, (x.shape[-1],), weight, EPS)
            if self.group is None:
                return per_token_quant_fp8(y, out=q, scale_out=s)
            return per_token_group_quant_fp8(y, self.group, out=q, scale_out=s)

        return call

    def forced(self, x, out, vecs_per_thread, trigger_at_entry=None, staged=False, ctas_per_row=1, bulk=False):
        from ..ops.rms_norm_quant import _plan_for, launch_cuda
        from ..ops.row_quant import bulk_rows, shared_rows

        q, s = self.outputs(x, out)
        weight, residual = self._inputs(x)
        plan = _plan_for(x, residual, weight, q, self.group, vecs_per_thread, staged=staged)
        if plan is None:
            raise ValueError(f"no CUDA plan at {vecs_per_thread} vectors per thread for H = {x.shape[1]}")
        plan = replace(plan, trigger_at_entry=trigger_at_entry)
        if ctas_per_row != 1:
            plan = shared_rows(plan, ctas_per_row)
        if bulk:
            if residual is not None:
                raise ValueError("a bulk row load (:bulk) takes no residual")
            plan = bulk_rows(plan, x.element_size())

        def call():
            launch_cuda(x, residual, weight, q, s, EPS, self.group, None, False, False, plan)
            return q, s

        return call

    def reference(self, x):
        from ..reference import rms_norm_quant_fp8_reference

        weight, residual = self._inputs(x)
        return rms_norm_quant_fp8_reference(x, weight, EPS, residual, self.group)[:2]

    def truth(self, x):
        from ..fused_bounds import rms_norm_truth

        weight, residual = self._inputs(x)
        return rms_norm_truth(x, weight, EPS, residual)

    def bounds(self, x):
        from ..fused_bounds import rms_norm_bounds

        weight, residual = self._inputs(x)
        return rms_norm_bounds(x.cpu(), weight.cpu(), EPS, None if residual is None else residual.cpu())


WIDTHS = (2048, 4096, 5120, 7168, 8192)
VARIANTS = [
    RmsNormSuite(NAME, "rms_norm_quant_fp8", variant, WIDTHS, group, residual)
    for variant, group, residual in (("token", None, False), ("token-residual", None, True),
                                     ("g128", 128, False), ("g128-residual", 128, True))
]
PROVIDERS = VARIANTS[0].PROVIDERS


def forced_provider(name: str):
    """The forced plans' names (for --providers): every variant takes the same ones."""
    return VARIANTS[0].forced_provider(name)
