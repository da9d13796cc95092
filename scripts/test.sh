#!/usr/bin/env bash
# The test suite: CPU tests everywhere, GPU tests too where there is an NVIDIA GPU.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" -m pytest tests/ -q "$@"
