"""`fp8quant bench` with one more provider, "idle": a busy-wait kernel of N GPU cycles per call
(torch.cuda._sleep), no memory traffic (docs/performance.md, v12 run 7). It asks whether what
torch.compile's slow graph adds to the bench's round (v12 run 6) is just time in which the GPU
moves no data.
    python3 scripts/bench_idle_provider.py CYCLES [fp8quant bench arguments, --providers with idle]
"""

from __future__ import annotations

import sys

import torch

from fp8quant import bench


def main(argv: list[str]) -> int:
    cycles = int(argv[0])
    plain_providers, plain_accuracy = bench.providers, bench.accuracy_report

    def providers(gpu: bool):
        p = plain_providers(gpu)
        p["idle"] = lambda x, out=None: (lambda: torch.cuda._sleep(cycles))
        return p

    bench.providers = providers
    # "idle" computes nothing: left out of the accuracy report
    bench.accuracy_report = lambda provs, *a: plain_accuracy({k: v for k, v in provs.items() if k != "idle"}, *a)
    return bench.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
