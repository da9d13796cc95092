"""`fp8quant bench` with two probes of what the other providers of a run change for ours
(docs/performance.md, v12 runs 7-8):
  --idle CYCLES   one more provider, "idle": a busy-wait kernel of CYCLES GPU cycles per call
                  (torch.cuda._sleep), no memory traffic; left out of the accuracy report
  --untimed NAME  provider NAME is built and its graph captured (and replayed once) as usual,
                  but left out of the timed round
    python3 scripts/bench_probe_providers.py [--idle CYCLES] [--untimed NAME] [fp8quant bench arguments]
"""

from __future__ import annotations

import sys

import torch

from fp8quant import bench


def main(argv: list[str]) -> int:
    idle_cycles, untimed = None, None
    while argv and argv[0] in ("--idle", "--untimed"):
        if argv[0] == "--idle":
            idle_cycles = int(argv[1])
        else:
            untimed = argv[1]
        argv = argv[2:]
    plain_providers, plain_accuracy, plain_round = bench.providers, bench.accuracy_report, bench.interleaved_time_us

    def providers(gpu: bool):
        p = plain_providers(gpu)
        if idle_cycles is not None:
            p["idle"] = lambda x, out=None: (lambda: torch.cuda._sleep(idle_cycles))
        return p

    bench.providers = providers
    bench.accuracy_report = lambda provs, *a: plain_accuracy({k: v for k, v in provs.items() if k != "idle"}, *a)
    bench.interleaved_time_us = lambda graphs, *a, **k: plain_round({n: g for n, g in graphs.items() if n != untimed}, *a, **k)
    return bench.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
