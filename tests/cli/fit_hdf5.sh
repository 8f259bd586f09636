#!/usr/bin/env bash
# `medsynth fit` and `medsynth evaluate` read tables from medsynth HDF5 files
# written by `medsynth records` (missing values, categories, bools, dates,
# identifiers): the HDF5 table and its CSV export give the same fitted spec,
# evaluate finds every row of one in the other, and bad choices are reported
# with the file and table. Usage: fit_hdf5.sh <medsynth> <source-dir>
set -u
M=$1; SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
expect() { # expect <code> <stderr substring> -- command...
  local code=$1 msg=$2
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -qF -- "$msg" "$T/err"; then
    echo "FAIL: $* -> rc=$rc (want $code), stderr:"; cat "$T/err"; echo "(want: $msg)"
    fail=1
  fi
}
SPEC=$SRC/docs/specs/cohort.json
"$M" records --spec "$SPEC" -o "$T/c.h5" --seed 1 -q || exit 1
"$M" records --spec "$SPEC" --table patients -o "$T/p.csv" --seed 1 -q || exit 1

expect 64 "c.h5: error: the file holds 3 tables (labs, patients, visits): choose one with --table" -- \
  "$M" fit --data "$T/c.h5" -o "$T/x.json"
expect 66 "c.h5: error: no table \"nope\" (tables: labs, patients, visits)" -- \
  "$M" fit --data "$T/c.h5" --table nope -o "$T/x.json"
expect 65 "c.h5: error: patients/0: sex: value \"F\" is not a valid integer" -- \
  "$M" fit --data "$T/c.h5" --table patients --types sex=integer -o "$T/x.json"
[ -e "$T/x.json" ] && { echo "FAIL: output written on error"; fail=1; }

# egfr is a real with precision 0: CSV text alone would make it an integer.
expect 0 "egfr                     real        " -- \
  "$M" fit --data "$T/c.h5" --table patients --types egfr=real -o "$T/h5.json"
expect 0 "egfr                     real        " -- \
  "$M" fit --data "$T/p.csv" --table patients --types egfr=real -o "$T/csv.json"
/usr/bin/python3 - "$T/h5.json" "$T/csv.json" <<'PY' || fail=1
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for s in (a, b):
    s.pop("description")
assert a == b, "HDF5 and CSV fits differ"
f = {x["name"]: x for x in a["tables"][0]["fields"]}
assert f["patient_id"]["kind"] == "id" and f["follow_up"]["kind"] == "id", f["patient_id"]
assert set(f["sex"]["values"]) == {"F", "M"}, f["sex"]
assert f["on_insulin"]["kind"] == "bool" and f["diagnosed"]["kind"] == "date"
# cohort.json: egfr missing in 20% below age 50, 5% above; 51 of 500 here.
m = f["egfr"]["missing"]
assert m["when"][0]["if"].startswith("age < "), m
assert m["when"][0]["rate"] > m["rate"] + 0.05 and 0.02 < m["rate"] < 0.1, m
PY

# The same rows from both files: every synthetic row is an exact copy.
expect 1 "exact copies 1.0000" -- "$M" evaluate --real "$T/p.csv" --synthetic "$T/c.h5" --table patients \
  --id follow_up -o "$T/rep1" --no-plots
expect 1 "exact copies 1.0000" -- "$M" evaluate --real "$T/c.h5" --holdout "$T/c.h5" --synthetic "$T/p.csv" \
  --table patients -o "$T/rep2" --no-plots
/usr/bin/python3 - "$T/rep2/report.json" <<'PY' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["utility"]["marginal_similarity"] == 1, r["utility"]["marginal_similarity"]
assert r["privacy"]["exact_copy_rate"] == 1
PY
exit $fail
