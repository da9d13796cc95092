#!/usr/bin/env bash
# v14 device runs (docs/performance.md, v14). Usage on the device tool: OUT=$OUT bash scripts/investigate_v14.sh [run]
#   run1: why a call late in a long PDL chain is slower at 1-16 MB (v13 runs 3-5; Next v13 item 1).
#         The in-kernel timeline (scripts/timeline_probe.py) of 256x8192, 256x16384 and 1024x4096:
#         16 calls at the start of a chain (graph of 17) against 16 late in one of 200; late in
#         one of 200 whose calls write 16 output buffers in turn (a short chain's footprint);
#         both without the prefetch, and both with the next kernel let launch after the row's
#         loads (-DFP8QUANT_EXPERIMENT_TRIGGER_AFTER_LOADS) instead of after the PDL wait. Each
#         reports the SM clock measured in the kernel and how CTAs share SMs; nvidia-smi samples
#         the clocks, power and clock-event reasons meanwhile. Then the bench's own timing
#         (2 GiB per graph) of the default build against the trigger after the loads, twice.
#   run2: what makes the bench's long chains slower than the timeline probe's (run 1): the public
#         call at 4 shapes in graphs of 17 and 200 calls, outputs as the bench gives them, as
#         the timeline probe allocates them, or the bench's rounded up to 2 MiB, each timed
#         four ways (scripts/chain_probe.py)
#   run3: which part of the timeline build (run 1: 256x8192 2.95 us, 256x16384 5.05 in graphs of
#         200, where the default build reads 3.47-3.60 and 5.67-5.93 in run 2) makes long chains
#         fast: scripts/chain_probe.py at three shapes, graphs of 17 and 200, built as is, with
#         the SM of each CTA noted (-DFP8QUANT_EXPERIMENT_SMID, placement of the last call),
#         with the timeline, with a waited-for atomic after the stores (TAIL_ATOMIC, the
#         timeline's record does one), with 49000 bytes of static shared memory per CTA (at most
#         4 CTAs per SM, as the timeline build's 60 registers allow at 256x8192), and SMID with
#         TAIL_ATOMIC; then as is again
#   run4: run 3 found the cause: late in a long chain the CTAs of a call sit on fewer SMs (256x8192:
#         on 72 SMs, 54 of them holding 4, where early in the chain 124 SMs hold 2 and 8 hold 1).
#         Whether two rows per CTA (grids of 128 <= 132 SMs, so one CTA per SM) keeps the 256-row
#         shapes as fast late in a chain: the bench's timing (2 GiB of calls per graph) of the
#         public call against the forced plans t128:b256 and t256:b512, twice
#   run5: the planner's two rows per CTA (planner.two_rows_per_cta, from run 4) against the old
#         plan forced (t256:b256) and against two rows per CTA with 80000 bytes of dynamic shared
#         memory reserved per CTA (at most 2 CTAs per SM, so a call can hold at most one per SM
#         beside the last one's), bfloat16 at the 256-row shapes and float32 at the four it
#         changes, twice; then where the CTAs of a call ran (SMID build, chain_probe.py)
#   run6: whether reserving dynamic shared memory helps the two-row CTAs (run 5: 256x16384 5.13-5.15
#         us with 80000 bytes reserved, 5.21-5.25 without, though its 60 registers x 512 threads
#         already cap an SM at 2 CTAs): the three shapes the rule changes, 4 rounds, with 80000
#         and 20000 bytes (the L1/shared split changes, the CTAs per SM do not)
#   run7: the decode grid (63 shapes) with its inputs in L2 (2 input copies, as an engine's
#         activations written just before) against the bench's inputs from DRAM, for the owner's
#         decision on the decode target (asked since v9), at c558a3f's planner
#   run8: the one decode shape over 1 us with its inputs in L2 (run 7: 32x16384, 1.07 over) and its
#         neighbours, rows shared by 2 or 4 CTAs (whose extra reads then come from L2) against
#         the planner's one CTA per row, inputs in L2 and from DRAM
#   run9 (after fbd408b): beyond the rule's 133-264 rows: 384 and 512 rows (1.5-3.9 CTAs per SM at
#         one row each) against 2 rows per CTA (t256:b512) and 4 (t128:b512, grids of 96-128),
#         twice; and where the default plan's CTAs sit early and late in a chain (SMID build)
#   (then: the GPU tests, scripts/gpu_check.sh, and the full bench in bf16+fp16 and in fp32 at 4bf8d71)
# The switches TRIGGER_AFTER_LOADS, TAIL_ATOMIC and SMEM_PAD were taken out of the kernel after
# these runs (dropped; docs/performance.md v14 says what they measured): the runs are kept as
# they ran, and need the source of their commit (ed089ab..abf9a25). SMID and TIMELINE stay.
# The bfloat16 modules may come prebuilt in $FP8QUANT_CACHE_DIR (carried: built here with
# `python -m fp8quant prebuild --arch 90`, the same nvcc 13.0 and so the same cache key).
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), probe_bench(), ...
smi_sampler() {  # clocks, power and the clock-event reasons every 50 ms into $OUT/$1.csv, until killed
  local q=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu
  nvidia-smi --query-gpu=$q,clocks_event_reasons.active --format=csv -lms 50 > "$OUT/$1.csv" 2>&1 ||
    nvidia-smi --query-gpu=$q,clocks_throttle_reasons.active --format=csv -lms 50 > "$OUT/$1.csv" 2>&1
}
case "${1:-run1}" in
run1)
  TL=-DFP8QUANT_EXPERIMENT_TIMELINE NP=-DFP8QUANT_EXPERIMENT_NO_PREFETCH TAL=-DFP8QUANT_EXPERIMENT_TRIGGER_AFTER_LOADS
  # bfloat16 modules only, built on first use where not carried in $FP8QUANT_CACHE_DIR
  echo "modules in the cache: $(ls -d "$FP8QUANT_CACHE_DIR"/*/sm_*/*/ 2>/dev/null | wc -l)"
  smi_sampler run1_smi & sampler=$!
  timeline() {  # flags, then timeline_probe.py's options
    local flags=$1; shift
    echo "== $(date +%T.%N) timeline [$flags] $*"
    PYTHONPATH=$PWD FP8QUANT_NVCC_FLAGS="$flags" timeout 120 python3 scripts/timeline_probe.py \
      256x8192 256x16384 1024x4096 "$@" 2>&1
  }
  {
    for flags in "$TL" "$TL $NP" "$TL $TAL"; do
      timeline "$flags" --calls 17
      timeline "$flags" --calls 200
    done
    timeline "$TL" --calls 200 --out-copies 16
    timeline "$TL" --calls 17
    timeline "$TL" --calls 200
  } > "$OUT/run1_timeline.log"
  grep -E "^==|per call" "$OUT/run1_timeline.log" | sed -E 's/; smallest.*//'
  shapes=256x8192,256x16384,1024x4096,64x16384,128x8192,1x16384,16384x2048
  for round in 1 2; do
    probe_bench run1_base_$round $shapes fp8quant,copy ""
    FP8QUANT_NVCC_FLAGS=$TAL probe_bench run1_after_loads_$round $shapes fp8quant,copy ""
  done
  kill $sampler
  echo "== nvidia-smi samples: $(wc -l < "$OUT/run1_smi.csv") lines"; head -2 "$OUT/run1_smi.csv"
  python3 - "$OUT/run1_smi.csv" <<'PY'  # the SM clock's spread and the reasons seen
import collections, sys
rows = [l.split(", ") for l in open(sys.argv[1]).read().splitlines()[1:] if l.count(",") >= 5]
sm = sorted(int(r[1].split()[0]) for r in rows if r[1].split()[0].isdigit())
if sm:
    print(f"SM clock MHz: min {sm[0]}, median {sm[len(sm) // 2]}, max {sm[-1]} over {len(sm)} samples")
print("clock-event reasons:", dict(collections.Counter(r[-1] for r in rows)))
PY
  (cd "$OUT" && tar czf run1_logs.tar.gz *.log *.csv json && rm -rf json *.log *.csv) ;;
run2)
  nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv,noheader
  PYTHONPATH=$PWD timeout 400 python3 scripts/chain_probe.py 256x8192 256x16384 64x16384 128x8192 2>&1 | tee "$OUT/run2_chain.log" ;;
run3)
  chain() {  # flags, chain_probe.py's options
    local flags=$1; shift
    echo "== [$flags] $*"
    PYTHONPATH=$PWD FP8QUANT_NVCC_FLAGS="$flags" timeout 150 python3 scripts/chain_probe.py \
      256x8192 256x16384 1024x4096 --calls 17,200 --outputs bench "$@" 2>&1
  }
  E=-DFP8QUANT_EXPERIMENT_
  {
    chain "" --methods "steady;round+copy"
    chain "${E}SMID" --methods steady --smid
    chain "${E}TIMELINE" --methods steady
    chain "${E}TAIL_ATOMIC" --methods steady
    chain "${E}SMID ${E}SMEM_PAD=49000" --methods "steady;round+copy" --smid
    chain "${E}SMID ${E}TAIL_ATOMIC" --methods steady --smid
    chain "" --methods steady
  } 2>&1 | tee "$OUT/run3_chain.log" ;;
run4)
  for round in 1 2; do
    probe_bench run4_$round 256x1368,256x2048,256x4096,256x5120,256x7168,256x8192,256x16384 \
      fp8quant,fp8quant:registers:t128:b256,fp8quant:registers:t256:b512,copy ""
  done
  (cd "$OUT" && tar czf run4_logs.tar.gz *.log json && rm -rf json *.log) ;;
run5)
  for round in 1 2; do
    probe_bench run5_bf16_$round 256x1368,256x2048,256x4096,256x5120,256x7168,256x8192,256x16384 \
      fp8quant,fp8quant:registers:t256:b256,fp8quant:registers:t256:b512:m80000,copy ""
    BENCH_ARGS="--dtype float32" probe_bench run5_f32_$round 256x4096,256x5120,256x7168,256x8192 \
      fp8quant,fp8quant:registers:t256:b256,copy ""
  done
  PYTHONPATH=$PWD FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_SMID timeout 100 python3 scripts/chain_probe.py \
    256x8192 256x16384 --calls 17,200 --outputs bench --methods steady --smid 2>&1 | tee "$OUT/run5_chain.log"
  (cd "$OUT" && tar czf run5_logs.tar.gz *.log json && rm -rf json *.log) ;;
run6)
  for round in 1 2 3 4; do
    probe_bench run6_$round 256x7168,256x8192,256x16384 \
      fp8quant,fp8quant:registers:t256:b512:m80000,fp8quant:registers:t256:b512:m20000,copy ""
  done
  (cd "$OUT" && tar czf run6_logs.tar.gz *.log json && rm -rf json *.log) ;;
run7)
  decode=$(python3 -c "from fp8quant import bench; print(','.join(f'{s.tokens}x{s.hidden}' for s in bench.full_grid() if s.group == 'decode'))")
  DEADLINE_S=560 probe_bench run7_l2 "$decode" fp8quant,copy "--input-copies 2" | grep -v "^  "
  DEADLINE_S=560 probe_bench run7_dram "$decode" fp8quant,copy "" | grep -v "^  "
  python3 - "$OUT/json/run7_l2.json" "$OUT/json/run7_dram.json" <<'PY'  # excess over the floor per shape
import json, sys
runs = [json.load(open(f)) for f in sys.argv[1:]]
rows = [{(x["tokens"], x["hidden"]): x for x in r["rows"] if x["provider"] == "fp8quant"} for r in runs]
for k in sorted(rows[0]):
    l2, dram = rows[0][k], rows[1].get(k)
    print(f"  {k[0]}x{k[1]}: L2 {l2['median_us']:.2f} us ({l2['median_us'] - l2['floor_us']:.2f} over), "
          f"DRAM {dram['median_us']:.2f} ({dram['median_us'] - dram['floor_us']:.2f} over)" if dram else "")
PY
  (cd "$OUT" && tar czf run7_logs.tar.gz *.log json && rm -rf json *.log) ;;
run8)
  provs=fp8quant,fp8quant:registers:t512:s2,fp8quant:registers:t512:s4,fp8quant:registers:t256:s2,copy
  for round in 1 2; do
    probe_bench run8_l2_$round 16x16384,32x16384,64x16384,32x8192 $provs "--input-copies 2"
    probe_bench run8_dram_$round 16x16384,32x16384,64x16384,32x8192 $provs ""
  done
  (cd "$OUT" && tar czf run8_logs.tar.gz *.log json && rm -rf json *.log) ;;
run9)
  for round in 1 2; do
    probe_bench run9_$round 384x8192,512x8192,384x16384,512x4096 \
      fp8quant,fp8quant:registers:t256:b512,fp8quant:registers:t128:b512,copy ""
  done
  PYTHONPATH=$PWD FP8QUANT_NVCC_FLAGS=-DFP8QUANT_EXPERIMENT_SMID timeout 100 python3 scripts/chain_probe.py \
    384x8192 512x8192 --calls 17,200 --outputs bench --methods steady --smid 2>&1 | tee "$OUT/run9_chain.log"
  (cd "$OUT" && tar czf run9_logs.tar.gz *.log json && rm -rf json *.log) ;;
esac
