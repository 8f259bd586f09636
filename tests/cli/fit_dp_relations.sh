#!/usr/bin/env bash
# Relations between dates under differential privacy (docs/privacy.md,
# "Relations under DP"): `fit --epsilon 1` keeps discharge on or after
# admit and los = discharge - admit when noisy tests find them, keeps no
# order between dates that come in either order, spends what it reports
# (the split adds up to rho; the noise scales follow the formulas), runs no
# test on a table too small for the tests' power, never draws a date with
# declared --bounds after another, and is reproducible for a seed; a label
# determined by another (a code, its description and unit) or set by bands
# of a number (an age group, an obesity flag) stays with it under the
# copula, and an unrelated label is determined by nothing.
# Usage: fit_dp_relations.sh <medsynth> <source-dir>
set -eu
M=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T" <<'PY'
import datetime, random, sys
T = sys.argv[1]
def table(path, n, seed):
    r = random.Random(seed)
    with open(path, "w") as f:
        f.write("id,birth,admit,other,discharge,los,age,ward\n")
        for i in range(n):
            admit = datetime.date(2022, 1, 1) + datetime.timedelta(days=r.randrange(1096))
            age = r.randint(20, 90)
            birth = admit - datetime.timedelta(days=age * 365 + r.randrange(365))
            # a date in either order with every other one
            other = datetime.date(1930, 1, 1) + datetime.timedelta(days=r.randrange(36500))
            los = 1 + int(r.expovariate(0.2))
            dis, l = str(admit + datetime.timedelta(days=los)), str(los)
            if r.random() < 0.1:
                dis = l = ""  # still in hospital
            f.write(f"P{i:05d},{birth},{admit},{other},{dis},{l},{age},{r.choice(['med', 'surg', 'icu'])}\n")
table(f"{T}/adm.csv", 4000, 1)
table(f"{T}/small.csv", 200, 2)
# a code, its description and its unit (both determined by the code), and a
# ward that is not
r = random.Random(4)
tests = {"GLU": ("Glucose", "mmol/L"), "HB": ("Haemoglobin", "g/dL"), "SOD": ("Sodium", "mmol/L"),
         "CRP": ("C-reactive protein", "mg/L"), "K": ("Potassium", "mmol/L"), "ALB": ("Albumin", "g/L")}
with open(f"{T}/lab.csv", "w") as f:
    f.write("age,test_code,test_name,unit,value,ward\n")
    for i in range(3000):
        c = r.choices(sorted(tests), weights=[5, 4, 6, 3, 5, 2])[0]
        f.write(f"{r.randint(20, 90)},{c},{tests[c][0]},{tests[c][1]},{r.gauss(10, 3):.1f},"
                f"{r.choice(['med', 'surg', 'icu', 'ed'])}\n")
# an age group set by bands of age, an obesity flag by bmi >= 30 (a third
# of the rows: the test needs a minority of about 1,500 rows at epsilon 1)
r = random.Random(6)
with open(f"{T}/band.csv", "w") as f:
    f.write("age,age_group,bmi,obese,sbp,ward\n")
    for i in range(6000):
        age = max(18, min(95, int(r.gauss(55, 17))))
        bmi = round(r.gauss(28, 5), 1)
        g = "<40" if age < 40 else "40-64" if age < 65 else "65+"
        f.write(f"{age},{g},{bmi},{int(bmi >= 30)},{int(r.gauss(125, 15) + 0.3 * age)},{r.choice(['med', 'surg', 'icu'])}\n")
PY
for s in 1 2 3; do
  for t in lab band; do
    "$M" fit --data "$T/$t.csv" --epsilon 1 --method copula --seed $s -o "$T/$t$s.json" --force 2>"$T/$t$s.log"
    "$M" records --spec "$T/$t$s.json" -n 6000 --seed 7 -o "$T/$t$s.csv" -q --force
  done
done

for s in 1 2 3; do
  "$M" fit --data "$T/adm.csv" --epsilon 1 --method copula --seed $s -o "$T/s$s.json" --force 2>"$T/s$s.log"
  "$M" records --spec "$T/s$s.json" -n 4000 --seed 7 -o "$T/s$s.csv" -q --force
done
"$M" fit --data "$T/adm.csv" --epsilon 1 --method aim --seed 1 -o "$T/aim.json" --force \
  --sample 4000 --sample-out "$T/aim_sample.csv" 2>"$T/aim.log"
"$M" records --spec "$T/aim.json" -n 4000 --seed 7 -o "$T/aim.csv" -q --force
"$M" fit --data "$T/adm.csv" --epsilon 1 --method copula --seed 1 -o "$T/again.json" --force 2>/dev/null
cmp "$T/s1.json" "$T/again.json" || { echo "FAIL: the same seed gave another spec" >&2; exit 1; }
"$M" fit --data "$T/small.csv" --epsilon 1 --seed 1 -o "$T/small.json" --force 2>"$T/small.log"
"$M" fit --data "$T/adm.csv" --epsilon 1 --seed 1 --bounds discharge=2022-01-01:2025-03-31 \
  -o "$T/bounded.json" --force 2>"$T/bounded.log"
"$M" records --spec "$T/bounded.json" -n 4000 --seed 7 -o "$T/bounded.csv" -q --force
grep -q "kept exactly: discharge is on or after admit" "$T/s1.log" || { echo "FAIL: no order in the report" >&2; cat "$T/s1.log" >&2; exit 1; }
grep -q "relations:    rho" "$T/s1.log" || { echo "FAIL: no relations line in the accounting" >&2; exit 1; }

/usr/bin/python3 - "$T" <<'PY'
import csv, datetime, json, math, sys
T = sys.argv[1]
fail = []
P = datetime.date.fromisoformat
real = list(csv.DictReader(open(f"{T}/adm.csv")))
real_miss = sum(not r["discharge"] for r in real) / len(real)

def fields(spec):
    return {f["name"]: f for f in json.load(open(spec))["tables"][0]["fields"]}

def check_rows(name, path):
    rows = list(csv.DictReader(open(path)))
    before = sum(1 for r in rows if r["discharge"] and P(r["discharge"]) < P(r["admit"]))
    wrong = sum(1 for r in rows if bool(r["los"]) != bool(r["discharge"]) or
                (r["los"] and int(r["los"]) != (P(r["discharge"]) - P(r["admit"])).days))
    miss = sum(not r["discharge"] for r in rows) / len(rows)
    if before: fail.append(f"{name}: {before} rows discharged before admission")
    if wrong: fail.append(f"{name}: {wrong} rows whose los is not discharge - admit")
    # the missing share's noise: sd about 37 rows of 4000, and 3 sd of the draw
    if abs(miss - real_miss) > 0.03: fail.append(f"{name}: discharge missing {miss:.3f}, real {real_miss:.3f}")
    los = sorted(int(r["los"]) for r in rows if r["los"])
    real_los = sorted(int(r["los"]) for r in real if r["los"])
    med, real_med = los[len(los) // 2], real_los[len(real_los) // 2]
    if abs(med - real_med) > 1: fail.append(f"{name}: median los {med}, real {real_med}")

for s in (1, 2, 3):
    f = fields(f"{T}/s{s}.json")
    if f["discharge"].get("base") != "admit": fail.append(f"seed {s}: discharge is not drawn after admit")
    if f["los"].get("expr") != "discharge - admit": fail.append(f"seed {s}: los is not discharge - admit")
    if "base" in f["other"] and f["other"]["base"] != "date('1970-01-01')":
        fail.append(f"seed {s}: 'other' (either order) drawn after {f['other']['base']}")
    if any(g.get("base") == "other" for g in f.values()): fail.append(f"seed {s}: a date drawn after 'other'")
    check_rows(f"seed {s}", f"{T}/s{s}.csv")
    pv = json.load(open(f"{T}/s{s}.json"))["privacy"]
    sp, rel = pv["split"], pv["mechanisms"]["relations"]
    tot = sp["marginals"] + sp["correlations"] + sp["missingness"] + sp["relations"]
    if abs(tot - pv["rho"]) > 1e-5 * pv["rho"]: fail.append(f"seed {s}: split adds up to {tot}, rho {pv['rho']}")
    rho_rel = pv["rho"] / 10
    # row count: a fifth of the relations' tenth; tests: the rest over those allowed
    # (4 dates: 6 pairs and 4 differences; age and los: 3 rounds of the
    # numbers' order search)
    if rel["tests_allowed"] != 13: fail.append(f"seed {s}: {rel['tests_allowed']} tests allowed, want 13")
    sig = 1 / math.sqrt(2 * rho_rel / 5)
    eps = math.sqrt(8 * (rho_rel - rho_rel / 5) / 13)
    if abs(rel["row_count_sigma"] - sig) > 1e-4 * sig: fail.append(f"seed {s}: row count sigma {rel['row_count_sigma']}, want {sig}")
    if abs(rel["epsilon_per_test"] - eps) > 1e-4 * eps: fail.append(f"seed {s}: epsilon per test {rel['epsilon_per_test']}, want {eps}")
    spent = rho_rel / 5 + rel["tests"] * eps * eps / 8
    spent += pv["mechanisms"].get("determined_labels", {}).get("rho", 0)
    if abs(sp["relations"] - spent) > 1e-4 * spent: fail.append(f"seed {s}: relations spent {sp['relations']}, want {spent}")
    # los is a difference, so no order between numbers is open: no round runs
    if not 7 <= rel["tests"] <= 10 or rel["number_rounds"]: fail.append(f"seed {s}: {rel['tests']} tests run")
check_rows("aim", f"{T}/aim.csv")
check_rows("aim reference sampler", f"{T}/aim_sample.csv")

# too small for the tests' power: the row count is all it spends, and no date follows another
pv = json.load(open(f"{T}/small.json"))["privacy"]
rel = pv["mechanisms"]["relations"]
if rel["tests"] != 0: fail.append(f"small table: {rel['tests']} tests run")
if abs(pv["split"]["relations"] - pv["rho"] / 50) > 1e-4 * pv["rho"]: fail.append("small table: spent more than the row count")
if any(g.get("base") not in (None, "date('1970-01-01')") for g in fields(f"{T}/small.json").values()):
    fail.append("small table: a date drawn after another")

# declared bounds: discharge is drawn within them, not after admit
f = fields(f"{T}/bounded.json")
if f["discharge"].get("base") == "admit": fail.append("bounded: discharge drawn after admit despite its --bounds")
rows = list(csv.DictReader(open(f"{T}/bounded.csv")))
out = [r["discharge"] for r in rows if r["discharge"] and not "2022-01-01" <= r["discharge"] <= "2025-03-31"]
if out: fail.append(f"bounded: {len(out)} discharge dates outside the bounds, e.g. {out[0]}")
# determined labels under the copula (which alone gets a third of the pairs wrong)
tests = {"GLU": ("Glucose", "mmol/L"), "HB": ("Haemoglobin", "g/dL"), "SOD": ("Sodium", "mmol/L"),
         "CRP": ("C-reactive protein", "mg/L"), "K": ("Potassium", "mmol/L"), "ALB": ("Albumin", "g/L")}
offs = 0
for s in (1, 2, 3):
    rows = list(csv.DictReader(open(f"{T}/lab{s}.csv")))
    off = sum(x["test_code"] not in tests or tests[x["test_code"]] != (x["test_name"], x["unit"]) for x in rows)
    offs += off
    f = fields(f"{T}/lab{s}.json")
    if "when" in f["ward"]: fail.append(f"lab seed {s}: ward is determined by another column")
    if any(w.get("if", "").startswith("ward ==") for g in f.values() for w in g.get("when", [])):
        fail.append(f"lab seed {s}: a column determined by ward")
    pv = json.load(open(f"{T}/lab{s}.json"))["privacy"]
    sp, fd = pv["split"], pv["mechanisms"]["determined_labels"]
    tot = sp["marginals"] + sp["correlations"] + sp["missingness"] + sp["relations"]
    if abs(tot - pv["rho"]) > 1e-5 * pv["rho"]: fail.append(f"lab seed {s}: split adds up to {tot}, rho {pv['rho']}")
    eps = math.sqrt(8 * pv["rho"] / 10 / (3 * fd["tests_allowed"]))
    if abs(fd["epsilon_per_mechanism"] - eps) > 1e-4 * eps: fail.append(f"lab seed {s}: epsilon {fd['epsilon_per_mechanism']}, want {eps}")
    spent = (fd["tests"] + fd["maps"] + fd["cut_sets"]) * eps * eps / 8
    if abs(fd["rho"] - spent) > 1e-4 * spent or abs(sp["relations"] - spent) > 1e-4 * spent:
        fail.append(f"lab seed {s}: determined labels spent {fd['rho']} (split {sp['relations']}), want {spent}")
    if fd["maps"] < 2: fail.append(f"lab seed {s}: {fd['maps']} determined columns, want 2")
# a map's noisy choice may give one label a wrong partner (about 1 % a label
# at this size; none in seeds 1-5): at most one label's rows over three fits
# (the copula alone: 1842 of 3000 rows a fit)
if offs > 0.25 * 6000: fail.append(f"lab: {offs} of 18000 rows pair a code with another's name or unit")
# bands under the copula (which alone put 3225 of 6000 rows in the wrong age
# group, 1225 in the wrong obesity flag): a cut lands within a few units of
# the real one (its exponential mechanism scores rows, and a year of age
# holds about 80 of them), so a wrong group for up to 10 % of the rows (at
# most 6 % in fit seeds 1-9), a wrong flag for up to 3 % (at most 2 %)
for s in (1, 2, 3):
    rows = list(csv.DictReader(open(f"{T}/band{s}.csv")))
    grp = lambda a: "<40" if a < 40 else "40-64" if a < 65 else "65+"
    off_g = sum(grp(int(x["age"])) != x["age_group"] for x in rows)
    off_o = sum(int(float(x["bmi"]) >= 30) != int(x["obese"]) for x in rows)
    if off_g > 0.10 * len(rows): fail.append(f"band seed {s}: {off_g} rows in the wrong age group")
    if off_o > 0.03 * len(rows): fail.append(f"band seed {s}: {off_o} rows with the wrong obesity flag")
    f = fields(f"{T}/band{s}.json")
    if "when" in f["ward"]: fail.append(f"band seed {s}: ward is set by another column")
if fail:
    print("\n".join("FAIL: " + x for x in fail), file=sys.stderr)
    sys.exit(1)
print("ok")
PY
