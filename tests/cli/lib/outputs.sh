# Shared by the "nothing half-written" tests (tests/cli/*_outputs.sh): a run
# that fails because the disk is full, or that is stopped by SIGINT/SIGTERM,
# must say why, exit with the documented code and leave nothing under its
# output names and no temporary file (docs/reliability.md).
#
# Sourced with the test's arguments (<medsynth> <source-dir>). The script
# re-runs itself in a private mount namespace (unshare -m), so the small
# tmpfs file systems it mounts vanish with it whatever happens (in a chroot
# the namespace keeps the host's propagation); they are also unmounted on
# exit. Mounting needs root: when it is impossible the test
# fails, it never passes without having run.
set -uo pipefail
MS=$1
SRC=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ -z "${MS_OUTPUTS_NS:-}" ]; then
  command -v unshare >/dev/null || fail "unshare(1) is missing: the disk-full cases cannot run"
  # Inside a chroot whose root is not a mount point, making every mount
  # private fails (EINVAL); the namespace is then entered with the
  # propagation unchanged, and the trap below unmounts what was mounted.
  prop=private
  unshare --mount --propagation private true 2>/dev/null || prop=unchanged
  MS_OUTPUTS_NS=1 exec unshare --mount --propagation "$prop" bash "$0" "$@"
  fail "cannot enter a private mount namespace (needs root)"
fi
T=$(mktemp -d)
MOUNTS=()
cleanup() {
  local m
  for m in "${MOUNTS[@]+"${MOUNTS[@]}"}"; do umount "$m" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT

# small_fs DIR SIZE: a tmpfs of SIZE (e.g. 2m) on DIR.
small_fs() {
  mkdir -p "$1"
  mount -t tmpfs -o size="$2" tmpfs "$1" || fail "cannot mount a $2 tmpfs on $1 (needs root)"
  MOUNTS+=("$1")
}

# empty DIR...: each DIR holds nothing at all (no output, no temporary).
empty() {
  local d
  for d in "$@"; do
    [ -z "$(ls -A "$d")" ] || fail "$d is not empty after the failed run: $(ls -A "$d" | tr '\n' ' ')"
  done
}

# disk_full NAME DIR... -- cmd...: cmd must exit 74 with a message naming
# NAME and the cause, and leave every DIR empty.
disk_full() {
  local name=$1 dirs=()
  shift
  while [ "$1" != "--" ]; do dirs+=("$1"); shift; done
  shift
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  [ "$rc" = 74 ] || { cat "$T/err" >&2; fail "exit $rc, wanted 74: $*"; }
  grep "No space left on device" "$T/err" | grep -qF -- "$name" ||
    { cat "$T/err" >&2; fail "no message naming $name and the cause: $*"; }
  empty "${dirs[@]}"
}

# interrupt SIG DIR -- cmd...: starts cmd, waits until a temporary file or
# folder shows up under DIR (the run has started writing), sends SIG, and a
# second SIG while the run cleans up; the run must end by that signal
# (128 + signo for the shell) after printing "interrupted", leaving DIR empty.
interrupt() {
  local sig=$1 dir=$2 want i rc
  shift 3
  want=$((128 + $(kill -l "$sig")))
  # Job control: a background job of a script otherwise ignores SIGINT.
  set -m
  "$@" >"$T/out" 2>"$T/err" &
  local pid=$!
  set +m
  for ((i = 0; i < 3000; i++)); do
    [ -n "$(find "$dir" -name '*.tmp.*' -print -quit)" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  [ -n "$(find "$dir" -name '*.tmp.*' -print -quit)" ] ||
    { wait "$pid"; cat "$T/err" >&2; fail "no temporary file appeared under $dir: $*"; }
  kill -s "$sig" "$pid"
  sleep 0.05
  kill -s "$sig" "$pid" 2>/dev/null
  for ((i = 0; i < 3000; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; fail "still running 30 s after SIG$sig: $*"; }
  wait "$pid"
  rc=$?
  [ "$rc" = "$want" ] || { cat "$T/err" >&2; fail "exit $rc after SIG$sig, wanted $want: $*"; }
  grep -q "interrupted" "$T/err" || { cat "$T/err" >&2; fail "no 'interrupted' message: $*"; }
  empty "$dir"
}
