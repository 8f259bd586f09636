#!/usr/bin/env bash
# `medsynth inspect`, `medsynth fit --data` and `medsynth model inspect` on
# damaged HDF5 files (docs/reliability.md, "Reading damaged files"). The
# damage is the kind that made HDF5 1.10.8 loop forever (a global heap
# free-space object of size 0) or crash (a heap object larger than its
# collection, flipped bytes of heap object headers), plus cuts and a superblock
# that claims more bytes than the file has. Every run must end within a few
# seconds in a normal exit; where the damage must be noticed, in exit 65 (or
# 74) with a message naming the file. Usage: h5_damaged.sh <medsynth> <source-dir>
set -u
M=$1
SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export MEDSYNTH_READ_TIMEOUT=2
fail=0

"$M" records --spec "$SRC/schemas/examples/outpatient.json" -n 1000 --seed 3 -q -o "$T/x.h5" || exit 1
cp "$SRC/models/mri_vae64.h5" "$T/m.h5"

# Writes the damaged copies and prints "<must-fail 0|1> <file>" per copy.
/usr/bin/python3 - "$T" <<'PY' >"$T/cases" || exit 1
import os, struct, sys
d = sys.argv[1]

def gcols(b):
    out, at = [], b.find(b"GCOL")
    while at >= 0:
        size = struct.unpack_from("<Q", b, at + 8)[0] if at + 16 <= len(b) else 0
        if b[at + 4] == 1 and 4096 <= size <= len(b) - at:
            objs, p, end = [], at + 16, at + size
            while p + 16 <= end:
                idx = struct.unpack_from("<H", b, p)[0]
                sz = struct.unpack_from("<Q", b, p + 8)[0]
                objs.append((p, idx))
                need = sz if idx == 0 else 16 + (sz + 7) // 8 * 8
                if need == 0 or need > end - p:
                    break
                p += need
            out.append((at, objs))
        at = b.find(b"GCOL", at + 4)
    return out

def emit(tag, name, data, must):
    path = os.path.join(d, "%s_%s.h5" % (tag, name))
    open(path, "wb").write(data)
    print(must, path)

for tag in ("x", "m"):
    good = open(os.path.join(d, tag + ".h5"), "rb").read()
    for k, (at, objs) in enumerate(gcols(good)):
        frees = [p for p, idx in objs if idx == 0]
        if frees:
            b = bytearray(good)
            struct.pack_into("<Q", b, frees[0] + 8, 0)
            emit(tag, "heap%d_free0" % k, b, 1)
        b = bytearray(good)
        struct.pack_into("<Q", b, objs[0][0] + 8, 1 << 28)
        emit(tag, "heap%d_huge" % k, b, 1)
        for i, (p, idx) in enumerate(objs[::3]):
            for j in (0, 9):
                b = bytearray(good)
                b[p + j] ^= 0xFF
                emit(tag, "heap%d_obj%d_%d" % (k, i, j), b, 0)
    for frac in (10, 50, 90):
        emit(tag, "cut%d" % frac, good[: len(good) * frac // 100], 1)
    emit(tag, "cut_last", good[:-1], 1)
PY

# run <must-fail> <file> <command...>
run() {
  local must=$1 f=$2
  shift 2
  local t0 t1 rc
  t0=$(date +%s)
  timeout 60 "$@" >"$T/out" 2>"$T/err"
  rc=$?
  t1=$(date +%s)
  if [ "$rc" -ge 124 ]; then
    echo "FAIL: $* -> rc=$rc (signal or hang)"; head -3 "$T/err"; fail=1; return
  fi
  if [ $((t1 - t0)) -gt 20 ]; then echo "FAIL: $* took $((t1 - t0)) s"; fail=1; fi
  if [ "$must" = 1 ] && [ "$rc" -ne 65 ] && [ "$rc" -ne 74 ]; then
    echo "FAIL: $* -> rc=$rc (want 65 or 74)"; head -3 "$T/err"; fail=1; return
  fi
  if [ "$rc" -ne 0 ] && ! grep -qF -- "$f" "$T/err"; then
    echo "FAIL: $* -> rc=$rc without a message naming the file:"; head -3 "$T/err"; fail=1
  fi
}

n=0
while read -r must f; do
  n=$((n + 1))
  case $(basename "$f") in
    x_*)
      run "$must" "$f" "$M" inspect --verify "$f"
      run "$must" "$f" "$M" fit --data "$f" -o "$T/fit.json" --force
      ;;
    m_*)
      run "$must" "$f" "$M" model inspect "$f"
      ;;
  esac
done <"$T/cases"
[ "$n" -gt 20 ] || { echo "FAIL: only $n damaged files"; fail=1; }

# The loop in HDF5 is reported as such, naming the attribute being read.
"$M" inspect "$T/x_heap0_free0.h5" >/dev/null 2>"$T/err"
grep -q 'could not be read within 2 s' "$T/err" || { echo "FAIL: no time-limit message"; cat "$T/err"; fail=1; }
"$M" model inspect "$T/m_heap0_free0.h5" >/dev/null 2>"$T/err"
grep -q 'attribute "config": could not be read within 2 s' "$T/err" ||
  { echo "FAIL: no time-limit message for the model"; cat "$T/err"; fail=1; }
"$M" inspect "$T/x_cut50.h5" >/dev/null 2>"$T/err"
grep -q 'truncated or corrupt: its superblock records' "$T/err" ||
  { echo "FAIL: no truncation message"; cat "$T/err"; fail=1; }
exit $fail
