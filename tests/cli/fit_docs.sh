#!/usr/bin/env bash
# Every command in the ```sh blocks of docs/privacy.md, docs/evaluate.md and docs/fit.md
# runs exactly as written (lines ending in '\' joined), in one scratch
# directory in document order, with `medsynth` on PATH and tests/, docs/ and
# examples/ of the source tree visible; each must exit 0. The fitted spec
# must hold its privacy block and the baseline script must print its table.
# Usage: fit_docs.sh <path-to-medsynth> <source-dir>
set -u
ms=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$2" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir "$T/bin" "$T/work"
ln -s "$ms" "$T/bin/medsynth"
for d in tests docs examples; do ln -s "$src/$d" "$T/work/$d"; done
export PATH="$T/bin:$PATH"
fail=0
n=0
for doc in docs/privacy.md docs/evaluate.md docs/fit.md; do
  # One command per output line: fenced ```sh blocks, continuation lines joined.
  awk '/^```sh$/ {f = 1; next} /^```/ {f = 0; next}
       f { if (sub(/\\$/, "")) { acc = acc $0; next } print acc $0; acc = "" }' "$src/$doc" >"$T/cmds"
  while IFS= read -r cmd; do
    [ -z "$cmd" ] && continue
    n=$((n + 1))
    if ! (cd "$T/work" && bash -c "$cmd") >"$T/out" 2>"$T/err"; then
      echo "FAIL ($doc): $cmd" >&2
      tail -20 "$T/err" >&2
      fail=1
    fi
  done <"$T/cmds"
done
if [ "$n" -lt 6 ]; then
  echo "FAIL: expected at least 6 documented commands, found $n" >&2
  fail=1
fi
/usr/bin/python3 - "$T/work" <<'PY' || fail=1
import json, os, sys
w = sys.argv[1]
dp = json.load(open(os.path.join(w, "fitted_dp.json")))
assert dp["privacy"]["method"] == "differential-privacy" and dp["privacy"]["epsilon"] == 1, dp["privacy"]
assert abs(sum(dp["privacy"]["split"]["columns"].values()) - dp["privacy"]["split"]["marginals"]) < 1e-3
rep = json.load(open(os.path.join(w, "report", "report.json")))
assert rep["privacy"]["exact_copy_rate"] == 0, rep["privacy"]
rows = [l for l in open(os.path.join(w, "baselines.md")) if l.startswith("| breast_cancer") or l.startswith("| diabetes")]
assert len(rows) == 12, len(rows)
PY
exit $fail
