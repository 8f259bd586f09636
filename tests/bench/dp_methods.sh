#!/usr/bin/env bash
# Copula vs MST vs AIM on the independent evaluator (docs/evaluate.md, "Differential
# privacy: copula vs MST vs AIM"): breast_cancer and diabetes (the evaluator's own
# splits), epsilon 0.5, 1, 4 and none, delta 1e-5, one table row per fit.
#   bash tests/bench/dp_methods.sh build/medsynth [fit seeds, default "0 1 2"]
# (MS_METHODS="aim" for some of the methods only)
# Each line is the mean over the fit seeds (records seed 0, as many rows as
# the training split). Needs python3-sklearn, python3-scipy.
set -euo pipefail
M=$(realpath "$1")
seeds=${2:-0 1 2}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ev=${MS_EVALUATE_PY:-$root/../shared/eval/evaluate.py}
tabs=$(dirname "$ev")/tabular
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo "| table | ε | method | disc. AUC RF (holdout ref) | relative utility | DCR share | memorisation flags |"
echo "|---|---|---|---|---|---|---|"
for t in breast_cancer diabetes; do
  tr=$tabs/${t}_train.csv ho=$tabs/${t}_holdout.csv
  n=$(($(wc -l <"$tr") - 1))
  for eps in 0.5 1 4 none; do
    for method in ${MS_METHODS:-copula mst aim}; do
      opts=(--method "$method")
      [ "$eps" = none ] || opts+=(--epsilon "$eps" --delta 1e-5)
      for s in $seeds; do
        "$M" fit --data "$tr" -o "$W/f.json" --force --seed "$s" "${opts[@]}" 2>/dev/null
        "$M" records --spec "$W/f.json" -n "$n" --seed 0 -o "$W/s.csv" -q --force
        /usr/bin/python3 "$ev" tabular --real "$tr" --holdout "$ho" --synthetic "$W/s.csv" \
          --out "$W/r$s.json" >/dev/null 2>&1
      done
      /usr/bin/python3 - "$t" "$eps" "$method" "$W" $seeds <<'PY'
import json, sys
t, eps, method, w = sys.argv[1:5]
S = [json.load(open(f'{w}/r{s}.json'))['summary'] for s in sys.argv[5:]]
mean = lambda k: sum(s[k] for s in S) / len(S)
print(f"| {t} | {'∞' if eps == 'none' else eps} | {method} | {mean('disc_auc_vs_holdout_rf'):.3f} "
      f"({mean('disc_auc_holdout_ref_rf'):.3f}) | {mean('ml_relative_utility'):.3f} | "
      f"{mean('dcr_share_closer_to_train'):.3f} | {sum(bool(s['flag_memorisation']) for s in S)} of {len(S)} |")
PY
    done
  done
done
