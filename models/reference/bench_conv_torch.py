"""PyTorch CPU timings of torch.nn.functional.conv2d for tests/bench/bench_conv.c.

  /usr/bin/python3 models/reference/bench_conv_torch.py SHAPES.txt [min_seconds] [--cpu]

SHAPES.txt has one case per line: "N C H W C_out k stride pad threads"
(written by bench_conv). For each line this prints the best milliseconds
per call (float32, with bias, torch.inference_mode, torch.set_num_threads
as given), one number per line in the same order, after a warm-up call.
The timing loop is the same as bench_conv's: repetitions until at least
min_seconds (default 0.3) and at least 3, best one reported. --cpu: process
CPU time (time.process_time) instead of the wall clock, as bench_conv --cpu.
"""

import sys
import time

import torch


def best_ms(fn, min_s, clock):
    fn()
    best, reps, t_end = float("inf"), 0, clock() + min_s
    while reps < 3 or clock() < t_end:
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
        reps += 1
    return best * 1e3


def main():
    args = [a for a in sys.argv[1:] if a != "--cpu"]
    clock = time.process_time if "--cpu" in sys.argv[1:] else time.perf_counter
    path = args[0]
    min_s = float(args[1]) if len(args) > 1 else 0.3
    g = torch.Generator().manual_seed(0)
    with open(path) as f, torch.inference_mode():
        for line in f:
            if not line.strip():
                continue
            N, C, H, W, Co, k, s, p, t = (int(v) for v in line.split())
            torch.set_num_threads(t)
            x = torch.rand(N, C, H, W, generator=g) - 0.5
            w = torch.rand(Co, C, k, k, generator=g) - 0.5
            b = torch.rand(Co, generator=g) - 0.5
            ms = best_ms(lambda: torch.nn.functional.conv2d(x, w, b, stride=s, padding=p), min_s, clock)
            print("%.4f" % ms, flush=True)


if __name__ == "__main__":
    main()
