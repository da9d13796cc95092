#!/usr/bin/env bash
# The main job: `fp8quant bench` (the benchmark and accuracy report). Without a GPU it runs the
# accuracy report on the CPU and prints the committed GPU results.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
exec "$PY" -m fp8quant bench "$@"
