#!/usr/bin/env bash
# Output bytes do not depend on how the command was typed: two copies of the
# binary at different paths, run from different working directories, with
# input paths spelled differently (relative, absolute, a copy elsewhere),
# --threads 1 vs 2, --batch / --chunk-rows, -q, --force over an existing
# file, short vs long option spellings, all with one SOURCE_DATE_EPOCH, give
# identical files (cmp) for records (HDF5 with and without image fields,
# CSV, JSON Lines, PNG/NIfTI side outputs), phantom, images, fit and
# evaluate (report and plots). A value-affecting option (seed, rows, steps) does change the
# "invocation" attribute, and that attribute names no path, thread count or
# output option (docs/reproducibility.md). Every HDF5 file carries the same
# provenance attribute names (docs/file-format.md, "Root attributes").
# Usage: provenance.sh <medsynth> <source-dir>
set -euo pipefail
MS="$1"
SRC="$2"
PY=/usr/bin/python3
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export SOURCE_DATE_EPOCH=1700000000

# ---- two copies of the binary at different paths. The command links the
# library statically; LD_LIBRARY_PATH covers a build with a shared library.
mkdir -p "$T/bin one" "$T/b2/deeper"
cp "$MS" "$T/bin one/medsynth"
cp "$MS" "$T/b2/deeper/ms-copy"
A="$T/bin one/medsynth"
B="$T/b2/deeper/ms-copy"
export LD_LIBRARY_PATH="$(cd "$(dirname "$MS")" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$A" --version >/dev/null || fail "copy 1 of the binary does not run"
"$B" --version >/dev/null || fail "copy 2 of the binary does not run"

# Inputs: the originals (absolute paths) for run A, copies under other names
# and directories (relative paths) for run B.
mkdir -p "$T/wa" "$T/wb/sub/inputs" "$T/wb/out"
cp "$SRC/docs/specs/cohort.json" "$T/wb/sub/inputs/renamed_spec.json"
cp "$SRC/tests/golden/nn/unet_cond.h5" "$T/wb/sub/inputs/m.h5"
cp "$SRC/tests/data/diabetes_train.csv" "$T/wb/sub/inputs/diabetes_train.csv"
cp "$SRC/tests/data/diabetes_holdout.csv" "$T/wb/sub/inputs/diabetes_holdout.csv"
same() { cmp "$1" "$2" || fail "$3: $1 and $2 differ"; }
# stale outputs that run B must replace (--force)
for f in cohort.h5 phantom.h5 images.h5; do echo stale > "$T/wb/out/$f"; done

# ---- records: HDF5, CSV, JSON Lines
(cd "$T/wa" && "$A" records --spec "$SRC/docs/specs/cohort.json" -n 300 --seed 5 --threads 1 -o cohort.h5 2>/dev/null)
(cd "$T/wb/sub" && "$B" records --spec=inputs/renamed_spec.json --rows=300 --seed=5 --threads 2 --chunk-rows 77 -q --force -o ../out/cohort.h5)
same "$T/wa/cohort.h5" "$T/wb/out/cohort.h5" "records HDF5"
for fmt in csv jsonl; do
  (cd "$T/wa" && "$A" records --spec "$SRC/docs/specs/cohort.json" -n 300 --seed 5 --threads 1 -o "c.$fmt" 2>/dev/null)
  (cd "$T/wb/sub" && "$B" records --spec inputs/renamed_spec.json -n 300 --seed 5 --threads 2 -q -o "../out/c.$fmt")
  for t in patients visits labs; do same "$T/wa/c.$t.$fmt" "$T/wb/out/c.$t.$fmt" "records $fmt"; done
done
# the same with the shard and table options spelled differently
(cd "$T/wa" && "$A" records --spec "$SRC/docs/specs/cohort.json" -n 300 --seed 5 --table labs --table patients --shard 2/3 -o sh.h5 -q)
(cd "$T/wb/sub" && "$B" records --spec inputs/renamed_spec.json --seed 5 --rows 300 --table patients --table labs --shard=2/3 --threads 2 -o ../out/sh.h5 -q)
same "$T/wa/sh.h5" "$T/wb/out/sh.h5" "records --table/--shard"

# records with image fields: a learned model named relative to the spec
# (examples/multimodal_model.json), spec path absolute vs relative from
# another directory; and phantom fields with PNG and NIfTI side outputs.
mkdir -p "$T/wb/ex"
(cd "$T/wa" && "$A" records --spec "$SRC/examples/multimodal_model.json" -n 6 --threads 1 -o mm.h5 -q)
(cd "$SRC/examples" && "$B" records --spec ./multimodal_model.json -n 6 --threads 2 -o "$T/wb/out/mm.h5" -q)
same "$T/wa/mm.h5" "$T/wb/out/mm.h5" "records with model image fields"
(cd "$T/wa" && "$A" records --spec "$SRC/examples/multimodal.json" -n 4 --threads 1 --png png --nifti nii -o mp.h5 -q)
(cd "$T/wb" && "$B" records --spec "$SRC/examples/../examples/multimodal.json" -n 4 --threads 2 --png out/png --nifti out/nii --force -o out/mp.h5 -q)
same "$T/wa/mp.h5" "$T/wb/out/mp.h5" "records with phantom image fields"
n=0
for f in "$T"/wa/png/* "$T"/wa/nii/*; do
  same "$f" "$T/wb/out/${f#"$T"/wa/}" "records side output"
  n=$((n + 1))
done
[ "$n" -ge 4 ] || fail "records wrote no PNG/NIfTI side outputs"

# ---- phantom
(cd "$T/wa" && "$A" phantom --kind chest -n 3 --size 64 --lesions 1:2 --lesion-size 12:20 --seed 4 --threads 1 --png ppng --nifti pnii -o phantom.h5)
(cd "$T/wb" && "$B" phantom --kind=chest -n 3 --width 64 --height 64 --lesions 1:2 --lesion-size 12:20 --seed 4 --threads 2 --png out/ppng \
   --nifti out/pnii --force -o out/phantom.h5)
same "$T/wa/phantom.h5" "$T/wb/out/phantom.h5" "phantom"
for f in "$T"/wa/ppng/* "$T"/wa/pnii/*; do same "$f" "$T/wb/out/${f#"$T"/wa/}" "phantom side output"; done

# ---- images
(cd "$T/wa" && "$A" images --model "$SRC/tests/golden/nn/unet_cond.h5" -n 4 --seed 7 --steps 4 --batch 4 --threads 1 -o images.h5 2>/dev/null)
(cd "$T/wb/sub" && "$B" images --model inputs/m.h5 -n 4 --seed 7 --steps 4 --sampler ddim --batch 1 --threads 2 --force -o ../out/images.h5 2>/dev/null)
same "$T/wa/images.h5" "$T/wb/out/images.h5" "images"

# ---- fit (the spec names its data file by name only) and evaluate
(cd "$T/wa" && "$A" fit --data "$SRC/tests/data/diabetes_train.csv" --seed 3 -o fit.json 2>/dev/null)
(cd "$T/wb/sub" && "$B" fit --data inputs/diabetes_train.csv --seed 3 -o ../out/fit.json 2>/dev/null)
same "$T/wa/fit.json" "$T/wb/out/fit.json" "fit"
(cd "$T/wa" && "$A" records --spec fit.json -n 200 --seed 1 -o syn.csv -q)
(cd "$T/wa" && "$A" evaluate --real "$SRC/tests/data/diabetes_train.csv" --holdout "$SRC/tests/data/diabetes_holdout.csv" \
   --synthetic syn.csv -o rep >/dev/null 2>&1) || true
cp "$T/wa/syn.csv" "$T/wb/sub/inputs/syn.csv"
(cd "$T/wb/sub" && "$B" evaluate --real inputs/diabetes_train.csv --holdout inputs/diabetes_holdout.csv \
   --synthetic ./inputs/syn.csv -o ../out/rep >/dev/null 2>&1) || true
[ -s "$T/wa/rep/report.json" ] || fail "evaluate wrote no report"
ls "$T"/wa/rep/*.png > /dev/null || fail "evaluate wrote no plots"
diff -r "$T/wa/rep" "$T/wb/out/rep" || fail "evaluate reports (json, md, plots) differ"

# ---- value-affecting options change the invocation; nothing else is in it
(cd "$T/wa" && "$A" records --spec "$SRC/docs/specs/cohort.json" -n 300 --seed 6 -o seed6.h5 -q)
(cd "$T/wa" && "$A" records --spec "$SRC/docs/specs/cohort.json" -n 301 --seed 5 -o rows301.h5 -q)
(cd "$T/wa" && "$A" phantom --kind chest -n 3 --size 64 --lesions 1:2 --lesion-size 12:20 --seed 5 -o phantom5.h5)
(cd "$T/wa" && "$A" images --model "$SRC/tests/golden/nn/unet_cond.h5" -n 4 --seed 7 --steps 5 -o steps5.h5 2>/dev/null)
$PY - "$T" <<'PY'
import json, sys, h5py
t = sys.argv[1]
def inv(p):
    with h5py.File(p, "r") as f:
        assert "command_line" not in f.attrs and "command" not in f.attrs, p
        v = f.attrs["invocation"]
        return json.loads(v.decode() if isinstance(v, bytes) else v)
base = inv(f"{t}/wa/cohort.h5")
assert base["command"] == "records", base
assert base["seed"] == 5 and base["rows"] == {"patients": 300}, base
assert base["spec"].startswith("xxh64:") and len(base["spec"]) == 22, base
assert base["table"] == ["patients", "visits", "labs"] and base["shard"] == "1/1", base
assert inv(f"{t}/wa/seed6.h5")["seed"] == 6
assert inv(f"{t}/wa/rows301.h5")["rows"] == {"patients": 301}
sh = inv(f"{t}/wa/sh.h5")
assert sh["table"] == ["patients", "labs"] and sh["shard"] == "2/3", sh
ph, ph5 = inv(f"{t}/wa/phantom.h5"), inv(f"{t}/wa/phantom5.h5")
assert ph["command"] == "phantom" and ph["seed"] == 4 and ph5["seed"] == 5
assert ph["width"] == 64 and ph["height"] == 64 and ph["lesions"] == [1, 2], ph
im, im5 = inv(f"{t}/wa/images.h5"), inv(f"{t}/wa/steps5.h5")
assert im["command"] == "images" and im["steps"] == 4 and im5["steps"] == 5, (im, im5)
assert im["sampler"] == "ddim" and im["model"].startswith("xxh64:"), im
for p in ("cohort.h5", "sh.h5", "mm.h5", "mp.h5", "phantom.h5", "images.h5"):
    text = json.dumps(inv(f"{t}/wa/{p}"))
    for word in ("thread", "batch", "chunk", "force", "quiet", "output", "compression", "png", "nifti",
                 ".json", ".h5", t):
        assert word not in text, (p, word, text)
# one set of provenance names in every command (ms_writer_set_provenance)
common = {"medsynth_format", "medsynth_version", "generator", "seed", "invocation"}
for p, cmd in (("cohort.h5", "records"), ("mm.h5", "records"), ("phantom.h5", "phantom"), ("images.h5", "images")):
    with h5py.File(f"{t}/wa/{p}", "r") as f:
        names = set(f.attrs)
        assert common <= names and "version" not in names, (p, names)
        g = f.attrs["generator"]
        assert (g.decode() if isinstance(g, bytes) else g) == "medsynth " + cmd, (p, g)
        assert ({"spec", "spec_name", "spec_xxh64"} <= names) == (cmd == "records"), (p, names)
with h5py.File(f"{t}/wa/mm.h5", "r") as f:
    m = f["images/scan"].attrs["model"]
    assert (m.decode() if isinstance(m, bytes) else m) == "../tests/golden/nn/unet_cond.h5", m
PY
echo "provenance: ok"
