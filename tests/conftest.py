import os

import pytest
import torch

# Without a GPU, Triton kernels run under its interpreter (set before fp8quant.triton_kernels
# is imported: triton.jit reads it at decoration time).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Under pytest-xdist each worker's torch CPU ops get an even share of the cores: by default every
# worker takes them all. At -n 16 on a 16-core GPU machine the slowest fused GPU tests took 30-40 s
# each, where their CPU-side checks (bounds, reference, float64 truth) take 0.2 s on one thread.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _WORKERS))

HAS_GPU = torch.cuda.is_available()
requires_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU")


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU (skipped without one)")
    config.addinivalue_line("markers", "slow: long-running")
