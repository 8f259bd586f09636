#!/usr/bin/env bash
# docs/cli.md documents every command the binary has: for each command listed
# by `medsynth --help`, the first line of its `--help` (its usage line) stands
# in docs/cli.md, so a new or renamed command or option line cannot go
# undocumented.
# Usage: cli_docs.sh <path-to-medsynth> <source-dir>
set -euo pipefail
ms=$1
src=$2
fail=0
cmds=$("$ms" --help | awk '/^commands:/{f=1; next} f && /^  [a-z]/{print $1} f && /^$/{exit}')
[ -n "$cmds" ] || { echo "FAIL: no commands listed by medsynth --help" >&2; exit 1; }
for c in $cmds; do
  if ! grep -q "medsynth $c" "$src/docs/cli.md"; then
    echo "FAIL: docs/cli.md does not mention 'medsynth $c'" >&2; fail=1; continue
  fi
  [ "$c" = version ] && continue
  usage=$("$ms" "$c" --help 2>&1 | head -n 1 | sed "s/^usage: //")
  if ! grep -qF -- "$usage" "$src/docs/cli.md"; then
    echo "FAIL: docs/cli.md lacks the usage line of '$c': $usage" >&2; fail=1
  fi
done
exit $fail
