/* Guarded reads in a child process (see core/guard.h).
 *
 * Protocol: before fork the parent maps one shared page (progress counter
 * and the text of the object being read) and opens a pipe. The child runs
 * the function, then writes one frame to the pipe and leaves with _exit(0):
 *
 *   u64 magic, u64 status, u64 n_dropped, u64 n_entries,
 *   n_entries x (u64 status, u64 severity, str file, u64 line, u64 column,
 *                str where, str message),
 *   u64 payload length, payload bytes.
 *
 * The parent reads the pipe until end of file, restarting its clock
 * whenever bytes arrive or the progress counter moves; once the clock runs
 * out it kills the child. It then reaps the child and decodes the frame,
 * treating every length in it as untrusted. The payload is handed to the
 * caller in place (out->pos at its first byte).
 *
 * Where fork is refused (process limits, sandboxes) the function runs
 * in-process: reading a valid file must keep working, and the unguarded path
 * is the one every other HDF5 program uses. */
#include "core/guard.h"
#include "core/diag.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "core/alloc.h"

#if defined(MS_SANITIZE) && defined(__has_include)
#if __has_include(<sanitizer/common_interface_defs.h>)
#include <sanitizer/common_interface_defs.h>
#define MS_HAVE_SANITIZER_IFACE 1
#endif
#endif

#define FRAME_MAGIC 0x3147524453534d00ull /* "\0MSSDRG1" */
#define MAX_ENTRIES 100000
#define MAX_FRAME ((size_t)1 << 34)
#define WHERE_CAP 1024

typedef struct {
  _Atomic uint64_t progress;
  char where[WHERE_CAP];
} shared_page;

struct ms__guard {
  shared_page *sh;
};

/* ---- buffer ------------------------------------------------------------ */

void ms__gbuf_free(ms__gbuf *b) {
  if (!b) return;
  free(b->p);
  memset(b, 0, sizeof *b);
}

static int reserve(ms__gbuf *b, size_t extra) {
  if (b->fail) return -1;
  if (extra > MAX_FRAME || b->len > MAX_FRAME - extra) {
    b->fail = 1;
    return -1;
  }
  size_t need = b->len + extra;
  if (need <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  uint8_t *np = ms__realloc(b->p, cap);
  if (!np) {
    b->fail = 1;
    return -1;
  }
  b->p = np;
  b->cap = cap;
  return 0;
}

void ms__gbuf_put_bytes(ms__gbuf *b, const void *p, size_t n) {
  if (!n || reserve(b, n)) return;
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

void ms__gbuf_put_u64(ms__gbuf *b, uint64_t v) {
  uint8_t le[8];
  for (int i = 0; i < 8; i++) le[i] = (uint8_t)(v >> (8 * i));
  ms__gbuf_put_bytes(b, le, 8);
}

void ms__gbuf_put_str(ms__gbuf *b, const char *s) {
  if (!s) {
    ms__gbuf_put_u64(b, UINT64_MAX);
    return;
  }
  size_t n = strlen(s);
  ms__gbuf_put_u64(b, n);
  ms__gbuf_put_bytes(b, s, n);
}

uint64_t ms__gbuf_get_u64(ms__gbuf *b) {
  if (b->fail || b->pos > b->len || b->len - b->pos < 8) {
    b->fail = 1;
    return 0;
  }
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)b->p[b->pos + i] << (8 * i);
  b->pos += 8;
  return v;
}

const void *ms__gbuf_get_bytes(ms__gbuf *b, size_t n) {
  if (b->fail || b->pos > b->len || b->len - b->pos < n) {
    b->fail = 1;
    return NULL;
  }
  const void *p = b->p + b->pos;
  b->pos += n;
  return p;
}

char *ms__gbuf_get_str(ms__gbuf *b) {
  uint64_t n = ms__gbuf_get_u64(b);
  if (b->fail || n == UINT64_MAX) return NULL;
  if (n > b->len - b->pos) {
    b->fail = 1;
    return NULL;
  }
  const char *s = ms__gbuf_get_bytes(b, (size_t)n);
  char *r = s ? ms__strndup(s, (size_t)n) : NULL;
  if (!r) b->fail = 1;
  if (s && !r) b->nomem = 1;
  return r;
}

/* ---- progress ------------------------------------------------------------ */

void ms__guard_at(ms__guard *g, const char *fmt, ...) {
  if (!g || !g->sh) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g->sh->where, sizeof g->sh->where, fmt, ap);
  va_end(ap);
  atomic_fetch_add_explicit(&g->sh->progress, 1, memory_order_release);
}

/* ---- settings ---------------------------------------------------------- */

static double limit_seconds(void) {
  const char *e = getenv("MEDSYNTH_READ_TIMEOUT");
  if (e && *e) {
    char *end;
    double v = strtod(e, &end);
    if (*end == '\0' && isfinite(v) && v > 0 && v <= 1e6) return v;
  }
  return 10.0;
}

static int guard_enabled(void) {
  const char *e = getenv("MEDSYNTH_READ_GUARD");
  if (e && (!strcmp(e, "0") || !strcmp(e, "off") || !strcmp(e, "no"))) return 0;
  return !ms__fault_armed();
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- child ------------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void put_diag(ms__gbuf *f, const ms_diag *d) {
  ms__gbuf_put_u64(f, d->n_dropped);
  ms__gbuf_put_u64(f, d->count);
  for (size_t i = 0; i < d->count; i++) {
    const ms_diag_entry *e = &d->entries[i];
    ms__gbuf_put_u64(f, (uint64_t)e->status);
    ms__gbuf_put_u64(f, (uint64_t)e->severity);
    ms__gbuf_put_str(f, e->file);
    ms__gbuf_put_u64(f, (uint64_t)(int64_t)e->line);
    ms__gbuf_put_u64(f, (uint64_t)(int64_t)e->column);
    ms__gbuf_put_str(f, e->where);
    ms__gbuf_put_str(f, e->message);
  }
}

static void child_main(int fd, shared_page *sh, ms__guard_fn fn, void *ctx) {
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  /* A fault must end the child, not run the application's handlers (a test
   * framework's would longjmp back into its runner, inside the child). */
  static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
  for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) signal(faults[i], SIG_DFL);
#ifdef MS_HAVE_SANITIZER_IFACE
  /* Likewise a sanitizer report ends only the child: a death callback (a
   * fuzzer's, which saves the input as a crash) belongs to the parent, which
   * reports the damage. */
  __sanitizer_set_death_callback(NULL);
#endif
  ms__guard g = {sh};
  ms_diag cd;
  ms_diag_init(&cd);
  ms__gbuf out = {0};
  ms_status st = fn(&g, ctx, &out, &cd);
  if (out.fail) st = MS_ERR_NOMEM;
  ms__gbuf frame = {0};
  ms__gbuf_put_u64(&frame, FRAME_MAGIC);
  ms__gbuf_put_u64(&frame, (uint64_t)st);
  put_diag(&frame, &cd);
  ms__gbuf_put_u64(&frame, out.fail ? 0 : out.len);
  if (frame.fail || write_all(fd, frame.p, frame.len) ||
      (!out.fail && out.len && write_all(fd, out.p, out.len)))
    _exit(3);
  _exit(0);
}

/* ---- parent ------------------------------------------------------------ */

/* Decodes the frame in `in` into d and returns the child's status; on a
 * malformed frame returns MS_STATUS_COUNT. Leaves in->pos at the payload. */
static ms_status decode_frame(ms__gbuf *in, ms_diag *d, size_t *payload_len) {
  if (ms__gbuf_get_u64(in) != FRAME_MAGIC) return MS_STATUS_COUNT;
  uint64_t st = ms__gbuf_get_u64(in);
  uint64_t dropped = ms__gbuf_get_u64(in);
  uint64_t n = ms__gbuf_get_u64(in);
  if (in->fail || st >= MS_STATUS_COUNT || n > MAX_ENTRIES) return MS_STATUS_COUNT;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t es = ms__gbuf_get_u64(in), sev = ms__gbuf_get_u64(in);
    char *file = ms__gbuf_get_str(in);
    int64_t line = (int64_t)ms__gbuf_get_u64(in), col = (int64_t)ms__gbuf_get_u64(in);
    char *where = ms__gbuf_get_str(in);
    char *msg = ms__gbuf_get_str(in);
    int ok = !in->fail && es < MS_STATUS_COUNT && sev < MS_SEV_COUNT && msg;
    if (ok)
      ms__diag_add_sev(d, (ms_status)es, (ms_severity)sev, file,
                       line > 0 && line < 1 << 30 ? (int)line : 0,
                       col > 0 && col < 1 << 30 ? (int)col : 0, where, "%s", msg);
    free(file);
    free(where);
    free(msg);
    if (!ok) return MS_STATUS_COUNT;
  }
  if (d) d->n_dropped += (size_t)(dropped < MAX_ENTRIES ? dropped : MAX_ENTRIES);
  uint64_t pl = ms__gbuf_get_u64(in);
  if (in->fail || pl != in->len - in->pos) return MS_STATUS_COUNT;
  *payload_len = (size_t)pl;
  return (ms_status)st;
}

static ms_status run_inprocess(ms__guard_fn fn, void *ctx, ms__gbuf *out, ms_diag *d) {
  shared_page local;
  memset(&local, 0, sizeof local);
  ms__guard g = {&local};
  ms_status st = fn(&g, ctx, out, d);
  out->pos = 0;
  if (out->fail && st == MS_OK) st = MS_ERR_NOMEM;
  return st;
}

ms_status ms__guard_run(const char *file, ms_status fail_status, ms__guard_fn fn, void *ctx,
                        ms__gbuf *out, ms_diag *d) {
  memset(out, 0, sizeof *out);
  if (!guard_enabled()) return run_inprocess(fn, ctx, out, d);
  const double limit = limit_seconds();
  shared_page *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int pfd[2] = {-1, -1};
  if (sh == MAP_FAILED || pipe2(pfd, O_CLOEXEC) != 0) {
    if (sh != MAP_FAILED) munmap(sh, sizeof *sh);
    return run_inprocess(fn, ctx, out, d);
  }
  memset(sh, 0, sizeof *sh);
  pid_t pid = fork();
  if (pid < 0) {
    close(pfd[0]);
    close(pfd[1]);
    munmap(sh, sizeof *sh);
    return run_inprocess(fn, ctx, out, d);
  }
  if (pid == 0) {
    close(pfd[0]);
    child_main(pfd[1], sh, fn, ctx);
  }
  close(pfd[1]);

  ms__gbuf in = {0};
  int stalled = 0, read_error = 0;
  uint64_t seen = atomic_load_explicit(&sh->progress, memory_order_acquire);
  double deadline = now_s() + limit;
  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) {
      uint64_t p = atomic_load_explicit(&sh->progress, memory_order_acquire);
      if (p != seen) {
        seen = p;
        deadline = now_s() + limit;
        continue;
      }
      stalled = 1;
      break;
    }
    struct pollfd pf = {pfd[0], POLLIN, 0};
    int ms = left > 0.2 ? 200 : (int)(left * 1000) + 1;
    int r = poll(&pf, 1, ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      read_error = 1;
      break;
    }
    if (r > 0) {
      if (reserve(&in, 65536)) {
        read_error = 1;
        break;
      }
      ssize_t n = read(pfd[0], in.p + in.len, in.cap - in.len);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        read_error = 1;
        break;
      }
      if (n == 0) break;
      in.len += (size_t)n;
      deadline = now_s() + limit;
    }
    uint64_t p = atomic_load_explicit(&sh->progress, memory_order_acquire);
    if (p != seen) {
      seen = p;
      deadline = now_s() + limit;
    }
  }
  close(pfd[0]);
  if (stalled || read_error) kill(pid, SIGKILL);
  int ws = 0;
  pid_t w;
  do w = waitpid(pid, &ws, 0);
  while (w < 0 && errno == EINTR);
  char where[WHERE_CAP];
  memcpy(where, sh->where, sizeof where);
  where[sizeof where - 1] = '\0';
  munmap(sh, sizeof *sh);
  const char *loc = where[0] ? where : NULL;

  if (stalled) {
    ms__gbuf_free(&in);
    return ms_diag_add(d, fail_status, file, 0, 0, loc,
                       "could not be read within %g s (damaged file?): the HDF5 library made no "
                       "progress and was stopped",
                       limit);
  }
  if (read_error) {
    int nomem = in.fail;
    ms__gbuf_free(&in);
    return nomem ? ms_diag_add(d, MS_ERR_NOMEM, file, 0, 0, loc, "out of memory reading the file")
                 : ms_diag_add(d, MS_ERR_IO, file, 0, 0, loc, "cannot read the reader's result: %s",
                               strerror(errno));
  }
  if (w == pid && WIFSIGNALED(ws)) {
    ms__gbuf_free(&in);
    int sig = WTERMSIG(ws);
    return ms_diag_add(d, fail_status, file, 0, 0, loc,
                       "reading crashed (signal %d, %s): the file is damaged", sig, strsignal(sig));
  }
  if (w == pid && WIFEXITED(ws) && WEXITSTATUS(ws) != 0) {
    ms__gbuf_free(&in);
    return ms_diag_add(d, fail_status, file, 0, 0, loc,
                       "reading failed (reader process exit status %d): the file is damaged",
                       WEXITSTATUS(ws));
  }
  size_t pl = 0;
  ms_diag scratch;
  ms_diag_init(&scratch);
  ms_status st = decode_frame(&in, &scratch, &pl);
  if (st == MS_STATUS_COUNT) {
    ms_diag_deinit(&scratch);
    ms__gbuf_free(&in);
    return ms_diag_add(d, fail_status, file, 0, 0, loc,
                       "reading stopped before it finished: the file is damaged");
  }
  ms_diag_append(d, &scratch);
  ms_diag_deinit(&scratch);
  *out = in;
  return st;
}
