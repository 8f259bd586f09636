#!/usr/bin/env bash
# The fitted spec is a spec: `medsynth records` loads it (privacy block and
# correlation group, MST bin fields included), generates rows, and `medsynth evaluate`
# finds no copies and good marginals. Usage: fit_records.sh <medsynth> <source-dir>
set -eu
M=$1; SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$M" fit --data "$SRC/tests/data/diabetes_train.csv" --seed 3 -o "$T/fit.json" 2>/dev/null
"$M" fit --data "$SRC/tests/data/diabetes_train.csv" --seed 3 --epsilon 1 -o "$T/fit_dp.json" 2>/dev/null
"$M" records --spec "$T/fit.json" -o "$T/syn.csv" --seed 1 2>/dev/null
"$M" records --spec "$T/fit_dp.json" -o "$T/syn_dp.csv" -n 200 --seed 1 2>/dev/null
[ "$(wc -l <"$T/syn.csv")" -eq 355 ]
[ "$(wc -l <"$T/syn_dp.csv")" -eq 201 ]
# MST: the hidden bin fields are not written; the header is the real one.
"$M" fit --data "$SRC/tests/data/diabetes_train.csv" --seed 3 --epsilon 1 --method mst -o "$T/fit_mst.json" 2>/dev/null
"$M" records --spec "$T/fit_mst.json" -o "$T/syn_mst.csv" -n 200 --seed 1 2>/dev/null
[ "$(wc -l <"$T/syn_mst.csv")" -eq 201 ]
[ "$(head -n 1 "$T/syn_mst.csv")" = "$(head -n 1 "$SRC/tests/data/diabetes_train.csv")" ]
"$M" evaluate --real "$SRC/tests/data/diabetes_train.csv" --holdout "$SRC/tests/data/diabetes_holdout.csv" \
  --synthetic "$T/syn.csv" -o "$T/rep" --no-plots 2>/dev/null
/usr/bin/python3 - "$T/rep/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["privacy"]["exact_copy_rate"] == 0, r["privacy"]
assert r["utility"]["marginal_similarity"] > 0.9, r["utility"]["marginal_similarity"]
assert r["utility"]["association"]["mean_abs_diff"] < 0.1, r["utility"]["association"]["mean_abs_diff"]
PY
