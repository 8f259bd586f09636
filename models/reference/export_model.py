"""Writes a reference model to medsynth's HDF5 model format.

Format (docs/model-format.md): one HDF5 file; root attribute `config` is the
JSON architecture config; one float32 dataset per state_dict key, named by the
key, at the root; root attributes `format_version` (1), `weights_xxh64`
(medsynth_ref.weights_xxh64), `description`, `training_data`, `licence`,
`created_by`.

Usage:
  /usr/bin/python3 models/reference/export_model.py --arch unet --seed 1 \
      --set image_size=64 --set 'channels=[32,64,128]' -o model.h5
writes a seeded random-initialised model (for tests and benchmarks).
"""

import argparse
import json
import sys

import h5py
import numpy as np

import medsynth_ref as R


def save_model(path, model, cfg, description="", training_data="none (random initialisation)",
               licence="CC0-1.0"):
    state = {k: v.detach().cpu().numpy().astype("<f4") for k, v in model.state_dict().items()}
    with h5py.File(path, "w") as f:
        f.attrs["config"] = R.config_json(cfg)
        f.attrs["format_version"] = np.int64(R.FORMAT_VERSION)
        f.attrs["weights_xxh64"] = R.weights_xxh64(state)
        f.attrs["description"] = description
        f.attrs["training_data"] = training_data
        f.attrs["licence"] = licence
        f.attrs["created_by"] = "medsynth models/reference/export_model.py"
        for k in sorted(state):
            f.create_dataset(k, data=state[k])
    return state


def read_model(path):
    """Reads a model file: (config dict, {name: tensor}, root attributes as
    str/numbers). Exits with a message when weights_xxh64 does not match."""
    import torch
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["config"])
        state = {k: torch.from_numpy(f[k][...]) for k in f.keys()}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    got = R.weights_xxh64({k: v.numpy() for k, v in state.items()})
    if got != attrs.get("weights_xxh64"):
        sys.exit("%s: weights_xxh64 mismatch (file %s, computed %s)" %
                 (path, attrs.get("weights_xxh64"), got))
    return cfg, state, attrs


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=["unet", "vae"], default="unet")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], help="config key=JSON value")
    ap.add_argument("--description", default="random-initialised reference model")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args(argv)
    over = {}
    for kv in a.set:
        k, v = kv.split("=", 1)
        try:
            over[k] = json.loads(v)
        except json.JSONDecodeError:
            over[k] = v
    cfg = R.unet_config(**over) if a.arch == "unet" else R.vae_config(**over)
    model = R.init_random(R.build(cfg), a.seed)
    state = save_model(a.output, model, cfg, description=a.description)
    n = sum(v.size for v in state.values())
    print("%s: %s, %d tensors, %d parameters" % (a.output, cfg["architecture"], len(state), n))


if __name__ == "__main__":
    main(sys.argv[1:])
