#!/usr/bin/env bash
# One synthetic patient across EHR and PACS (docs/fhir.md, docs/dicom.md):
# `records --dicom` and `records --format fhir` of the same spec and seed
# agree. Each FHIR ImagingStudy names exactly the Study/Series/SOP Instance
# UIDs of the DICOM files of its row; the DICOM patient (PatientID, sex,
# birth date) is the FHIR Patient; the DICOM pixels and segmentations equal
# the HDF5 images and masks of the same row; every file passes dciodvfy.
set -euo pipefail
ms=$1
src=$2
py=/usr/bin/python3
command -v dciodvfy >/dev/null || { echo "FAIL: dciodvfy missing (Debian package dicom3tools)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
spec=$src/tests/specs/imaging_link.json

"$ms" records --spec "$spec" -o "$tmp/run.h5" --dicom "$tmp/dcm" -q --no-timestamp
"$ms" records --spec "$spec" --format fhir -o "$tmp/fhir" -q --no-timestamp
"$py" "$src/tests/fhir/check_fhir.py" "$tmp/fhir" >/dev/null || fail "check_fhir"
for f in $(find "$tmp/dcm" -name '*.dcm' | sort); do
  dciodvfy "$f" >"$tmp/v.txt" 2>&1 || true
  if grep -q '^Error' "$tmp/v.txt"; then cat "$tmp/v.txt" >&2; fail "dciodvfy: errors in $f"; fi
done

"$py" - "$tmp" <<'PY'
import glob, json, os, sys
import h5py, numpy as np, pydicom
tmp = sys.argv[1]
h = h5py.File(f"{tmp}/run.h5", "r")
pat = h["tables/patients"][:]
n = 0
for i in range(len(pat)):
    b = json.load(open(f"{tmp}/fhir/patients_{i:06d}.json"))
    res = [e["resource"] for e in b["entry"]]
    p = res[0]
    assert p["resourceType"] == "Patient"
    pid = p["identifier"][0]["value"]
    assert pid == pat["patient_id"][i].decode(), (pid, pat["patient_id"][i])
    studies = {s["description"]: s for s in res if s["resourceType"] == "ImagingStudy"}
    assert sorted(studies) == ["brain_vae", "chest_ct", "head_mr"], sorted(studies)
    for field, st in studies.items():
        d = f"{tmp}/dcm/{field}/{i:05d}"
        files = [pydicom.dcmread(f) for f in sorted(glob.glob(d + "/*.dcm"))]
        imgs = [f for f in files if f.Modality != "SEG"]
        segs = [f for f in files if f.Modality == "SEG"]
        # the same patient
        for f in files:
            assert f.PatientID == pid, (f.PatientID, pid)
            assert f.PatientSex == {"male": "M", "female": "F"}[p["gender"]]
            assert f.PatientBirthDate == p["birthDate"].replace("-", "")
            assert "urn:oid:" + f.StudyInstanceUID == st["identifier"][0]["value"]
        # the same series and instances
        ser = {s["uid"]: s for s in st["series"]}
        assert set(ser) == {f.SeriesInstanceUID for f in files}, (set(ser), {f.SeriesInstanceUID for f in files})
        for f in files:
            inst = {x["uid"]: x for x in ser[f.SeriesInstanceUID]["instance"]}
            assert f.SOPInstanceUID in inst
            assert inst[f.SOPInstanceUID]["sopClass"]["code"] == "urn:oid:" + f.SOPClassUID
        assert st["numberOfInstances"] == len(files)
        # the same pixels as the HDF5 row, and the SEG equals the mask
        imgs.sort(key=lambda f: float(f.ImagePositionPatient[2]) if "ImagePositionPatient" in f else 0)
        vol = np.stack([f.pixel_array * float(f.RescaleSlope) + float(f.RescaleIntercept) for f in imgs])
        ref = h[f"images/{field}"][i][0].reshape(vol.shape)
        assert np.abs(vol - ref).max() <= float(imgs[0].RescaleSlope) / 2 + 1e-6, field
        if field == "brain_vae":
            assert imgs[0].SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and not segs
            continue
        m = h[f"masks/{field}"][i][0].reshape(vol.shape)
        labels = sorted(set(np.unique(m)) - {0})
        fr = segs[0].pixel_array.reshape(len(labels), *vol.shape)
        for k, lab in enumerate(labels):
            assert (fr[k] == (m == lab)).all()
        n += 1
print(f"fhir_dicom_link: {n} studies agree")
PY
echo "fhir_dicom_link: ok"
