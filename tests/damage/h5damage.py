#!/usr/bin/env python3
"""Damage campaign for medsynth HDF5 readers.

Takes one good medsynth HDF5 file, makes damaged copies of it (bytes
overwritten at every offset or at sampled offsets of each region, the file
cut at many lengths) and runs reader commands on each copy with a time
limit. Every run is classified:

  ok        exit 0 (the damage hit bytes nobody reads, or data that still
            parses)
  error     exit 1..127 with a message on stderr (the wanted outcome for
            damage that matters)
  silent    exit 1..127 with nothing on stderr
  signal    killed by a signal (exit >= 128 or negative return code)
  hang      still running at the time limit (killed)
  sanitizer an AddressSanitizer / UBSan report on stderr (ASan builds)
  contained a sanitizer report inside libhdf5 from the guarded reader's
            child process, after which the command still ended in a
            message and exit 1..127

Regions are found from the signatures of HDF5's metadata blocks (superblock,
OHDR, GCOL, BTHD, FRHP, ...); long spans without a signature are the
table's compressed chunk data ("data"). Checksummed regions and data are
sampled with --stride / --data-stride; GCOL (global heap, no checksum) and
the superblock at every offset unless --heap-stride says otherwise.

Usage:
  h5damage.py --cli build/medsynth --file x.h5 [--jobs 2] [--timeout 5]
              [--commands inspect,fit] [--stride 3] [--data-stride 61]
              [--trunc-step 97] [--out results.tsv] [--asan]
  h5damage.py --cli build/medsynth --model models/mri_vae64.h5 ...

Prints a summary per command and outcome, and the cases that ended in a
signal, a hang or a sanitizer report (with their first stderr line), so a
case can be replayed with --only OFFSET:MUTATION or --only trunc:LENGTH.
"""
import argparse
import collections
import concurrent.futures as cf
import os
import re
import signal
import subprocess
import sys
import tempfile

SIGNATURES = [b"OHDR", b"OCHK", b"GCOL", b"BTHD", b"BTLF", b"BTIN", b"FRHP",
              b"FHDB", b"FHIB", b"FSHD", b"FSSE", b"EAHD", b"EAIB", b"EASB",
              b"EADB", b"FAHD", b"FADB", b"TREE", b"HEAP", b"SNOD", b"SMTB",
              b"SMLI"]
MUTATIONS = {
    "xff": lambda b: b ^ 0xFF,
    "x01": lambda b: b ^ 0x01,
    "x80": lambda b: b ^ 0x80,
    "z": lambda b: 0x00,
    "ff": lambda b: 0xFF,
}


def regions(blob):
    """List of (start, end, name) covering the whole file."""
    marks = [(0, "superblock")]
    for sig in SIGNATURES:
        for m in re.finditer(re.escape(sig), blob):
            marks.append((m.start(), sig.decode()))
    marks.sort()
    out = []
    for i, (start, name) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else len(blob)
        if end <= start:
            continue
        # A long span after a small checksummed block is raw chunk data.
        if name not in ("GCOL", "FHDB", "superblock") and end - start > 4096:
            head = 2048 if name != "OHDR" else 4096
            out.append((start, start + head, name))
            out.append((start + head, end, "data"))
        else:
            out.append((start, end, name))
    return out


def cases(blob, args):
    muts = args.mutations.split(",")
    for start, end, name in regions(blob):
        if name == "data":
            stride = args.data_stride
        elif name in ("GCOL", "superblock"):
            stride = args.heap_stride
        else:
            stride = args.stride
        for off in range(start, end, stride):
            for m in muts:
                yield ("%d:%s" % (off, m), name)
    for n in range(0, len(blob), args.trunc_step):
        yield ("trunc:%d" % n, "trunc")


def damaged(blob, case):
    what, arg = case.split(":")
    if what == "trunc":
        return blob[: int(arg)]
    off = int(what)
    b = bytearray(blob)
    b[off] = MUTATIONS[arg](b[off])
    return bytes(b)


def sanitizer_in_hdf5(err):
    """True when the first frame of the first sanitizer report that is not
    the sanitizer's own interceptor lies in libhdf5."""
    text = err.decode("utf-8", "replace")
    for line in text.splitlines():
        m = re.match(r"\s+#\d+ 0x[0-9a-f]+ (?:in )?(.*)", line)
        if not m:
            continue
        frame = m.group(1)
        if "interceptor" in frame or "sanitizer" in frame or "libasan" in frame \
                or "libubsan" in frame or "libc.so" in frame:
            continue
        return "libhdf5" in frame or re.match(r"H5\w+ ", frame) is not None
    return False


def classify(rc, err, timed_out):
    if timed_out:
        return "hang"
    if b"AddressSanitizer" in err or b"runtime error:" in err or b"LeakSanitizer" in err:
        # A report inside HDF5 that the guarded reader contained (the
        # command still ended in a message and a normal exit) is counted
        # apart from reports in medsynth's own code.
        if sanitizer_in_hdf5(err) and 0 < rc < 128:
            return "contained"
        return "sanitizer"
    if rc < 0 or rc >= 128:
        return "signal"
    if rc == 0:
        return "ok"
    return "error" if err.strip() else "silent"


def first_line(err):
    for line in err.decode("utf-8", "replace").splitlines():
        if "Sanitizer" in line or "runtime error" in line or "error" in line:
            return line.strip()[:200]
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return lines[0][:200] if lines else ""


def run_case(case, region, blob, args, tmpdir):
    path = os.path.join(tmpdir, "d_%s.h5" % case.replace(":", "_"))
    with open(path, "wb") as f:
        f.write(damaged(blob, case))
    results = []
    for cmd in args.commands.split(","):
        if cmd == "inspect":
            argv = [args.cli, "inspect", "--verify", path]
        elif cmd == "fit":
            argv = [args.cli, "fit", "--data", path, "-o", path + ".json", "--force"]
        elif cmd == "model":
            argv = [args.cli, "model", "inspect", path]
        else:
            raise SystemExit("unknown command " + cmd)
        env = dict(os.environ, OMP_NUM_THREADS="1")
        if args.asan:
            env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=env, start_new_session=True)
        timed_out = False
        try:
            _, err = p.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(p.pid, signal.SIGKILL)
            _, err = p.communicate()
        outcome = classify(p.returncode, err, timed_out)
        results.append((case, region, cmd, p.returncode, outcome, first_line(err)))
    for p in (path, path + ".json"):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--file", required=True, help="good medsynth HDF5 file (table or model)")
    ap.add_argument("--commands", default="inspect,fit")
    ap.add_argument("--mutations", default="xff")
    ap.add_argument("--stride", type=int, default=3, help="offset step in checksummed metadata")
    ap.add_argument("--heap-stride", type=int, default=1,
                    help="offset step in the superblock and global heaps (no checksums)")
    ap.add_argument("--data-stride", type=int, default=61, help="offset step in chunk data")
    ap.add_argument("--trunc-step", type=int, default=97)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--asan", action="store_true", help="sanitizer build: quieter leak checks")
    ap.add_argument("--only", action="append", help="run just these cases (OFF:MUT or trunc:N)")
    ap.add_argument("--out", help="write every result as TSV")
    ap.add_argument("--tmpdir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = ap.parse_args()

    blob = open(args.file, "rb").read()
    if args.only:
        todo = [(c, "only") for c in args.only]
    else:
        todo = list(cases(blob, args))
    sys.stderr.write("%d damaged files, commands %s\n" % (len(todo), args.commands))
    tmpdir = tempfile.mkdtemp(prefix="h5damage.", dir=args.tmpdir)
    all_results = []
    with cf.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        futs = [ex.submit(run_case, c, r, blob, args, tmpdir) for c, r in todo]
        for i, f in enumerate(cf.as_completed(futs)):
            all_results.extend(f.result())
            if (i + 1) % 1000 == 0:
                sys.stderr.write("  %d/%d\n" % (i + 1, len(todo)))
    os.rmdir(tmpdir)
    all_results.sort(key=lambda r: (r[2], r[0]))
    if args.out:
        with open(args.out, "w") as f:
            f.write("case\tregion\tcommand\trc\toutcome\tmessage\n")
            for r in all_results:
                f.write("\t".join(str(x) for x in r) + "\n")
    counts = collections.Counter((r[2], r[4]) for r in all_results)
    print("damaged files: %d" % len(todo))
    for cmd in args.commands.split(","):
        print("%-8s %s" % (cmd, "  ".join("%s %d" % (o, counts[(cmd, o)])
                                          for o in ("ok", "error", "silent", "signal", "hang",
                                                    "sanitizer", "contained"))))
    bad = [r for r in all_results if r[4] in ("signal", "hang", "sanitizer", "silent")]
    by_region = collections.Counter((r[1], r[2], r[4]) for r in bad)
    for (reg, cmd, o), n in sorted(by_region.items()):
        print("  %-10s %-8s %-9s %d" % (reg, cmd, o, n))
    for r in bad[:60]:
        print("  %s %s %s rc=%s %s" % (r[0], r[2], r[4], r[3], r[5]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
