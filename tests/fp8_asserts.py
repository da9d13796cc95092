"""Exact comparison helpers: FP8 codes byte for byte, scales exactly (NaN equal to NaN)."""

from __future__ import annotations

import torch


def assert_codes_equal(actual: torch.Tensor, expected: torch.Tensor, context: str = "") -> None:
    """Byte-for-byte FP8 comparison; a failure names the count, the first bad index, both values
    and both bit patterns."""
    a = actual.detach().cpu().view(torch.uint8)
    e = expected.detach().cpu().view(torch.uint8)
    assert a.shape == e.shape, f"{context}: shape {tuple(a.shape)} != {tuple(e.shape)}"
    bad = a != e
    n = int(bad.sum())
    if n:
        idx = tuple(int(i) for i in bad.nonzero()[0])
        av, ev = int(a[idx]), int(e[idx])
        fa = float(a[idx].view(torch.float8_e4m3fn).float())
        fe = float(e[idx].view(torch.float8_e4m3fn).float())
        raise AssertionError(
            f"{context}: {n} of {a.numel()} FP8 codes differ; first at {idx}: "
            f"got {fa} (0x{av:02x}, {av:08b}), expected {fe} (0x{ev:02x}, {ev:08b})"
        )


def assert_scales_equal(actual: torch.Tensor, expected: torch.Tensor, context: str = "") -> None:
    a = actual.detach().cpu().float()
    e = expected.detach().cpu().float()
    assert a.shape == e.shape, f"{context}: scale shape {tuple(a.shape)} != {tuple(e.shape)}"
    same = (a == e) | (torch.isnan(a) & torch.isnan(e))
    if not bool(same.all()):
        bad = ~same
        idx = tuple(int(i) for i in bad.nonzero()[0])
        ab = int(a[idx].view(torch.int32)) & 0xFFFFFFFF
        eb = int(e[idx].view(torch.int32)) & 0xFFFFFFFF
        raise AssertionError(
            f"{context}: {int(bad.sum())} of {a.numel()} scales differ; first at {idx}: "
            f"got {float(a[idx])!r} (0x{ab:08x}), expected {float(e[idx])!r} (0x{eb:08x})"
        )


def assert_quant_equal(actual, expected, context: str = "") -> None:
    assert_codes_equal(actual[0], expected[0], context)
    assert_scales_equal(actual[1], expected[1], context)


# The scale layouts of the group contract (per_token_group_quant_fp8's flags), shared by the
# group op's and the fused ops' tests.
SCALE_LAYOUTS = {
    "row": {},
    "column": dict(column_major_scales=True),
    "tma": dict(column_major_scales=True, tma_aligned_scales=True),
    "packed": dict(packed_ue8m0=True),
}
POISON_SCALE, POISON_WORD = -7.0, -7  # what poisoned scale storage holds (float32 / packed int32)


def layout_flags(layout: str) -> tuple[bool, bool, bool]:
    """(column_major, tma_aligned, packed) of a SCALE_LAYOUTS name."""
    return layout != "row", layout in ("tma", "packed"), layout == "packed"


def poisoned_scales(q_shape: tuple, group_size: int, layout: str, device="cpu") -> torch.Tensor:
    """A scale tensor in the layout, its whole storage (a TMA-aligned layout's padding too) poisoned."""
    from fp8quant.ops.per_token_group import scale_shape_and_stride

    shape, strides, size, dtype = scale_shape_and_stride(tuple(q_shape), group_size, *layout_flags(layout))
    fill = POISON_WORD if dtype == torch.int32 else POISON_SCALE
    return torch.full((size,), fill, dtype=dtype, device=device).as_strided(shape, strides)


def scales_in_layout(scales: torch.Tensor, layout: str) -> torch.Tensor:
    """Row-major (..., G) scales as the op returns them in the layout."""
    from fp8quant.reference import group_scales_layout

    if layout == "row":
        return scales
    return group_scales_layout(scales.reshape(-1, scales.shape[-1]), *layout_flags(layout))


def assert_layout_scales_equal(actual: torch.Tensor, expected: torch.Tensor, context: str = "",
                               poisoned: bool = False) -> None:
    """Scales in a layout: shape, strides and dtype, the values exactly (packed words bit for bit);
    poisoned (actual from poisoned_scales): a TMA-aligned storage's padding rows left as they were."""
    assert (actual.shape, actual.stride(), actual.dtype) == (expected.shape, expected.stride(), expected.dtype), (
        f"{context}: scales {tuple(actual.shape)} {actual.stride()} {actual.dtype}, expected "
        f"{tuple(expected.shape)} {expected.stride()} {expected.dtype}")
    if actual.dtype == torch.int32:
        assert torch.equal(actual.cpu(), expected.cpu()), f"{context}: packed words differ"
    else:
        assert_scales_equal(actual, expected, context)
    if poisoned and actual.dim() == 2 and actual.stride(0) == 1 and actual.stride(1) > actual.shape[0]:
        padding = torch.as_strided(actual, (actual.stride(1), actual.shape[1]), (1, actual.stride(1)))[actual.shape[0]:]
        poison = POISON_WORD if actual.dtype == torch.int32 else POISON_SCALE
        assert bool((padding == poison).all()), f"{context}: the TMA-aligned padding rows were written"


def assert_layout_matches_row_major(call, q_shape: tuple, group_size: int, layout: str, device="cpu",
                                    context: str = "") -> None:
    """call(out=, scale_out=, scale_ue8m0=, **flags) writes one quantization (a group or fused op's
    call, or a forced kernel) into the outputs given. Into poisoned outputs in `layout` it writes the
    codes of its row-major call (UE8M0 where packed) and those scales in the layout, leaving a
    TMA-aligned storage's padding rows as they were."""
    ue8m0 = layout == "packed"
    row_q = torch.empty(q_shape, dtype=torch.float8_e4m3fn, device=device)
    row_s = poisoned_scales(q_shape, group_size, "row", device)
    call(out=row_q, scale_out=row_s, scale_ue8m0=ue8m0)
    q = torch.empty(q_shape, dtype=torch.float8_e4m3fn, device=device)
    q.view(torch.uint8).fill_(0xA5)
    s = poisoned_scales(q_shape, group_size, layout, device)
    call(out=q, scale_out=s, scale_ue8m0=ue8m0, **SCALE_LAYOUTS[layout])
    assert_codes_equal(q, row_q, f"{context} {layout}")
    assert_layout_scales_equal(s, scales_in_layout(row_s, layout), f"{context} {layout}", poisoned=True)


def random_rows(tokens: int, hidden: int, dtype: torch.dtype, device="cpu", seed: int = 0) -> torch.Tensor:
    """Random data with a spread of row magnitudes (never zeros), so scales differ by row."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(tokens, hidden, generator=g, dtype=torch.float32)
    row_scale = torch.exp2(torch.randint(-8, 9, (tokens, 1), generator=g).float())
    return (x * row_scale).to(dtype).to(device)


def edge_rows(hidden: int, dtype: torch.dtype) -> torch.Tensor:
    """Rows: zero, -0, denormal (of dtype), one NaN, one +Inf, one -Inf, max of dtype, tiny."""
    info = torch.finfo(dtype)
    rows = torch.randn(8, hidden, generator=torch.Generator().manual_seed(1)).to(dtype)
    rows[0] = 0
    rows[1] = -0.0
    rows[2] = info.smallest_normal / 4 * torch.sign(rows[2].float()).to(dtype)
    rows[3, hidden // 2] = float("nan")
    rows[4, hidden - 1] = float("inf")
    rows[5, 0] = float("-inf")
    rows[6] = info.max * torch.sign(rows[6].float()).to(dtype)
    rows[7] = rows[7] * info.smallest_normal
    return rows


# Inputs for the exact-division tests (x / scale through the row's reciprocal + one FMA
# correction, in both backends), shared by tests/test_gpu_per_token.py and tests/test_triton_interpreter.py.


def every_finite_16bit(dtype: torch.dtype, row_len: int) -> torch.Tensor:
    """Every finite value of a 16-bit dtype, in rows of row_len (mixed magnitudes per row)."""
    bits = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    values = bits.view(dtype)
    values = values[torch.isfinite(values.float())]
    return values[: values.numel() // row_len * row_len].view(-1, row_len)


def all_ones_significand_ubs(count: int) -> list[float]:
    """scale_ub values whose scale (ub / 448) has an all-ones significand: the reciprocal's
    hardest case."""
    significands = torch.tensor(0x3FFFFFFF - torch.arange(count).numpy() * 0x800000, dtype=torch.int32)
    return (significands.view(torch.float32).double() * 448).float().tolist()


def odd_significand_ubs(pairs) -> list[float]:
    """scale_ub values m * 2^k * 448 for (m, k) pairs with small odd m: inexact reciprocals, and
    many quotients exactly on an e4m3 rounding tie, where an uncorrected x * (1 / scale) rounds
    the wrong way."""
    return [m * 2.0**k * 448 for m, k in pairs]
