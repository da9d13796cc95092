#!/usr/bin/env bash
# Threads-per-row sweep of the register kernel (device machine). Prints "[shape] provider us %bw";
# docs/performance.md records what it showed. SHAPES overrides the shape list.
set -uo pipefail
SHAPES=${SHAPES:-"65536x1368 65536x2048 65536x4096 65536x5120 65536x7168 32768x8192 16384x16384 1x4096 1x16384 1024x4096"}
for shape in $SHAPES; do
  tokens=${shape%x*}; hidden=${shape#*x}
  provs="fp8quant,triton"
  for t in ${TPRS:-32 64 128 256 512}; do provs="$provs,fp8quant:registers:t$t"; done
  python3 -m fp8quant bench --tokens $tokens --hidden $hidden --providers $provs --out /tmp/sweep 2>/dev/null \
    | grep -E "^ *(fp8quant|triton)[^ ]* +[0-9]+ +[0-9]" | awk -v s="$shape" '{print "[" s "]", $1, $4, $6}'
done
