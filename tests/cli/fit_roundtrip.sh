#!/usr/bin/env bash
# The round-trip contract of docs/fit.md on a corpus of messy CSVs written
# here: each is fitted, generated with `medsynth records`, and the output is
# checked column by column by Python's csv module (not by medsynth): same
# header text and order; categorical and bool columns only with the input's
# literal labels; discrete numeric columns only with values the input has;
# continuous columns in the input's number format; dates and datetimes in
# the input's format; identifiers fresh in the input's pattern; free text not
# released. Usage: fit_roundtrip.sh <medsynth> <source-dir>
set -eu
M=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T" <<'PY'
import csv, datetime, random, sys
T = sys.argv[1]
rng = random.Random(12)
n = 600
base = datetime.datetime(2021, 1, 1)
cols = ["Patient ID", "flag 0/1", "smoker", "Y/N", "pandas.bool", "half", "stage", "admit",
        "US date", "EU date", "DE.date", "seen at", "notes", "sepal.length (cm)", "wt_kg",
        "Größe", "lab", "count", "const", "code", "n_visits"]
rows = []
ids = rng.sample(range(100000, 999999), n)
for i in range(n):
    d = base + datetime.timedelta(days=rng.randrange(700))
    t = d + datetime.timedelta(minutes=rng.randrange(24 * 60))
    lab = rng.choice(["", "NA", "NULL"]) if rng.random() < 0.15 else "%.1f" % rng.gauss(5, 1)
    note = rng.choice(['pain, "severe"', "follow-up\nin 2 weeks", "ok", "r/o MI"]) + " #%d" % i
    sl = round(rng.gauss(5.8, 0.8), 1)
    rows.append(["MRN%06d" % ids[i], rng.choice("01"), rng.choice(["yes", "no"]),
                 rng.choice("YN"), rng.choice(["True", "False"]), rng.choice(["0", "0.5", "1"]),
                 rng.choice(["I", "II", "III", "IV"]), d.strftime("%Y-%m-%d"),
                 d.strftime("%m/%d/%Y"), d.strftime("%d/%m/%Y"), d.strftime("%d.%m.%Y"),
                 t.strftime("%Y-%m-%d %H:%M:%S"), note, repr(sl), "%.1f" % abs(rng.gauss(70, 12)),
                 str(rng.randrange(140, 200)), lab, str(min(int(rng.expovariate(0.7)), 6)), "7",
                 rng.choice(["A01", "B20", "C33"]), str(rng.randrange(0, 60))])
with open(T + "/messy.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(cols)
    w.writerows(rows)
PY
"$M" fit --data "$T/messy.csv" -o "$T/fit.json" 2>"$T/fit.err"
grep -qF 'warning: notes: free text: values not released (written as "redacted")' "$T/fit.err" || {
  echo "FAIL: no free-text warning"; cat "$T/fit.err"; exit 1; }
"$M" records --spec "$T/fit.json" -o "$T/syn.csv" -n 2000 -q
/usr/bin/python3 - "$T/messy.csv" "$T/syn.csv" <<'PY'
import csv, datetime, re, sys
real = list(csv.reader(open(sys.argv[1], encoding="utf-8", newline="")))
syn = list(csv.reader(open(sys.argv[2], encoding="utf-8", newline="")))
assert syn[0] == real[0], ("header", syn[0], real[0])
H = real[0]
R = {h: [r[j] for r in real[1:]] for j, h in enumerate(H)}
S = {h: [r[j] for r in syn[1:]] for j, h in enumerate(H)}
assert len(syn) == 2001
fails = []
def check(c, ok, what):
    if not ok:
        fails.append("%s: %s" % (c, what))
def present(v):
    return [x for x in v if x not in ("", "NA", "NULL")]
# Literal labels: never a value the input lacks, and every common one appears.
for c in ["flag 0/1", "smoker", "Y/N", "pandas.bool", "half", "stage", "count", "const", "code"]:
    rs, ss = set(present(R[c])), set(present(S[c]))
    check(c, ss <= rs, "unseen values %s" % sorted(ss - rs))
    common = {v for v in rs if R[c].count(v) >= 30}
    check(c, common <= ss, "labels lost %s" % sorted(common - ss))
# Continuous: the input's number format.
check("sepal.length (cm)", all(re.fullmatch(r"\d+\.\d", v) for v in present(S["sepal.length (cm)"])),
      "not one decimal: %s" % present(S["sepal.length (cm)"])[:5])
check("wt_kg", all(re.fullmatch(r"\d+\.\d", v) for v in present(S["wt_kg"])), "format")
check("Größe", all(re.fullmatch(r"\d+", v) for v in present(S["Größe"])), "integers")
check("n_visits", all(re.fullmatch(r"\d+", v) for v in present(S["n_visits"])), "integers")
check("lab", all(re.fullmatch(r"\d+\.\d", v) for v in present(S["lab"])), "format")
miss = sum(v == "" for v in S["lab"]) / len(S["lab"])
check("lab", 0.08 < miss < 0.23, "missing share %.3f" % miss)
# Dates and datetimes in the input's format.
for c, fmt in [("admit", "%Y-%m-%d"), ("US date", "%m/%d/%Y"), ("EU date", "%d/%m/%Y"),
               ("DE.date", "%d.%m.%Y"), ("seen at", "%Y-%m-%d %H:%M:%S")]:
    try:
        got = [datetime.datetime.strptime(v, fmt) for v in S[c]]
        lo = min(datetime.datetime.strptime(v, fmt) for v in R[c])
        hi = max(datetime.datetime.strptime(v, fmt) for v in R[c])
        check(c, all(lo - datetime.timedelta(days=1) <= g <= hi + datetime.timedelta(days=1) for g in got), "range")
        check(c, all(len(v) == len(R[c][0]) for v in S[c]), "width")
    except ValueError as e:
        check(c, False, str(e))
# Identifiers: the input's pattern, fresh, unique.
ids = S["Patient ID"]
check("Patient ID", all(re.fullmatch(r"MRN\d{6}", v) for v in ids), "pattern %s" % ids[:3])
check("Patient ID", not set(ids) & set(R["Patient ID"]), "a real id was written")
check("Patient ID", len(set(ids)) == len(ids), "not unique")
# Free text: not released.
check("notes", set(S["notes"]) <= {"redacted", ""}, "text released")
if fails:
    print("\n".join(fails))
    sys.exit(1)
PY
