#!/usr/bin/env bash
# Output labels and text formats (docs/spec.md, Fields and Output columns): a
# field's `label` is its column header in CSV, JSON Lines and HDF5; `format`
# writes reals with trimmed zeros and dates/datetimes in a given pattern.
# Usage: records_labels.sh <medsynth> <source-dir>
set -eu
M=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cat >"$T/s.json" <<'J'
{"medsynth": 1, "tables": [{"name": "t", "rows": 200, "fields": [
  {"name": "sepal", "label": "sepal length (cm)", "kind": "real", "precision": 2, "format": "trim.0",
   "dist": {"type": "quantiles", "probs": [0, 0.5, 1], "values": [1, 1, 3]}},
  {"name": "w", "label": "Größe.m", "kind": "real", "precision": 3, "format": "trim",
   "dist": {"type": "uniform", "low": 0, "high": 2}},
  {"name": "admit", "label": "Admit Date", "kind": "date", "format": "%m/%d/%Y",
   "base": "date('2023-01-01')", "offset_days": {"type": "uniform", "low": 0, "high": 300}},
  {"name": "seen", "kind": "datetime", "format": "%d.%m.%Y %H:%M",
   "base": "date('2023-01-01')", "offset_days": {"type": "uniform", "low": 0, "high": 3}}
]}]}
J
"$M" records --spec "$T/s.json" -o "$T/o.csv" -q
"$M" records --spec "$T/s.json" -o "$T/o.jsonl" -q
"$M" records --spec "$T/s.json" -o "$T/o.h5" -q
/usr/bin/python3 - "$T/o.csv" "$T/o.jsonl" <<'PY'
import csv, json, re, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8")))
assert rows[0] == ["sepal length (cm)", "Größe.m", "Admit Date", "seen"], rows[0]
body = rows[1:]
assert len(body) == 200
ones = [r[0] for r in body if float(r[0]) == 1]
assert ones and all(v == "1.0" for v in ones), set(ones)      # the mass at 1 kept, written 1.0
assert all(not re.search(r"\.\d*0$", r[0]) or r[0].endswith(".0") for r in body)
assert all(re.fullmatch(r"\d+(\.\d{1,3})?", r[1]) and not r[1].endswith("0") or r[1] == "0" for r in body)
assert all(re.fullmatch(r"\d\d/\d\d/2023", r[2]) for r in body), body[0]
assert all(re.fullmatch(r"\d\d\.01\.2023 \d\d:\d\d", r[3]) for r in body), body[0]
j = json.loads(open(sys.argv[2]).readline())
assert list(j) == rows[0] and re.fullmatch(r"\d\d/\d\d/2023", j["Admit Date"]), j
PY
"$M" inspect "$T/o.h5" 2>&1 | grep -qF "sepal length (cm)"
