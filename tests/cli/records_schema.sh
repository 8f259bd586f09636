#!/usr/bin/env bash
# schemas/medsynth-spec.schema.json is a valid JSON Schema (draft 2020-12),
# accepts every example spec medsynth accepts, and rejects the structural
# mistakes of the bad-spec corpus (unknown keys, wrong types, unknown kinds
# and distributions, missing keys) just as medsynth does.
set -euo pipefail
ms=$1
src=$2
# jsonschema (draft 2020-12 support) may live in either interpreter
py=
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import jsonschema; jsonschema.Draft202012Validator' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "FAIL: no python3 with the jsonschema module (needed to check the meta-schema)" >&2; exit 1; }
"$py" - "$src" "$ms" <<'PY'
import json, glob, subprocess, sys
from jsonschema import Draft202012Validator
src, ms = sys.argv[1], sys.argv[2]
schema = json.load(open(f"{src}/schemas/medsynth-spec.schema.json"))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
good = sorted(glob.glob(f"{src}/docs/specs/*.json") + glob.glob(f"{src}/schemas/examples/*.json")
              + glob.glob(f"{src}/examples/*.json"))
assert len(good) >= 4, good
for f in good:
    assert subprocess.run([ms, "validate", "-q", f]).returncode == 0, f
    errs = list(v.iter_errors(json.load(open(f))))
    assert not errs, (f, [e.message for e in errs[:3]])
for name in ("unknown_key", "wrong_type", "unknown_distribution", "kinds", "missing_required", "version"):
    f = f"{src}/tests/specs/bad/{name}.json"
    assert subprocess.run([ms, "validate", "-q", f], capture_output=True).returncode == 65, f
    errs = list(v.iter_errors(json.load(open(f))))
    assert errs, f"schema accepts {name}.json"
print("records_schema: ok")
PY
