"""`fp8quant bench` without a GPU: the no-GPU mode runs, the grid is what the issue says, and the
accuracy report fails a deliberately broken provider."""

import subprocess
import sys

import torch

from fp8quant import bench
from fp8quant.reference import per_token_quant_fp8_reference


def test_full_grid_covers_seed_decode_and_model_sizes():
    grid = {(s.tokens, s.hidden) for s in bench.full_grid()}
    for b in bench.SEED_BATCH:
        for sq in bench.SEED_SEQ:
            for h in bench.SEED_HIDDEN:
                assert (b * sq, h) in grid
    for t in bench.DECODE_TOKENS:
        assert (t, 16384) in grid and (t, 1368) in grid
    for h in bench.MODEL_HIDDEN:
        assert (65536, h) in grid
    assert len(bench.quick_grid()) <= 12


def test_bytes_moved():
    assert bench.bytes_moved(2, 3, 2) == 2 * 3 * 2 + 2 * 3 + 2 * 4


def test_cpu_mode_runs_and_is_exact(capsys):
    assert bench.main(["--cpu"]) == 0
    out = capsys.readouterr().out
    assert "accuracy against the reference" in out
    assert "triton" in out and "MISMATCH" not in out


def test_accuracy_report_fails_a_broken_provider(capsys):
    def broken(x):
        def call():
            q, s = per_token_quant_fp8_reference(x)
            codes = q.view(torch.uint8).clone()
            codes.view(-1)[7] ^= 1  # one code off by one step
            return codes.view(torch.float8_e4m3fn), s

        return call

    def scale_off(x):
        return lambda: (per_token_quant_fp8_reference(x)[0], per_token_quant_fp8_reference(x)[1] * 1.0000001)

    assert bench.main(["--cpu"], extra_providers={"fp8quant:broken": broken}) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert bench.main(["--cpu"], extra_providers={"fp8quant:scale": scale_off}) == 1
    # a peer that differs is reported, but does not fail our run
    assert bench.main(["--cpu"], extra_providers={"vllm": broken}) == 0
    assert "differs" in capsys.readouterr().out


def test_cli_entry_point():
    out = subprocess.run([sys.executable, "-m", "fp8quant", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "bench" in out.stdout
    out = subprocess.run([sys.executable, "-m", "fp8quant", "nonsense"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown command" in out.stderr
