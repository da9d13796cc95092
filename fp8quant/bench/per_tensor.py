"""`fp8quant bench tensor`: the suite of per_tensor_quant_fp8, dynamic ("fp8quant", "triton") and
static ("fp8quant:static", "triton:static"), timed and reported by fp8quant/bench/harness.py.
Bytes per call count one read of x and one write of the codes: the static op's floor; the dynamic
op reads x twice (its amax pass, then the quantize pass), so its floor is 5/3 of that in bf16."""

from __future__ import annotations

import torch

from ..reference import FP8_DTYPE, per_tensor_quant_fp8_reference
from .harness import Shape, copy_provider, importable, reference_providers

NAME = "tensor"
OP = "per_tensor_quant_fp8"
DECODE_TOKENS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
L2_DECODE_PROVIDERS = ("fp8quant", "fp8quant:static", "triton", "torch.compile", "vllm")
PEERS = ("torch.compile", "vllm", "sglang")
OURS = ("fp8quant", "triton")
PROVIDERS = ("torch", "torch.compile", "fp8quant", "fp8quant:static", "triton", "triton:static", "copy", "vllm", "sglang")
STATIC_SCALE = 0.05


def reference(x):
    return per_tensor_quant_fp8_reference(x)


def reference_for(provider: str, x):
    """The static providers' reference: the same scale given; None (the dynamic reference) else."""
    if not provider.endswith(":static"):
        return None
    return per_tensor_quant_fp8_reference(x, torch.full((1,), STATIC_SCALE, device=x.device))


def full_grid() -> list[Shape]:
    shapes = [Shape(t, h, "decode") for t in DECODE_TOKENS for h in (4096, 7168, 16384)]
    return shapes + [Shape(t, h, "model") for t in (1024, 4096, 16384, 65536) for h in (4096, 7168, 8192)]


def quick_grid() -> list[Shape]:
    return [Shape(t, h, "quick") for t in (1, 64, 4096, 65536) for h in (4096, 8192)]


def bytes_moved(tokens: int, hidden: int, element_size: int) -> int:
    return tokens * hidden * element_size + tokens * hidden + 4


def output_buffer_bytes(tokens: int, hidden: int, element_size: int) -> int:
    return max(-(-tokens * hidden // 256) * 256 + 256, bytes_moved(tokens, hidden, element_size) // 2)


def _outputs(x, out):
    if out is None:
        return torch.empty(x.shape, dtype=FP8_DTYPE, device=x.device), torch.empty(1, dtype=torch.float32, device=x.device)
    codes = -(-x.numel() // 256) * 256
    return out[: x.numel()].view(FP8_DTYPE).view(x.shape), out[codes: codes + 4].view(torch.float32)


def _provider(backend: str, static: bool = False):
    from .. import per_tensor_quant_fp8

    def make(x, out=None):
        q, s = _outputs(x, out)
        scale = torch.full((1,), STATIC_SCALE, device=x.device) if static else None
        return lambda: per_tensor_quant_fp8(x, scale, out=q, scale_out=s, backend=backend)

    return make



def providers(gpu: bool) -> dict:
    p = reference_providers(reference, gpu)
    if not gpu:
        return p
    p["fp8quant"] = _provider("cuda")
    p["fp8quant:static"] = _provider("cuda", static=True)
    p["triton"] = _provider("triton")
    p["triton:static"] = _provider("triton", static=True)
    p["copy"] = copy_provider(bytes_moved)
    vllm = importable("vllm._custom_ops", "scaled_fp8_quant")
    p["vllm"] = vllm if isinstance(vllm, str) else (lambda x, out=None: (lambda: vllm(x)))
    p["sglang"] = "not wired"
    return p


def cpu_providers() -> dict:
    from .. import per_tensor_quant_fp8

    return {"triton": lambda x, out=None: (lambda: per_tensor_quant_fp8(x, backend="triton"))}


def accuracy_inputs(device: str, dtype: torch.dtype, quick: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator(device="cpu").manual_seed(1234)
    shapes = {"64x7168": (64, 7168), "4096x4096": (4096, 4096)} if device != "cpu" else {"16x512": (16, 512)}
    out = {name: (torch.randn(t, h, generator=g) * 5).to(dtype).to(device) for name, (t, h) in shapes.items()}
    edge = torch.randn(4, 512, generator=g)
    edge[2, 300] = float("inf")
    out["inf"] = edge.to(dtype).to(device)
    return out
