# Sourced by scripts/test.sh and scripts/bench.sh: sets PY to a python that has torch and
# fp8quant's dependencies. On a machine that already has torch (the GPU box) that python is
# used as it is; otherwise a virtual environment .venv is made and filled. torch is pinned to
# 2.13.0 there because a bare "torch" would pull a CUDA build of several GB onto a machine
# without a GPU; where pip has the CPU wheel locally (our dev and CI machines) it takes that.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if python3 -c "import torch" 2>/dev/null; then
  PY=python3
else
  VENV="$ROOT/.venv"
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch, triton, pytest" 2>/dev/null; then
    echo "setting up $VENV (torch 2.13.0 CPU, triton, pytest, numpy, matplotlib, tqdm)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check torch==2.13.0
    "$VENV/bin/pip" install -q --disable-pip-version-check numpy pytest "triton>=3.6" matplotlib tqdm
  fi
  PY="$VENV/bin/python"
fi
