#!/usr/bin/env bash
# Malformed and hostile input on the command line: specs and tables that
# once crashed the command or were misread (the crashing ones are also
# replayed by tests/fuzz/run.sh from tests/fuzz/crashes/). Every bad input
# must end in a located message and exit 65, never a signal; input that is
# now handled is checked for its result.
# Usage: hostile_input.sh <medsynth> <source-dir>
set -u
M=$1
SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
expect() { # expect <code> <stderr substring> -- command...
  local code=$1 msg=$2
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -qF -- "$msg" "$T/err"; then
    echo "FAIL: $* -> rc=$rc (want $code), stderr:"; head -c 2000 "$T/err"; echo "(want: $msg)"
    fail=1
  fi
  if [ "$rc" -ge 128 ]; then echo "CRASH: $*"; fail=1; fi
}

# A parent table with an unnamed field, read by a child's "parent.x" bound
# (a segmentation fault once).
cp "$SRC/tests/specs/bad/unnamed_parent_field.json" "$T/parent.json"
expect 65 "$T/parent.json:6:7: error: /tables/0/fields/1: missing required key \"name\"" -- \
  "$M" records --spec "$T/parent.json" -o "$T/o.csv"

# 1^1^...^1 with 100,000 operators (a stack overflow once).
{
  printf '{"medsynth": 1, "tables": [{"name": "p", "rows": 3, "fields": [\n'
  printf '  {"name": "x", "kind": "real", "expr": "1'
  for _ in $(seq 1000); do printf '%s' '^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1^1'; done
  printf '"}\n]}]}\n'
} >"$T/power.json"
expect 65 "$T/power.json:2:441: error: /tables/0/fields/0/expr: expression is nested too deeply (more than 200 levels)" -- \
  "$M" records --spec "$T/power.json" -o "$T/o.csv"

# JSON nested deeper than a spec may be (and deeper than cJSON's own limit).
cp "$SRC/tests/specs/bad/nesting_too_deep.json" "$T/deep.json"
expect 65 "$T/deep.json:6:82: error: /tables/0/fields/0/description/0/0/" -- \
  "$M" validate "$T/deep.json"
head -c 100000 /dev/zero | tr '\0' '[' >"$T/brackets.json"
expect 65 "$T/brackets.json:1:65: error: /0/0/0/0/" -- "$M" validate "$T/brackets.json"

# NUL bytes inside CSV fields (once silently cut: a\0b1 and a\0b2 became "a").
{
  printf 'cat,n\na\0b1,1\n"a\0b2",2\n'
  for i in $(seq 12); do printf 'c%d,%d\n' "$i" "$i"; done
} >"$T/nul.csv"
expect 65 "$T/nul.csv:2:2: error: NUL byte in a field" -- "$M" fit --data "$T/nul.csv" -o "$T/f.json"
expect 65 "$T/nul.csv:3:3: error: NUL byte in a field" -- "$M" fit --data "$T/nul.csv" -o "$T/f.json"

# Column names that are not spec identifiers (the fitted spec once failed to
# load in `medsynth records`): each becomes a field name, the header its
# label, and the records come back under the real headers.
{
  printf 'age (years),bmi,1st.visit\n'
  for i in $(seq 12); do printf '%d,%d.5,%d\n' "$((30 + i))" "$((20 + i))" "$((i % 2))"; done
} >"$T/names.csv"
expect 0 "" -- "$M" fit --data "$T/names.csv" -o "$T/f.json"
expect 0 "" -- "$M" records --spec "$T/f.json" --seed 1 -o "$T/names_syn.csv"
head -1 "$T/names_syn.csv" | grep -qx 'age (years),bmi,1st.visit' ||
  { echo "FAIL: headers not kept: $(head -1 "$T/names_syn.csv")"; fail=1; }
exit $fail
