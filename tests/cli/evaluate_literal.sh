#!/usr/bin/env bash
# `medsynth evaluate` compares the synthetic table with the real one
# literally (docs/evaluate.md, "Literal comparison"): a bool written
# true/false where the real table writes 0/1, a value a discrete column never
# has, a column out of order, another number format, a column far beyond
# the real-vs-holdout reference and a model below the majority-class
# baseline each fail, while a fitted table of the same data passes utility.
# Usage: evaluate_literal.sh <medsynth> <source-dir>
set -u
M=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
/usr/bin/python3 - "$T" <<'PY'
import csv, random, sys
T = sys.argv[1]
def table(seed, n):
    r = random.Random(seed)
    rows = []
    for _ in range(n):
        x = r.gauss(0, 1)
        y = 1 if x + r.gauss(0, 0.5) > 0.3 else 0
        rows.append(["%.2f" % (50 + 10 * x), str(y), r.choice(["0", "0.5", "1"]), "%.1f" % abs(r.gauss(3, 1))])
    return rows
H = ["score", "outcome", "dose", "lab"]
def write(name, rows, header=H):
    with open(T + "/" + name, "w", newline="") as f:
        w = csv.writer(f); w.writerow(header); w.writerows(rows)
write("train.csv", table(1, 600))
write("hold.csv", table(2, 300))
good = table(3, 600)
write("tf.csv", [[a, "true" if b == "1" else "false", c, d] for a, b, c, d in good])
write("unseen.csv", [[a, b, "0.7" if i % 10 == 0 else c, d] for i, (a, b, c, d) in enumerate(good)])
write("order.csv", [[b, a, c, d] for a, b, c, d in good], ["outcome", "score", "dose", "lab"])
write("format.csv", [[a, b, c, "%.3f" % float(d)] for a, b, c, d in good])
write("shifted.csv", [["%.2f" % (float(a) + 15), b, c, d] for a, b, c, d in good])
write("flipped.csv", [[a, "0" if b == "1" else "1", c, d] for a, b, c, d in good])
PY
run() { # run <want exit> <report substring> <synthetic>
  "$M" evaluate --real "$T/train.csv" --holdout "$T/hold.csv" --synthetic "$T/$3" --target outcome \
    --no-plots -o "$T/rep_$3" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" -ne "$1" ] || ! grep -qF -- "$2" "$T/rep_$3/report.md"; then
    echo "FAIL: $3 -> rc=$rc (want $1), want: $2"; cat "$T/err"; grep -E 'fail|warn' "$T/rep_$3/report.md"
    fail=1
  fi
}
run 1 "| outcome | TV complement" tf.csv
run 1 'written "true" where the real table writes "1"' tf.csv
run 1 "| values the real table never has (per synthetic row) | 0.1000 | 0 pass | fail |" unseen.csv
run 1 'value 0.7 is not in the real table' unseen.csv
run 1 "| columns out of the real order | 2.0000 | 0 pass | fail |" order.csv
run 1 "lab | KS complement" format.csv
run 1 "3 decimals where the real table has at most 1" format.csv
run 1 "| columns beyond the real reference (KS/TV > 2 x ref + 0.05) | 1.0000 | 0 pass | fail |" shifted.csv
run 1 "TSTR above the majority-class baseline (TSTR - baseline)" flipped.csv
grep -qE "TSTR above the majority-class baseline.*\| fail \|" "$T/rep_flipped.csv/report.md" || { echo "FAIL: flipped target not below baseline"; fail=1; }
"$M" fit --data "$T/train.csv" -o "$T/fit.json" 2>/dev/null
"$M" records --spec "$T/fit.json" -o "$T/fitted.csv" -q
"$M" evaluate --real "$T/train.csv" --holdout "$T/hold.csv" --synthetic "$T/fitted.csv" --target outcome \
  --no-plots -o "$T/rep_fitted" >"$T/out" 2>&1
grep -qF "**Utility: pass.**" "$T/rep_fitted/report.md" || { echo "FAIL: the fitted table does not pass"; cat "$T/rep_fitted/report.md"; fail=1; }
exit $fail
