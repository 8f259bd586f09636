#!/usr/bin/env bash
# The example specs validate, and every sample in docs/examples.md is a
# prefix of what the command it names prints (same spec, default seed).
# Usage: examples_docs.sh <path-to-medsynth> <source-dir>
set -u
ms="$1"
src="$2"
cd "$src" || exit 1
fail=0
for spec in schemas/examples/*.json; do
  if ! "$ms" validate -q "$spec"; then
    echo "FAIL: $spec does not validate" >&2
    fail=1
  fi
done
# Extract "<!-- sample: ARGS -->" followed by a fenced block.
n=0
while IFS= read -r args; do
  n=$((n + 1))
  want=$(awk -v a="<!-- sample: $args -->" '
    $0 == a {f = 1; next}
    f == 1 && /^```/ {f = 2; next}
    f == 2 && /^```/ {exit}
    f == 2 {print}' docs/examples.md)
  lines=$(printf '%s\n' "$want" | wc -l)
  # shellcheck disable=SC2086
  got=$("$ms" records $args -o - -q | head -n "$lines")
  if [ "$got" != "$want" ]; then
    echo "FAIL: sample for '$args' differs from the command's output:" >&2
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") >&2
    fail=1
  fi
done < <(sed -n 's/^<!-- sample: \(.*\) -->$/\1/p' docs/examples.md)
if [ "$n" -lt 4 ]; then
  echo "FAIL: expected at least 4 samples in docs/examples.md, found $n" >&2
  fail=1
fi
exit $fail
