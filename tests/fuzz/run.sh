#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) in build-fuzz, replays
# every committed crash input and seed, then fuzzes each target for
# SECONDS_PER_TARGET seconds (default 60):
#   bash tests/fuzz/run.sh [SECONDS_PER_TARGET]
# Fails (exit 1) on any crash, leak, timeout, out-of-memory or sanitizer
# report; the offending input is kept under build-fuzz/fuzz/<name>/ and the
# log is printed. Inputs the fuzzer finds are kept in
# build-fuzz/fuzz/<name>/corpus, so later runs start where earlier ones left.
#
# Per target, tests/fuzz/ may hold corpus/<name>/ (seeds), crashes/<name>/
# (inputs that once failed; each must now pass) and <name>.dict. Limits:
# one input may take at most MS_FUZZ_TIMEOUT seconds (default 10) and the
# process MS_FUZZ_RSS_MB of memory (default 2048); the longest input is
# the largest seed or 16 KiB (MS_FUZZ_MAX_LEN overrides).
# Environment: CC (default clang), MS_FUZZ_BUILD_DIR (build-fuzz),
# MS_BUILD_JOBS (nproc), MS_FUZZ_TARGETS (names to run, e.g. "spec expr";
# default all), MS_FUZZ_SEED (libFuzzer's -seed; default a new one each run.
# CI fixes it so that a run explores the same inputs every time: a red CI
# then means a change broke something, not that the dice found an old bug;
# exploration with fresh seeds is `bash tests/fuzz/run.sh 600`).
set -euo pipefail
secs=${1:-60}
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 64 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
build=${MS_FUZZ_BUILD_DIR:-build-fuzz}
timeout_s=${MS_FUZZ_TIMEOUT:-10}
rss_mb=${MS_FUZZ_RSS_MB:-2048}

echo "== building fuzz targets in $build"
CC=${CC:-clang} cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMS_FUZZ=ON \
  -DMS_BUILD_TESTS=OFF -DMS_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"${MS_BUILD_JOBS:-$(nproc)}" --target fuzzers
build=$(cd "$build" && pwd)

# Leaks and undefined behaviour are failures too; UBSan stops at the first.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

targets=()
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  name=${name#fuzz_}
  if [ -n "${MS_FUZZ_TARGETS:-}" ] && ! [[ " $MS_FUZZ_TARGETS " == *" $name "* ]]; then continue; fi
  targets+=("$name")
done

failed=()
for name in "${targets[@]}"; do
  bin=$build/fuzz_$name
  work=$build/fuzz/$name
  mkdir -p "$work/corpus"
  seeds=$root/tests/fuzz/corpus/$name
  crashes=$root/tests/fuzz/crashes/$name
  max_len=16384
  if [ -d "$seeds" ]; then
    largest=$(find "$seeds" -type f -printf '%s\n' | sort -n | tail -1)
    if [ -n "$largest" ] && [ "$largest" -gt "$max_len" ]; then max_len=$largest; fi
  fi
  max_len=${MS_FUZZ_MAX_LEN:-$max_len}
  opts=(-timeout="$timeout_s" -rss_limit_mb="$rss_mb" -artifact_prefix="$work/")

  # Replay: each committed crash input and seed, one at a time and whole
  # (no -max_len, which would cut a long input short).
  mapfile -t files < <(find "$crashes" "$seeds" -type f 2>/dev/null | sort)
  if [ ${#files[@]} -gt 0 ]; then
    echo "== fuzz_$name: replaying ${#files[@]} committed input(s)"
    if ! "$bin" "${opts[@]}" "${files[@]}" >"$work/replay.log" 2>&1; then
      tail -n 60 "$work/replay.log"
      echo "fuzz_$name: a committed input fails (log: $work/replay.log)" >&2
      failed+=("$name (replay)")
      continue
    fi
  fi

  [ "$secs" -gt 0 ] || continue
  echo "== fuzz_$name: fuzzing for ${secs}s"
  opts+=(-max_len="$max_len")
  [ -n "${MS_FUZZ_SEED:-}" ] && opts+=(-seed="$MS_FUZZ_SEED")
  [ -f "tests/fuzz/$name.dict" ] && opts+=(-dict="$root/tests/fuzz/$name.dict")
  dirs=("$work/corpus")
  [ -d "$seeds" ] && dirs+=("$seeds")
  # -jobs=1 runs the fuzzer in a child process with its output in
  # fuzz-0.log (in the current directory), and exits non-zero when it fails.
  rm -f "$work/fuzz-0.log"
  if (cd "$work" && "$bin" "${opts[@]}" -jobs=1 -max_total_time="$secs" \
        -print_final_stats=1 "${dirs[@]}" >/dev/null 2>&1); then
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^Done ' "$work/fuzz-0.log" \
      | sed "s/^/  fuzz_$name: /" || true
  else
    tail -n 80 "$work/fuzz-0.log" 2>/dev/null || true
    echo "fuzz_$name: failed (log: $work/fuzz-0.log; input: $work/crash-*, leak-*, timeout-*, oom-*)" >&2
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing failed: ${failed[*]}" >&2
  exit 1
fi
echo "== fuzzing: ${#targets[@]} target(s) clean"
