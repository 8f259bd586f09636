#!/usr/bin/env bash
# Relations between columns (docs/fit.md, "Logic between columns"): a date
# after another, an exact difference (los_days = discharge - admit, pp =
# sbp - dbp), a number never above another (ldl <= total cholesterol), a
# combination no row has (pregnant with sex M), a total of item scores, a
# code that determines its description and labels set by bands of a number
# (an age group, an obesity flag 0/1, a true/false senior flag, a diabetes
# label at HbA1c 6.5) are found
# by `fit`,
# listed in its report, kept exactly by `records` (checked by Python's csv
# module on every row), and re-checked by `evaluate`, which fails a table
# that breaks them. Usage: fit_relations.sh <medsynth> <source-dir>
set -eu
M=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T" <<'PY'
import csv, datetime, random, sys
T = sys.argv[1]
r = random.Random(5)
codes = {"A01": "Cholera", "B20": "HIV disease", "C33": "Neoplasm of trachea", "E11": "Type 2 diabetes"}
rows = []
for i in range(500):
    a = datetime.date(2022, 1, 1) + datetime.timedelta(days=r.randrange(365))
    los = min(int(r.expovariate(0.25)), 40)
    dx = r.choice(sorted(codes))
    s = r.randrange(100, 180)
    d = s - r.randrange(30, 60)
    miss = r.random() < 0.1
    tc = r.gauss(200, 35)
    ldl = tc * r.uniform(0.6, 0.95)
    items = [r.randrange(0, 5) for _ in range(3)]
    sex = r.choice("FM")
    preg = "Y" if sex == "F" and r.random() < 0.3 else "N"
    age = r.randrange(18, 91)
    bmi = round(r.lognormvariate(3.3, 0.18), 1)
    a1c = "" if r.random() < 0.1 else round(r.uniform(4.5, 9.5), 1)
    grp = "<40" if age < 40 else "40-64" if age < 65 else "65+"
    rows.append([a.strftime("%m/%d/%Y"), "" if miss else (a + datetime.timedelta(days=los)).strftime("%m/%d/%Y"),
                 "" if miss else str(los), dx, codes[dx], str(s), str(d), str(s - d),
                 "%.1f" % tc, "%.1f" % ldl, sex, preg] + [str(x) for x in items] + [str(sum(items))] +
                [str(age), grp, "%.1f" % bmi, str(int(bmi >= 30)), a1c,
                 "" if a1c == "" else "yes" if a1c >= 6.5 else "no", r.choice(["yes", "no"]),
                 "true" if age >= 75 else "false"])
H = ["admit date", "discharge date", "los_days", "dx", "dx_desc", "sbp", "dbp", "pp", "total chol", "ldl",
     "sex", "pregnant", "item 1", "item 2", "item 3", "total score", "age", "age group", "bmi", "obese",
     "hba1c", "diabetic", "smoker", "senior"]
with open(T + "/real.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(H); w.writerows(rows)
# Columns drawn independently: every relation broken.
sh = [[row[j] for row in rows] for j in range(len(H))]
for j, c in enumerate(sh):
    random.Random(100 + j).shuffle(c)
with open(T + "/indep.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(H); w.writerows(zip(*sh))
PY
"$M" fit --data "$T/real.csv" -o "$T/fit.json" 2>"$T/fit.err"
# smoker is drawn apart from every number: no bands
! grep -q "kept exactly: smoker" "$T/fit.err"
for want in "discharge_date is on or after admit_date" "los_days = discharge_date - admit_date" \
            "dx_desc is determined by dx" "pp = sbp - dbp" "total_chol is >= ldl" \
            "pregnant is drawn given sex" "total_score = item_1 + item_2 + item_3" \
            "age_group is set by bands of age (cuts 40 65)" "obese is set by bands of bmi (cuts 30)" \
            "diabetic is set by bands of hba1c (cuts 6.5)" "senior is set by bands of age (cuts 75)"; do
  grep -qF "kept exactly: $want" "$T/fit.err" || { echo "FAIL: not found: $want"; cat "$T/fit.err"; exit 1; }
done
"$M" records --spec "$T/fit.json" -o "$T/syn.csv" -n 3000 -q
/usr/bin/python3 - "$T/syn.csv" <<'PY'
import csv, datetime, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
codes = {"A01": "Cholera", "B20": "HIV disease", "C33": "Neoplasm of trachea", "E11": "Type 2 diabetes"}
miss = 0
for r in rows:
    assert codes[r["dx"]] == r["dx_desc"], r
    assert int(r["pp"]) == int(r["sbp"]) - int(r["dbp"]), r
    assert float(r["ldl"]) <= float(r["total chol"]), r
    assert not (r["sex"] == "M" and r["pregnant"] == "Y"), r
    assert int(r["total score"]) == sum(int(r["item %d" % i]) for i in (1, 2, 3)), r
    age = int(r["age"])
    assert r["age group"] == ("<40" if age < 40 else "40-64" if age < 65 else "65+"), r
    assert r["obese"] == str(int(float(r["bmi"]) >= 30)), r
    assert r["senior"] == ("true" if age >= 75 else "false"), r
    assert (r["hba1c"] == "") == (r["diabetic"] == ""), r
    assert r["hba1c"] == "" or r["diabetic"] == ("yes" if float(r["hba1c"]) >= 6.5 else "no"), r
    assert len(r["ldl"].split(".")[1]) == 1 and len(r["total chol"].split(".")[1]) == 1, r
    if not r["discharge date"]:
        assert r["los_days"] == "", r
        miss += 1
        continue
    a = datetime.datetime.strptime(r["admit date"], "%m/%d/%Y")
    b = datetime.datetime.strptime(r["discharge date"], "%m/%d/%Y")
    assert b >= a and (b - a).days == int(r["los_days"]), r
assert 0.05 < miss / len(rows) < 0.16, miss / len(rows)
PY
"$M" evaluate --real "$T/real.csv" --synthetic "$T/syn.csv" --no-plots -o "$T/rep_syn" >/dev/null 2>&1 || true
grep -qF "| relations of the real table broken more often than in real data | 0.0000 | 0 pass | pass |" \
  "$T/rep_syn/report.md" || { echo "FAIL: kept relations not passed"; cat "$T/rep_syn/report.md"; exit 1; }
if "$M" evaluate --real "$T/real.csv" --synthetic "$T/indep.csv" --no-plots -o "$T/rep_ind" >/dev/null 2>&1; then
  echo "FAIL: broken relations pass"; exit 1
fi
grep -qF "| relations of the real table broken more often than in real data | 11.0000 | 0 pass | fail |" \
  "$T/rep_ind/report.md" || { echo "FAIL: broken relations not counted"; cat "$T/rep_ind/report.md"; exit 1; }

# A chain: a broad group (first in the file) is determined by the age group
# (many to one), which is set by bands of the age; records and the
# reference sampler (fit --sample: bands before dependencies, whatever the
# columns' order) keep both.
/usr/bin/python3 - "$T" <<'PY'
import csv, random, sys
r = random.Random(4)
with open(sys.argv[1] + "/chain.csv", "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["broad", "age", "group", "z"])
    for i in range(400):
        age = r.randint(20, 90)
        g = "<40" if age < 40 else "40-64" if age < 65 else "65+"
        w.writerow(["65+" if age >= 65 else "under 65", age, g, round(r.random(), 3)])
PY
"$M" fit --data "$T/chain.csv" --sample 2000 --sample-out "$T/chain_ref.csv" -o "$T/chain.json" 2>"$T/chain.err"
grep -qF "kept exactly: group is set by bands of age (cuts 40 65)" "$T/chain.err"
grep -qF "kept exactly: broad is determined by group" "$T/chain.err"
"$M" records --spec "$T/chain.json" -n 2000 -o "$T/chain_syn.csv" -q
/usr/bin/python3 - "$T/chain_syn.csv" "$T/chain_ref.csv" <<'PY'
import csv, sys
for path in sys.argv[1:]:
    for r in csv.DictReader(open(path, newline="")):
        age = int(r["age"])
        g = "<40" if age < 40 else "40-64" if age < 65 else "65+"
        assert r["group"] == g and r["broad"] == ("65+" if age >= 65 else "under 65"), (path, r)
PY

# A number never below another, under the graphical model (--method mst and
# aim, no noise): the spec draws it as base + gap, and the gap joins the
# model like any column. Total cholesterol = LDL + HDL + a little: its gap
# over LDL is about HDL (correlation 0.96 in the data). The build before
# drew the gap on its own (correlation about 0 in the rows of records and
# of the reference sampler).
/usr/bin/python3 - "$T" <<'PY'
import csv, random, sys
r = random.Random(8)
with open(sys.argv[1] + "/lipid.csv", "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["ldl", "hdl", "tc", "smoker"])
    for i in range(1000):
        ldl, hdl = r.gauss(120, 30), r.gauss(50, 12)
        w.writerow([round(ldl), round(hdl), round(ldl + hdl + r.gauss(20, 3)), r.choice("YN")])
PY
for method in mst aim; do
  "$M" fit --data "$T/lipid.csv" --method $method --sample 3000 --sample-out "$T/lipid_ref.csv" --force \
    -o "$T/lipid.json" 2>"$T/lipid.err"
  grep -qF "kept exactly: tc is >= ldl (drawn as ldl + a fitted gap)" "$T/lipid.err"
  "$M" records --spec "$T/lipid.json" -n 3000 -o "$T/lipid_syn.csv" -q --force
  /usr/bin/python3 - "$T/lipid_syn.csv" "$T/lipid_ref.csv" "$T/lipid.csv" <<'PY'
import csv, sys
def corr(path):
    rows = list(csv.DictReader(open(path, newline="")))
    g = [float(x["tc"]) - float(x["ldl"]) for x in rows]
    h = [float(x["hdl"]) for x in rows]
    assert min(g) >= 0, path
    mg, mh = sum(g) / len(g), sum(h) / len(h)
    sgh = sum((a - mg) * (b - mh) for a, b in zip(g, h))
    return sgh / (sum((a - mg) ** 2 for a in g) * sum((b - mh) ** 2 for b in h)) ** 0.5
real = corr(sys.argv[3])
assert real > 0.9, real
for path in sys.argv[1:3]:
    c = corr(path)
    assert c > 0.7, (path, c, real)
PY
done
