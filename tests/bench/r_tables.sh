#!/usr/bin/env bash
# The fit's models on nine real medical tables that ship with R (docs/fit.md,
# "Which model"): Titanic and infert (datasets), pbc, flchain, nwtco and
# colon (survival), birthwt, biopsy and Pima (MASS), each split 75 / 25 at
# random (set.seed(1)), fitted with each --method (without DP, and at
# epsilon 1, delta 1e-5, with `dp` as the second argument), generated with as
# many rows as the training split and scored by the independent evaluator
# against the 25 % (its target: the outcome column).
#   bash tests/bench/r_tables.sh build/medsynth [dp] [methods, default "copula aim auto"]
# Needs r-base-core, r-cran-survival and r-cran-mass (Rscript with MASS and
# survival), python3-sklearn, python3-scipy.
set -euo pipefail
M=$(realpath "$1")
mode=${2:-exact}
methods=${3:-copula aim auto}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ev=${MS_EVALUATE_PY:-$root/../shared/eval/evaluate.py}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
Rscript - >/dev/null <<'R'
suppressMessages({library(survival); library(MASS)})
sp <- function(d, name) {
  set.seed(1); d <- d[sample(nrow(d)), ]; n <- floor(nrow(d) * 0.75)
  write.csv(d[1:n, ], paste0(name, "_train.csv"), row.names = FALSE, na = "")
  write.csv(d[(n + 1):nrow(d), ], paste0(name, "_holdout.csv"), row.names = FALSE, na = "")
}
t <- as.data.frame(Titanic); sp(t[rep(seq_len(nrow(t)), t$Freq), 1:4], "titanic")
i <- infert; i$stratum <- NULL; i$pooled.stratum <- NULL; sp(i, "infert")
sp(birthwt, "birthwt"); sp(rbind(Pima.tr, Pima.te), "pima")
b <- biopsy; b$ID <- NULL; sp(b, "biopsy")
sp(pbc, "pbc"); sp(nwtco[, -1], "nwtco"); sp(colon[, -1], "colon"); sp(flchain, "flchain")
R
declare -A target=([titanic]=Survived [infert]=case [birthwt]=low [pima]=type [biopsy]=class [pbc]=status
                   [nwtco]=rel [colon]=status [flchain]=death)
dp=()
[ "$mode" = dp ] && dp=(--epsilon 1 --delta 1e-5)
echo "| table | rows | method | model | disc. AUC RF (holdout ref) | relative utility | memorisation flag |"
echo "|---|---|---|---|---|---|---|"
for t in titanic infert birthwt pima biopsy pbc nwtco colon flchain; do
  n=$(($(wc -l <"${t}_train.csv") - 1))
  for method in $methods; do
    "$M" fit --data "${t}_train.csv" --seed 1 --method "$method" ${dp[@]+"${dp[@]}"} -o f.json --force 2>fit.log
    "$M" records --spec f.json -n "$n" --seed 0 -o s.csv -q --force
    /usr/bin/python3 "$ev" tabular --real "${t}_train.csv" --holdout "${t}_holdout.csv" --synthetic s.csv \
      --target "${target[$t]}" --out r.json >/dev/null 2>&1
    model=$(sed -n 's/^model: *\([a-z]*\).*/\1/p' fit.log)
    /usr/bin/python3 - "$t" "$n" "$method" "$model" <<'PY'
import json, sys
t, n, method, model = sys.argv[1:]
S = json.load(open('r.json'))['summary']
print(f"| {t} | {n} | {method} | {model} | {S['disc_auc_vs_holdout_rf']:.3f} ({S['disc_auc_holdout_ref_rf']:.3f}) | "
      f"{S['ml_relative_utility']:.3f} | {S['flag_memorisation']} |")
PY
  done
done
