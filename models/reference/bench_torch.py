"""PyTorch CPU reference for tests/bench/bench_ddim.c: DDIM sampling with the
same model file, steps and (batch, threads) configurations; one child
process per configuration so each peak RSS is its own.

  /usr/bin/python3 models/reference/bench_torch.py MODEL.h5 [--steps 50] [--images-b1 2]
                                                   [--batches 1,16]
"""

import argparse
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def run(path, batch, threads, steps, n, cpu=False):
    import h5py
    import torch
    import medsynth_ref as R
    torch.set_num_threads(threads)
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["config"])
        m = R.build(cfg)
        m.load_state_dict({k: torch.from_numpy(f[k][...]) for k in m.state_dict()})
    m.eval()
    C, S = cfg["image_channels"], cfg["image_size"]
    g = torch.Generator().manual_seed(1)
    clock = time.process_time if cpu else time.perf_counter
    t0 = clock()
    done = 0
    with torch.inference_mode():
        while done < n:
            nb = min(batch, n - done)
            x = torch.randn(nb, C, S, S, generator=g)
            R.sample(m, cfg, x, "ddim", steps, 0.0)
            done += nb
    el = clock() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("pytorch   DDIM-%d  batch %2d  threads %d  %3d images  %8.3f s%s  %8.4f images/s  peak RSS %6.1f MiB  (torch %s)"
          % (steps, batch, threads, n, el, " CPU" if cpu else "", n / el, rss, torch.__version__),
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--images-b1", type=int, default=2)
    ap.add_argument("--cpu", action="store_true",
                    help="time with the process CPU clock (see bench_ddim.c)")
    ap.add_argument("--batches", default="1,16",
                    help="comma-separated batch sizes (default 1,16)")
    a = ap.parse_args()
    for batch in (int(b) for b in a.batches.split(",")):
        for threads in (1, 2):
            n = max(batch, a.images_b1)
            pid = os.fork()
            if pid == 0:
                try:
                    run(a.model, batch, threads, a.steps, n, a.cpu)
                    os._exit(0)
                except Exception as e:  # report and fail the child
                    print("bench_torch: %s" % e, file=sys.stderr)
                    os._exit(1)
            _, status = os.waitpid(pid, 0)
            if status:
                sys.exit(1)


if __name__ == "__main__":
    main()
