"""The suites of the fused producer ops, one per variant (per token or group 128, with or without the
residual), run one after the other by `fp8quant bench rmsnorm` / `fp8quant bench silu` (each
variant's result goes to benchmarks/results/<op>/<gpu>[-dtype]-<variant>.*).

Providers: "fp8quant" (CUDA) and "triton", the fused op ("fp8quant:plan:vN" forces the CUDA plan's
vectors per thread); "unfused", torch's producer in eager mode
then our own quantization op (what an engine without the fusion runs); "torch.compile" of the whole
reference composition; "torch", that composition in eager mode; "copy", a copy of the same bytes.
Accuracy: within the contract's bounds (fp8quant/fused_bounds.py), not bit-exact (see there)."""

from __future__ import annotations

from typing import Callable, Optional

import torch

from ..reference import FP8_DTYPE
from .harness import Shape, copy_provider, reference_providers

EPS = 1e-6


class FusedSuite:
    DECODE_TOKENS = (1, 16, 64, 256)
    L2_DECODE_PROVIDERS = ("fp8quant", "triton", "unfused", "torch.compile")
    PEERS = ("torch.compile", "unfused")
    OURS = ("fp8quant", "triton")
    PROVIDERS = ("torch", "torch.compile", "unfused", "fp8quant", "triton", "copy")
    TOKENS = (1, 16, 64, 256, 1024, 4096, 16384)

    def __init__(self, name: str, op: str, variant: str, widths: tuple[int, ...], group: Optional[int],
                 residual: bool = False):
        self.NAME, self.OP, self.VARIANT = name, op, variant
        self.widths, self.group, self.residual = widths, group, residual

    # the pieces each op defines
    def out_len(self, width: int) -> int:
        raise NotImplementedError

    def fused(self, x, out, backend: str) -> Callable:
        raise NotImplementedError

    def unfused(self, x, out) -> Callable:
        raise NotImplementedError

    def forced(self, x, out, vecs_per_thread: int) -> Callable:
        """The CUDA kernel under row_quant.plan with about vecs_per_thread vectors per thread, the
        staged kernel for 0 (ValueError where that plan does not hold the row)."""
        raise NotImplementedError

    def reference(self, x):
        raise NotImplementedError

    def bounds(self, x):
        raise NotImplementedError

    def extra_bytes(self, tokens: int, width: int, element_size: int) -> int:
        return 0

    # the suite interface of bench/harness.py
    def full_grid(self) -> list[Shape]:
        return [Shape(t, w, "decode" if t <= self.DECODE_TOKENS[-1] else "model") for t in self.TOKENS for w in self.widths]

    def quick_grid(self) -> list[Shape]:
        return [Shape(t, w, "quick") for t in (1, 256, 16384) for w in (self.widths[1], self.widths[-1])]

    def _scale_count(self, tokens: int, width: int) -> int:
        n = self.out_len(width)
        return tokens * (1 if self.group is None else n // self.group)

    def bytes_moved(self, tokens: int, width: int, element_size: int) -> int:
        """x read, codes and scales written, plus the op's own (residual read and written, weight once)."""
        return (tokens * width * element_size + tokens * self.out_len(width) + 4 * self._scale_count(tokens, width)
                + self.extra_bytes(tokens, width, element_size))

    def output_buffer_bytes(self, tokens: int, width: int, element_size: int) -> int:
        codes = -(-tokens * self.out_len(width) // 256) * 256
        return max(codes + 4 * self._scale_count(tokens, width) + 256, self.bytes_moved(tokens, width, element_size) // 2)

    def outputs(self, x, out):
        rows, n = x.shape[0], self.out_len(x.shape[1])
        scale_shape = (rows, 1) if self.group is None else (rows, n // self.group)
        if out is None:
            return (torch.empty(rows, n, dtype=FP8_DTYPE, device=x.device),
                    torch.empty(scale_shape, dtype=torch.float32, device=x.device))
        codes = -(-rows * n // 256) * 256
        count = scale_shape[0] * scale_shape[1]
        return out[: rows * n].view(FP8_DTYPE).view(rows, n), out[codes: codes + 4 * count].view(torch.float32).view(scale_shape)

    def providers(self, gpu: bool) -> dict:
        p = reference_providers(lambda x: self.reference(x), gpu)
        if not gpu:
            return p
        p["unfused"] = lambda x, out=None: self.unfused(x, out)
        p["fp8quant"] = lambda x, out=None: self.fused(x, out, "cuda")
        p["triton"] = lambda x, out=None: self.fused(x, out, "triton")
        p["copy"] = copy_provider(self.bytes_moved)
        return p

    def forced_provider(self, name: str):
        """"fp8quant:plan:vN": the CUDA kernel planned for about N vectors per thread (4 by
        default: more threads a row at N = 1 or 2, fewer at 6); "fp8quant:plan:s": the staged
        kernel (row_quant.cuh), ":sN" at about N vectors per thread (8 at most); ":bulk" /
        ":bulkN": the staged kernel with its input row in by one bulk copy (row_quant.bulk_rows:
        RMSNorm without the residual, SiLU per token); then ":kK" (the register kernel, RMSNorm):
        each row shared by K CTAs (row_quant.shared_rows); a last ":e0" / ":e1": under PDL the next
        kernel let launch after the wait / at entry (default: row_quant.pdl_launch's rule); None for
        any other name."""
        from ..ops import row_quant

        parts = name.split(":")
        if len(parts) < 3 or parts[:2] != ["fp8quant", "plan"]:
            return None
        kind = "bulk" if parts[2].startswith("bulk") else parts[2][:1]
        count, rest = parts[2][len(kind):], parts[3:]
        trigger = {"e0": False, "e1": True}.get(rest[-1]) if rest else None
        if trigger is not None:
            rest = rest[:-1]
        ctas = rest[0][1:] if rest and rest[0][:1] == "k" else None
        if ctas is not None:
            rest = rest[1:]
        staged_kind = kind in ("s", "bulk")
        if (rest or kind not in ("s", "bulk", "v") or not ((count.isdigit() and int(count) > 0) or (staged_kind and count == ""))
                or (ctas is not None and (staged_kind or not ctas.isdigit() or int(ctas) < 1))):
            return None
        if staged_kind:
            n = int(count) if count else row_quant.STAGED_VECS_PER_THREAD
            return lambda x, out=None: self.forced(x, out, n, trigger, staged=True, bulk=kind == "bulk")
        k = int(ctas) if ctas else 1
        return lambda x, out=None: self.forced(x, out, int(count), trigger, ctas_per_row=k)

    def cpu_providers(self) -> dict:
        return {"triton": lambda x, out=None: self.fused(x, out, "triton")}

    def accuracy_inputs(self, device: str, dtype: torch.dtype, quick: bool = False) -> dict[str, torch.Tensor]:
        g = torch.Generator(device="cpu").manual_seed(1234)
        width = self.widths[-1] if device != "cpu" else 512
        shapes = {f"64x{width}": (64, width)} if device != "cpu" else {f"4x{width}": (4, width)}
        return {name: torch.randn(t, w, generator=g).to(dtype).to(device) for name, (t, w) in shapes.items()}

    def within_contract(self, x, q, s, provider: str = "") -> bool:
        from ..fused_bounds import assert_fused_within

        try:
            assert_fused_within(q, s, self.bounds(x), self.group)
            return True
        except AssertionError as e:
            print(f"{self.OP} {self.VARIANT}, {provider}: {e}")
            return False
