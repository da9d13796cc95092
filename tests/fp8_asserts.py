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
