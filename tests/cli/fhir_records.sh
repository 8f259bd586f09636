#!/usr/bin/env bash
# medsynth records --format fhir / fhir-ndjson (docs/fhir.md): every example
# spec's worked mapping gives resources that validate against the official
# HL7 FHIR R4 JSON schema, with every reference resolving inside its bundle
# or export (tests/fhir/check_fhir.py); the bytes do not depend on the thread
# count or the chunk size; bad mappings fail at validate time with located
# errors; a failed run leaves no directory behind.
set -euo pipefail
ms=$1
src=$2
py=/usr/bin/python3
"$py" -c 'import jsonschema' 2>/dev/null || { echo "FAIL: /usr/bin/python3 lacks jsonschema (Debian python3-jsonschema)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for spec in "$src"/schemas/examples/*.json "$src"/examples/demo.json; do
  name=$(basename "$spec" .json)
  for fmt in fhir fhir-ndjson; do
    out="$tmp/$name.$fmt"
    "$ms" records --spec "$spec" -n 12 --format "$fmt" -o "$out" -q --no-timestamp ||
      fail "$name: --format $fmt failed"
    "$py" "$src/tests/fhir/check_fhir.py" "$out" >"$tmp/check.txt" || { cat "$tmp/check.txt"; fail "$name $fmt: check_fhir"; }
  done
  grep -q Patient "$tmp/check.txt" || fail "$name: no Patient"
done

# A bundle per root row, named by row; one Patient each.
n=$(ls "$tmp/ehr.fhir" | grep -c '^patients_0000[0-9][0-9]\.json$')
[ "$n" = 12 ] || fail "ehr: $n bundles, want 12"
"$py" - "$tmp/ehr.fhir" <<'PY'
import json, sys, os
d = sys.argv[1]
b = json.load(open(os.path.join(d, "patients_000003.json")))
types = [e["resource"]["resourceType"] for e in b["entry"]]
assert types[0] == "Patient", types
for t in ("Encounter", "Observation", "Condition"):
    assert t in types, (t, types)
enc = {e["fullUrl"] for e in b["entry"] if e["resource"]["resourceType"] == "Encounter"}
labs = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Observation"]
assert labs and all(o["encounter"]["reference"] in enc for o in labs)
assert all(o["valueQuantity"]["system"] == "http://unitsofmeasure.org" for o in labs)
m = json.load(open(os.path.join(d, "manifest.json")))
assert m["bundles"] == 12 and m["medsynth"]["seed"] == 20250102 and "transactionTime" not in m
PY

# Same bytes for 1 and 2 threads and any chunk size; reruns identical.
for fmt in fhir fhir-ndjson; do
  "$ms" records --spec "$src/schemas/examples/ehr.json" -n 40 --threads 1 --format $fmt -o "$tmp/a.$fmt" -q --no-timestamp
  "$ms" records --spec "$src/schemas/examples/ehr.json" -n 40 --threads 2 --chunk-rows 7 --format $fmt -o "$tmp/b.$fmt" -q --no-timestamp
  diff -r -x manifest.json "$tmp/a.$fmt" "$tmp/b.$fmt" >/dev/null || fail "$fmt: output depends on threads/chunks"
done
# NDJSON and bundles hold the same resources with the same ids.
"$py" - "$tmp/a.fhir" "$tmp/a.fhir-ndjson" <<'PY'
import json, sys, os, glob
b, n = sys.argv[1:]
ids_b = sorted(e["fullUrl"][9:] for f in glob.glob(b + "/patients_*.json") for e in json.load(open(f))["entry"])
ids_n = sorted(json.loads(l)["id"] for f in glob.glob(n + "/*.ndjson") for l in open(f))
assert ids_b == ids_n and len(ids_b) > 40, (len(ids_b), len(ids_n))
PY

# The default mapping (a spec without "fhir" sections): Patient per row.
"$ms" records --spec "$src/docs/specs/minimal.json" -n 5 --format fhir-ndjson -o "$tmp/min" -q
[ "$(wc -l <"$tmp/min/Patient.ndjson")" = 5 ] || fail "minimal: want 5 patients"
grep -q '"mapping": "default"' "$tmp/min/manifest.json" || fail "minimal: manifest mapping"
"$py" "$src/tests/fhir/check_fhir.py" "$tmp/min" >/dev/null || fail "minimal: check_fhir"

# Bad mappings: located errors at validate time, exit 65, nothing written.
set +e
"$ms" validate "$src/tests/specs/bad/fhir_mapping.json" 2>"$tmp/err.txt"; rc=$?
"$ms" records --spec "$src/tests/specs/bad/fhir_mapping.json" --format fhir -o "$tmp/bad" -q 2>/dev/null; rc2=$?
"$ms" records --spec "$src/schemas/examples/ehr.json" -n 3 --format fhir -o "$tmp/a.fhir" -q 2>"$tmp/err2.txt"; rc3=$?
"$ms" records --spec "$src/schemas/examples/ehr.json" -n 3 --format fhir --table labs -o "$tmp/t" -q 2>/dev/null; rc4=$?
set -e
[ $rc = 65 ] || fail "validate bad mapping: exit $rc, want 65"
[ $rc2 = 65 ] || fail "records bad mapping: exit $rc2, want 65"
[ $rc3 = 73 ] || fail "existing directory: exit $rc3, want 73"
[ $rc4 = 64 ] || fail "--table with fhir: exit $rc4, want 64"
[ ! -e "$tmp/bad" ] || fail "bad spec left a directory"
grep -q 'fhir_mapping.json:14:100: error: /tables/0/fields/3/fhir/valueQuantity/unit: unit "mmHg" is not UCUM' "$tmp/err.txt" || fail "UCUM error: $(cat "$tmp/err.txt")"
grep -q 'code without system' "$tmp/err.txt" || fail "code without system"
grep -q 'unknown FHIR resource type "Observaton" (did you mean "Observation"?)' "$tmp/err.txt" || fail "resource type"
ls -a "$tmp" | grep -q '\.tmp\.' && fail "temporary directory left behind"
# --force replaces an existing directory atomically
"$ms" records --spec "$src/schemas/examples/ehr.json" -n 3 --format fhir -o "$tmp/a.fhir" -q --force
[ "$(ls "$tmp/a.fhir" | grep -c json$)" = 4 ] || fail "--force: want 3 bundles + manifest"
ls -a "$tmp" | grep -q '\.tmp\.' && fail "temporary directory left behind after --force"
echo "fhir_records: ok"
