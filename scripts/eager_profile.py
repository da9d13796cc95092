"""Where an eager call's host time goes: cProfile over many public calls of one shape, the
functions ranked by their own time (docs/performance.md, v19 run 4; Next (v19) item 2).
    python3 scripts/eager_profile.py [--shape 1x4096] [--calls 5000] [--top 22] [--fresh]
--fresh: calls that allocate their outputs (per_token_quant_fp8(x)) instead of out=/scale_out=.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats

import torch

from fp8quant import per_token_quant_fp8
from fp8quant.reference import FP8_DTYPE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="1x4096")
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--top", type=int, default=22)
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args()
    tokens, hidden = (int(v) for v in args.shape.split("x"))
    x = torch.randn(tokens, hidden, device="cuda", dtype=torch.bfloat16)
    q = torch.empty(tokens, hidden, device="cuda", dtype=FP8_DTYPE)
    s = torch.empty(tokens, 1, device="cuda", dtype=torch.float32)

    def call():
        return per_token_quant_fp8(x) if args.fresh else per_token_quant_fp8(x, out=q, scale_out=s)

    for _ in range(200):  # build, load and plan outside the profile
        call()
    torch.cuda.synchronize()
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.calls):
        call()
    profile.disable()
    torch.cuda.synchronize()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(args.top)
    print(text.getvalue())


if __name__ == "__main__":
    main()
