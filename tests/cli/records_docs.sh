#!/usr/bin/env bash
# The examples of docs/spec.md, docs/cli.md and docs/reproducibility.md are
# real: every ```json block of docs/spec.md is validated (whole specs as they
# are; single fields inside a small host table that provides age, sex,
# height_cm, weight_kg and reference_date, as the child of a table with a
# key, so that kind "ref" has a parent), every docs/specs/*.json file
# named in the docs validates and generates, the ```sh command lines run, and
# the API example program works.
set -euo pipefail
ms=$(realpath "$1")
src=$(realpath "$2")
bin=$(dirname "$ms")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

/usr/bin/python3 - "$src" "$tmp" <<'PY'
import json, re, sys, os
src, tmp = sys.argv[1], sys.argv[2]
host = {"medsynth": 1, "constants": {"reference_date": "2025-01-01"},
        "tables": [{"name": "households", "rows": 25, "fields": [{"name": "hh_id", "kind": "id"}]},
                   {"name": "host", "parent": "households", "count": {"type": "constant", "value": 2}, "fields": [
            {"name": "age", "kind": "integer", "dist": {"type": "uniform", "low": 18, "high": 90}},
            {"name": "sex", "kind": "categorical", "values": {"F": 1, "M": 1}},
            {"name": "height_cm", "kind": "real", "dist": {"type": "normal", "mean": 170, "sd": 9}, "min": 140, "max": 210},
            {"name": "weight_kg", "kind": "real", "dist": {"type": "normal", "mean": 75, "sd": 12}, "min": 40, "max": 180}]}]}
n = 0
for doc in ("spec.md", "vocabularies.md"):
    text = open(os.path.join(src, "docs", doc)).read()
    for i, block in enumerate(re.findall(r"```json\n(.*?)```", text, re.S)):
        # a block may hold several objects separated by blank lines
        for j, part in enumerate(p for p in re.split(r"\n\s*\n", block.strip()) if p.strip()):
            obj = json.loads(part)
            if "medsynth" in obj:
                spec = obj
            elif "kind" in obj:
                spec = json.loads(json.dumps(host))
                names = {f["name"] for f in spec["tables"][1]["fields"]}
                if obj["name"] in names:
                    spec["tables"][1]["fields"] = [f for f in spec["tables"][1]["fields"] if f["name"] != obj["name"]]
                spec["tables"][1]["fields"].append(obj)
            else:
                raise SystemExit(f"{doc} block {i}: neither a spec nor a field")
            if doc == "vocabularies.md" and "lookup" in part:
                continue  # needs a field of that document's own example
            with open(f"{tmp}/doc_{doc}_{i}_{j}.json", "w") as f:
                json.dump(spec, f)
            n += 1
assert n >= 12, n
PY
# vocabulary names resolve relative to the spec's directory or MEDSYNTH_VOCAB_PATH
export MEDSYNTH_VOCAB_PATH="$src/schemas/vocab"
for f in "$tmp"/doc_*.json; do
  "$ms" validate -q "$f" || fail "docs example $(basename "$f") does not validate: $(cat "$f")"
  "$ms" records --spec "$f" -o "$tmp/x.h5" -n 200 --force -q || fail "docs example $(basename "$f") does not generate"
done

# every spec file the docs name
for f in $(grep -oh 'docs/specs/[a-z_]*\.json' "$src"/docs/*.md | sort -u); do
  [ -f "$src/$f" ] || fail "docs name $f, which does not exist"
  "$ms" validate -q "$src/$f" || fail "$f does not validate"
  "$ms" records --spec "$src/$f" -o "$tmp/y.h5" -n 300 --force -q || fail "$f does not generate"
done
for f in "$src"/schemas/examples/*.json; do
  "$ms" validate -q "$f" || fail "$f does not validate"
done

# ```sh blocks: command lines starting with "medsynth" run from a scratch directory
( cd "$tmp" && ln -s "$src/docs" docs && ln -s "$src/tests" tests
  for doc in spec.md cli.md reproducibility.md; do
    [ -f "$src/docs/$doc" ] || continue
    awk '/^```sh$/{f=1; next} /^```$/{f=0} f && /^medsynth /' "$src/docs/$doc" | sed 's/ *#.*$//' |
    while IFS= read -r line; do
      rest=${line#medsynth }
      # shellcheck disable=SC2086
      eval "\"$ms\" $rest" > /dev/null 2> "$tmp/cmd.err" || {
        rc=$?
        # documented failures say so with a comment "# exit N" in the doc
        grep -qF -- "$line" "$src/docs/$doc" && grep -- "$rest" "$src/docs/$doc" | grep -q "# exit $rc" ||
          { cat "$tmp/cmd.err"; fail "$doc: '$line' exited $rc"; }
      }
    done
  done )

# docs/reproducibility.md: the documented runs agree byte for byte, and the
# invocation shown there is the one written
cmp "$tmp/a.patients.csv" "$tmp/b.patients.csv" || fail "reproducibility.md example: patients differ"
cmp "$tmp/a.encounters.csv" "$tmp/b.encounters.csv" || fail "reproducibility.md example: encounters differ"
cmp "$tmp/a.h5" "$tmp/b.h5" || fail "reproducibility.md example: a.h5 and b.h5 differ"
/usr/bin/python3 - "$tmp/a.h5" "$src/docs/reproducibility.md" <<'PY' || fail "reproducibility.md: invocation example"
import sys, h5py
v = h5py.File(sys.argv[1], "r").attrs["invocation"]
v = v.decode() if isinstance(v, bytes) else v
assert v in open(sys.argv[2]).read().splitlines(), v
PY

# the API example
"$bin/example_records_api" "$src/docs/specs/minimal.json" "$tmp/api.h5" > "$tmp/api.txt"
grep -q "^patients: 100 rows$" "$tmp/api.txt" || fail "example output: $(cat "$tmp/api.txt")"
age=$(awk '/mean age/ {print $4}' "$tmp/api.txt")
/usr/bin/python3 - "$tmp/api.h5" "$age" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1])
p = f["/tables/patients"][:]
assert len(p) == 100
m = float(p["age"].mean())
assert abs(m - float(sys.argv[2])) < 0.001, (m, sys.argv[2])
assert 40 < m < 60, m
assert ((p["age"] >= 18) & (p["age"] <= 95)).all()
PY
echo "records_docs: ok"
