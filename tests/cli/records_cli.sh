#!/usr/bin/env bash
# medsynth records / validate end to end: exit codes, diagnostics, provenance
# attributes, byte-identical output across --threads / --chunk-rows, shards
# that add up to the single run, --table, stdout, --force and no partial
# files after failures.
set -euo pipefail
ms=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_rc() { # expect_rc CODE cmd...
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
  [ "$rc" = "$want" ] || { cat "$tmp/err" >&2; fail "exit $rc, wanted $want: $*"; }
}
spec=$src/docs/specs/outpatient.json
cohort=$src/docs/specs/cohort.json

# ---- validate
expect_rc 0 "$ms" validate "$spec"
grep -q "valid (patients: 1000 rows" "$tmp/out" || fail "validate summary"
expect_rc 0 "$ms" validate --help
grep -q "usage: medsynth validate" "$tmp/out" || fail "validate --help"
expect_rc 65 "$ms" validate "$src/tests/specs/bad/bad_params.json"
[ "$(grep -c ': error: ' "$tmp/err")" = 9 ] || fail "validate must print all 9 errors"
grep -q "bad_params.json:5:81: error: /tables/0/fields/0/dist/sd: must be > 0" "$tmp/err" || fail "positioned message"
expect_rc 66 "$ms" validate "$tmp/nonexistent.json"
expect_rc 66 "$ms" validate "$tmp"
expect_rc 64 "$ms" validate
expect_rc 64 "$ms" validate --bogus "$spec"

# ---- records: usage errors
expect_rc 0 "$ms" records --help
grep -q -- "--shard k/N" "$tmp/out" || fail "records --help"
expect_rc 64 "$ms" records -o "$tmp/x.h5"
expect_rc 64 "$ms" records --spec "$spec"
expect_rc 64 "$ms" records --spec "$spec" -o "$tmp/x.h5" --shard 0/3
expect_rc 64 "$ms" records --spec "$spec" -o "$tmp/x.h5" -n 0
expect_rc 64 "$ms" records --spec "$spec" -o "$tmp/x.h5" --frobnicate
expect_rc 64 "$ms" records --spec "$spec" -o "$tmp/x.xyz"
expect_rc 64 "$ms" records --spec "$spec" -o "$tmp/x.h5" --table nosuch
expect_rc 66 "$ms" records --spec "$tmp/missing.json" -o "$tmp/x.h5"
[ ! -e "$tmp/x.h5" ] || fail "usage errors must not create output"

# ---- invalid spec: 65, all errors, no file
expect_rc 65 "$ms" records --spec "$src/tests/specs/bad/unknown_key.json" -o "$tmp/bad.h5"
[ "$(grep -c ': error: ' "$tmp/err")" = 6 ] || fail "records must print every spec error"
[ ! -e "$tmp/bad.h5" ] || fail "invalid spec left a file"

# ---- generation error: 65, row named, no file and no temporary left behind
cat > "$tmp/rowerr.json" <<'JSON'
{"medsynth": 1, "tables": [{"name": "p", "rows": 5000, "fields": [
  {"name": "i", "kind": "integer", "dist": {"type": "uniform", "low": 0, "high": 99}},
  {"name": "x", "kind": "real", "dist": {"type": "normal", "mean": 0, "sd": "i - 98"}}]}]}
JSON
mkdir "$tmp/o"
expect_rc 65 "$ms" records --spec "$tmp/rowerr.json" -o "$tmp/o/r.h5"
grep -q "p/row [0-9]*: /tables/0/fields/1/dist/sd: must be > 0" "$tmp/err" || { cat "$tmp/err"; fail "row error message"; }
[ -z "$(ls -A "$tmp/o")" ] || fail "failed run left files: $(ls -A "$tmp/o")"

# ---- HDF5 output with provenance
"$ms" records --spec "$spec" -o "$tmp/a.h5" -n 3000 --seed 7 --threads 1 --no-timestamp 2>"$tmp/rep"
grep -q "patients: 3000 rows" "$tmp/rep" || fail "report"
grep -q "rows/s" "$tmp/rep" || fail "report rate"
"$ms" records --spec "$spec" -o "$tmp/b.h5" -n 3000 --seed 7 --threads 2 --chunk-rows 777 --no-timestamp -q
"$ms" records --spec "$cohort" -o "$tmp/c.h5" --threads 2 -q
/usr/bin/python3 - "$tmp" "$spec" <<'PY'
import sys, h5py, numpy as np
t, spec = sys.argv[1], sys.argv[2]
def s(v): return v.decode() if isinstance(v, bytes) else str(v)
with h5py.File(f"{t}/a.h5") as a, h5py.File(f"{t}/b.h5") as b:
    for name in ("patients", "encounters"):
        x, y = a[f"/tables/{name}"][:], b[f"/tables/{name}"][:]
        assert x.dtype == y.dtype and len(x) == len(y), name
        assert x.tobytes() == y.tobytes(), "threads/chunk size changed " + name
    # root attributes agree, the invocation included: --threads and
    # --chunk-rows change no value, so they are not part of it
    ka = set(a.attrs)
    assert ka == set(b.attrs)
    for k in ka:
        assert s(a.attrs[k]) == s(b.attrs[k]), k
    p = a["/tables/patients"]
    assert len(p) == 3000
    at = a.attrs
    assert s(at["spec"]) == open(spec).read(), "spec text attribute"
    assert int(at["seed"]) == 7
    assert int(at["rows_patients"]) == 3000
    assert int(at["rows_encounters"]) == len(a["/tables/encounters"])
    assert len(s(at["spec_xxh64"])) == 16
    assert s(at["medsynth_version"])
    assert s(at["invocation"]).startswith('{"command":"records","spec":"xxh64:')
    # referential integrity: every encounter's patient exists
    ids = set(p["patient_id"])
    assert all(k in ids for k in a["/tables/encounters"]["patient_id"])
    assert "tmp" not in p.dtype.names  # hidden field
with h5py.File(f"{t}/c.h5") as c:
    p = c["/tables/patients"][:]
    assert len(p) == 500
    assert int(c.attrs["candidates_patients"]) > 500
    assert (p["age"] >= 40).all() and (p["age"] <= 75).all() and (p["hba1c"] >= 6.5).all()
PY

# the same command twice: byte-identical HDF5 with --no-timestamp (--force
# and -q are not part of the provenance; tests/cli/provenance.sh covers the
# other ways of typing the same run)
"$ms" records --spec "$spec" -o "$tmp/same.h5" -n 500 --no-timestamp -q
cp "$tmp/same.h5" "$tmp/same1.h5"
"$ms" records --spec "$spec" -o "$tmp/same.h5" -n 500 --no-timestamp --force 2>/dev/null
cmp "$tmp/same.h5" "$tmp/same1.h5" || fail "the same run gave different HDF5 bytes"
cmp "$tmp/a.h5" "$tmp/b.h5" || fail "--threads/--chunk-rows changed the HDF5 bytes"

# ---- CSV: byte-identical across threads and chunking; shards add up
"$ms" records --spec "$spec" -o "$tmp/one.csv" -n 2000 --threads 1 -q
"$ms" records --spec "$spec" -o "$tmp/two.csv" -n 2000 --threads 2 --chunk-rows 333 -q
cmp "$tmp/one.patients.csv" "$tmp/two.patients.csv" || fail "CSV differs across threads"
cmp "$tmp/one.encounters.csv" "$tmp/two.encounters.csv" || fail "CSV differs across threads (child)"
for k in 1 2 3; do "$ms" records --spec "$spec" -o "$tmp/s$k.csv" -n 2000 --shard $k/3 --chunk-rows 100 -q; done
for tb in patients encounters; do
  { head -1 "$tmp/s1.$tb.csv"; for k in 1 2 3; do tail -n +2 "$tmp/s$k.$tb.csv"; done; } > "$tmp/joined.$tb.csv"
  cmp "$tmp/one.$tb.csv" "$tmp/joined.$tb.csv" || fail "shards do not add up for $tb"
done
# prefix stability: the first 1000 patients of a 2000-row run
"$ms" records --spec "$spec" -o "$tmp/k.csv" -n 1000 -q
cmp "$tmp/k.patients.csv" <(head -1001 "$tmp/one.patients.csv") || fail "not prefix-stable"

# ---- --table and stdout
"$ms" records --spec "$spec" -o "$tmp/enc.h5" --table encounters -n 50 -q
/usr/bin/python3 -c "
import h5py, sys
f = h5py.File(sys.argv[1]); assert list(f['/tables']) == ['encounters'], list(f['/tables'])" "$tmp/enc.h5"
"$ms" records --spec "$spec" -o - --table patients --format jsonl -n 5 -q > "$tmp/p.jsonl"
[ "$(wc -l < "$tmp/p.jsonl")" = 5 ] || fail "stdout JSONL rows"
/usr/bin/python3 -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows[0]['row_no'] == 1 and rows[4]['mrn'] == 'MRN-00000005', rows[4]" "$tmp/p.jsonl"
expect_rc 64 "$ms" records --spec "$spec" -o -

# ---- existing output: refused without --force (file untouched), replaced with it
sum_before=$(md5sum < "$tmp/a.h5")
expect_rc 73 "$ms" records --spec "$spec" -o "$tmp/a.h5" -n 10
grep -q "force" "$tmp/err" || fail "exists message should mention --force"
[ "$(md5sum < "$tmp/a.h5")" = "$sum_before" ] || fail "existing file modified"
expect_rc 0 "$ms" records --spec "$spec" -o "$tmp/a.h5" -n 10 --force -q
[ "$(md5sum < "$tmp/a.h5")" != "$sum_before" ] || fail "--force did not replace"
echo "records_cli: ok"
