#!/usr/bin/env bash
# `medsynth fit --epsilon` with `--method auto` on tables where fewer than
# half the columns are categorical (docs/fit.md, "Which model"): one of four
# gets the copula below 2,000 rows and AIM from 2,000 rows by the row count
# the relations' tests release (two real columns: the numbers' order search
# runs, so the count is released); one of five (a table of measurements)
# keeps the copula on as many rows. The choice is printed and stored as
# privacy.model, the spent parts of the budget add up to rho in both
# models, `--method copula` still forces the copula, and without --epsilon
# the row count plays no part.
# Usage: fit_dp_auto.sh <medsynth> <source-dir>
set -eu
M=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
/usr/bin/python3 - <<'PY'
import csv, random
rng = random.Random(5)
for name, n in (('large', 2600), ('small', 1200), ('measures', 2600)):
    with open(name + '.csv', 'w', newline='') as fh:
        w = csv.writer(fh)
        w.writerow(['age', 'weight', 'creatinine', 'sex'] + (['height'] if name == 'measures' else []))
        for _ in range(n):
            sex = rng.choice('fm')
            age = rng.randint(20, 90)
            weight = round(rng.gauss(70 if sex == 'f' else 82, 12), 1)
            row = [age, weight, round(rng.lognormvariate(0, 0.3) + age / 200, 2), sex]
            w.writerow(row + ([round(rng.gauss(164 if sex == 'f' else 177, 7))] if name == 'measures' else []))
PY
fail=0
check() { # spec log model [rows]
  /usr/bin/python3 - "$@" <<'PY' || fail=1
import json, sys
spec, log, model = sys.argv[1:4]
text = open(log).read()
line = [l for l in text.splitlines() if l.startswith('model:')][0]
errs = []
if not line.split()[1] == model:
    errs.append('printed model %r, want %s' % (line, model))
pv = json.load(open(spec))['privacy']
if pv.get('model') != model:
    errs.append('spec model %r, want %s' % (pv.get('model'), model))
if len(sys.argv) > 4 and ('on 2000 rows or more' in line) != (sys.argv[4] == 'rows'):
    errs.append('reason %r' % line)
if 'rho' in pv:  # under --epsilon: the spent parts add up to rho
    spent = sum(pv['split'].get(k, 0) for k in ('marginals', 'correlations', 'missingness', 'relations'))
    if model == 'aim':
        spent += pv.get('aim', {}).get('rho_selection', 0) + pv.get('aim', {}).get('rho_marginals', 0)
    if abs(spent - pv['rho']) > 1e-5 * pv['rho']:
        errs.append('spent %g of rho %g' % (spent, pv['rho']))
for e in errs:
    print('FAIL %s: %s' % (spec, e))
sys.exit(1 if errs else 0)
PY
}
"$M" fit --data large.csv --epsilon 1 --delta 1e-5 --seed 3 -o large.json 2>large.log
check large.json large.log aim rows
"$M" fit --data small.csv --epsilon 1 --delta 1e-5 --seed 3 -o small.json 2>small.log
check small.json small.log copula norows
"$M" fit --data measures.csv --epsilon 1 --delta 1e-5 --seed 3 -o measures.json 2>measures.log
check measures.json measures.log copula norows
"$M" fit --data large.csv --epsilon 1 --delta 1e-5 --seed 3 --method copula -o forced.json 2>forced.log
check forced.json forced.log copula
"$M" fit --data large.csv --seed 3 -o exact.json 2>exact.log
check exact.json exact.log copula norows
# the AIM spec generates, its rows keep the columns and the labels
"$M" records --spec large.json -n 500 --seed 1 -o large_syn.csv -q
head -1 large_syn.csv | grep -qx 'age,weight,creatinine,sex' || {
  echo "FAIL: header $(head -1 large_syn.csv)"
  fail=1
}
[ "$(cut -d, -f4 large_syn.csv | tail -n +2 | sort -u | tr '\n' ' ')" = "f m " ] || {
  echo "FAIL: sex labels $(cut -d, -f4 large_syn.csv | tail -n +2 | sort -u | tr '\n' ' ')"
  fail=1
}
exit $fail
