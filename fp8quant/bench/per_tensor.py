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


def time_in_l2(tokens: int, hidden: int, element_size: int, l2_bytes: int) -> bool:
    """Model shapes whose input fits the L2 twice (the bench's two input copies) are also timed
    with it there: the dynamic op's target at those sizes is 1.05x of one read and one write."""
    return 2 * tokens * hidden * element_size <= l2_bytes


def summary_extra(result: dict) -> list[str]:
    """The issue's per-tensor targets: static >= 97% over 100 MB and decode in L2 within 1 us of
    the floor; dynamic over 100 MB against two reads and a write, in L2 against one read and a
    write (x1.05), decode in L2 within 1.5 us."""
    from .harness import DTYPES

    if not result.get("copy_bw_gbps"):
        return []
    es = torch.empty(0, dtype=DTYPES[result["dtype"]]).element_size()
    bw = result["copy_bw_gbps"] * 1e3  # bytes per us

    def rows(name):
        return [r for r in result["rows"] if r["provider"] == name]

    def floor_2r1w(r):
        return (2 * es + 1) * r["tokens"] * r["hidden"] / bw

    parts = []
    static, dynamic = rows("fp8quant:static"), rows("fp8quant")
    decode = lambda rs: [r for r in rs if r["tokens"] <= DECODE_TOKENS[-1] and r.get("median_us_l2") is not None]
    big_static = [r["pct_copy_bw"] for r in static if r["bytes"] > 100e6]
    if big_static:
        parts.append(f"static >100MB min {min(big_static):.1f}%")
    if decode(static):
        excess = [r["median_us_l2"] - r["floor_us"] for r in decode(static)]
        parts.append(f"static decode in L2 {max(excess):.2f} us ({sum(e <= 1.0 for e in excess)} of {len(excess)} within 1 us)")
    big = [r["median_us"] / floor_2r1w(r) for r in dynamic if r["bytes"] > 100e6]
    if big:
        parts.append(f"dynamic >100MB max {max(big):.3f}x of 2R+1W")
    fits = [r["median_us_l2"] / (r["bytes"] / bw) for r in dynamic
            if r["tokens"] > DECODE_TOKENS[-1] and r.get("median_us_l2") is not None]
    if fits:
        parts.append(f"dynamic in L2 max {max(fits):.3f}x of 1R+1W")
    if decode(dynamic):
        excess = [r["median_us_l2"] - r["floor_us"] for r in decode(dynamic)]
        parts.append(f"dynamic decode in L2 {max(excess):.2f} us ({sum(e <= 1.5 for e in excess)} of {len(excess)} within 1.5 us)")
    return parts


def reference_for(provider: str, x):
    """The static providers' reference: the same scale given; None (the dynamic reference) else."""
    if "static" not in provider.split(":")[1:]:
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



def forced_provider(name: str):
    """"fp8quant:e0" / "fp8quant:e1", and "fp8quant:static:e0" / ":e1": under PDL the quantize
    kernel lets the next kernel launch once its scale is known / at its entry (default: the
    planner's rule, ops/per_tensor.py: quant_pdl_launch); dynamic "fp8quant:cN": one cluster of N
    CTAs (1-8, at most the chunks), "fp8quant:c0": two kernels (default: plan's cluster rule); the
    two may be combined ("fp8quant:c0:e0"). None for any other name."""
    parts = name.split(":")
    static = parts[1:2] == ["static"]
    rest = parts[2:] if static else parts[1:]
    flags = {p[:1]: p[1:] for p in rest}
    if (parts[0] != "fp8quant" or not rest or len(flags) != len(rest) or any(not v.isdigit() for v in flags.values())
            or not set(flags) <= ({"e"} if static else {"e", "c"}) or flags.get("e", "0") not in ("0", "1")):
        return None
    trigger_at_entry = None if "e" not in flags else flags["e"] == "1"
    cluster = None if "c" not in flags else int(flags["c"])

    def make(x, out=None):
        from ..ops.per_tensor import launch_cuda

        q, s = _outputs(x, out)
        scale = torch.full((1,), STATIC_SCALE, device=x.device) if static else None
        x2d, q2d = x.view(-1, x.shape[-1]), q.view(-1, x.shape[-1])

        def call():
            launch_cuda(x2d, q2d, s, scale, None, None, trigger_at_entry, cluster)
            return q, s

        return call

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
