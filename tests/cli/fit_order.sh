#!/usr/bin/env bash
# Declared orders (docs/fit.md, "Declared orders"): `fit --order sbp>=dbp`
# draws sbp as dbp + a fitted gap, with and without --epsilon and under
# every method, so no synthetic row has sbp below dbp although 1 % of the
# real rows do (data-entry errors: the search alone keeps no such order);
# a declared order of dates holds on a DP fit of a table too small for the
# DP tests, and one of datetimes keeps its gap of minutes; every bad declaration gets a message naming it and exit 64 (EX_USAGE).
# Usage: fit_order.sh <medsynth> <source-dir>
set -eu
M=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T" <<'PY'
import datetime, random, sys
T = sys.argv[1]
r = random.Random(9)
with open(f"{T}/vit.csv", "w") as f:
    f.write("age,sbp,dbp,hr\n")
    for i in range(1500):
        age = r.randint(20, 90)
        dbp = int(r.gauss(78, 10))
        sbp = dbp + max(5, int(r.gauss(45, 12))) + (age - 50) // 3
        if r.random() < 0.01:
            sbp, dbp = dbp, sbp
        f.write(f"{age},{sbp},{dbp},{int(r.gauss(75, 12))}\n")
with open(f"{T}/triage.csv", "w") as f:
    f.write("arrive,seen,age\n")
    for i in range(2000):
        a = datetime.datetime(2023, 1, 1) + datetime.timedelta(seconds=r.randrange(365 * 86400))
        f.write(f"{a.isoformat()},{(a + datetime.timedelta(minutes=5 + int(r.expovariate(1 / 90)))).isoformat()},{r.randint(20, 90)}\n")
with open(f"{T}/stay.csv", "w") as f:
    f.write("admit,discharge,age\n")
    for i in range(150):
        a = datetime.date(2023, 1, 1) + datetime.timedelta(days=r.randrange(365))
        f.write(f"{a},{a + datetime.timedelta(days=1 + int(r.expovariate(0.2)))},{r.randint(20, 90)}\n")
PY
fit_rows() { # fit_rows <name> <fit options...>: fit, records and the reference sampler
  local n=$1
  shift
  "$M" fit --data "$T/vit.csv" "$@" --seed 1 -o "$T/$n.json" --force --sample 1500 --sample-out "$T/$n.sample.csv" \
    2>"$T/$n.log"
  "$M" records --spec "$T/$n.json" -n 1500 --seed 3 -o "$T/$n.csv" -q --force
}
fit_rows plain
for m in auto copula mst aim; do
  fit_rows "nodp_$m" --method $m --order 'sbp>=dbp'
  fit_rows "dp_$m" --method $m --epsilon 1 --order 'sbp>=dbp'
done
grep -q "declared:     sbp is >= dbp" "$T/dp_auto.log" || { echo "FAIL: the report does not list the declared order" >&2; exit 1; }
"$M" fit --data "$T/stay.csv" --epsilon 1 --order 'discharge>=admit' --seed 1 -o "$T/stay.json" --force 2>"$T/stay.log"
"$M" records --spec "$T/stay.json" -n 500 --seed 3 -o "$T/stay_syn.csv" -q --force
# a datetime after another: its gap (minutes here) is measured in seconds under DP
"$M" fit --data "$T/triage.csv" --epsilon 1 --order 'seen>=arrive' --seed 1 -o "$T/triage.json" --force 2>"$T/triage.log"
"$M" records --spec "$T/triage.json" -n 2000 --seed 3 -o "$T/triage_syn.csv" -q --force

/usr/bin/python3 - "$T" <<'PY'
import csv, json, sys
T = sys.argv[1]
fail = []
real = list(csv.DictReader(open(f"{T}/vit.csv")))
mean = lambda rows, c: sum(float(x[c]) for x in rows) / len(rows)
def below(path):
    rows = list(csv.DictReader(open(path)))
    return rows, sum(float(x["sbp"]) < float(x["dbp"]) for x in rows)
_, v = below(f"{T}/plain.csv")
if v == 0: fail.append("without --order no synthetic row has sbp < dbp: the check below proves nothing")
for m in ("auto", "copula", "mst", "aim"):
    for mode in ("nodp", "dp"):
        for kind in ("", ".sample"):
            rows, v = below(f"{T}/{mode}_{m}{kind}.csv")
            if v: fail.append(f"{mode} {m}{kind}: {v} rows with sbp below dbp")
            # sd of sbp about 15: the mean of 1500 rows within 4 (DP: noise of the gap's histogram too)
            tol = 2.5 if mode == "nodp" else 6
            if abs(mean(rows, "sbp") - mean(real, "sbp")) > tol:
                fail.append(f"{mode} {m}{kind}: mean sbp {mean(rows, 'sbp'):.1f}, real {mean(real, 'sbp'):.1f}")
    spec = json.load(open(f"{T}/dp_{m}.json"))
    f = {x["name"]: x for x in spec["tables"][0]["fields"]}
    if f["sbp"].get("expr") != "dbp + sbp_gap": fail.append(f"dp {m}: sbp is not dbp + sbp_gap: {f['sbp']}")
rows = list(csv.DictReader(open(f"{T}/stay_syn.csv")))
v = sum(x["discharge"] < x["admit"] for x in rows)
if v: fail.append(f"stay: {v} discharges before admission")
pv = json.load(open(f"{T}/stay.json"))["privacy"]
if pv["mechanisms"]["relations"]["tests"] != 0: fail.append("stay: 150 rows, yet DP tests ran")
import datetime
def waits(path):
    w = sorted((datetime.datetime.fromisoformat(x["seen"]) - datetime.datetime.fromisoformat(x["arrive"])).total_seconds() / 60
               for x in csv.DictReader(open(path)))
    return w[0], w[len(w) // 2], w[9 * len(w) // 10]
(lo, med, q90), (rlo, rmed, rq90) = waits(f"{T}/triage_syn.csv"), waits(f"{T}/triage.csv")
# 2000 rows, the gap's DP histogram at epsilon 1: median and 90th percentile within a fifth
if lo < 0 or abs(med - rmed) > 0.2 * rmed or abs(q90 - rq90) > 0.2 * rq90:
    fail.append(f"triage: waits min/median/q90 {lo:.1f}/{med:.1f}/{q90:.1f} min, real {rlo:.1f}/{rmed:.1f}/{rq90:.1f}")
if fail:
    print("\n".join("FAIL: " + x for x in fail), file=sys.stderr)
    sys.exit(1)
PY

bad() { # bad <exit code> <text in the message> <--order value> [more options]
  local want=$1 text=$2
  shift 2
  local rc=0
  "$M" fit --data "$T/vit.csv" --order "$@" -o "$T/bad.json" --force 2>"$T/bad.log" || rc=$?
  [ "$rc" = "$want" ] || { echo "FAIL: --order $1: exit $rc, want $want" >&2; cat "$T/bad.log" >&2; exit 1; }
  grep -qF "$text" "$T/bad.log" || { echo "FAIL: --order $1: no '$text' in:" >&2; cat "$T/bad.log" >&2; exit 1; }
  [ ! -e "$T/bad.json" ] || { echo "FAIL: --order $1 left a spec" >&2; exit 1; }
}
bad 64 "is not b>=a" 'sbp'
bad 64 "is not b>=a" 'sbp>='
bad 64 'no column "sistolic"' 'sistolic>=dbp'
bad 64 "not ordered after itself" 'sbp>=sbp'
bad 64 "form a cycle" 'sbp>=dbp,dbp>=sbp'
bad 64 "declared after both dbp and hr" 'sbp>=dbp,sbp>=hr'
bad 64 "has --bounds" 'sbp>=dbp' --epsilon 1 --bounds sbp=50:250
"$M" fit --data "$T/stay.csv" --order 'discharge>=age' -o "$T/bad.json" --force 2>"$T/bad.log" && exit 1
grep -qF "an order is between two numbers or two dates" "$T/bad.log" || { echo "FAIL: kinds" >&2; cat "$T/bad.log" >&2; exit 1; }
echo ok
