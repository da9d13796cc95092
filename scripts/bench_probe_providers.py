"""`fp8quant bench` with two probes of what the other providers of a run change for ours
(docs/performance.md, v12 runs 7-8):
  --idle CYCLES   one more provider, "idle": a busy-wait kernel of CYCLES GPU cycles per call
                  (torch.cuda._sleep), no memory traffic; left out of the accuracy report
  --untimed NAME  provider NAME is built and its graph captured (and replayed once) as usual,
                  but left out of the timed round
  --torch-in-round  one more provider, "torch:round": the eager torch reference captured in a
                  graph and timed in the round like the others (the bench times "torch" alone,
                  before the round, and frees its temporaries)
    python3 scripts/bench_probe_providers.py [--idle CYCLES] [--untimed NAME] [--torch-in-round]
                                             [fp8quant bench arguments]
"""

from __future__ import annotations

import sys

import torch

from fp8quant import bench


def main(argv: list[str]) -> int:
    idle_cycles, untimed, torch_in_round = None, None, False
    while argv and argv[0] in ("--idle", "--untimed", "--torch-in-round"):
        if argv[0] == "--torch-in-round":
            torch_in_round, argv = True, argv[1:]
            continue
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
        if torch_in_round:
            p["torch:round"] = p["torch"]
        return p

    bench.providers = providers
    bench.accuracy_report = lambda provs, *a: plain_accuracy({k: v for k, v in provs.items() if k != "idle"}, *a)
    bench.interleaved_time_us = lambda graphs, *a, **k: plain_round({n: g for n, g in graphs.items() if n != untimed}, *a, **k)
    return bench.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
