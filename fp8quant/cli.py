"""The `fp8quant` command: `fp8quant bench [op] [...]`, `fp8quant prebuild [--arch 90]`."""

from __future__ import annotations

import argparse
import re
import sys

# Architectures prebuild accepts (compute capability without the dot; "a": the arch-specific
# target). The kernels need sm_80 or newer.
KNOWN_ARCHS = ("80", "86", "87", "89", "90", "90a", "100", "100a", "103", "103a", "120", "120a", "121")


def _arch(text: str) -> str:
    if text not in KNOWN_ARCHS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(KNOWN_ARCHS)}, got {text!r}")
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: fp8quant {bench,prebuild} [options]\n"
              "  bench     the benchmark and accuracy report of an op (fp8quant bench --help)\n"
              "  prebuild  compile the CUDA kernels into the cache now (--arch 90, default: this GPU)")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    if cmd == "prebuild":
        ap = argparse.ArgumentParser(prog="fp8quant prebuild")
        ap.add_argument("--arch", type=_arch, help='compute capability without the dot, e.g. "90" (default: this GPU)')
        args = ap.parse_args(rest)
        import torch

        from . import _cuda
        from .jit import BuildError

        if args.arch is None and not torch.cuda.is_available():
            print("fp8quant prebuild: no CUDA GPU here (torch has no CUDA device); name one with --arch, "
                  f"e.g. --arch 90 (known: {', '.join(KNOWN_ARCHS)})", file=sys.stderr)
            return 2
        try:
            paths = _cuda.prebuild(args.arch)
        except BuildError as e:
            first = next((line for line in str(e).splitlines() if re.search(r"error|not found|needs nvcc", line)), str(e).splitlines()[0])
            print(f"fp8quant prebuild: the build failed: {first.strip()}", file=sys.stderr)
            return 1
        for path in paths:
            print(path)
        return 0
    print(f"fp8quant: unknown command {cmd!r}; try 'fp8quant --help'", file=sys.stderr)
    return 2
