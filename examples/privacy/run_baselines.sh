#!/usr/bin/env bash
# Reproduces the figures of docs/evaluate.md: for each fixture, fits without
# and with epsilon = 1 and 10 and without correlations (independent marginals),
# generates as many rows as the training table with `medsynth records`,
# adds the plain-copy baseline, and evaluates all of them against the same
# train/holdout split. The fitted model is also sampled with the reference
# sampler (`medsynth fit --sample`); both carry the whole copula, categorical
# and bool columns included.
# Usage: run_baselines.sh <medsynth> <source-dir> <work-dir>
set -eu
M=$1; SRC=$2; W=$3
mkdir -p "$W"
row() { # dataset label report.json
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
ds, label, path = sys.argv[1:4]
r = json.load(open(path))
u, p = r["utility"], r["privacy"]
t = u.get("tstr", {})
print(f"| {ds} | {label} | {u['marginal_similarity']:.3f} | {u['association']['mean_abs_diff']:.3f} | "
      f"{u.get('pmse_score', float('nan')):.3f} | {t.get('tstr', float('nan')):.3f} / {t.get('trtr', float('nan')):.3f} | "
      f"{p['exact_copy_rate']:.3f} | {p['closer_to_train_share']:.3f} | {p['mia_auc']:.3f} | "
      f"{u['verdict']} / {p['verdict']} |")
PY
}
echo "| data | synthetic | marginals | assoc. diff | pMSE score | TSTR / TRTR | exact copies | closer to train | MIA AUC | verdict (utility / privacy) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for ds in breast_cancer:diagnosis diabetes:progression; do
  name=${ds%%:*}; target=${ds##*:}
  tr=$SRC/tests/data/${name}_train.csv; ho=$SRC/tests/data/${name}_holdout.csv
  n=$(($(wc -l <"$tr") - 1))
  "$M" fit --data "$tr" --seed 1 --force -o "$W/$name.json" --sample $n --sample-out "$W/${name}_ref.csv" 2>/dev/null
  "$M" fit --data "$tr" --seed 1 --force --no-copula -o "$W/${name}_ind.json" 2>/dev/null
  "$M" fit --data "$tr" --seed 1 --force --epsilon 1 -o "$W/${name}_dp.json" 2>/dev/null
  "$M" fit --data "$tr" --seed 1 --force --epsilon 10 -o "$W/${name}_dp10.json" 2>/dev/null
  rm -f "$W/${name}_fit.csv" "$W/${name}_ind.csv" "$W/${name}_dp.csv" "$W/${name}_dp10.csv"
  "$M" records --spec "$W/$name.json" -o "$W/${name}_fit.csv" --seed 1 2>/dev/null
  "$M" records --spec "$W/${name}_ind.json" -o "$W/${name}_ind.csv" --seed 1 2>/dev/null
  "$M" records --spec "$W/${name}_dp.json" -o "$W/${name}_dp.csv" -n $n --seed 1 2>/dev/null
  "$M" records --spec "$W/${name}_dp10.json" -o "$W/${name}_dp10.csv" -n $n --seed 1 2>/dev/null
  cp "$tr" "$W/${name}_copy.csv"
  for v in fit:"fitted (k = 5), records" ref:"fitted (k = 5), reference sampler" dp:"fitted, ε = 1, records" dp10:"fitted, ε = 10, records" ind:"independent marginals, records" copy:"copy of train"; do
    key=${v%%:*}; label=${v#*:}
    "$M" evaluate --real "$tr" --holdout "$ho" --synthetic "$W/${name}_$key.csv" --target "$target" \
      -o "$W/report_${name}_$key" --no-plots 2>/dev/null || true
    row "$name" "$label" "$W/report_${name}_$key/report.json"
  done
done
