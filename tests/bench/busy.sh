#!/usr/bin/env bash
# Two threads against one on a busy machine.
#
# Starts one spinning process per core but one (a shell loop, like a CI job
# or a training process beside us), then runs the 1- and 2-thread variants
# of DDIM sampling (bench_ddim, optionally with PyTorch's reference in the
# same run), SGEMM (bench_sgemm), `medsynth images` and `medsynth records`,
# and prints a summary: medians over the rounds and the speed of 2 threads
# relative to 1 (>= 1 means two threads are not slower). With -B the same
# workloads run for a second build (e.g. of an older commit) in the same
# rounds, so "before" and "after" share the machine's load. -s 0 measures
# the machine without spinners.
#
# usage: tests/bench/busy.sh [-b BUILD] [-B OTHER_BUILD] [-m MODEL.h5] [-s SPINNERS]
#                            [-p] [-g] [-r ROUNDS] [-t] [-o OUTDIR]
#   -b  build directory under test (default: build)
#   -B  another build directory, measured in the same rounds (default: none)
#   -m  UNet model file (default /tmp/bench_unet64.h5, exported if missing;
#       the export needs PyTorch)
#   -s  spinning processes (default: cores - 1)
#   -p  pin spinner i to core i (taskset); default: the scheduler places them
#   -g  start the spinners in a session of their own (setsid). With Linux's
#       autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled)
#       every session gets an equal share of the CPUs, so the benchmarks,
#       as one session, then get at most one of two cores whatever their
#       thread count; by default the spinners share the benchmarks' session,
#       like `yes > /dev/null &` typed in the same shell
#   -r  rounds (default 3); in odd rounds the commands run 1 thread first,
#       in even rounds 2 threads first
#   -t  also run PyTorch's DDIM reference (models/reference/bench_torch.py,
#       batch 1, 2 images) under the same load, in the first round
#   -o  folder for the output files (default: a temporary folder)
# Run from the source directory. docs/performance.md ("Busy machines")
# shows a run.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
build=build other="" model=/tmp/bench_unet64.h5 spin=$(($(nproc) - 1)) pin=0 sess=0 rounds=3
torch=0 out=""
while getopts "b:B:m:s:pgr:to:" o; do
  case $o in
    b) build=$OPTARG ;; B) other=$OPTARG ;; m) model=$OPTARG ;; s) spin=$OPTARG ;;
    p) pin=1 ;; g) sess=1 ;; r) rounds=$OPTARG ;; t) torch=1 ;; o) out=$OPTARG ;;
    *) sed -n '14,34p' "$0" >&2; exit 64 ;;
  esac
done
[ -n "$out" ] || out=$(mktemp -d)
mkdir -p "$out" || exit 73
builds=("$build")
[ -n "$other" ] && builds+=("$other")
for b in "${builds[@]}"; do
  for p in bench_ddim bench_sgemm medsynth; do
    [ -x "$b/$p" ] || { echo "busy.sh: $b/$p missing (build first)" >&2; exit 66; }
  done
done
if [ ! -f "$model" ]; then
  /usr/bin/python3 "$src/models/reference/export_model.py" --arch unet --seed 1 \
    --set image_size=64 --set 'channels=[32,64,128]' --set blocks_per_level=2 \
    --set 'attention_resolutions=[16]' --set heads=4 --set groups=8 -o "$model" >/dev/null || exit 66
fi

pids=()
stop_spinners() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  pids=()
}
trap 'stop_spinners' EXIT
trap 'exit 130' INT TERM
for ((i = 0; i < spin; i++)); do
  cmd=(bash -c 'while :; do :; done')
  [ "$pin" = 1 ] && cmd=(taskset -c "$i" "${cmd[@]}")
  [ "$sess" = 1 ] && cmd=(setsid "${cmd[@]}")
  "${cmd[@]}" &
  pids+=($!)
done
sleep 1
echo "# busy.sh: $spin spinning process(es)$([ "$pin" = 1 ] && echo ", pinned")$([ "$sess" = 1 ] &&
  echo ", own session"), $(nproc) cores, $rounds round(s)"
echo "# autogroup scheduling: $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo n/a)"
echo "# $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

res="$out/results.tsv"
: >"$res"
now() { date +%s.%N; }
# record BUILD WORKLOAD THREADS VALUE UNIT
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$res"; }

timed() { # BUILD WORKLOAD THREADS command...: wall seconds of one run
  local b=$1 w=$2 t=$3
  shift 3
  local t0 t1
  t0=$(now)
  if ! "$@" >/dev/null 2>"$out/err.txt"; then
    echo "busy.sh: $w failed:" >&2
    cat "$out/err.txt" >&2
    exit 70
  fi
  t1=$(now)
  local s
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  echo "$b  $w  threads $t  $s s"
  record "$b" "$w" "$t" "$s" s
}

for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then order="1 2"; else order="2 1"; fi
  for b in "${builds[@]}"; do
    echo "## round $r, $b (load average $(cut -d' ' -f1 /proc/loadavg))"
    "$b/bench_ddim" "$model" --steps 2 --images-b1 4 | tee "$out/ddim.txt" || exit 70
    if [ "$torch" = 1 ] && [ "$r" = 1 ] && [ "$b" = "$build" ]; then
      /usr/bin/python3 "$src/models/reference/bench_torch.py" "$model" --steps 2 --images-b1 2 \
        --batches 1 | tee -a "$out/ddim.txt" || exit 70
    fi
    awk -v b="$b" '/images\/s/ {
        for (i = 1; i <= NF; i++) { if ($i == "batch") bt = $(i + 1); if ($i == "threads") th = $(i + 1);
                                    if ($i == "images/s") v = $(i - 1) }
        printf "%s\t%s DDIM batch %s\t%s\t%s\timages/s\n", b, $1, bt, th, v }' \
      "$out/ddim.txt" >>"$res"
    "$b/bench_sgemm" 0.3 | tee "$out/sgemm.txt" | grep -E '^\| (square 1024|conv3x3 64->64) ' || exit 70
    awk -F'|' -v b="$b" '$2 ~ /^ (square 1024|conv3x3 64->64 @64x64) $/ {
        gsub(/^ +| +$/, "", $2); gsub(/ /, "", $6); gsub(/ /, "", $7)
        printf "%s\tSGEMM %s\t%s\t%s\tGFLOP/s\n", b, $2, $6, $7 }' "$out/sgemm.txt" >>"$res"
    for t in $order; do
      timed "$b" "medsynth images" "$t" "$b/medsynth" images --model "$model" -n 8 --steps 5 \
        -o "$out/images.h5" --force --threads "$t"
      timed "$b" "medsynth records" "$t" "$b/medsynth" records \
        --spec "$src/schemas/examples/outpatient.json" -n 300000 -o "$out/records.h5" --force -q \
        --threads "$t"
    done
  done
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
stop_spinners

echo
echo "| build | workload | 1 thread | 2 threads | speed 2 threads / 1 thread |"
echo "|---|---|---|---|---|"
awk -F'\t' '
  { k = $1 SUBSEP $2; if (!(k in seen)) { seen[k] = 1; order[++n] = k; unit[k] = $5 }
    v[k, $3, ++c[k, $3]] = $4 }
  function median(k, t,   m, i, j, a, x) {
    m = c[k, t]; for (i = 1; i <= m; i++) a[i] = v[k, t, i] + 0
    for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, kb, SUBSEP); u = unit[k]
      m1 = median(k, 1); m2 = median(k, 2)
      s = sprintf("%.2f", u == "s" ? m1 / m2 : m2 / m1)
      printf "| %s | %s | %.3g %s | %.3g %s | %s%s |\n", kb[1], kb[2], m1, u, m2, u, s, s + 0 < 1 ? " (slower)" : ""
    }
  }' "$res"
