#!/usr/bin/env bash
# v12 device runs (docs/performance.md, v12). Usage on the device tool: OUT=$OUT bash scripts/investigate_v12.sh [run]
#   run1: why a decode call's loads take 0.4-0.7 us after the PDL wait when its input comes from
#         DRAM (v11 run 8), though each CTA asked L2 for its row 1.1-1.4 us before: the in-kernel
#         timeline with the bench's rotating inputs and with 2 input copies (in L2); then the
#         decode shapes over 1 us and a few others through the bench, built as they are, with
#         the prefetch marked evict_last (-DFP8QUANT_EXPERIMENT_PREFETCH_EVICT_LAST) and with one
#         bulk prefetch per row (-DFP8QUANT_EXPERIMENT_PREFETCH_ROW_BULK), alternated twice
#   run2: the next call let launch at each kernel's entry instead of after its wait
#         (-DFP8QUANT_EXPERIMENT_EARLY_TRIGGER; run 1: the next call's CTAs arrive only 0.5-0.9 us
#         after the trigger, so its prefetch is still in flight at its wait): the PDL and graph
#         GPU tests on that build, the timeline both ways, then the bench both ways, twice
#   run3: the row's lines asked for by a volatile 4-byte load per vector, its value unused,
#         instead of the prefetch (-DFP8QUANT_EXPERIMENT_PREFETCH_LOAD; runs 1-2: with the
#         prefetch 1.4 us or 8.8 us ahead, the loads after the wait took as long): the same
#         tests, timeline and benches as run 2
#   run4: the row's vectors read by cp.async.cg into a shared scratch before the wait instead of
#         the prefetch (-DFP8QUANT_EXPERIMENT_PREFETCH_CP_ASYNC: a real read, as run 3's, without
#         a register to wait on): the same tests, timeline and benches as run 2
#   run5: two more ways to ask for the row before the wait: each 32-byte sector prefetched by an
#         instruction of its own (-DFP8QUANT_EXPERIMENT_PREFETCH_SECTORS), and a 1-byte volatile
#         load per 128-byte line (-DFP8QUANT_EXPERIMENT_PREFETCH_LOAD_LINE): timeline and bench
#         against the plain build, twice
#   run6: which provider makes the 100-200 MB shapes read 2-3% faster in the full bench than in
#         a small one (v11 run 9): 4 such shapes with fp8quant and copy alone, with torch added,
#         with torch.compile added, with the forced fp8quant paths added, with run 9's four, and
#         with every provider; then the first and the last again
#   run7: whether torch.compile's effect (run 6) is time without memory traffic: fp8quant and copy
#         alone, with torch.compile, and with "idle" (a 200k-cycle busy-wait per call,
#         scripts/bench_probe_providers.py --idle; named bench_idle_provider.py then), twice,
#         with nvidia-smi sampling the SM clock and power every 100 ms (run7_smi.csv;
#         run7_marks.log has each bench's start)
#   run8: torch.compile built and its graph captured but left out of the timed round
#         (scripts/bench_probe_providers.py --untimed torch.compile), against fp8quant and copy
#         alone and with torch.compile timed as usual, twice
#   run9: two follow-ups of runs 2-3, against the plain build, twice: the next kernel let launch
#         at entry only by grids of more than 2 CTAs per SM (-DFP8QUANT_EXPERIMENT_EARLY_TRIGGER_BIG),
#         and each vector's first byte read by a volatile load before the wait, kept live until
#         after the row's max (-DFP8QUANT_EXPERIMENT_TOUCH_LIVE); the PDL, graph and default-path
#         GPU tests on both builds
#   (run10: `fp8quant bench --quick` at 64913aa, the empty-kernel floors as medians of samples)
#   run11: whether any slow torch kernels in the timed round do what torch.compile's do (run 8):
#         the eager reference captured in a graph and timed in the round ("torch:round",
#         scripts/bench_probe_providers.py --torch-in-round), against fp8quant and copy alone and
#         with torch.compile, twice
# The experiment switches of runs 1-5 (PREFETCH_EVICT_LAST, PREFETCH_ROW_BULK, EARLY_TRIGGER,
# PREFETCH_LOAD, PREFETCH_CP_ASYNC, PREFETCH_SECTORS, PREFETCH_LOAD_LINE) were removed after run 7
# (run them on a checkout of a4f053d), run 9's (EARLY_TRIGGER_BIG, TOUCH_LIVE) after run 9 (84cd6fc).
# The runs' skeleton was folded into the helpers below after run 10; the commands are as they ran
# but for the order of lines in the timeline logs and the summary lines printed.
source "$(dirname "${BASH_SOURCE[0]}")/investigate_common.sh"  # $OUT, the cache, bench(), gpu_tests(), prebuild_ab()
TL=-DFP8QUANT_EXPERIMENT_TIMELINE
EVICT_LAST=-DFP8QUANT_EXPERIMENT_PREFETCH_EVICT_LAST
ROW_BULK=-DFP8QUANT_EXPERIMENT_PREFETCH_ROW_BULK
EARLY=-DFP8QUANT_EXPERIMENT_EARLY_TRIGGER
PLOAD=-DFP8QUANT_EXPERIMENT_PREFETCH_LOAD
CPA=-DFP8QUANT_EXPERIMENT_PREFETCH_CP_ASYNC
SEC=-DFP8QUANT_EXPERIMENT_PREFETCH_SECTORS
LL=-DFP8QUANT_EXPERIMENT_PREFETCH_LOAD_LINE
EB=-DFP8QUANT_EXPERIMENT_EARLY_TRIGGER_BIG
LIVE=-DFP8QUANT_EXPERIMENT_TOUCH_LIVE
decode=16x16384,32x16384,64x5120,64x7168,64x8192,64x16384,128x4096,128x5120,128x7168,128x8192,128x16384
decode=$decode,256x2048,256x4096,256x5120,256x8192,256x16384,1x4096,1x16384,8x16384,32x8192,256x7168,128x1368
prebuild_each() {  # the modules built with each of the given flag sets, in parallel
  for flags in "$@"; do FP8QUANT_NVCC_FLAGS="$flags" python3 -m fp8quant prebuild > /dev/null & done
  wait
}
timelines() {  # log name, shapes, extra probe arguments, then the builds' flag sets
  local log=$1 shapes=$2 extra=$3
  shift 3
  for flags in "$@"; do
    echo "== timeline [$flags] ${extra:-bench copies}"
    PYTHONPATH=$PWD FP8QUANT_NVCC_FLAGS="$flags" timeout 120 python3 scripts/timeline_probe.py $shapes $extra 2>&1
  done >> "$OUT/$log.log"
  grep -E "^==|per call" "$OUT/$log.log" |
    sed -E 's/; medians.*(entry_to_wait [0-9]+).*(loads [0-9]+).*(next_entry_before_end [0-9]+).*/; \1 \2 \3/'
}
ab_rounds() {  # run, shapes, then label=flags pairs: the bench of each build, alternated twice
  local run=$1 shapes=$2
  shift 2
  for round in 1 2; do
    for variant in "$@"; do
      FP8QUANT_NVCC_FLAGS="${variant#*=}" bench "${run}_${variant%%=*}_$round" "$shapes" "fp8quant,copy"
    done
  done
  (cd "$OUT" && tar czf ${run}_logs.tar.gz *.log json && rm -rf json *.log)
}
probe_bench() {  # name, shapes, providers, scripts/bench_probe_providers.py's options
  PYTHONPATH=$PWD BENCH_TIMEOUT=150 BENCH_CMD="python3 scripts/bench_probe_providers.py $4" bench "$1" "$2" "$3"
}
case "${1:-run1}" in
run1)
  prebuild_each "" "$EVICT_LAST" "$ROW_BULK" "$TL" "$TL $ROW_BULK"
  probe="32x16384 64x8192 128x8192 256x4096 256x16384"
  timelines run1_timeline "$probe" "" "$TL"
  timelines run1_timeline "$probe" "--copies 2" "$TL"
  timelines run1_timeline "$probe" "" "$TL $ROW_BULK"
  timelines run1_timeline "$probe" "--copies 2" "$TL $ROW_BULK"
  ab_rounds run1 "$decode,2048x2048,1024x4096,16384x2048,4096x8192" base= evictlast=$EVICT_LAST rowbulk=$ROW_BULK ;;
run2|run3|run4)
  run=$1
  case $run in run2) B=$EARLY name=early ;; run3) B=$PLOAD name=pload ;; run4) B=$CPA name=cpa ;; esac
  prebuild_each "" "$B" "$TL" "$TL $B"
  FP8QUANT_NVCC_FLAGS=$B PYTEST_TIMEOUT=150 gpu_tests ${run}_tests_$name "pdl or cuda_graph or default_path"
  probe="1x4096 32x16384 64x8192 128x8192 256x4096 256x16384"
  timelines ${run}_timeline "$probe" "" "$TL"
  [ $run = run3 ] && timelines ${run}_timeline "$probe" "--copies 2" "$TL"
  timelines ${run}_timeline "$probe" "" "$TL $B"
  [ $run = run3 ] && timelines ${run}_timeline "$probe" "--copies 2" "$TL $B"
  ab_rounds $run "$decode,2048x2048,1024x4096,16384x2048,4096x8192,32768x1368,4096x16384" base= $name=$B ;;
run5)
  prebuild_each "" "$SEC" "$LL" "$TL" "$TL $SEC" "$TL $LL"
  timelines run5_timeline "1x4096 32x16384 64x8192 128x8192 256x4096 256x16384" "" "$TL" "$TL $SEC" "$TL $LL"
  ab_rounds run5 "$decode,2048x2048,1024x4096,16384x2048,4096x8192" base= sectors=$SEC loadline=$LL ;;
run6)
  python3 -m fp8quant prebuild > /dev/null
  big=16384x2048,8192x4096,32768x1368,4096x8192
  sets=("fp8quant,copy" "fp8quant,copy,torch" "fp8quant,copy,torch.compile"
        "fp8quant,copy,fp8quant:registers,fp8quant:shared,fp8quant:global" "fp8quant,fp8quant:nopdl,triton,copy" "")
  for k in 0 1 2 3 4 5 0 5; do
    BENCH_TIMEOUT=150 bench "run6_set${k}_$((n = ${n:-0} + 1))" "$big" "${sets[$k]}"
  done
  (cd "$OUT" && tar czf run6_logs.tar.gz *.log json && rm -rf json *.log) ;;
run7)
  python3 -m fp8quant prebuild > /dev/null
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv -lms 100 > "$OUT/run7_smi.csv" 2>&1 &
  smi=$!
  for round in 1 2; do
    for set in "fp8quant,copy" "fp8quant,copy,torch.compile" "fp8quant,copy,idle"; do
      name=run7_$(echo $set | tr -d ',.' | sed 's/fp8quantcopy/base/')_$round
      echo "$(date +%H:%M:%S.%N) $name" >> "$OUT/run7_marks.log"
      probe_bench $name 16384x2048,8192x4096,32768x1368,4096x8192 "$set" "--idle 200000"
    done
  done
  kill $smi
  (cd "$OUT" && tar czf run7_logs.tar.gz *.log *.csv json && rm -rf json *.log *.csv) ;;
run8|run11)  # fp8quant and copy alone, with torch.compile, and with the run's third variant
  run=$1 big=16384x2048,8192x4096,32768x1368,4096x8192
  case $run in
    run8) third=untimed set3="fp8quant,copy,torch.compile" probe3="--untimed torch.compile" ;;
    run11) third=torchround set3="fp8quant,copy,torch:round" probe3="--torch-in-round" ;;
  esac
  python3 -m fp8quant prebuild > /dev/null
  for round in 1 2; do
    probe_bench ${run}_base_$round $big "fp8quant,copy" ""
    probe_bench ${run}_compile_$round $big "fp8quant,copy,torch.compile" ""
    probe_bench ${run}_${third}_$round $big "$set3" "$probe3"
  done
  (cd "$OUT" && tar czf ${run}_logs.tar.gz *.log json && rm -rf json *.log) ;;
run9)
  prebuild_each "" "$EB" "$LIVE"
  FP8QUANT_NVCC_FLAGS=$EB PYTEST_TIMEOUT=150 gpu_tests run9_tests_early_big "pdl or cuda_graph or default_path"
  FP8QUANT_NVCC_FLAGS=$LIVE PYTEST_TIMEOUT=150 gpu_tests run9_tests_touch_live "pdl or cuda_graph or default_path"
  ab_rounds run9 "$decode,2048x2048,1024x4096,16384x2048,4096x8192,32768x1368,4096x16384" base= earlybig=$EB touchlive=$LIVE ;;
esac
