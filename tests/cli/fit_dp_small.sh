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

# A whole-number column of few values (1-3, 10 % ones, a few missing), as
# a tumour grade is, among 13 other columns (so each histogram's noise is
# large): at some seeds its released smooth shape starts between two whole
# numbers (1.07, say), and records rounds a draw to the nearest. The spec's
# min must be the whole number that the lowest draws round to (1), not the
# next one up: with min 2 an AIM spec's lowest bin held no value at all and
# records refused it, and the copula's ones were all written as 2. Seeds 6,
# 15 and 30 give such shapes (checked below, so the case stays covered).
/usr/bin/python3 - <<'PY'
import csv, random
rnd = random.Random(5)
with open('grade.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['grade', 'node4', 'female', 'arm'] + ['b%d' % i for i in range(10)])
    for i in range(1400):
        g = rnd.choices(['1', '2', '3', ''], [145, 993, 221, 34])[0]
        n4 = int(rnd.random() < (0.45 if g == '3' else 0.25))
        w.writerow([g, n4, int(rnd.random() < 0.48), rnd.choice(['Obs', 'Lev', 'Lev+5FU'])] +
                   [int(rnd.random() < 0.3) for i in range(10)])
PY
for method in aim copula; do
  for seed in 6 15 30; do
    "$M" fit --data grade.csv --epsilon 1 --method $method --seed $seed -o g.json --force 2>g.log
    "$M" records --spec g.json -n 4000 --seed 1 -o g.csv -q --force || { echo "records refused the $method spec of seed $seed" >&2; exit 1; }
    /usr/bin/python3 - $method $seed <<'PY' >>starts.txt
import csv, json, sys
spec = json.load(open('g.json'))
f = {x['name']: x for x in spec['tables'][0]['fields']}['grade']
v = [r['grade'] for r in csv.DictReader(open('g.csv')) if r['grade'] != '']
ones = v.count('1') / len(v)
# real share 145/1359 = 0.107; a count's noise is sigma ~ 50 rows against
# 1400, and 4000 draws add sd 0.005
assert f['min'] == 1, (sys.argv[1:], f['min'])
assert 0.03 < ones < 0.2, (sys.argv[1:], ones)
print(f['dist'].get('values', [0])[0])
PY
  done
done
# at least one shape started above 1 (the case above)
awk '$1 > 1 && $1 < 1.5 {n++} END {exit !(n > 0)}' starts.txt
