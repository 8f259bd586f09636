#!/usr/bin/env bash
# The demo: generates the example cohort and prints a summary of the file.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/$build/medsynth" version
