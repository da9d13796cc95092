# Sourced by scripts/investigate_v*.sh on the device machine: $OUT, the cache, the GPU's clocks,
# bench NAME SHAPES PROVIDERS (fp8quant bench into $OUT/NAME.log and $OUT/json/NAME.json;
# BENCH_TIMEOUT, BENCH_ARGS, BENCH_CMD and FP8QUANT_NVCC_FLAGS as set by the caller), and gpu_tests NAME
# FILTER (the GPU tests matching pytest's -k FILTER into $OUT/NAME.log; PYTEST_TIMEOUT), and
# prebuild_ab FLAGS (the modules as they are and built with FLAGS, for A/B runs), mutate_waits and
# restore_waits (both backends without their PDL waits, for the race test's mutant),
# race_test_against_mutant NAME RUNS (the race test that many times under the mutant), eager_ab NAME
# ROUNDS OLD_TREE (scripts/eager_launch_probe.py with an old tree's package and this tree's, in
# turn, ROUNDS times, into $OUT/NAME.log), and probe_bench NAME
# SHAPES PROVIDERS OPTIONS (bench() through scripts/bench_probe_providers.py with OPTIONS, then us
# per call of each provider, a line per shape; skipped past DEADLINE_S seconds, default 480; PROBE_TIMEOUT
# seconds each, default 150).
set -uo pipefail
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"; OUT=$(realpath "$OUT")
export PYTHONUNBUFFERED=1 FP8QUANT_CACHE_DIR=${FP8QUANT_CACHE_DIR:-/tmp/fp8quant-cache}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
bench() {  # name, shapes, providers (BENCH_CMD: another command taking the bench's arguments)
  timeout ${BENCH_TIMEOUT:-200} ${BENCH_CMD:-python3 -m fp8quant bench} --shapes "$2" --providers "$3" --out "$OUT/$1" \
    ${BENCH_ARGS:-} 2>&1 | grep -v "^bench:" > "$OUT/$1.log"
  mkdir -p "$OUT/json"; mv "$OUT/$1"/*.json "$OUT/json/$1.json" 2>/dev/null; rm -rf "$OUT/$1"
  echo "[$1]"; grep -E "^(device|summary)" "$OUT/$1.log"
}
gpu_tests() {  # name, -k filter
  timeout ${PYTEST_TIMEOUT:-200} python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider -n 8 \
    -k "$2" > "$OUT/$1.log" 2>&1
  echo "[$1] $(tail -1 "$OUT/$1.log")"; grep -E "^(FAILED|E  )" "$OUT/$1.log" | head -8
}
prebuild_ab() {  # the B build's nvcc flags
  /usr/bin/time -f "prebuild %e s" python3 -m fp8quant prebuild | tail -1
  FP8QUANT_NVCC_FLAGS=$1 /usr/bin/time -f "prebuild ($1) %e s" python3 -m fp8quant prebuild | tail -1
}
probe_bench() {  # name, shapes, providers, scripts/bench_probe_providers.py's options
  if (( SECONDS > ${DEADLINE_S:-480} )); then echo "[$1] skipped: past ${DEADLINE_S:-480} s"; return; fi
  PYTHONPATH=$PWD BENCH_TIMEOUT=${PROBE_TIMEOUT:-150} BENCH_CMD="python3 scripts/bench_probe_providers.py $4" bench "$1" "$2" "$3"
  python3 - "$OUT/json/$1.json" <<'PY'  # us per call of each provider, one line per shape
import json, sys
r = json.load(open(sys.argv[1]))
for shape in dict.fromkeys((x["tokens"], x["hidden"]) for x in r["rows"]):
    cells = [f"{x['provider']} {x['median_us']:.2f}" for x in r["rows"] if (x["tokens"], x["hidden"]) == shape]
    print(f"  {shape[0]}x{shape[1]}: " + ", ".join(cells))
PY
}
mutate_waits() {  # both backends without their PDL waits (the PDL race test must then fail)
  local cuh=fp8quant/csrc/per_token_quant_fp8.cuh tk=fp8quant/triton_kernels.py
  cp $cuh /tmp/cuh.orig; cp $tk /tmp/tk.orig
  sed -i 's|asm volatile("griddepcontrol.wait;" ::: "memory");|/* mutant: no wait */|' $cuh
  sed -i 's|^\( *\)gdc_wait()|\1pass  # mutant: no gdc_wait|' $tk
  echo "mutated: $(grep -c 'mutant' $cuh) CUDA, $(grep -c 'mutant' $tk) Triton"
}
restore_waits() {
  cp /tmp/cuh.orig fp8quant/csrc/per_token_quant_fp8.cuh; cp /tmp/tk.orig fp8quant/triton_kernels.py
}
race_test_against_mutant() {  # name, runs: the PDL race test N times without the waits (the CUDA
  # mutant prebuilt in .fp8cache-mutant), into $OUT/NAME_I.log, its failed cases printed
  mutate_waits
  for i in $(seq 1 "$2"); do
    FP8QUANT_CACHE_DIR=$PWD/.fp8cache-mutant timeout 150 python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider \
      -k pdl_waits -rf > "$OUT/$1_$i.log" 2>&1
    echo "mutant $i: $(tail -1 "$OUT/$1_$i.log")"; grep -E "^FAILED" "$OUT/$1_$i.log" | cut -c1-110
  done
  restore_waits
}
eager_ab() {  # name, rounds, old tree (an unpacked `git archive <sha> fp8quant`)
  for round in $(seq 1 "$2"); do
    for tree in $3 .; do
      echo "[eager, $(basename $(realpath $tree)), round $round]"
      PYTHONPATH=$PWD/$tree timeout 60 python3 scripts/eager_launch_probe.py | tee -a "$OUT/$1.log"
    done
  done
}
