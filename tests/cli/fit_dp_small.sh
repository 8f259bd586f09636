#!/usr/bin/env bash
# `medsynth fit --epsilon 1` on a small, wide table (docs/privacy.md, "Small
# budgets: a smooth shape" and "Correlations"): the 455-row, 31-column
# breast-cancer table, where each histogram's noise (sigma about 50) is
# large against its counts. Checked with Python on the generated rows: the
# numeric columns keep their spread (no column collapses onto one narrow
# bin), nothing lies outside the released range, the size measurements keep
# their strong correlation (the spectral estimate finds it), and the spec
# and stderr say how the marginals and correlations were estimated.
# Usage: fit_dp_small.sh <medsynth> <source-dir>
set -eu
M=$1
S=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
"$M" fit --data "$S/tests/data/breast_cancer_train.csv" --epsilon 1 --delta 1e-5 --seed 7 -o dp.json 2>dp.log
"$M" records --spec dp.json -n 2000 --seed 1 -o dp.csv -q
grep -q 'component(s) above the noise' dp.log
/usr/bin/python3 - "$S/tests/data/breast_cancer_train.csv" <<'PY'
import csv, json, math, statistics, sys
real = list(csv.DictReader(open(sys.argv[1])))
syn = list(csv.DictReader(open('dp.csv')))
spec = json.load(open('dp.json'))
fields = {f['name']: f for f in spec['tables'][0]['fields']}
num = [c for c in real[0] if c != 'diagnosis']
def col(rows, c):
    return [float(r[c]) for r in rows if r[c] != '']
def iqr(v):
    q = statistics.quantiles(v, n=4)
    return q[2] - q[0]
smooth = sum(len((fields[c].get('dist') or {}).get('values', [])) == 41 for c in num)
# the smooth shape is the marginal of most numeric columns (41 knots)
assert smooth >= len(num) // 2, smooth
collapsed = []
for c in num:
    r, s = col(real, c), col(syn, c)
    lo, hi = fields[c]['min'], fields[c]['max']
    assert all(lo <= v <= hi for v in s), (c, lo, hi)
    # a column drawn from one narrow bin has an IQR far below the real one
    # (before the smooth shape, area_error's was 5 against 25 at this epsilon)
    if iqr(s) < 0.3 * iqr(r):
        collapsed.append(c)
assert len(collapsed) <= 2, collapsed
def corr(a, b):
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    sab = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return sab / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
# radius, perimeter and area (of the mean and the worst nucleus): 0.94 on
# average over their 15 pairs in the real table; shrunk to the identity
# this was about 0 (sd 1/sqrt(2000) = 0.02 a pair); the first spectral
# component keeps part of it (0.24-0.58 in the spec over fit seeds 1-6)
import itertools
size = [p + '_' + m for p in ('mean', 'worst') for m in ('radius', 'perimeter', 'area')]
rr = statistics.fmean(corr(col(syn, a), col(syn, b)) for a, b in itertools.combinations(size, 2))
assert rr > 0.15, rr
PY
