"""The command line refuses bad arguments in one line (exit 2), never with a traceback."""

import subprocess
import sys

import pytest
import torch


def _run(*args):
    return subprocess.run([sys.executable, "-m", "fp8quant", *args], capture_output=True, text=True)


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "--shapes", "garbage"], "expected TOKENSxHIDDEN"),
        (["bench", "--shapes", "0x4096"], "tokens and hidden must be positive"),
        (["bench", "--tokens", "0"], "expected a positive integer, got 0"),
        (["bench", "--hidden", "-1"], "expected a positive integer, got -1"),
        (["bench", "--providers", "nosuch"], "--providers: unknown nosuch"),
        (["bench", "--out", "/nonexistent/dir/x"], "the parent of the output directory does not exist"),
        (["bench", "--dtype", "float64"], "invalid choice: 'float64'"),
        (["bench", "nosuchop"], "invalid choice: 'nosuchop'"),
        (["prebuild", "--arch", "banana"], "expected one of 80, 86"),
    ],
)
def test_bad_arguments_exit_2_in_one_line(args, message):
    out = _run(*args)
    assert out.returncode == 2, out
    assert message in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU message")
def test_prebuild_without_a_gpu_says_what_it_needs():
    out = _run("prebuild")
    assert out.returncode == 2 and "no CUDA GPU here" in out.stderr and "--arch" in out.stderr
    assert "Traceback" not in out.stderr


def test_help_and_unknown_command():
    out = _run("--help")
    assert out.returncode == 0 and "bench" in out.stdout
    out = _run("nonsense")
    assert out.returncode == 2 and "unknown command" in out.stderr
