#!/usr/bin/env bash
# Wide tables in HDF5 (docs/file-format.md, "Wide tables"): a table whose
# compound row type would exceed HDF5's 64 KiB object header message is
# stored as a group of column-group datasets. Checks:
#   - 4,000 fields of mixed kinds (with missing values) generate to HDF5; h5py
#     reads the parts and, joined, they equal the CSV output value for value;
#     `medsynth inspect --verify` checks every part and the table checksum;
#     `medsynth fit` reads the table back through the library's reader;
#   - the limit is exact: a row type of 65,535 bytes is one dataset, one of
#     65,536 bytes is two parts, and each part of a split table fits;
#   - a corrupted part makes --verify fail.
# Usage: wide_tables.sh <medsynth> <source-dir>
set -euo pipefail
MS="$1"
SRC="$2"
PY=/usr/bin/python3
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

$PY - "$T" <<'PY'
import json, sys
t = sys.argv[1]
fields = [{"name": "id", "kind": "id", "format": "seq"}]
for i in range(3999):
    k = i % 6
    f = {"name": f"v{i}"}
    if k == 0:
        f.update(kind="real", precision=2, dist={"type": "normal", "mean": 10, "sd": 2}, missing=0.2)
    elif k == 1:
        f.update(kind="integer", dist={"type": "uniform", "low": 0, "high": 9}, missing=0.1)
    elif k == 2:
        f.update(kind="bool", p=0.3)
    elif k == 3:
        f.update(kind="categorical", values={"a": 0.5, "bb": 0.3, "ccc": 0.2}, missing=0.1)
    elif k == 4:
        f.update(kind="date", base="date('2020-01-01')", offset_days={"type": "uniform", "low": 0, "high": 365})
    else:
        f.update(kind="real", dist={"type": "uniform", "low": 0, "high": 1})
    fields.append(f)
json.dump({"medsynth": 1, "name": "wide", "seed": 3, "tables": [{"name": "w", "rows": 40, "fields": fields}]},
          open(f"{t}/wide.json", "w"))

# the limit: n int64 members named with 5 characters cost 5 + 1 (name) + 12
# (type) + 2 (offset) = 20 bytes each, plus 8 for the compound; 3,276 of
# them with the last name 7 characters longer make exactly 65,535 bytes
def limit_spec(extra):
    fs = [{"name": f"f{i:04d}" + ("x" * extra if i == 3275 else ""), "kind": "integer",
           "dist": {"type": "uniform", "low": 0, "high": 9}} for i in range(3276)]
    return {"medsynth": 1, "name": "limit", "seed": 1, "tables": [{"name": "t", "rows": 5, "fields": fs}]}
json.dump(limit_spec(7), open(f"{t}/at_limit.json", "w"))
json.dump(limit_spec(8), open(f"{t}/over_limit.json", "w"))
PY

"$MS" validate -q "$T/wide.json"
"$MS" records --spec "$T/wide.json" -o "$T/wide.h5" -q --no-timestamp
"$MS" records --spec "$T/wide.json" -o "$T/wide.csv" -q
"$MS" inspect --verify --table w "$T/wide.h5" > "$T/inspect.txt" || fail "inspect --verify"
grep -q "table w: 40 rows, 4000 columns" "$T/inspect.txt" || fail "inspect: $(grep '^table' "$T/inspect.txt")"
grep -q "verified" "$T/inspect.txt" || fail "inspect did not verify the checksum"
"$MS" records --spec "$T/at_limit.json" -o "$T/at.h5" -q
"$MS" records --spec "$T/over_limit.json" -o "$T/over.h5" -q
"$MS" inspect --verify "$T/over.h5" > /dev/null || fail "inspect --verify of the split table"

$PY - "$T" <<'PY'
import csv, sys, math
import h5py, numpy as np
t = sys.argv[1]
def s(v): return v.decode() if isinstance(v, bytes) else str(v)

with h5py.File(f"{t}/wide.h5", "r") as f:
    g = f["tables/w"]
    assert isinstance(g, h5py.Group), type(g)
    n = int(g.attrs["parts"])
    assert n >= 2 and sorted(g) == [f"{k:04d}" for k in range(n)], (n, sorted(g))
    assert int(g.attrs["rows"]) == 40
    import json
    schema = json.loads(s(g.attrs["medsynth_schema"]))
    assert len(schema["columns"]) == 4000
    names, cols, attrs = [], {}, {}
    for k in range(n):
        ds = g[f"{k:04d}"]
        assert ds.shape == (40,) and int(ds.attrs["rows"]) == 40
        part = json.loads(s(ds.attrs["medsynth_schema"]))
        a = ds[...]
        for c in part["columns"]:
            names.append(c["name"])
            cols[c["name"]] = a[c["name"]]
            if c["name"] + "__valid" in a.dtype.names:
                cols[c["name"] + "__valid"] = a[c["name"] + "__valid"]
            for key in ("units", "categories"):
                if f"{c['name']}.{key}" in ds.attrs:
                    attrs[f"{c['name']}.{key}"] = ds.attrs[f"{c['name']}.{key}"]
    assert names == [c["name"] for c in schema["columns"]], "parts must hold the columns in order"
    assert list(attrs["v3.categories"]) == ["a", "bb", "ccc"]
    assert s(attrs["v4.units"]) == "days since 1970-01-01"

rows = list(csv.reader(open(f"{t}/wide.csv", newline="")))
assert rows[0] == names
checked = 0
for j, name in enumerate(names):
    v = cols[name]
    valid = cols.get(name + "__valid")
    for i in range(40):
        text = rows[i + 1][j]
        kind = i
        if valid is not None and not valid[i]:
            assert text == "", (name, i, text)
        elif v.dtype.kind == "f":
            assert (text == "") == math.isnan(v[i]), (name, i, text, v[i])
            if text:
                assert abs(float(text) - v[i]) <= 1e-9 * max(1, abs(v[i])), (name, i, text, v[i])
        elif v.dtype == np.bool_:
            assert text == ("true" if v[i] else "false"), (name, i, text)
        elif v.dtype.kind == "S":
            assert text == v[i].decode(), (name, i, text)
        elif name.startswith("v") and int(name[1:]) % 6 == 4:   # dates: days since 1970
            d = np.datetime64("1970-01-01") + np.timedelta64(int(v[i]), "D")
            assert text == str(d), (name, i, text, d)
        else:
            assert int(text) == int(v[i]), (name, i, text, v[i])
        checked += 1
assert checked == 4000 * 40

with h5py.File(f"{t}/at.h5", "r") as f:
    d = f["tables/t"]
    assert isinstance(d, h5py.Dataset) and len(d.dtype.names) == 3276, "65,535 bytes must stay one dataset"
with h5py.File(f"{t}/over.h5", "r") as f:
    g = f["tables/t"]
    assert isinstance(g, h5py.Group) and int(g.attrs["parts"]) == 2, "65,536 bytes must split"
    assert len(g["0000"].dtype.names) == 3275 and g["0001"].dtype.names == ("f3275" + "x" * 8,)
    assert (g["0000"]["f0000"] >= 0).all() and (g["0001"]["f3275" + "x" * 8] <= 9).all()
PY

# the h5py loader of docs/file-format.md joins the column groups
awk '/^### Reading a table with h5py/{f=1} f&&/^```python/{p=1;next} p&&/^```/{exit} p' \
  "$SRC/docs/file-format.md" > "$T/loader.py"
[ -s "$T/loader.py" ] || fail "loader snippet not found in docs/file-format.md"
$PY - "$T/wide.h5" "$T/loader.py" <<'PY'
import sys
import numpy as np
exec(open(sys.argv[2]).read())
cols, present = load_table(sys.argv[1], "w")
assert len(cols) == 4000 and list(cols)[-1] == "v3998", len(cols)
assert cols["v3"].dtype.kind == "U" and cols["v4"].dtype == np.dtype("datetime64[D]")
assert not present["v0"].all() and present["v2"].all()
PY

# fit reads a wide table through the library's HDF5 reader
"$MS" records --spec "$T/over_limit.json" -o "$T/over20.h5" -n 20 -q
"$MS" fit --data "$T/over20.h5" --no-copula -o "$T/fit.json" 2>/dev/null || fail "fit of a wide HDF5 table"
grep -q '"name": "f3275xxxxxxxx"' "$T/fit.json" || fail "fit lost the last part's column"

# a damaged part is found by --verify
$PY - "$T/over.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    ds = f["tables/t/0001"]
    a = ds[...]
    a[0][0] += 1
    ds[0] = a[0]
PY
if "$MS" inspect --verify "$T/over.h5" > /dev/null 2> "$T/err"; then fail "--verify missed a damaged part"; fi
grep -q "checksum mismatch" "$T/err" || fail "--verify message: $(cat "$T/err")"
echo "wide tables: ok"
