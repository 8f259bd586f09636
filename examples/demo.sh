#!/usr/bin/env bash
# The demo: one spec (examples/demo.json) -> one HDF5 dataset of 200
# synthetic patients with their records (patients, visits, labs), a chest CT
# slice with exact masks and nodules that follow each patient's diagnosis,
# a head MRI phantom slice whose ventricles follow age, and brain MRI slices
# in the plane the record names, sampled from the default diffusion model
# (models/mri_unet64.h5) and decoded by the default VAE (models/mri_vae64.h5);
# contact sheets; the same patients as FHIR R4 transaction bundles (with an
# ImagingStudy per image) and their images as DICOM (CT/MR series, binary
# segmentations, Secondary Capture for model samples) with matching UIDs;
# a summary; and the lines that load it all from Python.
# Usage: bash examples/demo.sh [BUILD_DIR]   (run by .ci/quickstart.sh demo)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
ms="$build/medsynth"
out="$root/out/demo"
mkdir -p "$out"
cd "$root"

echo "== $("$ms" version): generating the demo cohort (examples/demo.json)"
start=$(date +%s%N)
"$ms" records --spec examples/demo.json -o "$out/cohort.h5" --force --threads "$(nproc)" \
  --grid "$out/sheet.png" --dicom "$out/dicom"
end=$(date +%s%N)
echo "== the same patients as FHIR R4 (docs/fhir.md)"
"$ms" records --spec examples/demo.json --format fhir -o "$out/fhir" --force --threads "$(nproc)"
echo
echo "== summary (medsynth inspect out/demo/cohort.h5)"
"$ms" inspect "$out/cohort.h5"
echo
ms_elapsed=$(( (end - start) / 1000000 ))
printf '== generated in %d.%03d s\n' $((ms_elapsed / 1000)) $((ms_elapsed % 1000))
snippet='import h5py, numpy as np
f = h5py.File("out/demo/cohort.h5", "r")
patients = f["tables/patients"][:]          # structured array, one row per patient
ct, mask = f["images/chest_ct"], f["masks/chest_ct"]
i = int(np.argmax(patients["nodules"]))   # image i belongs to patient row i
print(patients["patient_id"][i].decode(), patients["dx_primary"][i].decode(),
      ct[i].shape, np.unique(mask[i]))'
cat <<EOF
   dataset:        out/demo/cohort.h5
                   /tables/patients, /tables/visits, /tables/labs    (records)
                   /images/chest_ct (200,1,256,256) HU, /masks/chest_ct, /tables/chest_ct_lesions
                   /images/head_mri (200,1,128,128) T1 phantom, /masks/head_mri
                   /images/brain_mri (200,1,64,64) T1 from models/mri_unet64.h5, class from mri_plane/mri_level
                   /images/brain_mri_vae (200,1,64,64) T1 from models/mri_vae64.h5, same classes
   contact sheets: out/demo/sheet_chest_ct.png, out/demo/sheet_head_mri.png (mask contours),
                   out/demo/sheet_brain_mri.png, out/demo/sheet_brain_mri_vae.png
   FHIR R4:        out/demo/fhir/patients_NNNNNN.json, one transaction Bundle per patient
                   (Patient, vital signs, conditions, encounters, labs, an ImagingStudy per image)
   DICOM:          out/demo/dicom/<image>/<row>/IMG*.dcm and SEG.dcm (chest_ct, head_mri: CT/MR
                   with segmentations; brain_mri, brain_mri_vae: Secondary Capture); the UIDs
                   are those of the ImagingStudy, the patient that of the bundle (docs/dicom.md)
   the spec:       examples/demo.json (docs/spec.md explains every key; docs/multimodal.md the images)

   Load it from Python (h5py + NumPy; the same lines work inside a PyTorch Dataset):

$(printf '%s\n' "$snippet" | sed 's/^/     /')
EOF
if /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  echo
  echo "== that snippet, run now:"
  /usr/bin/python3 -c "$snippet"
fi
