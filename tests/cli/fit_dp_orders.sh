#!/usr/bin/env bash
# Orders between numbers under differential privacy (docs/privacy.md,
# "Orders between numbers"): `fit --epsilon 1` keeps a time to an event
# before the follow-up (equal where no event happened) and draws the
# follow-up after it, keeps no order that the ranges alone imply (nodes
# below age) nor one between two scores that share their lowest value,
# spends what it reports, runs no round on a table too small for its power,
# leaves a number with declared --bounds or a declared --order alone, and is
# reproducible for a seed.
# Usage: fit_dp_orders.sh <medsynth> <source-dir>
set -eu
M=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T" <<'PY'
import random, sys
T = sys.argv[1]
def table(path, n, seed):
    r = random.Random(seed)
    with open(path, "w") as f:
        f.write("age,nodes,score_a,score_b,ptime,pstat,futime,rtime,dtime,death\n")
        for i in range(n):
            age = r.randint(30, 90)
            nodes = min(int(r.expovariate(0.25)), 29)
            # two 1-10 scores, mostly 1, the second rarely above the first
            sa = 1 if r.random() < 0.6 else r.randint(1, 10)
            sb = 1 if r.random() < 0.7 else r.randint(1, sa)
            # follow-up in days; progression (30 %) ends ptime before it
            fu = 30 + int(r.expovariate(1 / 2000))
            prog = r.random() < 0.3
            pt = r.randint(1, fu) if prog else fu
            # recurrence (50 %) before death or censoring
            dt = 60 + int(r.expovariate(1 / 2500))
            rec = r.random() < 0.5
            rt = r.randint(1, dt) if rec else dt
            f.write(f"{age},{nodes},{sa},{sb},{pt},{int(prog)},{fu},{rt},{dt},{int(r.random() < 0.4)}\n")
table(f"{T}/surv.csv", 3000, 1)
table(f"{T}/small.csv", 300, 2)
PY
for s in 1 2 3; do
  "$M" fit --data "$T/surv.csv" --epsilon 1 --method copula --seed $s -o "$T/s$s.json" --force 2>"$T/s$s.log"
  "$M" records --spec "$T/s$s.json" -n 3000 --seed 7 -o "$T/s$s.csv" -q --force
done
"$M" fit --data "$T/surv.csv" --epsilon 1 --method aim --seed 1 -o "$T/aim.json" --force 2>"$T/aim.log"
"$M" records --spec "$T/aim.json" -n 3000 --seed 7 -o "$T/aim.csv" -q --force
"$M" fit --data "$T/surv.csv" --epsilon 1 --method copula --seed 1 -o "$T/again.json" --force 2>/dev/null
cmp "$T/s1.json" "$T/again.json" || { echo "FAIL: the same seed gave another spec" >&2; exit 1; }
"$M" fit --data "$T/small.csv" --epsilon 1 --seed 1 -o "$T/small.json" --force 2>"$T/small.log"
"$M" fit --data "$T/surv.csv" --epsilon 1 --seed 1 --bounds futime=0:20000 -o "$T/bounded.json" --force 2>/dev/null
"$M" fit --data "$T/surv.csv" --epsilon 1 --seed 1 --order "dtime>=rtime" -o "$T/declared.json" --force \
  2>"$T/declared.log"
grep -q "kept exactly: futime is >= ptime" "$T/s1.log" || { echo "FAIL: no order in the report" >&2; cat "$T/s1.log" >&2; exit 1; }
grep -q "round(s) of the numbers' order search" "$T/s1.log" || { echo "FAIL: no rounds in the accounting" >&2; exit 1; }
grep -q "declared:     dtime is >= rtime" "$T/declared.log" || { echo "FAIL: the declared order is not reported" >&2; exit 1; }

/usr/bin/python3 - "$T" <<'PY'
import csv, json, math, sys
T = sys.argv[1]
fail = []
real = list(csv.DictReader(open(f"{T}/surv.csv")))
def eq_share(rows, a, b):
    return sum(r[a] == r[b] for r in rows) / len(rows)

def fields(spec):
    return {f["name"]: f for f in json.load(open(spec))["tables"][0]["fields"]}

def after(f, b):
    """the column b is drawn after (b = a + its hidden gap), or None"""
    e = f[b].get("expr", "")
    return e.split(" + ")[0] if e.endswith(f" + {b}_gap") else None

def check_rows(name, path):
    rows = list(csv.DictReader(open(path)))
    for a, b in (("ptime", "futime"), ("rtime", "dtime")):
        broken = sum(1 for r in rows if r[a] and r[b] and int(r[b]) < int(r[a]))
        if broken: fail.append(f"{name}: {broken} rows with {b} below {a}")
        # the gap's point mass at 0 (70 % and 50 % of the rows) is released
        # with noise of a few dozen rows: within 0.1
        s, real_s = eq_share(rows, a, b), eq_share(real, a, b)
        if abs(s - real_s) > 0.1: fail.append(f"{name}: {a} = {b} on {s:.2f} of the rows, real {real_s:.2f}")

for s in (1, 2, 3):
    f = fields(f"{T}/s{s}.json")
    for a, b in (("ptime", "futime"), ("rtime", "dtime")):
        if after(f, b) != a: fail.append(f"seed {s}: {b} is not drawn after {a}")
    # nodes is below age on every row and the scores share their lowest
    # value: neither is an order of this kind
    for c in ("age", "nodes", "score_a", "score_b", "ptime", "rtime"):
        if "expr" in f[c]: fail.append(f"seed {s}: {c} drawn as {f[c]['expr']}")
    check_rows(f"seed {s}", f"{T}/s{s}.csv")
    pv = json.load(open(f"{T}/s{s}.json"))["privacy"]
    sp, rel = pv["split"], pv["mechanisms"]["relations"]
    tot = sp["marginals"] + sp["correlations"] + sp["missingness"] + sp["relations"]
    if abs(tot - pv["rho"]) > 1e-5 * pv["rho"]: fail.append(f"seed {s}: split adds up to {tot}, rho {pv['rho']}")
    rho_rel = pv["rho"] / 10
    # no dates: the tests are the rounds, 3 allowed; two orders kept and a
    # third round that ends on "none"
    if rel["tests_allowed"] != 3 or rel["number_rounds_allowed"] != 3:
        fail.append(f"seed {s}: {rel['tests_allowed']} tests allowed, want 3")
    if rel["number_rounds"] != 3 or rel["tests"] != 0: fail.append(f"seed {s}: {rel['number_rounds']} rounds run, want 3")
    # 8 integers (pstat and death are bools): 56 ordered pairs
    K = 56
    if rel["number_candidates"] != K: fail.append(f"seed {s}: {rel['number_candidates']} candidates, want {K}")
    eps = math.sqrt(8 * (rho_rel - rho_rel / 5) / 3)
    if abs(rel["epsilon_per_test"] - eps) > 1e-4 * eps: fail.append(f"seed {s}: epsilon per test {rel['epsilon_per_test']}, want {eps}")
    # a round's epsilon: the power rule twice over, at most eps; the noisy
    # row count is within 5 sd (sd 33) of 3000
    lo = min(eps, 4 * math.log(K / 0.01) / (0.25 * (3000 + 165)))
    hi = min(eps, 4 * math.log(K / 0.01) / (0.25 * (3000 - 165)))
    en = rel["epsilon_per_round"]
    if not lo * (1 - 1e-4) <= en <= hi * (1 + 1e-4): fail.append(f"seed {s}: epsilon per round {en}, want {lo}..{hi}")
    spent = rho_rel / 5 + 3 * en * en / 8 + pv["mechanisms"].get("determined_labels", {}).get("rho", 0)
    if abs(sp["relations"] - spent) > 1e-4 * spent: fail.append(f"seed {s}: relations spent {sp['relations']}, want {spent}")
check_rows("aim", f"{T}/aim.csv")
if after(fields(f"{T}/aim.json"), "futime") != "ptime": fail.append("aim: futime is not drawn after ptime")

# too small for the rounds' power: the row count is all it spends
pv = json.load(open(f"{T}/small.json"))["privacy"]
rel = pv["mechanisms"]["relations"]
if rel["tests"] != 0 or rel["number_rounds"] != 0: fail.append(f"small table: {rel['tests']} tests run")
if abs(pv["split"]["relations"] - pv["rho"] / 50) > 1e-4 * pv["rho"]: fail.append("small table: spent more than the row count")
if any("expr" in g for g in fields(f"{T}/small.json").values()): fail.append("small table: a number drawn after another")

# declared bounds: futime is drawn within them, not after ptime
if "expr" in fields(f"{T}/bounded.json")["futime"]: fail.append("bounded: futime drawn after ptime despite its --bounds")
# a declared order keeps its base; the search still finds the other one
f = fields(f"{T}/declared.json")
if after(f, "dtime") != "rtime" or after(f, "futime") != "ptime":
    fail.append(f"declared: drawn after {after(f, 'dtime')}, {after(f, 'futime')}")
if fail:
    print("\n".join("FAIL: " + x for x in fail), file=sys.stderr)
    sys.exit(1)
print("ok")
PY
