"""The `fp8quant` command: `fp8quant bench [...]`, `fp8quant prebuild [--arch 90]`."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: fp8quant {bench,prebuild} [options]\n"
              "  bench     the benchmark and accuracy report (fp8quant bench --help)\n"
              "  prebuild  compile the CUDA kernels into the cache now (--arch 90, default: this GPU)")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    if cmd == "prebuild":
        ap = argparse.ArgumentParser(prog="fp8quant prebuild")
        ap.add_argument("--arch", help='compute capability without the dot, e.g. "90" (default: the current GPU)')
        args = ap.parse_args(rest)
        from ._cuda import prebuild

        for path in prebuild(args.arch):
            print(path)
        return 0
    print(f"fp8quant: unknown command {cmd!r}; try 'fp8quant --help'", file=sys.stderr)
    return 2
