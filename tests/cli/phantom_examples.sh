#!/usr/bin/env bash
# Runs the examples of docs/phantoms.md: the library example program and the
# documented command lines, checking their outputs exist and hold what the
# text says.
set -euo pipefail
ms=$1
bin=$(dirname "$ms")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/example_phantom_basic" "$tmp" > "$tmp/out.txt"
[ "$(grep -c ' lung ' "$tmp/out.txt")" = 8 ] || { cat "$tmp/out.txt"; echo "FAIL: expected 8 nodules" >&2; exit 1; }
[ -s "$tmp/phantom_sheet.png" ] && [ -s "$tmp/phantom_0.nii.gz" ]
cd "$tmp"
# --- commands from docs/phantoms.md ---
"$ms" phantom --kind chest -n 16 --seed 1 --lesions 1:3 -o chest.h5 --grid chest.png --window lung
"$ms" phantom --kind head --modality t2 --size 128 --depth 128 -n 2 --seed 7 --lesions 2 --lesion-size 8:15 -o head.h5 --nifti head_nii
"$ms" phantom --kind abdomen --modality t1 -n 8 --lesions 1:2 --rotate 15 --scale 0.9:1.1 --elastic 6 --threads 2 -o abd.h5 --png abd_png
"$ms" phantom --kind chest --dose 25 --noise-free -n 1 -o clean.h5
"$ms" phantom --kind chest -n 4 --seed 3 --lesions 2:3 --lesion-size 10:20 --nodule-type mixed --noise-free -o nodules.h5
"$ms" phantom --kind chest -n 3 --seed 4 --lesions 2 --nodule-margin spiculated --nodule-size 8-15mm -o spiculated.h5
# --- end ---
# "Nodule types": ground-glass values (-750..-500 HU) and solid ones among the nodules, the type in the lesion
# table, recorded in the invocation
/usr/bin/python3 - <<'PY'
import h5py, json
with h5py.File("nodules.h5") as f:
    les = f["/tables/chest_lesions"][:]
    v = les["value"]
    assert (v < -490).any() and (v > -200).any(), v
    # the nodule column names each nodule's type; only part-solid ones have a core
    kinds = {bytes(k) for k in les["nodule"]}
    assert kinds <= {b"solid", b"part-solid", b"ground-glass"} and len(kinds) >= 2, kinds
    for r in les:
        assert (r["nodule"] == b"part-solid") == (r["core_diameter_mm"] > 0), r
    assert json.loads(f.attrs["invocation"])["nodule-type"] == "mixed"
# "Nodule margins", "Size classes": every nodule spiculated, 8-15 mm, Lung-RADS 4A (solid)
with h5py.File("spiculated.h5") as f:
    les = f["/tables/chest_lesions"][:]
    assert len(les) == 6, les
    for r in les:
        assert r["margin"] == b"spiculated" and 10 <= r["n_spicules"] <= 20, r
        assert r["size_class"] == b"8-15mm" and 8 <= r["diameter_mm"] <= 15, r
        assert r["lungrads"] == b"4A", r
    inv = json.loads(f.attrs["invocation"])
    assert inv["nodule-margin"] == "spiculated" and inv["nodule-size"] == "8-15mm", inv
PY
for bad in "--kind head --lesions 1 --nodule-margin spiculated" "--kind chest --nodule-size 3mm" "--kind chest --nodule-margin jagged"; do
  if "$ms" phantom $bad -n 1 -o bad.h5 2> bad.err; then echo "FAIL: accepted $bad" >&2; exit 1; fi
  [ ! -e bad.h5 ] && [ -s bad.err ] || { cat bad.err; echo "FAIL: refusal of $bad" >&2; exit 1; }
done
if "$ms" phantom --kind head -n 1 --lesions 1 --nodule-type ground-glass -o bad.h5 2> bad.err; then
  echo "FAIL: ground-glass nodules in a head were accepted" >&2; exit 1
fi
grep -q "lesions.nodule" bad.err && [ ! -e bad.h5 ] || { cat bad.err; echo "FAIL: nodule refusal" >&2; exit 1; }
/usr/bin/python3 - <<'PY'
import h5py
with h5py.File("chest.h5") as f:
    assert f["/images/chest"].shape == (16, 1, 256, 256)
with h5py.File("head.h5") as f:
    assert f["/images/head"].shape == (2, 1, 128, 128, 128)
    assert len(f["/tables/head_lesions"]) == 4
with h5py.File("abd.h5") as f:
    assert f["/masks/abdomen"].shape == (8, 1, 256, 256)
print("docs examples ok")
PY
[ -s head_nii/image_00001.nii.gz ] && [ -s abd_png/mask_00007.png ] && [ -s chest.png ]
