"""The reference against an independent float64 computation, and its edge-row semantics."""

import numpy as np
import pytest
import torch

from fp8quant.reference import FP8_DTYPE, MIN_SCALE, NAN_CODE, per_token_quant_fp8_reference
from fp8_asserts import assert_codes_equal, assert_scales_equal, edge_rows, random_rows

DTYPES = [torch.float16, torch.bfloat16, torch.float32]


def _e4m3_table() -> tuple[np.ndarray, np.ndarray]:
    """All finite non-negative e4m3fn values (as float64), with their codes, from the format's
    definition: 4 exponent bits (bias 7), 3 mantissa bits, no infinities, S.1111.111 is NaN."""
    codes, values = [], []
    for code in range(0x7F):  # 0x7f is NaN
        exp, man = code >> 3, code & 7
        value = (man / 8) * 2.0**-6 if exp == 0 else (1 + man / 8) * 2.0 ** (exp - 7)
        codes.append(code)
        values.append(value)
    return np.array(codes), np.array(values)


CODES, VALUES = _e4m3_table()


def _float64_quantize(x: np.ndarray, scale_ub: float | None = None):
    """Independent model: amax/scale in float64 then rounded to float32 as the contract says
    (the fp32 division of two fp32 values is the float64 quotient rounded once), and e4m3 by
    nearest-value search with ties to the even code."""
    x32 = x.astype(np.float32)
    amax = np.abs(x32.astype(np.float64)).max(axis=-1, keepdims=True)
    if scale_ub is not None:
        amax = np.minimum(amax, np.float64(np.float32(scale_ub)))
    scale = np.maximum((amax / 448.0).astype(np.float32), np.float32(MIN_SCALE))
    y = (x32.astype(np.float64) / scale.astype(np.float64)).astype(np.float32).astype(np.float64)
    y = np.clip(y, -448.0, 448.0)
    mag = np.abs(y)
    # Nearest value; on a tie the even code (ties to even) wins.
    dist = np.abs(mag[..., None] - VALUES)
    best = dist.min(axis=-1, keepdims=True)
    candidates = np.where(dist == best, CODES, 1 << 10)
    even = np.where(candidates % 2 == 0, candidates, 1 << 10).min(axis=-1)
    code = np.where(even < (1 << 10), even, candidates.min(axis=-1))
    code = code | np.where(np.signbit(y), 0x80, 0)
    return code.astype(np.uint8), scale


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [1, 17, 128, 1368])
def test_reference_matches_float64_model(dtype, hidden):
    x = random_rows(16, hidden, dtype, seed=hidden)
    q, s = per_token_quant_fp8_reference(x)
    code, scale = _float64_quantize(x.float().numpy())
    assert_codes_equal(q, torch.from_numpy(code), f"{dtype} H={hidden}")
    assert_scales_equal(s, torch.from_numpy(scale), f"{dtype} H={hidden}")


def test_reference_rounding_ties_and_carries():
    # Values exactly halfway between e4m3 neighbours (ties to even), and just under a power of
    # two (rounding carries into the exponent), with scale pinned to 1 by a 448 entry.
    ties = [1.0625, 1.1875, 17.0, 19.0, 240.0, 208.0, 0.5 * 2.0**-9, 1.5 * 2.0**-9]
    carries = [127.9, 125.3, 31.9, 0.99, 0.0155]
    row = torch.tensor([[448.0] + ties + carries + [-v for v in ties + carries]], dtype=torch.float32)
    q, s = per_token_quant_fp8_reference(row)
    assert float(s) == 1.0
    code, _ = _float64_quantize(row.numpy())
    assert_codes_equal(q, torch.from_numpy(code), "ties and carries")


def test_reference_scale_ub():
    x = random_rows(8, 64, torch.float32, seed=3) * 100
    q, s = per_token_quant_fp8_reference(x, scale_ub=10.0)
    code, scale = _float64_quantize(x.numpy(), scale_ub=10.0)
    assert_codes_equal(q, torch.from_numpy(code), "scale_ub")
    assert_scales_equal(s, torch.from_numpy(scale), "scale_ub")
    assert bool((s <= 10.0 / 448 + 1e-9).all())
    q2, s2 = per_token_quant_fp8_reference(x, scale_ub=torch.tensor([10.0]))
    assert_codes_equal(q2, q)
    assert_scales_equal(s2, s)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_edge_rows(dtype):
    hidden = 33
    x = edge_rows(hidden, dtype)
    q, s = per_token_quant_fp8_reference(x)
    codes = q.view(torch.uint8)
    # zero rows: the floor scale, all-zero codes with the sign of zero kept
    assert float(s[0]) == float(s[1]) == np.float32(MIN_SCALE)
    assert bool((codes[0] == 0x00).all()) and bool((codes[1] == 0x80).all())
    # denormal row: floor scale, finite codes
    assert float(s[2]) == np.float32(MIN_SCALE)
    assert not bool(torch.isnan(q[2].float()).any())
    # NaN row: NaN scale, every code the canonical NaN
    assert torch.isnan(s[3]).all()
    assert bool((codes[3] == NAN_CODE).all())
    # Inf rows: +Inf scale, Inf elements -> NaN code, finite -> +-0; dequantizes to NaN
    for r, col in ((4, hidden - 1), (5, 0)):
        assert float(s[r]) == float("inf")
        assert int(codes[r, col]) == NAN_CODE
        others = torch.cat([codes[r, :col], codes[r, col + 1 :]])
        assert bool(((others & 0x7F) == 0).all())
        assert bool(torch.isnan(q[r].float() * s[r]).all())
    # max-of-dtype row: saturates to +-448 for the amax elements, all finite
    assert not bool(torch.isnan(q[6].float()).any())
    assert float(q[6].float().abs().max()) == 448.0
    # matches the float64 model wherever the input is finite
    finite = torch.isfinite(x.float()).all(dim=1)
    code, scale = _float64_quantize(x[finite].float().numpy())
    assert_codes_equal(q[finite], torch.from_numpy(code))
    assert_scales_equal(s[finite], torch.from_numpy(scale))


def test_reference_inf_with_scale_ub_saturates():
    x = torch.tensor([[1.0, float("inf"), -float("inf"), -2.0]])
    q, s = per_token_quant_fp8_reference(x, scale_ub=4.0)
    assert float(s) == np.float32(4.0 / 448)
    assert q.float()[0, 1] == 448.0 and q.float()[0, 2] == -448.0


def test_reference_shapes_and_empty():
    x = random_rows(6, 10, torch.bfloat16).view(2, 3, 10)
    q, s = per_token_quant_fp8_reference(x)
    assert q.shape == (2, 3, 10) and q.dtype == FP8_DTYPE
    assert s.shape == (2, 3, 1) and s.dtype == torch.float32
    q, s = per_token_quant_fp8_reference(torch.empty(0, 7, dtype=torch.float16))
    assert q.shape == (0, 7) and s.shape == (0, 1)
