#!/usr/bin/env bash
# DP fitting on a larger table (docs/evaluate.md, "A larger table"): a
# diabetes-shaped table of 15,000 rows drawn from the noiseless fit of the
# evaluator's diabetes split (the real table's value spellings, frequent
# values and correlations), split 10,000 / 5,000; fitted at epsilon 1 (delta
# 1e-5, copula) and scored by the independent evaluator against the 5,000.
#   bash tests/bench/dp_large.sh build/medsynth [fit seeds, default "1 2 3"] [fit options, e.g. "--method aim"]
# Needs python3-sklearn, python3-scipy.
set -euo pipefail
M=$(realpath "$1")
seeds=${2:-1 2 3}
read -r -a extra <<<"${3:-}"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ev=${MS_EVALUATE_PY:-$root/../shared/eval/evaluate.py}
tabs=$(dirname "$ev")/tabular
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
"$M" fit --data "$tabs/diabetes_train.csv" --seed 0 -o source.json 2>/dev/null
"$M" records --spec source.json -n 15000 --seed 5 -o all.csv -q
head -n 1 all.csv >train.csv
head -n 1 all.csv >holdout.csv
sed -n 2,10001p all.csv >>train.csv
sed -n 10002,15001p all.csv >>holdout.csv
echo "| fit seed | disc. AUC RF (holdout ref) | relative utility | mean marginal distance | memorisation flag | frequent values released |"
echo "|---|---|---|---|---|---|"
for s in $seeds; do
  "$M" fit --data train.csv --epsilon 1 --delta 1e-5 --seed "$s" ${extra[@]+"${extra[@]}"} -o dp.json --force 2>fit.log
  "$M" records --spec dp.json -n 10000 --seed 0 -o syn.csv -q --force
  /usr/bin/python3 "$ev" tabular --real train.csv --holdout holdout.csv --synthetic syn.csv --target progression \
    --out res.json >/dev/null 2>&1
  fv=$(sed -n 's/.*(frequent values: sigma [0-9.e+-]*, \([0-9]*\) released)/\1/p' fit.log | awk '{s += $1} END {print s + 0}')
  /usr/bin/python3 - "$s" "${fv:-0}" <<'PY'
import json, sys
s, fv = sys.argv[1:]
S = json.load(open('res.json'))['summary']
print(f"| {s} | {S['disc_auc_vs_holdout_rf']:.3f} ({S['disc_auc_holdout_ref_rf']:.3f}) | {S['ml_relative_utility']:.3f} "
      f"| {S.get('mean_marginal_distance', float('nan')):.3f} | {S['flag_memorisation']} | {fv} |")
PY
done
