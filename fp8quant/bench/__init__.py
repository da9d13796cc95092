"""`fp8quant bench [op]`: the benchmark harness (harness.py) and one suite per op."""

from . import per_token

SUITES = {per_token.NAME: per_token}

from .harness import main  # noqa: E402

__all__ = ["SUITES", "main"]
