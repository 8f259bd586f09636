#!/usr/bin/env bash
# medsynth phantom --dicom DIR (docs/dicom.md): CT slices and MR volumes as
# DICOM Part 10 with binary Segmentation objects. dicom3tools' dciodvfy finds
# no error in any file; dcmtk's dcmdump reads every file; pydicom reads the
# pixels back equal to the HDF5 arrays (within the rescale quantum), the
# slices of a series sort by ImagePositionPatient into the volume, every SEG
# frame equals its label in the mask and references its source image; reruns
# are byte-identical and a refused run leaves no directory.
set -euo pipefail
ms=$1
src=$2
py=/usr/bin/python3
for tool in dciodvfy dcmdump; do
  command -v $tool >/dev/null || { echo "FAIL: $tool missing (Debian packages dicom3tools, dcmtk)" >&2; exit 1; }
done
"$py" -c 'import pydicom, h5py, numpy' 2>/dev/null || { echo "FAIL: python3-pydicom/h5py/numpy missing" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$ms" phantom --kind chest -n 2 --size 96 --lesions 1:2 --lesion-size 14:24 --seed 7 -o "$tmp/ct.h5" --dicom "$tmp/ct" 2>/dev/null
"$ms" phantom --kind head --modality t1 --depth 6 --size 48 --seed 3 -o "$tmp/mr.h5" --dicom "$tmp/mr" 2>/dev/null
"$ms" phantom --kind abdomen --depth 5 --size 48 --seed 5 -o "$tmp/ab.h5" --dicom "$tmp/ab" 2>/dev/null

n=0
for f in $(find "$tmp/ct" "$tmp/mr" "$tmp/ab" -name '*.dcm' | sort); do
  dciodvfy "$f" >"$tmp/v.txt" 2>&1 || true
  if grep -q '^Error' "$tmp/v.txt"; then cat "$tmp/v.txt" >&2; fail "dciodvfy: errors in $f"; fi
  dcmdump "$f" >"$tmp/d.txt" 2>&1 || { cat "$tmp/d.txt" >&2; fail "dcmdump cannot read $f"; }
  n=$((n + 1))
done
[ "$n" = 17 ] || fail "expected 17 DICOM files (2 CT + 2 SEG, 6 MR + SEG, 5 CT + SEG), found $n"
dcmdump "$tmp/ct/00000/IMG0000.dcm" >"$tmp/d.txt"
grep -q '(0028,1053) DS \[' "$tmp/d.txt" || fail "dcmdump: no RescaleSlope"
dcmdump "$tmp/ct/00000/SEG.dcm" >"$tmp/d.txt"
grep -q '(0062,0001) CS \[BINARY\]' "$tmp/d.txt" || fail "dcmdump: SEG is not BINARY"

"$py" - "$tmp" <<'PY'
import glob, os, sys
import h5py, numpy as np, pydicom
tmp = sys.argv[1]
for name, ds_name, modality in (("ct", "chest", "CT"), ("mr", "head", "MR"), ("ab", "abdomen", "CT")):
    h = h5py.File(f"{tmp}/{name}.h5", "r")
    imgs, masks = h[f"images/{ds_name}"][:], h[f"masks/{ds_name}"][:]
    for i in range(imgs.shape[0]):
        d = f"{tmp}/{name}/{i:05d}"
        sl = [pydicom.dcmread(f) for f in glob.glob(d + "/IMG*.dcm")]
        # slices sort by ImagePositionPatient (z) into the volume order
        sl.sort(key=lambda x: float(x.ImagePositionPatient[2]))
        assert [int(x.InstanceNumber) for x in sl] == list(range(1, len(sl) + 1))
        vol = np.stack([x.pixel_array * float(x.RescaleSlope) + float(x.RescaleIntercept) for x in sl])
        ref = imgs[i, 0].reshape(vol.shape).astype(np.float64)
        slope = float(sl[0].RescaleSlope)
        err = np.abs(vol - ref).max()
        assert err <= slope / 2 + 1e-4 * max(1.0, np.abs(ref).max()) * 1e-3 + 1e-6, (name, i, err, slope)
        x = sl[0]
        assert x.Modality == modality and x.PatientID == f"PHANTOM-{i:05d}"
        assert len({s.SeriesInstanceUID for s in sl}) == 1 and len({s.StudyInstanceUID for s in sl}) == 1
        assert all(s.SOPInstanceUID.startswith("2.25.") for s in sl)
        sp = h[f"images/{ds_name}"].attrs.get("spacing")
        if sp is not None:
            assert abs(float(x.PixelSpacing[1]) - float(sp[0])) < 1e-6, (x.PixelSpacing, sp)
        # the segmentation: one segment per label present, frames = mask == label
        seg = pydicom.dcmread(d + "/SEG.dcm")
        assert seg.SegmentationType == "BINARY" and seg.FrameOfReferenceUID == x.FrameOfReferenceUID
        assert seg.StudyInstanceUID == x.StudyInstanceUID
        m = masks[i, 0].reshape(vol.shape)
        labels = sorted(set(np.unique(m)) - {0})
        assert len(seg.SegmentSequence) == len(labels), (len(seg.SegmentSequence), labels)
        frames = seg.pixel_array.reshape(len(labels), vol.shape[0], vol.shape[1], vol.shape[2])
        uid_of_z = {round(float(s.ImagePositionPatient[2]), 4): s.SOPInstanceUID for s in sl}
        for si, lab in enumerate(labels):
            assert (frames[si] == (m == lab)).all(), (name, i, lab)
        for fr in seg.PerFrameFunctionalGroupsSequence:
            z = round(float(fr.PlanePositionSequence[0].ImagePositionPatient[2]), 4)
            src = fr.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            assert uid_of_z[z] == src
        names = [s.SegmentLabel for s in seg.SegmentSequence]
        if name == "ct":
            assert "lung" in names and any(n.startswith("lesion") for n in names), names
            lung = seg.SegmentSequence[names.index("lung")]
            assert lung.SegmentedPropertyTypeCodeSequence[0].CodeValue == "39607008"
print("dicom_phantom: pixels, geometry and segments ok")
PY

# Model samples (medsynth images --dicom): Secondary Capture, values equal to
# the float32 HDF5 output.
"$ms" images --model "$src/models/mri_vae64.h5" -n 2 --seed 9 -o "$tmp/s.h5" --dicom "$tmp/s" 2>/dev/null
for f in "$tmp"/s/0000[01]/IMG0000.dcm; do
  dciodvfy "$f" >"$tmp/v.txt" 2>&1 || true
  if grep -q '^Error' "$tmp/v.txt"; then cat "$tmp/v.txt" >&2; fail "dciodvfy: errors in $f"; fi
done
"$py" - "$tmp" <<'PY'
import sys, h5py, numpy as np, pydicom
tmp = sys.argv[1]
a = h5py.File(f"{tmp}/s.h5", "r")["images/image"][:]
for i in range(2):
    d = pydicom.dcmread(f"{tmp}/s/{i:05d}/IMG0000.dcm")
    assert d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    v = d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)
    assert np.abs(v - a[i, 0]).max() <= float(d.RescaleSlope) / 2 + 1e-6
PY

# Reruns are byte-identical; an existing directory is refused (73) and kept.
"$ms" phantom --kind chest -n 2 --size 96 --lesions 1:2 --lesion-size 14:24 --seed 7 -o "$tmp/ct2.h5" --dicom "$tmp/ct2" 2>/dev/null
diff -r "$tmp/ct" "$tmp/ct2" >/dev/null || fail "rerun differs"
set +e
"$ms" phantom --kind chest -n 1 --size 64 -o "$tmp/x.h5" --dicom "$tmp/ct" 2>/dev/null; rc=$?
set -e
[ $rc = 73 ] || fail "existing --dicom directory: exit $rc, want 73"
[ ! -e "$tmp/x.h5" ] || fail "refused run wrote its HDF5 file"
ls -a "$tmp" | grep -q '\.tmp\.' && fail "temporary directory left behind"
echo "dicom_phantom: ok"
