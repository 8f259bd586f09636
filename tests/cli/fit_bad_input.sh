#!/usr/bin/env bash
# `medsynth fit` / `medsynth evaluate` on bad input: each case must exit with
# the documented code and a message naming the file (and line where there is
# one), never crash. Usage: fit_bad_input.sh <medsynth> <source-dir>
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
    echo "FAIL: $* -> rc=$rc (want $code), stderr:"; cat "$T/err"; echo "(want: $msg)"
    fail=1
  fi
  if [ "$rc" -ge 128 ]; then echo "CRASH: $*"; fail=1; fi
}
: >"$T/empty.csv"
printf 'a,b\n' >"$T/header.csv"
printf 'a,b\n1,2\n' >"$T/one.csv"
printf 'a,b\n1,2\n3,4\n5\n' >"$T/ragged.csv"
expect 65 "$T/empty.csv: error: file is empty" -- "$M" fit --data "$T/empty.csv" -o "$T/o.json"
expect 65 "$T/header.csv:1: error: header row but no data rows" -- "$M" fit --data "$T/header.csv" -o "$T/o.json"
expect 65 "1 data row: fitting needs at least 2*k = 10 rows" -- "$M" fit --data "$T/one.csv" -o "$T/o.json"
expect 65 "$T/ragged.csv:4: error: row has 1 field, the header has 2" -- "$M" fit --data "$T/ragged.csv" -o "$T/o.json"
expect 66 "$T/nope.csv: error: cannot open" -- "$M" fit --data "$T/nope.csv" -o "$T/o.json"
expect 64 "--epsilon must be a number > 0, got '0'" -- "$M" fit --data "$SRC/tests/data/diabetes_train.csv" --epsilon 0 -o "$T/o.json"
expect 64 "--epsilon must be a number > 0, got '-1'" -- "$M" fit --data "$SRC/tests/data/diabetes_train.csv" --epsilon -1 -o "$T/o.json"
expect 64 "--method must be auto, copula, mst or aim, got 'pgm'" -- "$M" fit --data "$SRC/tests/data/diabetes_train.csv" --epsilon 1 --method pgm -o "$T/o.json"
expect 64 "--types: 'age=number' is not col=kind" -- "$M" fit --data "$SRC/tests/data/diabetes_train.csv" --types age=number --types sex=categorical -o "$T/o.json"
# Public inputs of the DP fit: every error at once, each naming its option.
D="$SRC/tests/data/diabetes_train.csv"
# a list option given twice is both lists: the first is not dropped
"$M" fit --data "$D" --epsilon 1 --delta 0.01 --bounds nope=1:2 --bounds bmi=10:60 --domain foo=a,b --domain age=1,2 --rebalance bar=1,2 -o "$T/o.json" 2>"$T/err"
rc=$?
for msg in "--delta 0.01 is not below 1/n" '--bounds: no column "nope"' '--domain: no column "foo"' \
           '--domain: column "age" is integer' '--rebalance: no column "bar"'; do
  grep -qF -- "$msg" "$T/err" || { echo "FAIL: missing '$msg' in:"; cat "$T/err"; fail=1; }
done
[ "$rc" = 64 ] || { echo "FAIL: public-input errors rc=$rc (want 64)"; fail=1; }
expect 64 "--bounds for 'bmi': need numbers or dates (YYYY-MM-DD) lo < hi" -- "$M" fit --data "$D" --epsilon 1 --bounds bmi=40:20 -o "$T/o.json"
expect 64 "--rebalance sex: weight '-2' is not a number >= 0" -- "$M" fit --data "$D" --rebalance sex=1,-2 -o "$T/o.json"
expect 64 "--rebalance sex: the weights do not add up to a positive number" -- "$M" fit --data "$D" --types sex=categorical --rebalance sex=0,0 -o "$T/o.json"
expect 64 "--rebalance needs --method mst or aim" -- "$M" fit --data "$D" --types sex=categorical --method copula --rebalance sex -o "$T/o.json"
expect 64 "2 weights for 3 released labels" -- "$M" fit --data "$D" --types sex=categorical --rebalance sex=1,2 --domain sex=1,2,9 --epsilon 1 --delta 1e-5 -o "$T/o.json"
expect 64 '"purple" is not a released label' -- "$M" fit --data "$D" --types sex=categorical --rebalance sex=1:1,purple:2 -o "$T/o.json"
[ -e "$T/o.json" ] && { echo "FAIL: output written on error"; fail=1; }

# Messy files that can be read: a BOM, CRLF line ends and ';' separators
# (detected, or given with --sep), a column holding one value.
printf '\xef\xbb\xbfage;sex;grade;const\r\n' >"$T/semi.csv"
for i in $(seq 1 60); do printf '%d;%s;%d,%d;x\r\n' $((20 + i % 50)) $([ $((i % 3)) = 0 ] && echo F || echo M) $((i % 4)) $((i % 7)) >>"$T/semi.csv"; done
expect 0 "warning: const: column holds one value" -- "$M" fit --data "$T/semi.csv" -o "$T/semi.json"
expect 0 "fit: 60 rows x 4 columns" -- "$M" fit --data "$T/semi.csv" --sep ';' -o "$T/semi2.json" --force
"$M" records --spec "$T/semi.json" -o "$T/semi_syn.csv" -q
head -1 "$T/semi_syn.csv" | grep -qx 'age,sex,grade,const' || { echo "FAIL: header of the ;-separated file"; head -1 "$T/semi_syn.csv"; fail=1; }
# A header naming a column twice cannot be written back: an error naming both.
printf 'a,b,a\n1,2,3\n' >"$T/dup.csv"
expect 65 "$T/dup.csv:1: error: column 3: duplicate column name \"a\" (also column 1); rename one" -- "$M" fit --data "$T/dup.csv" -o "$T/o.json"
expect 64 "--sep needs one character" -- "$M" fit --data "$T/dup.csv" --sep ';;' -o "$T/o.json"
# Dates whose month/day order the data leave open: a message with the way out.
printf 'd,v\n' >"$T/amb.csv"
for i in $(seq 1 40); do printf '%02d/%02d/2023,%d\n' $((1 + i % 12)) $((1 + i % 12)) $i >>"$T/amb.csv"; done
expect 65 "d: every date fits both \"%m/%d/%Y\" and \"%d/%m/%Y\" (month/day order unknown): pass --date-format with the right one" -- \
  "$M" fit --data "$T/amb.csv" -o "$T/o.json"
[ -e "$T/o.json" ] && { echo "FAIL: output written on error"; fail=1; }
expect 0 "fit: 40 rows x 2 columns" -- "$M" fit --data "$T/amb.csv" --date-format '%d/%m/%Y' -o "$T/amb.json"
grep -qF '"format": "%d/%m/%Y"' "$T/amb.json" || { echo "FAIL: --date-format not kept"; fail=1; }
# evaluate takes the same option, and reads the synthetic dates with the
# real table's pattern (a synthetic file of small days is not ambiguous then).
"$M" records --spec "$T/amb.json" -o "$T/amb_syn.csv" -n 30 -q
expect 65 "pass --date-format with the right one" -- "$M" evaluate --real "$T/amb.csv" --synthetic "$T/amb_syn.csv" --no-plots -o "$T/amb_rep"
expect 0 "evaluate:" -- "$M" evaluate --real "$T/amb.csv" --synthetic "$T/amb_syn.csv" --date-format '%d/%m/%Y' --no-plots -o "$T/amb_rep"

# A good fit, then the output exists and refuses to be overwritten.
expect 0 "privacy: not differentially private" -- "$M" fit --data "$SRC/tests/data/diabetes_train.csv" -o "$T/fit.json" --sample 300 --sample-out "$T/syn.csv"
/usr/bin/python3 -c "import json,sys; s=json.load(open(sys.argv[1])); assert s['medsynth']==1 and s['tables'][0]['fields'][0]['name']=='age'" "$T/fit.json" || { echo "FAIL: spec is not valid JSON"; fail=1; }
expect 73 "exists (use --force to overwrite)" -- "$M" fit --data "$SRC/tests/data/diabetes_train.csv" -o "$T/fit.json"

# evaluate: mismatched columns, then a good run (exit 0) and a copy (exit 1).
cut -d, -f1-10 "$T/syn.csv" >"$T/syn_short.csv"
expect 65 "$T/syn_short.csv:1: error: progression: column of the real table is missing" -- "$M" evaluate --real "$SRC/tests/data/diabetes_train.csv" --synthetic "$T/syn_short.csv" -o "$T/rep0"
expect 0 "verdict pass" -- "$M" evaluate --real "$SRC/tests/data/diabetes_train.csv" --holdout "$SRC/tests/data/diabetes_holdout.csv" --synthetic "$T/syn.csv" --target progression -o "$T/rep1"
for f in report.json report.md associations.png dcr.png columns/bmi.png; do
  [ -s "$T/rep1/$f" ] || { echo "FAIL: missing $f"; fail=1; }
done
expect 1 "verdict fail" -- "$M" evaluate --real "$SRC/tests/data/diabetes_train.csv" --holdout "$SRC/tests/data/diabetes_holdout.csv" --synthetic "$SRC/tests/data/diabetes_train.csv" -o "$T/rep2" --no-plots
grep -q '"exact_copy_rate": *1' "$T/rep2/report.json" || grep -q '"exact_copy_rate":	1' "$T/rep2/report.json" || { echo "FAIL: copy not flagged"; fail=1; }
exit $fail
