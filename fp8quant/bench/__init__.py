"""`fp8quant bench [op]`: the benchmark harness (harness.py) and one suite per op."""

from . import per_token, per_token_group

SUITES = {per_token.NAME: per_token, per_token_group.NAME: per_token_group}

from .harness import main  # noqa: E402

__all__ = ["SUITES", "main"]
