#!/usr/bin/env bash
# Brain image fields in record specs (docs/multimodal.md, "Brain image
# fields"): the documented example run as written; located errors for bad
# brain keys and per-row values, with no output left behind; the same bytes
# for --threads 1 and 2; info volumes equal to the mask counts; record
# fields (age, tumour, lobe, modality, stroke side) reaching the subject;
# the AAL mask (/masks/<name>_aal) on brain tissue only.
# Usage: images_brain.sh <medsynth> <source-dir>
set -euo pipefail
ms=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src="$2"
if [ ! -r /usr/share/mricron/templates/ch2.nii.gz ]; then
  echo "skipped: the brain phantom needs Debian's mricron-data package"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
ln -s "$ms" "$tmp/bin/medsynth"
doc="$src/docs/multimodal.md"
awk '/^### Brain image fields/{f=1} f&&/^```json/{p=1;next} p&&/^```/{exit} p' "$doc" > "$tmp/brain_cohort.json"
awk '/^### Brain image fields/{f=1} f&&/^```sh/{p=1;next} p&&/^```/{exit} p' "$doc" > "$tmp/run.sh"
[ -s "$tmp/brain_cohort.json" ] && [ -s "$tmp/run.sh" ] || { echo "FAIL: brain example not found in $doc"; exit 1; }
(cd "$tmp" && PATH="$tmp/bin:$PATH" bash -euo pipefail run.sh 2>/dev/null)
[ -s "$tmp/brain_sheet.png" ]
/usr/bin/python3 - "$tmp" <<'PY'
import sys, json, h5py, numpy as np
f = h5py.File(sys.argv[1] + "/brain_cohort.h5", "r")
m, a = f["masks/brain_mri"][...], f["masks/brain_mri_aal"][...]
assert a.shape == m.shape == (8, 1, 96, 96) and a.dtype == np.uint8
assert len(json.loads(f["masks/brain_mri_aal"].attrs["labels"])) >= 116
rec, info = f["tables/patients"][...], f["tables/brain_mri_info"][...]
for i in range(8):
    want = rec["infarct_side"][i].decode() if rec["stroke"][i] else None
    got = info["stroke"][i].decode()
    assert (got.split("_")[-1] if got else None) == want, (i, got, want)
PY

# bad keys: every problem at its JSON pointer, in one run
cat > "$tmp/bad.json" <<'EOF'
{"medsynth": 1, "tables": [{"name": "p", "rows": 3,
  "fields": [{"name": "id", "kind": "id"}, {"name": "age", "kind": "integer", "dist": {"type": "uniform", "low": 20, "high": 30}}],
  "images": [
    {"name": "a", "phantom": "brain", "modality": "flare", "tumour_lobe": "insula", "intensities": "gmm", "orientation": "axail"},
    {"name": "b", "phantom": "brain", "modality": "ct", "gadolinium": 1, "size": 4096, "depth": 4096},
    {"name": "c", "phantom": "brain", "atlas_dir": "/nonexistent", "age": "agee", "colour": 1},
    {"name": "d", "phantom": "brian"},
    {"name": "e", "phantom": "brain", "stroke_side": "middle", "aal_mask": 2},
    {"name": "f", "phantom": "brain", "stroke_side": 2},
    {"name": "e_aal", "phantom": "head"}
  ]}]}
EOF
rc=0
"$ms" validate "$tmp/bad.json" 2>"$tmp/err" || rc=$?
[ "$rc" = 65 ] || { echo "FAIL: validate exit $rc"; cat "$tmp/err"; exit 1; }
for m in '/images/0/modality: unknown modality "flare" (did you mean "flair"?)' \
         '/images/0/tumour_lobe: unknown lobe "insula"' \
         '/images/0/intensities: must be "physics" or "random"' \
         '/images/0/orientation: must be "axial", "coronal" or "sagittal" (did you mean "axial"?)' \
         '/images/1/gadolinium: applies to MR images only' \
         '/images/1/depth: a 4096x4096x4096 volume needs more than' \
         '/images/2/atlas_dir: brain atlas file "/nonexistent/ch2.nii.gz" not found (install Debian'"'"'s mricron-data package)' \
         '/images/2/age: ' \
         '/images/2/colour: unknown key "colour"' \
         '/images/3/phantom: unknown phantom "brian" (did you mean "brain"?)' \
         '/images/4/stroke_side: unknown side "middle"' \
         '/images/4/aal_mask: ' \
         '/images/5/stroke_side: ' \
         '/images/6/name: mask /masks/e_aal is also the AAL mask of brain image "e"'; do
  grep -qF -- "$m" "$tmp/err" || { echo "FAIL: no \"$m\" in:"; cat "$tmp/err"; exit 1; }
done

# a per-row value out of range: the row named, exit 65, no file
cat > "$tmp/row.json" <<'EOF'
{"medsynth": 1, "tables": [{"name": "p", "rows": 3,
  "fields": [{"name": "id", "kind": "id"}, {"name": "age", "kind": "integer", "dist": {"type": "uniform", "low": 20, "high": 30}}],
  "images": [{"name": "a", "phantom": "brain", "size": 32, "spacing_mm": 6, "tumour_lobe": "age"}]}]}
EOF
rc=0
"$ms" records --spec "$tmp/row.json" -o "$tmp/row.h5" 2>"$tmp/err" || rc=$?
[ "$rc" = 65 ] && grep -qF 'p/0: image "a": tumour_lobe = ' "$tmp/err" && grep -qF 'it must be a whole number in 0..4' "$tmp/err" \
  || { echo "FAIL: per-row error (exit $rc)"; cat "$tmp/err"; exit 1; }
[ ! -e "$tmp/row.h5" ] || { echo "FAIL: partial output left"; exit 1; }
sed 's/"tumour_lobe": "age"/"stroke": "mca", "stroke_side": "age"/' "$tmp/row.json" > "$tmp/row_side.json"
rc=0
"$ms" records --spec "$tmp/row_side.json" -o "$tmp/row.h5" 2>"$tmp/err" || rc=$?
[ "$rc" = 65 ] && grep -qF 'p/0: image "a": stroke_side = ' "$tmp/err" && grep -qF 'it must be a whole number in 0..1' "$tmp/err" \
  || { echo "FAIL: per-row stroke_side error (exit $rc)"; cat "$tmp/err"; exit 1; }
[ ! -e "$tmp/row.h5" ] || { echo "FAIL: partial output left"; exit 1; }

# 3-D volumes: record-driven subjects, threads, volumes
cat > "$tmp/vol.json" <<'EOF'
{"medsynth": 1, "seed": 11, "tables": [{"name": "p", "rows": 5,
  "fields": [{"name": "id", "kind": "id", "format": "seq"},
             {"name": "age", "kind": "integer", "dist": {"type": "uniform", "low": 20, "high": 95}},
             {"name": "tumour", "kind": "bool", "p": 0.5},
             {"name": "lobe", "kind": "integer", "dist": {"type": "uniform", "low": 1, "high": 4}},
             {"name": "contrast", "kind": "integer", "dist": {"type": "uniform", "low": 0, "high": 3}},
             {"name": "wml", "kind": "integer", "dist": {"type": "uniform", "low": 0, "high": 40}},
             {"name": "stroke", "kind": "integer", "dist": {"type": "uniform", "low": 0, "high": 3}}],
  "images": [{"name": "v", "phantom": "brain", "width": 48, "height": 56, "depth": 44, "spacing_mm": 4,
              "age": "age", "tumour": "if(tumour, 1, 0)", "tumour_lobe": "lobe", "tumour_size_mm": 40,
              "modality": "contrast", "wm_lesions": "wml", "wm_load_ml": "wml * 0.5", "stroke": "stroke",
              "stroke_size_mm": 40}]}]}
EOF
"$ms" records --spec "$tmp/vol.json" --threads 1 -o "$tmp/v1.h5" -q
"$ms" records --spec "$tmp/vol.json" --threads 2 --chunk-rows 2 -o "$tmp/v2.h5" -q
"$ms" records --spec "$tmp/vol.json" --threads 2 --shard 2/2 -o "$tmp/v_s2.h5" -q
/usr/bin/python3 - "$tmp" <<'PY'
import sys, json, h5py, numpy as np
t = sys.argv[1]
a, b = h5py.File(f"{t}/v1.h5", "r"), h5py.File(f"{t}/v2.h5", "r")
for k in ["images/v", "masks/v", "masks/v_aal", "tables/v_info"]:
    assert np.array_equal(a[k][...], b[k][...]), k + " differs between --threads 1 and 2"
sh = h5py.File(f"{t}/v_s2.h5", "r")
r0 = int(sh["images/v"].attrs["first_row"])
assert 0 < r0 < 5 and np.array_equal(sh["images/v"][...], a["images/v"][r0:]), "shard 2/2 differs from the rows of the single run"
img, m = a["images/v"], a["masks/v"][...]
assert img.shape == (5, 1, 44, 56, 48) and img.attrs["phantom"] == "brain", img.shape
labels = json.loads(a["masks/v"].attrs["labels"])
assert "white_matter" in str(labels["3"]), labels
rec, info = a["tables/p"][...], a["tables/v_info"][...]
names = [n for n in info.dtype.names if n.startswith("volume_")]
assert len(names) == 16
kinds = ["t1", "t2", "flair", "pd"]
lobes = ["any", "frontal", "parietal", "temporal", "occipital"]
for i in range(5):
    counts = np.bincount(m[i].ravel(), minlength=16)
    for l, n in enumerate(names):
        assert info[n][i] == counts[l] * 64, (n, info[n][i], counts[l])
    assert info["age_years"][i] == rec["age"][i]
    assert info["modality"][i].decode() == kinds[rec["contrast"][i]]
    assert info["min_jacobian"][i] > 0
    has = counts[12] > 0 and counts[13] > 0
    assert has == bool(rec["tumour"][i]), (i, counts[11:], rec["tumour"][i])
    assert info["tumour_lobe"][i].decode() == (lobes[rec["lobe"][i]] if rec["tumour"][i] else "")
    assert info["wm_lesions"][i] == rec["wml"][i] and (counts[14] > 0) == (rec["wml"][i] > 0), (i, counts[14])
    st = info["stroke"][i].decode()
    assert (counts[15] > 0) == (rec["stroke"][i] > 0) and st.split("_")[0] == ["", "aca", "mca", "pca"][rec["stroke"][i]], st
assert rec["tumour"].any() and not rec["tumour"].all(), rec["tumour"]
# the AAL parcellation (on with the mask): AAL indices of its label table,
# only on brain tissue labels (as /masks/brain_aal of the phantom command)
aal = a["masks/v_aal"]
assert aal.shape == m.shape and aal.dtype == np.uint8 and aal.attrs["image"] == "/images/v", aal
alab = json.loads(aal.attrs["labels"])
av = aal[...]
assert set(np.unique(av).tolist()) - {0} <= {int(k) for k in alab} and len(alab) > 100, np.unique(av)
assert any("Precentral_L" in str(v) for v in alab.values()), list(alab.items())[:3]
for i in range(5):
    inside = m[i][av[i] > 0]
    assert ((inside >= 1) & (inside <= 8) | (inside >= 11)).all(), "AAL region outside the brain labels"
    assert (av[i][(m[i] == 2)] > 0).mean() > 0.5, "cortex without AAL regions"
# the contrast follows the record: CSF darker than white matter on T1, brighter on T2
x = img[...]
for i in range(5):
    wm, csf = x[i][m[i] == 3].mean(), x[i][m[i] == 4].mean()
    c = kinds[rec["contrast"][i]]
    if c == "t1": assert wm > csf, (i, wm, csf)
    if c == "t2": assert csf > wm, (i, wm, csf)
PY
# the stroke side: per row from the record, or constant; stroke voxels in
# that hemisphere (MNI x < 0 left: higher columns of an axial image) and
# in AAL regions of that side; no AAL mask with "aal_mask": false
cat > "$tmp/side.json" <<'EOF'
{"medsynth": 1, "seed": 3, "tables": [{"name": "p", "rows": 6,
  "fields": [{"name": "id", "kind": "id"},
             {"name": "side", "kind": "categorical", "values": {"left": 0.5, "right": 0.5}}],
  "images": [{"name": "s", "phantom": "brain", "width": 48, "height": 56, "depth": 44, "spacing_mm": 4,
              "stroke": "mca", "stroke_size_mm": 40, "stroke_side": "if(side == 'left', 0, 1)"},
             {"name": "l", "phantom": "brain", "width": 48, "height": 56, "depth": 44, "spacing_mm": 4,
              "stroke": "pca", "stroke_size_mm": 40, "stroke_side": "left", "aal_mask": false}]}]}
EOF
"$ms" records --spec "$tmp/side.json" --threads 2 -o "$tmp/side.h5" -q
/usr/bin/python3 - "$tmp" <<'PY'
import sys, json, h5py, numpy as np
t = sys.argv[1]
f = h5py.File(f"{t}/side.h5", "r")
rec = f["tables/p"][...]
assert "masks/l_aal" not in f and "masks/l" in f
names = {int(k): str(v) for k, v in json.loads(f["masks/s_aal"].attrs["labels"]).items()}
sides = [x.decode() for x in rec["side"]]
assert set(sides) == {"left", "right"}, sides
for fld, want in (("s", sides), ("l", ["left"] * 6)):
    m, info = f[f"masks/{fld}"][...], f[f"tables/{fld}_info"][...]
    for i in range(6):
        assert info["stroke"][i].decode().endswith("_" + want[i]), (fld, i, info["stroke"][i], want[i])
        z, y, x = np.nonzero(m[i, 0] == 15)
        assert x.size > 0, (fld, i)
        centre = (48 - 1) / 2
        assert (x.mean() > centre) == (want[i] == "left"), (fld, i, x.mean(), want[i])
        if fld == "s":
            a = f["masks/s_aal"][i, 0][m[i, 0] == 15]
            suffix = "_L" if want[i] == "left" else "_R"
            assert all(suffix in names[int(l)] for l in np.unique(a) if l), (i, [names[int(l)] for l in np.unique(a) if l])
PY

# a sagittal field: NIfTI exports with the sagittal affine, centred on the brain
cat > "$tmp/sag.json" <<'EOF'
{"medsynth": 1, "tables": [{"name": "p", "rows": 2, "fields": [{"name": "id", "kind": "id"}],
  "images": [{"name": "s", "phantom": "brain", "orientation": "sagittal", "size": 64, "spacing_mm": 3.5}]}]}
EOF
"$ms" records --spec "$tmp/sag.json" -o "$tmp/sag.h5" --nifti "$tmp/sag_nii" -q
/usr/bin/python3 - "$tmp" <<'PY'
import sys, h5py, numpy as np, nibabel as nib
t = sys.argv[1]
f = h5py.File(f"{t}/sag.h5", "r")
assert f["images/s"].attrs["orientation"] == "sagittal"
m = f["masks/s"][...]
im = nib.load(f"{t}/sag_nii/s_000001_mask.nii.gz")
assert np.allclose(im.affine[:3, :3] / 3.5, np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]])), im.affine
assert np.array_equal(np.asanyarray(im.dataobj).reshape(64, 64, -1)[:, :, 0].T, m[1, 0])
c = im.affine @ np.array([31.5, 31.5, 0, 1])
assert abs(c[0]) < 5 and abs(c[1] + 18) < 15 and abs(c[2] - 10) < 15, c   # the brain's centre (MNI)
PY
echo ok
