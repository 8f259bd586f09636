#!/usr/bin/env bash
# `medsynth fit` with public inputs (docs/privacy.md): date and number
# --bounds, --domain and --rebalance, under DP and without it, read back with
# Python's csv module. Usage: fit_public_inputs.sh <medsynth> <source-dir>
set -eu
M=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T"
/usr/bin/python3 - <<'PY'
import datetime, random
r = random.Random(5)
with open('adm.csv', 'w') as f:
    f.write('id,sex,race,ward,admit,score,los\n')
    for i in range(3000):
        race = r.choices(['white', 'black', 'asian', 'other'], [70, 15, 10, 5])[0]
        # ward depends strongly on race: the relation rebalancing must keep
        ward = r.choices(['A', 'B', 'C'], {'white': [80, 10, 10], 'black': [10, 80, 10],
                                           'asian': [10, 10, 80], 'other': [34, 33, 33]}[race])[0]
        admit = datetime.date(2022, 1, 1) + datetime.timedelta(days=r.randrange(1096))
        score = round(min(1, max(0, r.betavariate(2, 5))), 3)
        f.write(f'{i},{r.choice("FM")},{race},{ward},{admit.isoformat()},{score},{1 + int(r.expovariate(0.25))}\n')
PY
# Under DP with public bounds and domains: nothing outside them, complete
# columns complete, the budget in the spec.
"$M" fit --data adm.csv --id id --epsilon 1 --delta 1e-5 --method mst \
  --bounds admit=2022-01-01:2024-12-31,score=0:1 --domain sex=F,M,X --domain race=white,black,asian,other \
  -o dp.json 2>dp.log
"$M" records --spec dp.json -n 3000 --seed 1 -o dp.csv -q
# The same with AIM (cliques of up to three columns).
"$M" fit --data adm.csv --id id --epsilon 1 --delta 1e-5 --method aim \
  --bounds admit=2022-01-01:2024-12-31,score=0:1 --domain sex=F,M,X --domain race=white,black,asian,other \
  -o dpa.json 2>dpa.log
"$M" records --spec dpa.json -n 3000 --seed 1 -o dpa.csv -q
# Dates under DP without bounds: a grid of calendar years finds 2022-2024.
"$M" fit --data adm.csv --id id --epsilon 1 --delta 1e-5 -o nb.json 2>/dev/null
"$M" records --spec nb.json -n 3000 --seed 4 -o nb.csv -q
/usr/bin/python3 - <<'PY'
import csv
d = [r['admit'] for r in csv.DictReader(open('nb.csv'))]
inside = sum('2022-01-01' <= x <= '2024-12-31' for x in d) / len(d)
if inside < 0.99 or min(d) < '2021-01-01' or max(d) > '2025-12-31':
    raise SystemExit('dates without bounds: %.3f inside 2022-2024, range %s..%s' % (inside, min(d), max(d)))
PY
# Public bounds that exclude data: clamped, and the count reported to the operator.
# (a second --bounds adds to the first: score keeps its bounds)
"$M" fit --data adm.csv --id id --epsilon 1 --bounds score=0:0.5 --bounds admit=2022-01-01:2024-12-31 -o cl.json 2>cl.log
grep -q "score: [0-9]* rows outside --bounds 0:0.5, counted at the nearest bound" cl.log ||
  { echo "FAIL: clamped rows not reported"; cat cl.log; exit 1; }
# A column bounded twice: the last --bounds applies, and only it is reported.
"$M" fit --data adm.csv --id id --epsilon 1 --bounds score=0:0.4,score=0:0.5 -o cl2.json 2>cl2.log
[ "$(grep -c 'score: [0-9]* rows outside --bounds' cl2.log)" = 1 ] && grep -q 'outside --bounds 0:0.5,' cl2.log ||
  { echo "FAIL: a twice-bounded column reported other than once with its last bounds"; cat cl2.log; exit 1; }
# Without noise, race rebalanced to equal shares: ward given race kept.
"$M" fit --data adm.csv --id id --method mst --rebalance race=uniform -o rb.json 2>rb.log
"$M" records --spec rb.json -n 8000 --seed 2 -o rb.csv -q
# Label weights by name
"$M" fit --data adm.csv --id id --method mst --rebalance race=white:1,black:1,asian:1,other:2 -o rb2.json 2>/dev/null
"$M" records --spec rb2.json -n 8000 --seed 3 -o rb2.csv -q
# AIM rebalanced the same way
"$M" fit --data adm.csv --id id --method aim --rebalance race=uniform -o rb3.json 2>/dev/null
"$M" records --spec rb3.json -n 8000 --seed 2 -o rb3.csv -q
/usr/bin/python3 - <<'PY'
import csv, json, math, collections
fail = []
def rows(p): return list(csv.DictReader(open(p)))
real = rows('adm.csv')
for name in ('dp', 'dpa'):
    dp = rows(name + '.csv')
    if list(dp[0].keys()) != list(real[0].keys()): fail.append('%s: header differs: %s' % (name, list(dp[0].keys())))
    for r in dp:
        if not ('2022-01-01' <= r['admit'] <= '2024-12-31'): fail.append(name + ': admit out of bounds: ' + r['admit']); break
        if not (0 <= float(r['score']) <= 1): fail.append(name + ': score out of bounds: ' + r['score']); break
        if r['sex'] not in ('F', 'M', 'X') or r['race'] not in ('white', 'black', 'asian', 'other'):
            fail.append('%s: label outside the domain: %s %s' % (name, r['sex'], r['race'])); break
        if any(v == '' for v in r.values()): fail.append(name + ': a missing value in a complete column'); break
pv = json.load(open('dp.json'))['privacy']
# (with the tests of determined labels and bands, when they ran)
if abs(pv['mst']['rho_selection'] + pv['mst']['rho_edges'] + pv['split']['marginals'] + pv['split'].get('relations', 0) - pv['rho']) > 1e-5 * pv['rho']:
    fail.append('the parts of rho do not add up')
pv = json.load(open('dpa.json'))['privacy']
if abs(pv['aim']['rho_selection'] + pv['aim']['rho_marginals'] + pv['split']['marginals'] + pv['split'].get('relations', 0) - pv['rho']) > 1e-5 * pv['rho']:
    fail.append('aim: the parts of rho do not add up')
# Rebalanced: equal race shares (sd of a share on 8000 rows <= 0.0056; 5 sd)
for name in ('rb', 'rb3'):
  rb = rows(name + '.csv')
  n = len(rb)
  share = collections.Counter(r['race'] for r in rb)
  for race in ('white', 'black', 'asian', 'other'):
      if abs(share[race] / n - 0.25) > 5 * math.sqrt(0.25 * 0.75 / n):
          fail.append(name + ': race %s share %.3f, want 0.25' % (race, share[race] / n))
  # ... and P(ward | race) as in the real table (each conditional share on
  # >= 2000 synthetic and >= 150 real rows: sd <= 0.04 together; 4 sd)
  for race in ('white', 'black', 'asian'):
      for ward in 'ABC':
          p_real = sum(r['ward'] == ward for r in real if r['race'] == race) / sum(r['race'] == race for r in real)
          p_syn = sum(r['ward'] == ward for r in rb if r['race'] == race) / share[race]
          if abs(p_real - p_syn) > 0.16:
              fail.append(name + ': P(ward=%s | race=%s) real %.2f synthetic %.2f' % (ward, race, p_real, p_syn))
spec = json.load(open('rb.json'))
if spec['privacy']['mst'].get('rebalanced') != 'race': fail.append('spec does not record the rebalancing')
if json.load(open('rb3.json'))['privacy']['aim'].get('rebalanced') != 'race': fail.append('aim: spec does not record the rebalancing')
rb2 = rows('rb2.csv')
s2 = collections.Counter(r['race'] for r in rb2)
if abs(s2['other'] / len(rb2) - 0.4) > 5 * math.sqrt(0.24 / len(rb2)):
    fail.append('label:weight rebalancing: other share %.3f, want 0.4' % (s2['other'] / len(rb2)))
if fail:
    print('\n'.join(fail)); raise SystemExit(1)
print('fit public inputs: ok')
PY
