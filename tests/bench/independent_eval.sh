#!/usr/bin/env bash
# The independent evaluator on real tables (docs/evaluate.md): for each
# table, `medsynth fit` on the training split, `medsynth records` with as
# many rows (seed 0), then ../shared/eval/evaluate.py (or $MS_EVALUATE_PY)
# against the held-out split; one summary line per table.
#   bash tests/bench/independent_eval.sh build/medsynth [extra fit options]
# breast_cancer and diabetes: the evaluator's own splits; iris, wine and
# boston: Debian python3-sklearn's CSVs split 70/30 with seed 7 and
# pandas-style headers. Needs python3-sklearn, python3-scipy.
set -euo pipefail
M=$(realpath "$1")
shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ev=${MS_EVALUATE_PY:-$root/../shared/eval/evaluate.py}
tabs=$(dirname "$ev")/tabular
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
/usr/bin/python3 - <<'PY'
import csv, random
D = '/usr/lib/python3/dist-packages/sklearn/datasets/data/'
def split(name, header, rows):
    r = random.Random(7); idx = list(range(len(rows))); r.shuffle(idx)
    ntr = int(round(0.7 * len(rows)))
    for part, ids in (('train', idx[:ntr]), ('holdout', idx[ntr:])):
        with open(f'{name}_{part}.csv', 'w', newline='') as f:
            w = csv.writer(f, lineterminator='\n'); w.writerow(header); [w.writerow(rows[i]) for i in ids]
split('iris', ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)', 'target'],
      list(csv.reader(open(D + 'iris.csv')))[1:])
split('wine', ['alcohol', 'malic_acid', 'ash', 'alcalinity_of_ash', 'magnesium', 'total_phenols', 'flavanoids',
               'nonflavanoid_phenols', 'proanthocyanins', 'color_intensity', 'hue', 'od280/od315_of_diluted_wines',
               'proline', 'target'], list(csv.reader(open(D + 'wine_data.csv')))[1:])
rows = list(csv.reader(open(D + 'boston_house_prices.csv')))
split('boston', rows[1], rows[2:])
PY
for t in breast_cancer diabetes iris wine boston; do
  if [ -f "$tabs/${t}_train.csv" ]; then tr=$tabs/${t}_train.csv ho=$tabs/${t}_holdout.csv tgt=()
  else tr=$W/${t}_train.csv ho=$W/${t}_holdout.csv tgt=(--target target); [ $t = boston ] && tgt=(--target MEDV); fi
  n=$(($(wc -l <"$tr") - 1))
  "$M" fit --data "$tr" -o "$t.json" "$@" 2>"$t.fit.log"
  "$M" records --spec "$t.json" -n "$n" --seed 0 -o "$t.csv" -q
  /usr/bin/python3 "$ev" tabular --real "$tr" --holdout "$ho" --synthetic "$t.csv" "${tgt[@]}" --out "$t.res.json" >/dev/null
  k=$(sed -n 's/^  clusters: *\([0-9]*\) (hidden.*/\1/p' "$t.fit.log")
  /usr/bin/python3 - "$t" "${k:-1}" "$t.res.json" <<'PY'
import json, sys
t, k, f = sys.argv[1:]
s = json.load(open(f))['summary']
print(f"{t:14s} K={k}  disc AUC {s['disc_auc_vs_holdout_rf']:.3f} (holdout {s['disc_auc_holdout_ref_rf']:.3f})"
      f"  utility {s['ml_relative_utility']:.3f}  DCR share {s['dcr_share_closer_to_train']:.3f}"
      f"  exact {100 * s['exact_match_rate']:.1f} %  memorisation flag {s['flag_memorisation']}")
PY
done
