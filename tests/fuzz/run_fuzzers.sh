#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of tests/fuzz (see README.md there).
#
#   tests/fuzz/run_fuzzers.sh [--seconds N] [--build-dir DIR] [--parallel N] [--keep-corpus]
#                             [--no-build] [target ...]
#
# Configures DIR (default build-fuzz; env FUZZ_BUILD_DIR) with clang-14 and -DVIBGATE_FUZZ=ON,
# builds only the fuzzers (target vibgate_fuzz_all, VIBGATE_JOBS jobs, default 2), then for every
# target (default: all): runs the files of regressions/<target>/ and corpus/<target>/ once, then
# fuzzes for N seconds (default 20, the CI setting; env FUZZ_SECONDS; e.g. --seconds 600 for a long
# run) on a copy of the seed corpus in DIR/fuzz-run/<target>/corpus — the repository corpus is
# never written. --keep-corpus continues from the copy left by the previous run instead.
# --parallel runs that many targets at once (one core each).
#
# Prints one line per target (executions, corpus size, crashes) and writes them to
# DIR/fuzz-run/summary.tsv. Exits 1 if any target crashed (or broke an invariant, or leaked, or ran
# out of time or memory): the input is DIR/fuzz-run/<target>/crash-* (or the regression/corpus
# file named), the log DIR/fuzz-run/<target>/fuzz.log. Reproduce with DIR/tests/fuzz/<target>_fuzz
# <input>; once fixed, add the input to tests/fuzz/regressions/<target>/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
fuzz_src="$root/tests/fuzz"

seconds="${FUZZ_SECONDS:-20}"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
parallel=1
keep_corpus=0
do_build=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    --keep-corpus) keep_corpus=1; shift ;;
    --no-build) do_build=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_fuzzers: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$fuzz_src"/corpus/*/; do targets+=("$(basename "$d")"); done
fi

if [ "$do_build" -eq 1 ]; then
  . "$root/deploy/ccache-env.sh"
  echo "== configure and build $build (clang-14, fuzzers only)"
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -DVIBGATE_FUZZ=ON \
    -DVIBGATE_BUILD_TESTS=OFF -DVIBGATE_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" >/dev/null
  cmake --build "$build" --target vibgate_fuzz_all -j"${VIBGATE_JOBS:-2}" >/dev/null
fi

run="$build/fuzz-run"
mkdir -p "$run"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
common=(-rss_limit_mb=2048 -timeout=10)

# Runs one target; its result line goes to $run/<target>/result (tab separated, summary.tsv order).
run_target() {
  set +e  # runs in a background subshell; every failure is reported in the result line
  local t="$1" bin="$build/tests/fuzz/$1_fuzz" dir="$run/$1"
  local seeds=() f dict=() status=ok artifact="-" rc=0
  mkdir -p "$dir"
  rm -f "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* "$dir"/*.log "$dir/result"
  if [ ! -x "$bin" ]; then
    printf '%s\t%s\t0\t0\t0\t0\t0\t1\tmissing %s\n' "$t" "$seconds" "$bin" >"$dir/result"
    return
  fi
  for f in "$fuzz_src/regressions/$t"/* "$fuzz_src/corpus/$t"/*; do
    [ -f "$f" ] && [[ "$(basename "$f")" != README* ]] && seeds+=("$f")
  done
  # dict/<target>.dict, else dict/<last word>.dict (config.dict for ingest_config, daemon_config).
  for f in "$fuzz_src/dict/$t.dict" "$fuzz_src/dict/${t##*_}.dict"; do
    if [ -f "$f" ]; then dict=(-dict="$f"); break; fi
  done

  # 1. Every regression input and seed once (libFuzzer runs files given as arguments).
  if [ ${#seeds[@]} -gt 0 ] && ! "$bin" "${common[@]}" "${seeds[@]}" >"$dir/replay.log" 2>&1; then
    status=crash
    artifact="$(grep -o 'Running: .*' "$dir/replay.log" | tail -n1 | sed 's/^Running: //')"
  fi

  # 2. Fuzzing on a copy of the seed corpus.
  if [ "$keep_corpus" -eq 0 ] || [ ! -d "$dir/corpus" ]; then
    rm -rf "$dir/corpus"
    mkdir -p "$dir/corpus"
    cp "$fuzz_src/corpus/$t"/* "$dir/corpus/" 2>/dev/null || true
  fi
  local before
  before="$(find "$dir/corpus" -type f | wc -l)"
  if [ "$status" = ok ]; then
    "$bin" "${common[@]}" "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$dir/" "$dir/corpus" >"$dir/fuzz.log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
      status=crash
      artifact="$dir/fuzz.log"  # unless libFuzzer saved the input (old ones were removed above)
      for f in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
        [ -f "$f" ] && artifact="$f"
      done
    fi
  fi
  local execs rate files bytes
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log" 2>/dev/null | tail -n1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/fuzz.log" 2>/dev/null | tail -n1)"
  files="$(find "$dir/corpus" -type f | wc -l)"
  bytes="$(du -sb "$dir/corpus" | cut -f1)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$seconds" "${execs:-0}" "${rate:-0}" \
    "$files" "$bytes" "$((files - before))" "$([ "$status" = ok ] && echo 0 || echo 1)" \
    "$artifact" >"$dir/result"
}

echo "== fuzzing ${targets[*]}: ${seconds} s each, $parallel at a time"
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_target "$t" &
  running=$((running + 1))
done
wait

summary="$run/summary.tsv"
printf 'target\tseconds\texecutions\texec_per_s\tcorpus_files\tcorpus_bytes\tnew_units\tcrashes\tartifact\n' \
  >"$summary"
failed=0
for t in "${targets[@]}"; do
  line="$(cat "$run/$t/result" 2>/dev/null ||
          printf '%s\t%s\t0\t0\t0\t0\t0\t1\trun_fuzzers.sh failed' "$t" "$seconds")"
  printf '%s\n' "$line" >>"$summary"
  IFS=$'\t' read -r name _ execs rate files _ new crashes artifact <<<"$line"
  printf '%-18s %10s execs %7s/s  corpus %5s (+%s)  crashes=%s' "$name" "$execs" "$rate" "$files" \
    "$new" "$crashes"
  if [ "$crashes" != 0 ]; then
    printf '  input: %s  log: %s' "$artifact" "$run/$name/"
    failed=1
  fi
  printf '\n'
done
echo "summary: $summary"
exit "$failed"
