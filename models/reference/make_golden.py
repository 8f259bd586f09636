"""Regenerates the parity fixtures in tests/golden/nn/ (deliberate, reviewed
regeneration only; the C tests read these files).

  /usr/bin/python3 models/reference/make_golden.py [outdir [case ...]]

For each case it writes <case>.h5 (the model, in the medsynth model format)
and <case>_golden.h5:
  /forward/x [B,C,H,W], /forward/t [B] float32, /forward/y [B] int32 (when
      conditional), /forward/out: one forward pass.
  /layers/<module>: the output of every named module in that pass (forward
      hooks) except GroupNorms and containers, for batch item 0 only, NCHW
      (or [1, features]).
  /sample/<name>/{x_T, noise [S,B,C,H,W], y, traj [S+1,B,C,H,W]} with
      attributes sampler, steps, eta, guidance: short sampler trajectories
      whose noise is explicit, so C and PyTorch use identical numbers.
  VAE: /encode/{x, mean, logvar}, /decode/{z, out}, /layers/<module>; with a
      learned latent prior also /prior/{e [B, R+D], y [B], z, out}: latents
      from explicit standard-normal noise and their decoded images.
Everything is seeded; the files stay small (< 2 MB together).
"""

import os
import sys

import h5py
import numpy as np
import torch

import medsynth_ref as R
from export_model import save_model

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "..", "tests", "golden", "nn")

CASES = {
    # Unconditional, linear schedule, eps prediction, strided-conv downsampling.
    "unet_eps": dict(arch="unet", seed=11, batch=2, layers=True,
                     cfg=dict(image_size=16, channels=[8, 16], blocks_per_level=1,
                              attention_resolutions=[8], heads=2, groups=4,
                              downsample="conv", prediction="eps",
                              schedule={"type": "linear", "T": 1000, "beta_start": 1e-4,
                                        "beta_end": 2e-2},
                              intensity={"scale": 1000.0, "offset": 0.0, "unit": "HU"}),
                     samples=[("ddim_eta", "ddim", 10, 0.5, 1.0),
                              ("ddpm", "ddpm", 10, 0.0, 1.0),
                              ("dpmpp", "dpmpp", 10, 0.0, 1.0)]),
    # Class-conditional (3 classes + null), cosine schedule, v prediction,
    # average-pool downsampling, two blocks per level, three levels.
    "unet_cond": dict(arch="unet", seed=12, batch=3, layers=False,
                      cfg=dict(image_size=8, channels=[4, 8, 8], blocks_per_level=2,
                               attention_resolutions=[4, 2], heads=1, groups=4,
                               downsample="avgpool", num_classes=3, prediction="v",
                               schedule={"type": "cosine", "T": 100, "beta_start": 0.0,
                                         "beta_end": 0.0},
                               intensity={"scale": 0.5, "offset": 0.5, "unit": "a.u."}),
                      samples=[("ddim_cfg", "ddim", 8, 0.0, 2.0),
                               ("dpmpp_cfg", "dpmpp", 8, 0.0, 1.5),
                               ("ddpm", "ddpm", 8, 0.0, 1.0)]),
    "vae": dict(arch="vae", seed=13, batch=2, layers=True,
                cfg=dict(image_size=8, channels=[8, 16], blocks_per_level=1,
                         latent_channels=2, heads=1, groups=4)),
    # Class-conditional learned latent prior (3 classes, rank 3).
    "vae_prior": dict(arch="vae", seed=14, batch=3, layers=False,
                      cfg=dict(image_size=8, channels=[8, 16], blocks_per_level=1,
                               latent_channels=2, heads=1, groups=4, num_classes=3,
                               latent_prior={"rank": 3})),
}


def hook_all(model, store):
    hooks = []
    for name, mod in model.named_modules():
        # GroupNorm outputs are left out (the C side fuses GroupNorm+SiLU; the
        # following conv checks them), as are containers and SiLU.
        if not name or isinstance(mod, (torch.nn.SiLU, torch.nn.ModuleList, R.Level,
                                        torch.nn.GroupNorm, R.Mid)):
            continue

        def fn(m, inp, out, name=name):
            if isinstance(out, torch.Tensor):
                store[name] = out[:1].detach().numpy().astype("<f4")
        hooks.append(mod.register_forward_hook(fn))
    return hooks


def put(g, name, a):
    g.create_dataset(name, data=a, compression="gzip", shuffle=True)


def make_case(outdir, case, spec):
    torch.manual_seed(spec["seed"])
    cfg = (R.unet_config if spec["arch"] == "unet" else R.vae_config)(**spec["cfg"])
    model = R.init_random(R.build(cfg), spec["seed"])
    model.eval()
    save_model(os.path.join(outdir, case + ".h5"), model, cfg,
               description="parity fixture %s (random initialisation, seed %d)" % (case, spec["seed"]))
    B, C, S = spec["batch"], cfg["image_channels"], cfg["image_size"]
    gen = torch.Generator().manual_seed(spec["seed"] + 1000)
    layers = {}
    with h5py.File(os.path.join(outdir, case + "_golden.h5"), "w") as f:
        f.attrs["case"] = case
        if spec["arch"] == "unet":
            x = torch.randn(B, C, S, S, generator=gen)
            T = cfg["schedule"]["T"]
            t = torch.tensor([T - 1] + [int(v) for v in torch.randint(0, T, (B - 1,), generator=gen)],
                             dtype=torch.float32)
            y = torch.arange(B, dtype=torch.int64) % (cfg["num_classes"] + 1) if cfg["num_classes"] else None
            hooks = hook_all(model, layers) if spec["layers"] else []
            with torch.no_grad():
                out = model(x, t, y)
            for h in hooks:
                h.remove()
            g = f.create_group("forward")
            put(g, "x", x.numpy())
            put(g, "t", t.numpy())
            if y is not None:
                put(g, "y", y.numpy().astype("<i4"))
            put(g, "out", out.numpy())
            for name, sampler, steps, eta, guidance in spec["samples"]:
                x_T = torch.randn(B, C, S, S, generator=gen)
                noise = torch.randn(steps, B, C, S, S, generator=gen)
                ys = torch.arange(B, dtype=torch.int64) % cfg["num_classes"] if cfg["num_classes"] else None
                traj = R.sample(model, cfg, x_T, sampler, steps, eta, ys, guidance, lambda i: noise[i])
                g = f.create_group("sample/" + name)
                g.attrs["sampler"] = sampler
                g.attrs["steps"] = np.int64(steps)
                g.attrs["eta"] = float(eta)
                g.attrs["guidance"] = float(guidance)
                put(g, "x_T", x_T.numpy())
                put(g, "noise", noise.numpy())
                if ys is not None:
                    put(g, "y", ys.numpy().astype("<i4"))
                put(g, "traj", torch.stack(traj).numpy())
        else:
            x = torch.randn(B, C, S, S, generator=gen)
            hooks = hook_all(model, layers)
            with torch.no_grad():
                mean, logvar = model.encode(x)
                z = torch.randn(mean.shape, generator=gen)
                out = model.decode(z)
            for h in hooks:
                h.remove()
            g = f.create_group("encode")
            put(g, "x", x.numpy())
            put(g, "mean", mean.numpy())
            put(g, "logvar", logvar.numpy())
            g = f.create_group("decode")
            put(g, "z", z.numpy())
            put(g, "out", out.numpy())
            if "latent_prior" in cfg:
                e = torch.randn(B, R.prior_noise_floats(cfg), generator=gen)
                y = torch.arange(B, dtype=torch.int64) % max(cfg.get("num_classes", 0), 1)
                with torch.no_grad():
                    zp = model.prior_latent(e, y)
                    outp = model.decode(zp)
                g = f.create_group("prior")
                put(g, "e", e.numpy())
                put(g, "y", y.numpy().astype("<i4"))
                put(g, "z", zp.numpy())
                put(g, "out", outp.numpy())
        if layers:
            g = f.create_group("layers")
            for name in sorted(layers):
                put(g, name, layers[name])


def main(argv):
    outdir = argv[0] if argv else DEFAULT_OUT
    only = set(argv[1:])
    unknown = only - set(CASES)
    if unknown:
        sys.exit("unknown case(s): %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(CASES)))
    os.makedirs(outdir, exist_ok=True)
    for case, spec in CASES.items():
        if not only or case in only:
            make_case(outdir, case, spec)
    total = sum(os.path.getsize(os.path.join(outdir, n)) for n in os.listdir(outdir))
    print("wrote %d case(s) to %s (%d bytes in the folder)" % (len(only or CASES), outdir, total))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
