#!/usr/bin/env bash
# `medsynth fit --epsilon` keeps the input's format and domain (docs/privacy.md,
# "Decimals", "Row count and missing shares", "Labels no count releases"):
#  1. a real column is written at the decimals most of its values use,
#     released through a noisy histogram, not at the most any one value has;
#  2. a categorical column none of whose labels passes the release threshold
#     is written as always missing, with a warning naming --domain, never as
#     a label the input lacks;
#  3. a column's missing share is its noisy missing count over the row count
#     pooled from every column, so no column of a small, wide table comes out
#     (nearly) all missing;
#  4. an integer code keeps its values 1 and 2 next to 0 on the log grid;
#  5. a column present exactly where another holds a label (a cause of
#     death, only for the dead) keeps that rule: a noisy cell below 3 sigma
#     of its 2x2 table is an empty cell, not a reason to drop the rule;
#  6. a column filling a sliver of its grid bin (calendar years, sodium) is
#     written within the rows' own range (the zoom), a column spread over
#     several grid bins with a frequent 0 keeps its other values, and a
#     sparse tail inside a kept grid bin is not cut off;
#  7. a real column's decimals are read against the pooled row count, not
#     the sum of the decimals histogram's own noisy counts;
#  8. scores of 1-10 stay within 1-10: 10 ends an integer column's grid bin
#     (4-10) instead of opening the next (10-31).
# Usage: fit_dp_format.sh <medsynth> <source-dir>
set -eu
M=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"

# 1. Decimals. A light-chain-like column: 88 % of its values at 2 decimals,
# 10 % that happen to need 1, 2 % measured to 3, and one value with a
# floating-point tail of 14 decimals; a ratio at 4 decimals (a fifth of them
# ending in 0, so written with 3). Without the noisy histogram the first was
# written at 9 decimals (the most seen), off the grid the real values pile
# up on.
/usr/bin/python3 - <<'PY'
import csv, random
rnd = random.Random(3)
with open('dec.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['kappa', 'ratio', 'age', 'sex', 'dose', 'score'])
    for i in range(3000):
        u = rnd.random()
        k = round(rnd.lognormvariate(0.2, 0.5), 2)
        if u < 0.10:
            k = round(k, 1)
        elif u < 0.12:
            k = round(rnd.lognormvariate(0.2, 0.5), 3)
        ks = '0.92248062015503' if i == 17 else repr(k)
        r = round(rnd.uniform(0.05, 0.2), 4)
        w.writerow([ks, repr(r), rnd.randint(40, 90), rnd.choice('FM'), rnd.randint(1, 30), rnd.randint(0, 10)])
PY
for method in copula aim; do
  for seed in 1 2 3; do
    "$M" fit --data dec.csv --epsilon 1 --method $method --seed $seed -o d.json --force 2>d.log
    "$M" records --spec d.json -n 3000 --seed 1 -o d.csv -q --force
    /usr/bin/python3 - $method $seed <<'PY'
import csv, json, sys
spec = json.load(open('d.json'))
f = {x['name']: x for x in spec['tables'][0]['fields']}
assert f['kappa']['precision'] == 2, (sys.argv[1:], f['kappa']['precision'])
assert f['ratio']['precision'] == 4, (sys.argv[1:], f['ratio']['precision'])
me = spec['privacy']['mechanisms']
assert set(me['decimals_sigma']) == {'kappa', 'ratio'}, me['decimals_sigma']
assert 'decimals' in me
def dec(s):
    return len(s.split('.')[1]) if '.' in s else 0
rows = list(csv.DictReader(open('d.csv')))
assert max(dec(r['kappa']) for r in rows if r['kappa']) <= 2
# the ratio is on its 4-decimal grid, not rounded coarser
assert sum(dec(r['ratio']) == 4 for r in rows if r['ratio']) > 0.5 * len(rows)
PY
  done
done

# 2. No label released. 40 rows: a count's noise (sigma about 15 rows) puts
# the release threshold far above either arm's 20 rows.
/usr/bin/python3 - <<'PY'
import csv, random
rnd = random.Random(4)
with open('arm.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['arm', 'age', 'weight', 'dose', 'score', 'site'])
    for i in range(40):
        w.writerow(['Lev' if i % 2 else 'Obs', rnd.randint(40, 90), rnd.randint(50, 110), rnd.randint(1, 30),
                    rnd.randint(0, 10), rnd.choice(['north', 'south'])])
PY
"$M" fit --data arm.csv --epsilon 1 --seed 1 -o a.json 2>a.log
grep -q "arm: no label's noisy count passed the release threshold" a.log
grep -q -- "--domain arm=" a.log
"$M" records --spec a.json -n 200 --seed 1 -o a.csv -q
/usr/bin/python3 - <<'PY'
import csv, json
f = {x['name']: x for x in json.load(open('a.json'))['tables'][0]['fields']}
assert f['arm']['missing'] == 1, f['arm']
rows = list(csv.DictReader(open('a.csv')))
assert all(r['arm'] == '' for r in rows), {r['arm'] for r in rows}
assert all(r['site'] in ('', 'north', 'south') for r in rows), {r['site'] for r in rows}
PY
# declared labels need no threshold: both are written
"$M" fit --data arm.csv --epsilon 1 --seed 1 --domain arm=Lev,Obs -o b.json 2>b.log
! grep -q "no label's noisy count" b.log
"$M" records --spec b.json -n 200 --seed 1 -o b.csv -q
/usr/bin/python3 - <<'PY'
import csv
v = {r['arm'] for r in csv.DictReader(open('b.csv'))}
assert v <= {'Lev', 'Obs', ''} and {'Lev', 'Obs'} <= v, v
PY

# One label released: an outcome whose rarer labels (48, 48 and 24 of 600
# rows) sit under the threshold (about 100 rows at this size) comes out
# constant; the operator is told, and the accounting says how many labels
# passed. With --domain every label is measured, and no warning.
/usr/bin/python3 - <<'PY'
import csv, random
rnd = random.Random(5)
with open('out.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['age', 'outcome'])
    for i in range(600):
        w.writerow([rnd.randint(20, 90), 'ltx' if i % 25 < 20 else ('death', 'censored', 'death', 'censored', 'withdraw')[i % 25 - 20]])
PY
"$M" fit --data out.csv --epsilon 1 --seed 1 -o o.json 2>o.log
grep -q "outcome: only one label's noisy count passed the release threshold" o.log
grep -q -- "--domain outcome=" o.log
grep -Eq "outcome +rho .*\(labels over [0-9]+ rows: 1 released\)" o.log
"$M" fit --data out.csv --epsilon 1 --seed 1 --domain outcome=censored,death,ltx,withdraw -o o2.json 2>o2.log
! grep -q "only one label" o2.log
! grep -q "labels over" o2.log
# each number's released range is in the accounting, with the hint to
# declare it; a declared range holds the released one
grep -Eq "^    age +rho .* range [0-9]+\.\.[0-9]+$" o.log
grep -q "ranges:       released from the data; .* --bounds col=lo:hi" o.log
"$M" fit --data out.csv --epsilon 1 --seed 1 --bounds age=20:90 -o o3.json 2>o3.log
/usr/bin/python3 - <<'PY'
import re
a, b = map(float, re.search(r"^    age +rho .* range (\S+)\.\.(\S+)$", open('o3.log').read(), re.M).groups())
assert 20 <= a <= b <= 90, (a, b)
PY
/usr/bin/python3 - <<'PY'
import json
f = {x['name']: x for x in json.load(open('o.json'))['tables'][0]['fields']}
assert list(f['outcome']['values']) == ['ltx'], f['outcome']
f = {x['name']: x for x in json.load(open('o2.json'))['tables'][0]['fields']}
assert sorted(f['outcome']['values']) == ['censored', 'death', 'ltx', 'withdraw'], f['outcome']
PY

# 3. Missing shares on a small, wide table: 313 rows, 19 laboratory values
# (9-464), a quarter of the rows lacking all of them. Each column's noise is
# about 40 rows, and its fine bins summed can be near 0 or below; over that
# sum the missing share came out 0.83 at two of these eight seeds. Over the
# pooled row count (about 313) a share above 0.75 needs a missing count
# 4 sigma above the real 78.
/usr/bin/python3 - <<'PY'
import csv, random, math
rnd = random.Random(11)
with open('labs.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['lab%d' % i for i in range(19)])
    for i in range(313):
        gone = i % 4 == 0
        w.writerow(['' if gone else int(min(464, max(9, math.exp(rnd.gauss(4.2, 0.8))))) for j in range(19)])
PY
for seed in 1 2 3 4 5 6 7 8; do
  "$M" fit --data labs.csv --epsilon 1 --seed $seed -o l.json --force 2>l.log
  /usr/bin/python3 - $seed <<'PY' >>rows.txt
import json, sys
t = json.load(open('l.json'))['tables'][0]
worst = max(f.get('missing', 0) for f in t['fields'])
assert worst <= 0.75, (sys.argv[1], worst)
print(t['rows'])
PY
done
# The row count is pooled from every column's total with its missing count
# before the 3 sigma rule (sd about 30 rows here, so the mean of eight is
# within 40 of 313); totals with the missing counts released as 0 (most of
# these columns' 78 rows fall below 3 sigma) had put it at 270 on average.
awk '{s += $1} END {m = s / NR; exit !(m > 273 && m < 353)}' rows.txt

# 4. A 0/1/2 code among 19 laboratory values (313 rows; a status: 56 %
# 0, 6 % 1, 39 % 2). On the log grid of an integer column the six bins
# between 0.001 and 1 hold no whole number; left in, their noise parted 0
# from 1-3, and 1 and 2 were dropped whenever 0 alone was the support's
# core: the column came out all 0 in 11 of these 12 fits (the real share
# of 1 and 2 is 0.44; 2,000 draws add sd 0.01).
/usr/bin/python3 - <<'PY'
import csv, random, math
rnd = random.Random(12)
with open('st.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['status'] + ['lab%d' % i for i in range(19)])
    for i in range(313):
        st = rnd.choices([0, 1, 2], [174, 18, 121])[0]
        w.writerow([st] + [int(min(464, max(9, math.exp(rnd.gauss(4.2, 0.8))))) for j in range(19)])
PY
for method in aim copula; do
  for seed in 1 2 3 4 5 6; do
    "$M" fit --data st.csv --epsilon 1 --method $method --seed $seed -o s.json --force 2>s.log
    "$M" records --spec s.json -n 2000 --seed 1 -o s.csv -q --force
    /usr/bin/python3 - <<'PY' >>shares.txt
import csv
v = [int(r['status']) for r in csv.DictReader(open('s.csv')) if r['status'] != '']
print(sum(x >= 1 for x in v) / len(v))
PY
  done
done
awk '$1 > 0.2 && $1 < 0.7 {n++} END {exit !(n >= 9)}' shares.txt

# 5. Structural missingness. A cause recorded only for the dead (30 % of
# 2,000 rows): its 2x2 table against `died` has two empty cells. Under DP
# a candidate needed every noisy cell above 3 sigma (about 180 rows here),
# so the rule was refused exactly because it holds on every row, and the
# copula wrote causes for the living and none for a third of the dead.
/usr/bin/python3 - <<'PY'
import csv, random
rnd = random.Random(13)
with open('cause.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['age', 'sex', 'kappa', 'died', 'cause'])
    for i in range(2000):
        age = rnd.randint(50, 95)
        died = int(rnd.random() < 0.1 + 0.4 * (age - 50) / 45)
        cause = rnd.choice(['Circulatory', 'Neoplasms', 'Respiratory', 'Mental']) if died else ''
        w.writerow([age, rnd.choice('FM'), round(rnd.lognormvariate(0.2, 0.5), 2), died, cause])
PY
for seed in 1 2 3; do
  "$M" fit --data cause.csv --epsilon 1 --method copula --seed $seed -o c.json --force 2>c.log
  grep -q "missingness of cause depends on died == '1': rate 0 where it holds, 1 elsewhere" c.log
  "$M" records --spec c.json -n 3000 --seed 1 -o c.csv -q --force
  /usr/bin/python3 - $seed <<'PY'
import csv, sys
rows = list(csv.DictReader(open('c.csv')))
bad = sum((r['died'] == '1') != (r['cause'] != '') for r in rows)
assert bad == 0, (sys.argv[1], bad)
assert 0.15 < sum(r['died'] == '1' for r in rows) / len(rows) < 0.5
PY
done

# 6. The zoom. 2,000 rows: a diagnosis year 1978-1993 (one grid bin of
# 1000-3162) was written uniformly over about 1830-1997; sodium 128-148
# (one bin of 100-316) over 100-316. A receptor count 0 in 10 % of rows,
# the rest spread log-uniformly over 1-1,000: its 0 could be the only peak
# above the z level and the rest was dropped (all written 0). A follow-up
# time whose lowest 8 % lie in 40-300 days, below a bulk of 1,000-3,000:
# the support test over fine bins had cut that tail.
/usr/bin/python3 - <<'PY'
import csv, random, math
rnd = random.Random(61)
with open('zoom.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['year', 'sodium', 'pgr', 'time', 'sex'])
    for i in range(2000):
        year = min(1993, max(1978, int(rnd.gauss(1988, 3.5))))
        pgr = 0 if rnd.random() < 0.1 else int(math.exp(rnd.uniform(0, math.log(1000))))
        time = rnd.randint(40, 300) if rnd.random() < 0.08 else rnd.randint(1000, 3000)
        w.writerow([year, round(rnd.gauss(139, 3), 1), pgr, time, rnd.choice('FM')])
PY
for seed in 1 2 3; do
  "$M" fit --data zoom.csv --epsilon 1 --method copula --seed $seed -o z.json --force 2>z.log
  "$M" records --spec z.json -n 4000 --seed 1 -o z.csv -q --force
  /usr/bin/python3 - $seed <<'PY'
import csv, sys
rows = list(csv.DictReader(open('z.csv')))
col = lambda c: [float(r[c]) for r in rows if r[c] != '']
y, na, pg, t = col('year'), col('sodium'), col('pgr'), col('time')
inside = lambda v, a, b: sum(a <= x <= b for x in v) / len(v)
assert inside(y, 1970, 2000) > 0.97, (sys.argv[1], 'year', min(y), max(y))
assert inside(na, 120, 160) > 0.97, (sys.argv[1], 'sodium', min(na), max(na))
assert 0.3 < inside(pg, 1, 1e4) < 0.98, (sys.argv[1], 'pgr', inside(pg, 1, 1e4))
assert 0.02 < inside(t, 0, 500) < 0.2, (sys.argv[1], 'time', inside(t, 0, 500))
PY
done

# 7. Decimals against the pooled row count. A creatinine column of 1,000
# rows at 1 decimal (4 values at 2) among ten columns: the noise of the
# ten-count sum (sigma about 51 each) had pushed no d to 80 % of it, and the
# column was written at 2 decimals in 3 of these 6 fits.
/usr/bin/python3 - <<'PY'
import csv, random
rnd = random.Random(7)
with open('dec.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['age', 'sex', 'hgb', 'creat', 'mspike', 'ptime', 'pstat', 'futime', 'death', 'dxyr'])
    for i in range(1000):
        cr = round(max(0.4, rnd.lognormvariate(0.1, 0.35)), 2 if i % 250 == 0 else 1)
        w.writerow([rnd.randint(40, 90), rnd.choice('FM'), round(rnd.gauss(13, 1.7), 1), cr,
                    round(rnd.uniform(0, 3), 1), rnd.randint(1, 400), int(rnd.random() < 0.1),
                    rnd.randint(1, 420), int(rnd.random() < 0.6), rnd.randint(1960, 1994)])
PY
for seed in 1 2 3 4 5 6; do
  "$M" fit --data dec.csv --epsilon 1 --seed $seed -o d.json --force 2>d.log
  /usr/bin/python3 - $seed <<'PY'
import json, sys
f = {x['name']: x for x in json.load(open('d.json'))['tables'][0]['fields']}
got = [f[c].get('precision') for c in ('hgb', 'creat', 'mspike')]
assert got == [1, 1, 1], (sys.argv[1], got)
PY
done

# 8. Nine scores of 1-10 (480 rows; a third of the rows at 10 for
# malignant cases, most of the others at 1), as R's biopsy table holds.
# With 10 opening the grid bin 10-31 that bin was kept and the histogram
# could not tell 11-31 empty: 13-19 % of the synthetic scores were above 10
# at these seeds (ranges up to 1..24 for a real 1..10); with 10 in the bin
# 4-10 they are 0-3 %, above 10 only where a bin of noise beside the rows
# lengthened the support test's run.
/usr/bin/python3 - <<'PY'
import csv, random
rnd = random.Random(3)
with open('sc.csv', 'w', newline='') as fh:
    w = csv.writer(fh)
    w.writerow(['s%d' % j for j in range(9)] + ['class'])
    for i in range(480):
        bad = rnd.random() < 0.35
        wt = [4, 4, 6, 7, 8, 8, 8, 9, 5, 41] if bad else [55, 15, 12, 6, 4, 3, 2, 1, 1, 1]
        w.writerow([rnd.choices(range(1, 11), wt)[0] for j in range(9)] + ['malignant' if bad else 'benign'])
PY
for seed in 1 2 3 4; do
  "$M" fit --data sc.csv --epsilon 1 --seed $seed -o sc.json --force 2>sc.log
  "$M" records --spec sc.json -n 4800 --seed 1 -o scs.csv -q --force
  /usr/bin/python3 - <<'PY' >>above.txt
import csv
v = [int(x) for r in list(csv.reader(open('scs.csv')))[1:] for x in r[:9] if x != '']
print(sum(x > 10 for x in v) / len(v))
PY
done
awk '{s += $1} END {exit !(s / NR < 0.04)}' above.txt ||
  { echo "FAIL: scores of 1-10 drawn above 10:"; cat above.txt; exit 1; }
