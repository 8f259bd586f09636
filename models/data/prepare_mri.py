#!/usr/bin/python3
"""Extracts 2-D training slices from the real MRI that Debian's mricron-data ships.

Source: /usr/share/mricron/templates/ch2bet.nii.gz, the skull-stripped Colin27
("ch2") T1-weighted brain (Holmes et al., J Comput Assist Tomogr 22:324, 1998),
181 x 217 x 181 voxels of 1 mm in MNI space, with aal.nii.gz (Tzourio-Mazoyer
et al., NeuroImage 15:273, 2002) in the same space. Packaged by Debian under
the MRIcron BSD-3-clause terms (/usr/share/doc/mricron-data/copyright).

For each orientation (0 axial, 1 coronal, 2 sagittal) every slice whose brain
area is at least --min-brain of the slice is kept. A slice is cropped to the brain's
bounding box, padded to a square around its centre (1 mm voxels, aspect kept), resampled to --size with
area averaging, and its intensity divided by the 99.5th percentile of the
whole brain and clipped to [0, 1] (the same scale for every slice, so that
slices keep their relative brightness). The atlas is resampled with nearest
neighbour. Position is the slice's place along its axis in [0, 1], measured
inside the brain's extent on that axis; the class is orientation * 3 +
position tercile (0 low/inferior/posterior/left ... 2 high).

Every 5th slice of each orientation (offset 2) is held out for evaluation.

Output HDF5 (deterministic; no timestamps):
  /train/images (N,1,S,S) float32 in [0,1]   /train/labels (N,) int32
  /train/orientation, /train/slice_index (N,) int32, /train/position (N,) float32
  /train/atlas (N,1,S,S) uint8 (AAL labels, 0 = none)
  /holdout/... the same
Attributes record the source files, their sha256, and the parameters.
"""
import argparse
import hashlib
import os
import sys

import h5py
import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

TEMPLATES = "/usr/share/mricron/templates"
ORIENTATIONS = ("axial", "coronal", "sagittal")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def take_slice(vol, orientation, i):
    # Volume axes are (x: left->right, y: posterior->anterior, z: inferior->superior).
    # Slices are returned as (rows, cols) with superior / anterior at the top.
    if orientation == 0:  # axial: rows = y (anterior up), cols = x
        s = vol[:, :, i].T[::-1, :]
    elif orientation == 1:  # coronal: rows = z (superior up), cols = x
        s = vol[:, i, :].T[::-1, :]
    else:  # sagittal: rows = z, cols = y
        s = vol[i, :, :].T[::-1, :]
    return np.ascontiguousarray(s)


def pad_square(s, side):
    out = np.zeros((side, side), dtype=s.dtype)
    r0 = (side - s.shape[0]) // 2
    c0 = (side - s.shape[1]) // 2
    out[r0:r0 + s.shape[0], c0:c0 + s.shape[1]] = s
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--min-brain", type=float, default=0.08)
    ap.add_argument("--templates", default=TEMPLATES)
    args = ap.parse_args()

    t1_path = os.path.join(args.templates, "ch2bet.nii.gz")
    aal_path = os.path.join(args.templates, "aal.nii.gz")
    for p in (t1_path, aal_path):
        if not os.path.exists(p):
            sys.exit(f"prepare_mri: {p} not found (apt-get install mricron-data)")
    t1 = np.asarray(nib.load(t1_path).get_fdata(), dtype=np.float32)
    aal = np.asarray(nib.load(aal_path).get_fdata(), dtype=np.int32)
    # Crop both volumes to the brain's bounding box (plus a 2-voxel margin)
    # so that the brain fills the square frame.
    brain = t1 > 0
    box = [np.where(brain.any(axis=tuple(b for b in range(3) if b != a)))[0] for a in range(3)]
    sl = tuple(slice(max(int(b.min()) - 2, 0), int(b.max()) + 3) for b in box)
    t1, aal, brain = t1[sl], aal[sl], brain[sl]
    scale = float(np.percentile(t1[brain], 99.5))
    side = max(t1.shape)

    sets = {"train": {k: [] for k in ("images", "atlas", "labels", "orientation", "slice_index", "position")},
            "holdout": {k: [] for k in ("images", "atlas", "labels", "orientation", "slice_index", "position")}}
    for o in range(3):
        axis = (2, 1, 0)[o]
        extent = np.where(brain.any(axis=tuple(a for a in range(3) if a != axis)))[0]
        lo, hi = int(extent.min()), int(extent.max())
        kept = 0
        for i in range(t1.shape[axis]):
            s = take_slice(t1, o, i)
            if (s > 0).mean() < args.min_brain:
                continue
            a = take_slice(aal, o, i)
            img = torch.from_numpy(pad_square(s, side) / scale).clamp(0, 1)[None, None]
            img = F.interpolate(img, size=(args.size, args.size), mode="area")[0, 0].numpy()
            lab = torch.from_numpy(pad_square(a, side).astype(np.float32))[None, None]
            lab = F.interpolate(lab, size=(args.size, args.size), mode="nearest")[0, 0].numpy()
            pos = (i - lo) / max(hi - lo, 1)
            cls = o * 3 + min(int(pos * 3), 2)
            which = "holdout" if kept % 5 == 2 else "train"
            kept += 1
            d = sets[which]
            d["images"].append(img.astype(np.float32))
            d["atlas"].append(lab.astype(np.uint8))
            d["labels"].append(cls)
            d["orientation"].append(o)
            d["slice_index"].append(i)
            d["position"].append(pos)
        print(f"{ORIENTATIONS[o]}: {kept} slices kept", file=sys.stderr)

    tmp = args.output + ".tmp"
    with h5py.File(tmp, "w", track_order=True) as f:
        f.attrs["source"] = "Colin27 (ch2bet.nii.gz) T1 brain and AAL atlas from Debian mricron-data"
        f.attrs["source_sha256_t1"] = sha256(t1_path)
        f.attrs["source_sha256_atlas"] = sha256(aal_path)
        f.attrs["licence"] = "BSD-3-clause (MRIcron, Debian mricron-data)"
        f.attrs["size"] = args.size
        f.attrs["intensity_scale"] = scale
        f.attrs["classes"] = ",".join(f"{o}-{p}" for o in ORIENTATIONS for p in ("low", "mid", "high"))
        for name, d in sets.items():
            g = f.create_group(name)
            g.create_dataset("images", data=np.stack(d["images"])[:, None], compression="gzip")
            g.create_dataset("atlas", data=np.stack(d["atlas"])[:, None], compression="gzip")
            for k in ("labels", "orientation", "slice_index"):
                g.create_dataset(k, data=np.asarray(d[k], dtype=np.int32))
            g.create_dataset("position", data=np.asarray(d["position"], dtype=np.float32))
    os.replace(tmp, args.output)
    print(f"wrote {args.output}: {len(sets['train']['labels'])} train, "
          f"{len(sets['holdout']['labels'])} holdout slices", file=sys.stderr)


if __name__ == "__main__":
    main()
