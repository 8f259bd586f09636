#!/usr/bin/env bash
# Reads a medsynth HDF5 file with h5py and h5dump, and checks `medsynth
# inspect`: labels, values, NaN for missing, validity members, attributes,
# the h5py loader snippet of docs/file-format.md, checksum verification, and
# clean errors (exit 66, no HDF5 error stack) for bad inputs.
# The file comes from `test_io --write-sample` (tests/test_io.c), whose
# fixture defines the expected values used below.
# Usage: io_h5py.sh <medsynth> <source-dir>   (run from the build directory)
set -euo pipefail
MS="$1"
SRC="$2"
PY=/usr/bin/python3
TEST_IO="$(pwd)/test_io"
[ -x "$TEST_IO" ] || { echo "FAIL: $TEST_IO not built"; exit 1; }
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT

"$TEST_IO" --write-sample "$T/s.h5"
h5dump -H "$T/s.h5" > "$T/h5dump.txt"
grep -q 'DATASET "patients"' "$T/h5dump.txt"
grep -q 'H5T_CSET_UTF8' "$T/h5dump.txt"

# The loader of docs/file-format.md, extracted and run as documented.
awk '/^### Reading a table with h5py/{f=1} f&&/^```python/{p=1;next} p&&/^```/{exit} p' \
  "$SRC/docs/file-format.md" > "$T/loader.py"
[ -s "$T/loader.py" ] || { echo "FAIL: loader snippet not found in docs/file-format.md"; exit 1; }

$PY - "$T/s.h5" "$T/loader.py" <<'EOF'
import sys, math
import h5py, numpy as np
path, loader = sys.argv[1], sys.argv[2]
exec(open(loader).read())
f = h5py.File(path, "r")
assert f.attrs["medsynth_format"] == 1
assert f.attrs["seed"] == "42"
assert f.attrs["spec_hash"] == "0123456789abcdef"
assert f.attrs["scale"] == 0.5
ds = f["tables/patients"]
N = 1000
assert ds.shape == (N,), ds.shape
assert ds.attrs["rows"] == N
assert ds.chunks == (128,)
assert ds.compression == "gzip" and ds.compression_opts == 6 and ds.shuffle
names = ds.dtype.names
assert names == ("id", "height", "sex", "sex__valid", "smoker", "smoker__valid", "note",
                 "note__valid", "birth", "birth__valid", "seen", "seen__valid", "x"), names
assert ds.dtype["smoker"] == np.bool_ and ds.dtype["sex__valid"] == np.bool_
assert ds.attrs["height.units"] == "cm"
assert ds.attrs["birth.units"] == "days since 1970-01-01"
assert ds.attrs["id.description"] == "row number"
cats = list(ds.attrs["sex.categories"])
assert cats == ["F", "M", 'Unknown, "other"'], cats
a = ds[...]
r = np.arange(N)
assert (a["id"] == r * 1000003 - 5).all()
miss_h = r % 7 == 3
assert np.isnan(a["height"][miss_h]).all()
assert np.allclose(a["height"][~miss_h], 140.0 + (r[~miss_h] % 600) / 10.0)
sex_ok = r % 5 != 1
assert (a["sex__valid"] == sex_ok).all()
labels = np.char.decode(a["sex"], "utf-8")
assert (labels[sex_ok] == np.array(cats)[(r % 3)[sex_ok]]).all()
assert (labels[~sex_ok] == "").all()
assert labels[2] == 'Unknown, "other"'
sm_ok = r % 11 != 2
assert (a["smoker"][sm_ok] == (r[sm_ok] % 2 == 1)).all()
note = np.char.decode(a["note"], "utf-8")
assert note[1] == "caf\u00e9 1" and note[3] == "exactly12chr" and note[0] == 'a,"b"\n0'
assert note[4] == "" and not a["note__valid"][4]
assert a["birth"][0] == -3650 and a["seen"][0] == 1600000000
assert a["x"][0] == 0.1 and a["x"][1] == -1.0

cols, present = load_table(path, "patients")
assert cols["birth"][0] == np.datetime64("1960-01-04")
assert cols["seen"][1] == np.datetime64("2020-09-13T13:26:47")
assert cols["sex"][2] == 'Unknown, "other"'
assert (present["height"] == ~miss_h).all() and (present["sex"] == sex_ok).all()
assert present["id"].all()

img = f["images/demo"]
assert img.shape == (4, 3, 5) and img.dtype == np.uint8 and img.chunks == (1, 3, 5)
assert (img[...].ravel() == (np.arange(60) * 7 % 251)).all()
assert img.attrs["modality"] == "demo" and img.attrs["items"] == 4
print("h5py checks passed")
EOF

# inspect: summaries and verification.
"$MS" inspect --verify "$T/s.h5" > "$T/inspect.txt"
grep -q 'table patients: 1000 rows, 8 columns' "$T/inspect.txt"
grep -q 'seed: 42' "$T/inspect.txt"
grep -Eq 'height +float64 +missing  14\.3%' "$T/inspect.txt"
grep -q '"F" 33.4%' "$T/inspect.txt"
grep -q 'xxh64 [0-9a-f]\{16\}: verified' "$T/inspect.txt"
grep -q 'array /images/demo: uint8 \[4, 3, 5\]' "$T/inspect.txt"
grep -q 'xxh64_items: verified' "$T/inspect.txt"
"$MS" inspect --help | grep -q 'usage: medsynth inspect'

expect_exit() { # code, stderr pattern, args...
  local want="$1" pat="$2"; shift 2
  set +e
  "$MS" "$@" > "$T/out.txt" 2> "$T/err.txt"
  local got=$?
  set -e
  [ "$got" = "$want" ] || { echo "FAIL: medsynth $* exited $got, want $want"; cat "$T/err.txt"; exit 1; }
  grep -q "$pat" "$T/err.txt" || { echo "FAIL: stderr lacks '$pat'"; cat "$T/err.txt"; exit 1; }
  if grep -q 'HDF5-DIAG' "$T/err.txt"; then echo "FAIL: HDF5 error stack printed"; exit 1; fi
}
expect_exit 66 'no such file' inspect "$T/missing.h5"
echo "not hdf5" > "$T/text.h5"
expect_exit 66 'not an HDF5 file' inspect "$T/text.h5"
$PY -c 'import h5py,sys; h5py.File(sys.argv[1],"w").create_dataset("x",data=[1,2])' "$T/other.h5"
expect_exit 66 'not a medsynth file' inspect "$T/other.h5"
expect_exit 64 'unknown option' inspect --bogus "$T/s.h5"

# A value changed behind medsynth's back: --verify fails with 65.
$PY - "$T/s.h5" <<'EOF'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    ds = f["tables/patients"]
    row = ds[500]
    row["id"] = 7
    ds[500] = row
EOF
expect_exit 65 'checksum mismatch' inspect --verify "$T/s.h5"
echo "io_h5py: all checks passed"
