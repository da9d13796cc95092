"""`fp8quant bench group`: the suite of per_token_group_quant_fp8 at group 128 (every scale layout),
then the variants "g64" and "g32" (H 4096 and 7168; results <gpu>-g64.*, <gpu>-g32.*), timed and
reported by fp8quant/bench/harness.py. "TOKENSxHIDDEN" in --shapes runs in every variant."""

from __future__ import annotations

import functools
import math
import sys

import torch

from ..reference import FP8_DTYPE, per_token_group_quant_fp8_reference
from .harness import Shape, copy_provider, importable, reference_providers

NAME = "group"
OP = "per_token_group_quant_fp8"
GROUP = 128

DECODE_TOKENS = (1, 16, 64, 256)
TOKENS = (1, 16, 64, 256, 1024, 4096, 16384, 65536)
HIDDEN = (512, 1536, 2048, 4096, 7168, 18432)
L2_DECODE_PROVIDERS = ("fp8quant", "fp8quant:column", "fp8quant:tma", "fp8quant:packed", "triton", "torch.compile")
PEERS = ("torch.compile", "vllm", "sglang")
OURS = ("fp8quant", "triton")
SUMMARY_ALSO = ("fp8quant:column", "fp8quant:tma", "fp8quant:packed")  # every layout has the row-major targets
ACCURACY_SKIP = (":packed",)  # names ending so: int32 words, not float scales (the GPU tests check them by position)
PROVIDERS = ("torch", "torch.compile", "fp8quant", "fp8quant:column", "fp8quant:tma", "fp8quant:packed", "triton",
             "copy", "vllm", "sglang")


def reference(x, group: int = GROUP):
    return per_token_group_quant_fp8_reference(x, group)


def full_grid() -> list[Shape]:
    return [Shape(t, h, "decode" if t <= DECODE_TOKENS[-1] else "model") for t in TOKENS for h in HIDDEN]


def quick_grid() -> list[Shape]:
    return [Shape(t, h, "quick") for t in (1, 256, 65536) for h in (4096, 7168)]


def bytes_moved(tokens: int, hidden: int, element_size: int, group: int = GROUP) -> int:
    """Input read + codes written + one float32 scale per group written."""
    return tokens * hidden * element_size + tokens * hidden + tokens * (hidden // group) * 4


def output_buffer_bytes(tokens: int, hidden: int, element_size: int, group: int = GROUP) -> int:
    codes = -(-tokens * hidden // 256) * 256
    m4 = -(-tokens // 4) * 4
    return max(codes + 4 * m4 * (hidden // group), bytes_moved(tokens, hidden, element_size, group) // 2)


def _outputs(x, out, layout: str, group: int = GROUP):
    from ..ops.per_token_group import scale_shape_and_stride

    packed = layout == "packed"
    shape, strides, size, dtype = scale_shape_and_stride(tuple(x.shape), group, layout != "row", layout in ("tma", "packed"), packed)
    if out is None:
        return (torch.empty(x.shape, dtype=FP8_DTYPE, device=x.device),
                torch.empty(size, dtype=dtype, device=x.device).as_strided(shape, strides))
    codes = -(-x.numel() // 256) * 256
    q = out[: x.numel()].view(FP8_DTYPE).view(x.shape)
    s = out[codes: codes + 4 * size].view(dtype).as_strided(shape, strides)
    return q, s


LAYOUT_FLAGS = {
    "row": {},
    "column": dict(column_major_scales=True),
    "tma": dict(column_major_scales=True, tma_aligned_scales=True),
    "packed": dict(packed_ue8m0=True),
}


def _provider(backend: str, layout: str = "row", group: int = GROUP):
    from .. import per_token_group_quant_fp8

    def make(x, out=None):
        q, s = _outputs(x, out, layout, group)
        return lambda: per_token_group_quant_fp8(x, group, out=q, scale_out=s, backend=backend, **LAYOUT_FLAGS[layout])

    return make


FORCED_FIELDS = {"b": "cta_threads", "v": "vecs_per_thread", "w": "whole_rows_only", "t": "scale_tile",
                 "e": "trigger_at_entry"}


def forced_provider(name: str, group: int = GROUP):
    """"fp8quant:plan:b512": the planner's rules with CTAs of up to 512 threads; ":v2": 2 vectors
    per thread (half the threads per group); ":w1": rows shared only by CTAs covering whole rows;
    ":t0" / ":t1": column-major or packed scales written directly / through a shared-memory tile;
    ":e0" / ":e1": under PDL the next kernel let launch after the wait / at entry (default: the rule);
    a last ":column" or ":packed", that scale layout (else row-major).
    "triton:e4096:w8": the Triton kernel at 4096 elements per program, 8 warps (row-major scales).
    None for any other name."""
    parts = name.split(":")
    if len(parts) == 3 and parts[0] == "triton" and parts[1][:1] == "e" and parts[2][:1] == "w" \
            and parts[1][1:].isdigit() and parts[2][1:].isdigit():
        return _triton_forced(int(parts[1][1:]), int(parts[2][1:]), group)
    if len(parts) < 3 or parts[:2] != ["fp8quant", "plan"]:
        return None
    layout = parts.pop() if parts[-1] in ("column", "packed") else "row"
    if any(p[:1] not in FORCED_FIELDS or not p[1:].isdigit() for p in parts[2:]):
        return None
    fields = {FORCED_FIELDS[p[:1]]: int(p[1:]) for p in parts[2:]}
    fields["whole_rows_only"] = bool(fields.get("whole_rows_only", 0))
    for flag in ("scale_tile", "trigger_at_entry"):
        if flag in fields:
            fields[flag] = bool(fields[flag])

    def make(x, out=None):
        from .._device import device_info
        from ..ops.backends import tensor_vector_width
        from ..ops.per_token_group import COLUMN_MAJOR, PACKED_UE8M0, ROW_MAJOR, launch_cuda, plan

        q, s = _outputs(x, out, layout, group)
        x2d, q2d = x.view(-1, x.shape[-1]), q.view(-1, x.shape[-1])
        code = {"row": ROW_MAJOR, "column": COLUMN_MAJOR, "packed": PACKED_UE8M0}[layout]
        forced = plan(x2d.shape[0], x2d.shape[1], group, tensor_vector_width(x2d, q2d), device_info(x.get_device()).sm_count,
                      layout=code, **fields)

        def call():
            launch_cuda(x2d, q2d, s, group, 1e-10, code, layout == "packed", None, forced)
            return q, s

        return call

    return make


def _triton_forced(elements: int, warps: int, group: int):
    def make(x, out=None):
        from ..ops.per_token_group import ROW_MAJOR
        from ..triton.per_token_group import per_token_group_quant_fp8_triton

        q, s = _outputs(x, out, "row", group)
        x2d, q2d = x.view(-1, x.shape[-1]), q.view(-1, x.shape[-1])

        def call():
            per_token_group_quant_fp8_triton(x2d, q2d, s, group, 1e-10, ROW_MAJOR, False, pdl=True,
                                             elements_per_program=elements, num_warps=warps)
            return q, s

        return call

    return make


def providers(gpu: bool, group: int = GROUP) -> dict:
    p = reference_providers(functools.partial(reference, group=group), gpu)
    if not gpu:
        return p
    p["fp8quant"] = _provider("cuda", group=group)
    for layout in ("column", "tma", "packed"):
        p[f"fp8quant:{layout}"] = _provider("cuda", layout, group)
    p["triton"] = _provider("triton", group=group)
    p["copy"] = copy_provider(functools.partial(bytes_moved, group=group))
    vllm = importable("vllm.model_executor.layers.quantization.utils.fp8_utils", "per_token_group_quant_fp8")
    p["vllm"] = vllm if isinstance(vllm, str) else (lambda x, out=None: (lambda: vllm(x, group)))
    sglang = importable("sgl_kernel", "sgl_per_token_group_quant_fp8")
    p["sglang"] = sglang if isinstance(sglang, str) else "not wired (its argument order differs by release)"
    return p


def cpu_providers(group: int = GROUP) -> dict:
    from .. import per_token_group_quant_fp8

    return {"triton": lambda x, out=None: (lambda: per_token_group_quant_fp8(x, group, backend="triton"))}


def accuracy_inputs(device: str, dtype: torch.dtype, quick: bool = False, group: int = GROUP) -> dict[str, torch.Tensor]:
    g = torch.Generator(device="cpu").manual_seed(1234)
    shapes = {"64x7168": (64, 7168), "7x18432": (7, 18432)} if device != "cpu" else {"16x512": (16, 512)}
    out = {}
    for name, (t, h) in shapes.items():
        x = torch.randn(t, h, generator=g) * torch.exp2(torch.randint(-6, 7, (t, h // group), generator=g).float()).repeat_interleave(group, 1)
        out[name] = x.to(dtype).to(device)
    edge = torch.randn(4, 512, generator=g)
    edge[0, :128] = 0
    edge[1, 3] = float("nan")
    edge[2, 300] = float("inf")
    edge[3, 128:256] *= 1e-30
    out["edge-groups"] = edge.to(dtype).to(device)
    return out


class GroupSizeSuite:
    """The suite at another group size: the same providers (every scale layout), H 4096 and 7168."""

    HIDDEN = (4096, 7168)

    def __init__(self, group: int):
        self.VARIANT = f"g{group}"
        self.group = group
        for name in ("reference", "bytes_moved", "output_buffer_bytes", "providers", "cpu_providers", "accuracy_inputs",
                     "forced_provider"):
            setattr(self, name, functools.partial(globals()[name], group=group))

    def __getattr__(self, name):  # NAME, OP, PROVIDERS, DECODE_TOKENS, ... as the module's
        return getattr(sys.modules[__name__], name)

    def full_grid(self) -> list[Shape]:
        return [Shape(t, h, "decode" if t <= DECODE_TOKENS[-1] else "model") for t in TOKENS for h in self.HIDDEN]

    def quick_grid(self) -> list[Shape]:
        return [Shape(t, h, "quick") for t in (1, 256, 65536) for h in self.HIDDEN]


VARIANTS = [sys.modules[__name__], GroupSizeSuite(64), GroupSizeSuite(32)]


assert math.gcd(GROUP, 128) == 128
