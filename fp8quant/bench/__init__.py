"""`fp8quant bench [op]`: the benchmark harness (harness.py) and one suite per op."""

from . import per_tensor, per_token, per_token_group, rms_norm_quant, silu_and_mul_quant

# op -> its suite module; a module with VARIANTS runs each of them (bench/fused.py)
SUITES = {suite.NAME: suite for suite in (per_token, per_token_group, per_tensor, rms_norm_quant, silu_and_mul_quant)}

from .harness import main  # noqa: E402

__all__ = ["SUITES", "main"]
