"""Fits a class-conditional latent prior to a trained VAE and writes the model
again with it (docs/model-format.md, "VAE latent prior").

For every class k the script encodes the training slices of that class and
`--augment` augmented copies of each (posterior means), then stores
  prior.mean[k]   the mean latent,
  prior.factor[k] the top `--rank` principal directions, scaled by their
                  standard deviations (so factor^T factor is their covariance),
  prior.std[k]    the standard deviation left in each latent number after
                  those directions (never negative).
Sampling z = mean + e[:R] @ factor + std * e[R:] with e ~ N(0, I) then follows
the fitted Gaussian. The decoder and encoder weights are unchanged.

  /usr/bin/python3 models/fit_vae_prior.py --data /tmp/mri/slices64.h5 \
      --model /tmp/mri/vae2/mri_vae64.h5 --rank 32 --augment 16 -o models/mri_vae64.h5
"""

import argparse
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "reference"))
import medsynth_ref as R  # noqa: E402
from export_model import read_model, save_model  # noqa: E402
from train import CLASS_NAMES, augment, load_data  # noqa: E402


def encode_all(model, x, y, copies, seed, batch=128):
    """Posterior means of x and of `copies` augmented versions: (N*(copies+1), D)."""
    g = torch.Generator().manual_seed(seed)
    zs, ys = [], []
    with torch.no_grad():
        for c in range(copies + 1):
            xa = x if c == 0 else augment(x, y, g, 5.0, 0.05, 0.05)
            for i in range(0, len(x), batch):
                mean, _ = model.encode(xa[i:i + batch] * 2 - 1)
                zs.append(mean.reshape(mean.shape[0], -1).double())
            ys.append(y)
    return torch.cat(zs), torch.cat(ys)


def fit_class(z, rank):
    mean = z.mean(0)
    c = z - mean
    _, s, vh = torch.linalg.svd(c, full_matrices=False)
    r = min(rank, len(s))
    factor = torch.zeros(rank, z.shape[1], dtype=torch.float64)
    factor[:r] = vh[:r] * (s[:r] / math.sqrt(len(z) - 1))[:, None]
    resid = (c.var(0) - (factor ** 2).sum(0)).clamp(min=0)
    explained = float((s[:r] ** 2).sum() / (s ** 2).sum())
    return mean, factor, resid.sqrt(), explained


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="HDF5 from models/data/prepare_mri.py")
    ap.add_argument("--model", required=True, help="trained VAE (.h5)")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--augment", type=int, default=16, help="augmented copies per slice")
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg, state, attrs = read_model(a.model)
    if cfg["architecture"] != "vae":
        sys.exit("%s: not a vae" % a.model)
    base = R.build({k: v for k, v in cfg.items() if k not in ("latent_prior", "num_classes")})
    base.load_state_dict({k: v for k, v in state.items() if not k.startswith("prior.")})
    base.eval()
    x, y, _ = load_data(a.data)
    z, zy = encode_all(base, x, y, a.augment, a.seed)
    K = len(CLASS_NAMES)
    cfg2 = dict(cfg, num_classes=K, latent_prior={"rank": a.rank})
    model = R.build(cfg2)
    model.load_state_dict(base.state_dict(), strict=False)
    lines = []
    for k in range(K):
        mean, factor, std, ex = fit_class(z[zy == k], a.rank)
        model.prior.mean[k] = mean.float()
        model.prior.factor[k] = factor.float()
        model.prior.std[k] = std.float()
        lines.append("%d=%s (%d latents, top-%d variance %.3f)" % (k, CLASS_NAMES[k], int((zy == k).sum()),
                                                                 a.rank, ex))
        print(lines[-1], file=sys.stderr)
    model.eval()
    desc = (attrs.get("description", "").replace("sample z ~ N(0, I); ", "") +
            "; learned per-class Gaussian latent prior (rank %d) fitted to the posterior means of "
            "the training slices and %d augmented copies each; classes %s" %
            (a.rank, a.augment, ", ".join("%d=%s" % (i, c) for i, c in enumerate(CLASS_NAMES))))
    tmp = a.output + ".tmp"
    save_model(tmp, model, cfg2, description=desc, training_data=attrs.get("training_data", ""),
               licence=attrs.get("licence", ""))
    os.replace(tmp, a.output)
    print("wrote %s (%s)" % (a.output, "; ".join(lines)))


if __name__ == "__main__":
    main(sys.argv[1:])
