#!/usr/bin/env bash
# Threads-per-row sweep of the register kernel on large and decode shapes (device machine).
# Prints one table per shape; docs/performance.md records what it showed.
set -uo pipefail
for shape in "65536 1368" "65536 2048" "65536 4096" "65536 5120" "65536 7168" "32768 8192" "16384 16384" "1 4096" "1 16384" "1024 4096"; do
  set -- $shape
  provs="fp8quant,triton"
  for t in 32 64 128 256 512; do provs="$provs,fp8quant:registers:t$t"; done
  python3 -m fp8quant bench --tokens $1 --hidden $2 --providers $provs --out /tmp/sweep 2>/dev/null \
    | grep -E "^ *(fp8quant|triton)" | grep -v "accuracy\|exact" | sed "s/^/[$1x$2] /"
done
