#!/usr/bin/env bash
# Every spec of tests/specs/good passes `medsynth validate` (the C tests that
# read them, and tests/test_specs.c, check what they generate).
# Usage: specs_good.sh <path-to-medsynth> <source-dir>
set -euo pipefail
ms=$1
src=$2
fail=0
n=0
for f in "$src"/tests/specs/good/*.json; do
  n=$((n + 1))
  if ! "$ms" validate "$f" >/dev/null; then
    echo "FAIL: medsynth validate $f" >&2
    fail=1
  fi
done
[ "$n" -gt 0 ] || { echo "FAIL: no specs in tests/specs/good" >&2; exit 1; }
exit $fail
