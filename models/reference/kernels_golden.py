"""Writes tests/golden/kernels/kernels.h5: inputs and PyTorch outputs for each
compute kernel in gen/kernels/ (deliberate, reviewed regeneration only; the
C test tests/test_kernels_golden.c reads this file).

  /usr/bin/python3 models/reference/kernels_golden.py [out.h5]

Layout: one group per case at the root, named <op>_<i>, with attribute
"op" (sgemm, conv2d, group_norm, group_norm_silu, silu, gelu, softmax,
attention, upsample_nearest2x, avgpool2x, linear, add, add_channel,
concat_channels, timestep_embedding), integer/float attributes for the
sizes and scalars, float32 input datasets, and the PyTorch float32 result
in dataset "out". All tensors are C-order, exactly the layouts of
gen/include/medsynth/kernels.h. Inputs are uniform in [-1, 1) from
torch.manual_seed(0), so the file is reproducible.

PyTorch definitions used (torch 1.13, float32, CPU):
  sgemm        alpha * op(A) @ op(B) + beta * C
  conv2d       F.conv2d(x, w, b, stride, padding)
  group_norm   F.group_norm(x, G, gamma, beta, eps) (+ F.silu)
  gelu         F.gelu(x) (approximate='none')
  softmax      torch.softmax(x, dim=1)
  attention    softmax(q k^T / sqrt(d)) v per head, channels c = h*d + j
  upsample     F.interpolate(x, scale_factor=2, mode='nearest')
  avgpool2x    F.avg_pool2d(x, 2)
  linear       F.linear(x, W, b)
  timestep_embedding  guided-diffusion timestep_embedding: [cos | sin]
"""

import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "..", "tests", "golden", "kernels", "kernels.h5")


def rnd(*shape):
    return torch.rand(*shape, dtype=torch.float32) * 2 - 1


def timestep_embedding(t, dim, max_period=10000.0):
    """guided-diffusion/openai: [cos, sin], zero column for odd dim."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def attention(q, k, v, heads, layout):
    """q: [N, C, Tq] (nct) or [N, Tq, C] (ntc); channels c = h*d + j."""
    if layout == "nct":
        q, k, v = (a.transpose(1, 2) for a in (q, k, v))  # -> [N, T, C]
    N, Tq, C = q.shape
    d = C // heads
    split = lambda a: a.reshape(N, a.shape[1], heads, d).permute(0, 2, 1, 3)  # [N,h,T,d]
    qh, kh, vh = split(q), split(k), split(v)
    s = qh @ kh.transpose(-1, -2) / math.sqrt(d)
    o = torch.softmax(s, dim=-1) @ vh  # [N,h,Tq,d]
    o = o.permute(0, 2, 1, 3).reshape(N, Tq, C)
    return o.transpose(1, 2).contiguous() if layout == "nct" else o.contiguous()


def main(out_path):
    torch.manual_seed(0)
    cases = []  # (name, op, attrs, {dataset: tensor})

    def add(op, attrs, data):
        idx = sum(1 for c in cases if c[1] == op)
        cases.append((f"{op}_{idx}", op, attrs, data))

    # sgemm: (M, N, K, ta, tb, alpha, beta)
    for M, N, K, ta, tb, alpha, beta in [(7, 17, 63, 0, 0, 1.0, 0.0), (33, 5, 300, 1, 0, 0.5, 1.0),
                                         (1, 129, 20, 0, 1, -1.0, 0.25),
                                         (17, 63, 257, 1, 1, 1.0, 1.0)]:
        A = rnd(K, M) if ta else rnd(M, K)
        B = rnd(N, K) if tb else rnd(K, N)
        C0 = rnd(M, N)
        out = alpha * ((A.t() if ta else A) @ (B.t() if tb else B)) + beta * C0
        add("sgemm", dict(M=M, N=N, K=K, ta=ta, tb=tb, alpha=alpha, beta=beta),
            dict(A=A, B=B, C0=C0, out=out))

    # conv2d: (N, C, H, W, Cout, kh, kw, stride, pad, bias)
    for N, C, H, W, Co, kh, kw, s, p, bias in [(2, 3, 9, 11, 5, 3, 3, 1, 1, 1),
                                              (1, 4, 8, 8, 6, 3, 3, 2, 1, 1),
                                              (1, 8, 7, 5, 3, 1, 1, 1, 0, 0),
                                              (1, 2, 10, 9, 4, 5, 5, 1, 2, 1)]:
        x, w = rnd(N, C, H, W), rnd(Co, C, kh, kw)
        b = rnd(Co)
        out = F.conv2d(x, w, b if bias else None, stride=s, padding=p)
        add("conv2d", dict(N=N, C=C, H=H, W=W, C_out=Co, kh=kh, kw=kw, stride=s, pad=p, bias=bias),
            dict(x=x, w=w, b=b, out=out))

    # group_norm (+silu): (N, C, H, W, G, eps)
    for N, C, H, W, G, eps in [(2, 8, 5, 7, 4, 1e-5), (1, 6, 3, 3, 6, 1e-6)]:
        x = rnd(N, C, H, W) * 3 + 2
        g, b = rnd(C), rnd(C)
        gn = F.group_norm(x, G, g, b, eps)
        for op, out in (("group_norm", gn), ("group_norm_silu", F.silu(gn))):
            add(op, dict(N=N, C=C, HW=H * W, G=G, eps=eps), dict(x=x, gamma=g, beta=b, out=out))

    x = torch.linspace(-12, 12, 1001, dtype=torch.float32)
    add("silu", dict(n=x.numel()), dict(x=x, out=F.silu(x)))
    add("gelu", dict(n=x.numel()), dict(x=x, out=F.gelu(x)))

    x = rnd(13, 37) * 10
    add("softmax", dict(rows=13, cols=37), dict(x=x, out=torch.softmax(x, dim=1)))

    # attention: (N, heads, d, Tq, Tk, layout)
    for N, heads, d, Tq, Tk, layout in [(2, 2, 8, 20, 20, "nct"), (1, 3, 5, 7, 70, "ntc"),
                                        (1, 1, 64, 65, 65, "nct")]:
        C = heads * d
        shp = (lambda T: (N, C, T)) if layout == "nct" else (lambda T: (N, T, C))
        q, k, v = rnd(*shp(Tq)) * 2, rnd(*shp(Tk)), rnd(*shp(Tk))
        add("attention", dict(N=N, heads=heads, head_dim=d, Tq=Tq, Tk=Tk,
                              layout=0 if layout == "nct" else 1),
            dict(q=q, k=k, v=v, out=attention(q, k, v, heads, layout)))

    x = rnd(2, 3, 5, 7)
    add("upsample_nearest2x", dict(N=2, C=3, H=5, W=7),
        dict(x=x, out=F.interpolate(x, scale_factor=2, mode="nearest")))
    x = rnd(1, 3, 7, 9)
    add("avgpool2x", dict(N=1, C=3, H=7, W=9), dict(x=x, out=F.avg_pool2d(x, 2)))

    x, w, b = rnd(5, 33), rnd(17, 33), rnd(17)
    add("linear", dict(M=5, in_=33, out_=17), dict(x=x, w=w, b=b, out=F.linear(x, w, b)))

    a, b = rnd(101), rnd(101)
    add("add", dict(n=101), dict(a=a, b=b, out=a + b))
    x, e = rnd(2, 5, 6), rnd(2, 5)
    add("add_channel", dict(N=2, C=5, HW=6), dict(x=x, b=e, out=x + e[:, :, None]))
    a, b = rnd(2, 3, 4), rnd(2, 5, 4)
    add("concat_channels", dict(N=2, Ca=3, Cb=5, HW=4), dict(a=a, b=b, out=torch.cat([a, b], 1)))

    t = torch.tensor([0, 1, 10, 250.5, 999], dtype=torch.float32)
    for dim in (32, 33, 320):
        add("timestep_embedding", dict(N=5, dim=dim, max_period=10000.0),
            dict(t=t, out=timestep_embedding(t, dim)))

    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["torch_version"] = str(torch.__version__)
        f.attrs["generator"] = "models/reference/kernels_golden.py"
        for name, op, attrs, data in cases:
            g = f.create_group(name)
            g.attrs["op"] = op
            for k, v in attrs.items():
                k = k.rstrip("_")
                if isinstance(v, float):
                    g.attrs[k] = np.float64(v)
                else:
                    g.attrs[k] = np.int64(v)
            for k, v in data.items():
                g.create_dataset(k, data=v.detach().numpy().astype(np.float32))
    os.replace(tmp, out_path)
    print(f"wrote {out_path}: {len(cases)} cases, {os.path.getsize(out_path)} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT)
