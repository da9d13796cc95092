"""`fp8quant bench [op]`: the benchmark harness (harness.py) and one suite per op."""

from . import per_tensor, per_token, per_token_group

SUITES = {suite.NAME: suite for suite in (per_token, per_token_group, per_tensor)}

from .harness import main  # noqa: E402

__all__ = ["SUITES", "main"]
