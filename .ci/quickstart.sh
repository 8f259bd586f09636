#!/usr/bin/env bash
# Sets up a Debian 12 machine for medsynth, builds it, and runs either the
# demo or the test suite:
#   bash .ci/quickstart.sh demo    # install, build, generate the demo dataset
#   bash .ci/quickstart.sh test    # install, build, run every test
# Missing Debian packages are installed when run as root; otherwise the exact
# apt-get line is printed and the script stops.
set -euo pipefail
mode=${1:-demo}
case "$mode" in demo|test|build) ;; *) echo "usage: $0 demo|test|build" >&2; exit 64 ;; esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# Build and run-time dependencies.
# mricron-data: the Colin27 MRI and atlases the brain generator (and the
# demo's brain images) are built from.
pkgs=(gcc g++ make cmake pkg-config libc6-dev libgsl-dev libpng-dev libhdf5-dev libcjson-dev
      libfftw3-dev libxxhash-dev libcmocka-dev zlib1g-dev libcairo2-dev hdf5-tools python3 python3-h5py
      python3-numpy mricron-data)
# Used by tests: readers (nibabel), PyTorch reference parity, real tables, MRI,
# FHIR schema validation (jsonschema), DICOM validation and readers
# (dciodvfy, dcmdump, pydicom).
if [ "$mode" = test ]; then
  pkgs+=(python3-nibabel python3-torch python3-sklearn python3-jsonschema libopenblas-dev
         dicom3tools dcmtk python3-pydicom)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "medsynth needs these Debian packages; run as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  echo "== installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build=${MS_BUILD_DIR:-build}
jobs=$(nproc)
echo "== building in $build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${MS_CMAKE_ARGS:-} >/dev/null
# The demo needs only the command; tests and benchmarks are built for `test`.
if [ "$mode" = demo ]; then
  cmake --build "$build" -j"$jobs" --target medsynth_cli
else
  cmake --build "$build" -j"$jobs"
fi

case "$mode" in
  build) ;;
  demo) bash examples/demo.sh "$build" ;;
  test)
    echo "== running the test suite"
    cd "$build" && ctest --output-on-failure -j"$jobs" ${MS_CTEST_ARGS:-}
    ;;
esac
