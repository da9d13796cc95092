"""`fp8quant bench token`: the suite of per_token_quant_fp8 (shapes, bytes, providers, accuracy
inputs); fp8quant/bench/harness.py times and reports it."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from ..reference import FP8_DTYPE, per_token_quant_fp8_reference
from .harness import Shape, copy_provider, importable, reference_providers

NAME = "token"
OP = "per_token_quant_fp8"
reference = per_token_quant_fp8_reference

SEED_BATCH = (16, 32, 64, 128)
SEED_SEQ = (64, 128, 256, 512, 1024, 2048, 4096)
SEED_HIDDEN = (1368, 2048, 4096)
DECODE_TOKENS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MODEL_HIDDEN = (5120, 7168, 8192, 16384)
MODEL_TOKENS = (1024, 4096, 16384, 65536)
# Providers timed a second time at decode shapes with their inputs in L2 (harness.run_gpu).
L2_DECODE_PROVIDERS = ("fp8quant", "triton", "torch.compile", "vllm", "sglang")
PEERS = ("torch.compile", "vllm", "sglang")  # our own Triton backend is not a peer
OURS = ("fp8quant", "triton")  # providers whose accuracy gates the exit status (prefix match)


def full_grid() -> list[Shape]:
    shapes = [Shape(b * s, h, "seed", b, s) for b in SEED_BATCH for s in SEED_SEQ for h in SEED_HIDDEN]
    hiddens = sorted(set(SEED_HIDDEN) | set(MODEL_HIDDEN))
    shapes += [Shape(t, h, "decode") for t in DECODE_TOKENS for h in hiddens]
    shapes += [Shape(t, h, "model") for t in MODEL_TOKENS for h in MODEL_HIDDEN]
    seen, unique = set(), []
    for s in shapes:
        if (s.tokens, s.hidden) not in seen:
            seen.add((s.tokens, s.hidden))
            unique.append(s)
    return unique


def quick_grid() -> list[Shape]:
    return [Shape(t, h, "quick") for t in (1, 64, 4096, 65536) for h in (1368, 4096, 16384)]


def bytes_moved(tokens: int, hidden: int, element_size: int) -> int:
    """Input read + codes written + scales written."""
    return tokens * hidden * element_size + tokens * hidden + tokens * 4


def _codes_bytes(elements: int) -> int:
    return -(-elements // 256) * 256


def output_buffer_bytes(tokens: int, hidden: int, element_size: int) -> int:
    """One call's output buffer: the codes, then (256-byte aligned) the scales; or the copy
    provider's destination, whichever is larger."""
    return max(_codes_bytes(tokens * hidden) + 4 * tokens, bytes_moved(tokens, hidden, element_size) // 2)


def outputs(x: torch.Tensor, out: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(q, scale) for a call on x: views into `out`, or new tensors when there is none."""
    scale_shape = (*x.shape[:-1], 1)
    if out is None:
        return (torch.empty(x.shape, dtype=FP8_DTYPE, device=x.device),
                torch.empty(scale_shape, dtype=torch.float32, device=x.device))
    codes = _codes_bytes(x.numel())
    q = out[: x.numel()].view(FP8_DTYPE).view(x.shape)
    s = out[codes: codes + 4 * math.prod(scale_shape)].view(torch.float32).view(scale_shape)
    return q, s


# Providers: name -> make(x, out=None), which returns a zero-argument callable that runs one call on
# x and returns (q, scale); or a string saying why the provider is missing. `out` is the call's
# output buffer (uint8, output_buffer_bytes long) when the harness shares one per call between
# providers; providers that allocate their results themselves ignore it.


def _fp8quant_provider(backend: str, enable_pdl: bool | None = None, **forced):
    """Our op through the public API, or (`forced`: staging, threads_per_row, ctas_per_row and the
    experiments block_threads, smem_bytes, trigger_at_entry) one forced plan of the CUDA kernels,
    launched with PDL where the default call would use it."""
    from .. import per_token_quant_fp8
    from .._device import use_pdl
    from ..ops.per_token import launch_cuda, plan_for

    block_threads = forced.pop("block_threads", None)
    smem_bytes = forced.pop("smem_bytes", None)
    trigger_at_entry = forced.pop("trigger_at_entry", None)
    forced = {k: v for k, v in forced.items() if v is not None}

    def make(x, out=None):
        q, s = outputs(x, out)
        if not forced and block_threads is None and smem_bytes is None and trigger_at_entry is None:
            return lambda: per_token_quant_fp8(x, out=q, scale_out=s, backend=backend, enable_pdl=enable_pdl)
        plan = plan_for(x, q, use_pdl(x.device.index, enable_pdl), **forced)  # ValueError: cannot run
        if block_threads is not None:
            if plan.ctas_per_row != 1 or block_threads % plan.threads_per_row or not 32 <= block_threads <= 512:
                raise ValueError(f"block_threads={block_threads} does not fit {plan.name}")
            plan = replace(plan, block_threads=block_threads, grid=math.ceil(x.shape[0] * plan.threads_per_row / block_threads))
        if trigger_at_entry is not None:  # off: and no shared memory reserved
            plan = replace(plan, trigger_at_entry=trigger_at_entry, smem_bytes=plan.smem_bytes if trigger_at_entry else 0)
        if smem_bytes is not None:
            plan = replace(plan, smem_bytes=smem_bytes)

        def call():
            launch_cuda(x, q, s.view(-1), None, enable_pdl, plan)
            return q, s

        return call

    return make


FORCED_FIELDS = {"t": "threads_per_row", "s": "ctas_per_row", "b": "block_threads", "e": "trigger_at_entry", "m": "smem_bytes"}


def forced_provider(name: str):
    """"fp8quant:registers:t128": the register kernel at 128 threads per row; ":t256:s4": and each
    row shared by 4 CTAs; ":t128:b512": CTAs of 512 threads; ":m80000": that much dynamic shared
    memory reserved per CTA; ":e0" / ":e1": the trigger at entry forced off / on. The fields come
    in the order t, s or b, e, m, each at most once. None for any other name."""
    parts = name.split(":")
    if len(parts) < 3 or parts[:2] != ["fp8quant", "registers"]:
        return None
    keys = [p[:1] for p in parts[2:]]
    values = [p[1:] for p in parts[2:]]
    order = "tsbem"
    if (
        any(k not in order for k in keys)
        or [order.index(k) for k in keys] != sorted({order.index(k) for k in keys})
        or {"s", "b"} <= set(keys)
        or not all(v.isdigit() for v in values)
    ):
        return None
    fields = {FORCED_FIELDS[k]: int(v) for k, v in zip(keys, values)}
    if fields.get("trigger_at_entry", 0) not in (0, 1):
        return None
    if "trigger_at_entry" in fields:
        fields["trigger_at_entry"] = bool(fields["trigger_at_entry"])
    return _fp8quant_provider("cuda", staging="registers", **fields)


def expand_providers(wanted: list[str]) -> list[str]:
    """Sweeps: "fp8quant:registers:t*" every threads per row, ":tN:s*" every CTAs per row."""
    wanted = list(wanted)
    if "fp8quant:registers:t*" in wanted:
        wanted += [f"fp8quant:registers:t{2**k}" for k in range(10)]
    for name in [w for w in wanted if w.endswith(":s*")]:
        wanted += [f"{name[:-1]}{2**k}" for k in range(4)]
    return wanted


def _sglang_provider(kernel):
    def make(x, out=None):
        q, s = outputs(x, out)

        def call():
            kernel(x, q, s)
            return q, s

        return call

    return make


PROVIDERS = ("torch", "torch.compile", "fp8quant", "fp8quant:nopdl", "fp8quant:registers", "fp8quant:shared",
             "fp8quant:global", "triton", "copy", "vllm", "sglang")


def providers(gpu: bool) -> dict:
    p = reference_providers(per_token_quant_fp8_reference, gpu)
    if not gpu:
        return p
    p["fp8quant"] = _fp8quant_provider("cuda")
    p["fp8quant:nopdl"] = _fp8quant_provider("cuda", enable_pdl=False)
    for staging in ("registers", "shared", "global"):
        p[f"fp8quant:{staging}"] = _fp8quant_provider("cuda", staging=staging)
    p["triton"] = _fp8quant_provider("triton")
    p["copy"] = copy_provider(bytes_moved)
    vllm = importable("vllm._custom_ops", "scaled_fp8_quant")
    p["vllm"] = vllm if isinstance(vllm, str) else (lambda x, out=None: (lambda: vllm(x, use_per_token_if_dynamic=True)))
    sglang = importable("sgl_kernel", "sgl_per_token_quant_fp8")
    p["sglang"] = sglang if isinstance(sglang, str) else _sglang_provider(sglang)
    return p


def cpu_providers() -> dict:
    """What runs without a GPU beside the reference: the Triton kernel under its interpreter."""
    from .. import per_token_quant_fp8

    return {"triton": lambda x, out=None: (lambda: per_token_quant_fp8(x, backend="triton"))}


def accuracy_inputs(device: str, dtype: torch.dtype, quick: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator(device="cpu").manual_seed(1234)
    shapes = {"16x64x1368": (16 * 64, 1368), "32x128x4096": (32 * 128, 4096), "7x16384": (7, 16384)}
    if device == "cpu":
        shapes = {"64x1368": (64, 1368)} if quick else {"64x1368": (64, 1368), "7x4096": (7, 4096)}
    out = {}
    for name, (t, h) in shapes.items():
        x = torch.randn(t, h, generator=g) * torch.exp2(torch.randint(-6, 7, (t, 1), generator=g).float())
        out[name] = x.to(dtype).to(device)
    edge = torch.randn(8, 1368, generator=g)
    edge[0] = 0
    edge[1, 3] = float("nan")
    edge[2, 7] = float("inf")
    edge[3] *= 1e-30
    out["edge-rows"] = edge.to(dtype).to(device)
    return out
