/* Outputs that appear only when complete (medsynth/output.h), HDF5 error
 * translation and the shuffle+deflate chunk codec (see io_private.h).
 *
 * Atomicity: this is the one temp-then-rename implementation of the library;
 * every writer goes through it. A file is first written to
 * "<dir>/.<base>.tmp.<pid>.XXXXXX" (mkstemp: the random suffix makes
 * concurrent writers safe), fsynced, then renamed over the target with
 * rename(2), which POSIX guarantees to be atomic within one file system; the
 * directory is fsynced afterwards so the rename itself survives a crash. A
 * reader therefore sees either no file / the old file, or the complete new
 * one, never a partial file under the target name. A folder is staged the
 * same way (mkdtemp) and renamed, or, when the target folder exists, its
 * entries are renamed into it one by one (a folder written as a whole, such
 * as a FHIR export or a DICOM series, replaces it instead: one
 * renameat2(RENAME_EXCHANGE), then the old tree is removed). Failures remove
 * the temporaries.
 *
 * Codec: HDF5's shuffle filter (H5Zshuffle.c) transposes the bytes of a chunk
 * of n elements of size s so that byte j of element i moves to j*n + i; any
 * nbytes % s trailing bytes are copied unchanged. The deflate filter
 * (H5Zdeflate.c) is zlib compress2() at the dataset's level, i.e. a zlib
 * stream (RFC 1950) with default window and memory settings. Levels 2-9
 * produce exactly those bytes; level 1 uses our run-length deflate encoder
 * (gen/io/deflate.c) instead of compress2's level 1 (a different but
 * equally standard zlib stream, much faster on shuffled rows). Either way chunks are
 * compressed in parallel and written with H5Dwrite_chunk, and any HDF5
 * reader decodes them through its deflate filter. */
#include <dirent.h>
#include <errno.h>
#include "core/alloc.h"
#include "core/diag.h"
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "io/io_private.h"
#include "medsynth/output.h"

char *ms__path_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return ms__strdup(".");
  if (slash == path) return ms__strdup("/");
  return ms__strndup(path, (size_t)(slash - path));
}

static const char *path_base(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static mode_t current_umask(void) {
  mode_t um = umask(0);
  umask(um);
  return um;
}

/* fsyncs a folder: best effort, some file systems refuse directory fsync. */
static void sync_dir(const char *dir) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
}

ms_status ms__atomic_create(ms__atomic *a, const char *target, int force, ms_diag *d) {
  memset(a, 0, sizeof *a);
  a->fd = -1;
  a->force = force;
  if (!target || !*target)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "empty output path");
  struct stat st;
  if (stat(target, &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return ms_diag_add(d, MS_ERR_IO, target, 0, 0, NULL, "output path is a directory");
    if (!force)
      return ms_diag_add(d, MS_ERR_EXISTS, target, 0, 0, NULL,
                         "output file already exists (use --force to overwrite)");
  }
  char *dir = ms__path_dir(target);
  if (!dir) return ms__diag_nomem(d, target, NULL, "a temporary file name");
  const char *base = path_base(target);
  if (!*base) {
    free(dir);
    return ms_diag_add(d, MS_ERR_INVALID, target, 0, 0, NULL, "output path names no file");
  }
  char *tmpl = NULL;
  if (ms__asprintf(&tmpl, "%s/.%s.tmp.%ld.XXXXXX", dir, base, (long)getpid()) < 0) {
    free(dir);
    return ms__diag_nomem(d, target, NULL, "a temporary file name");
  }
  int fd = mkstemp(tmpl);
  if (fd < 0) {
    int e = errno;
    ms_status st2 = ms_diag_add(d, MS_ERR_IO, target, 0, 0, NULL,
                                "cannot create a file in directory '%s': %s", dir, strerror(e));
    free(dir);
    free(tmpl);
    return st2;
  }
  /* mkstemp creates mode 0600; give the file the usual mode (umask). */
  (void)fchmod(fd, 0666 & ~current_umask());
  a->target = ms__strdup(target);
  a->tmp = tmpl;
  a->parent = dir;
  a->fd = fd;
  if (!a->target) {
    ms__atomic_discard(a);
    return ms__diag_nomem(d, target, NULL, "an output file name");
  }
  return MS_OK;
}

/* mkdir -p of every folder above `path` (not path itself). */
static int make_parents(const char *path) {
  char *p = ms__strdup(path);
  if (!p) return ENOMEM;
  int e = 0;
  for (char *s = strchr(p + 1, '/'); s && !e; s = strchr(s + 1, '/')) {
    *s = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) e = errno;
    *s = '/';
  }
  free(p);
  return e;
}

/* Stages folder `target`: merged into an existing folder (replace = 0) or
 * replacing it as a whole (replace = 1: refused without force). */
static ms_status stage_dir(ms__atomic *a, const char *target, int replace, int force,
                           ms_diag *d) {
  memset(a, 0, sizeof *a);
  a->fd = -1;
  a->dir = 1;
  a->force = force;
  a->replace = replace;
  if (!target || !*target)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "empty output folder");
  /* "report/" names the folder "report" */
  size_t len = strlen(target);
  while (len > 1 && target[len - 1] == '/') len--;
  if (!(a->target = ms__strndup(target, len))) return ms__diag_nomem(d, target, NULL, "a folder name");
  struct stat st;
  char *tmpl = NULL;
  int rc;
  int exists = stat(a->target, &st) == 0;
  if (exists && !S_ISDIR(st.st_mode)) {
    ms_status s2 = ms_diag_add(d, MS_ERR_EXISTS, a->target, 0, 0, NULL,
                               "exists and is not a folder");
    ms__atomic_deinit(a);
    return s2;
  }
  if (exists && replace && !force) {
    ms_status s2 = ms_diag_add(d, MS_ERR_EXISTS, a->target, 0, 0, NULL,
                               "output folder exists (use --force to replace it)");
    ms__atomic_deinit(a);
    return s2;
  }
  if (exists && !replace) {
    a->merge = 1;
    rc = ms__asprintf(&tmpl, "%s/.medsynth.tmp.%ld.XXXXXX", a->target, (long)getpid());
  } else {
    int e = exists ? 0 : errno != ENOENT ? errno : make_parents(a->target);
    if (e == ENOMEM) {
      ms_status s2 = ms__diag_nomem(d, a->target, NULL, "a folder name");
      ms__atomic_deinit(a);
      return s2;
    }
    if (e) {
      ms_status s2 = ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL,
                                 "cannot create the folder: %s", strerror(e));
      ms__atomic_deinit(a);
      return s2;
    }
    char *dir = ms__path_dir(a->target);
    rc = dir ? ms__asprintf(&tmpl, "%s/.%s.tmp.%ld.XXXXXX", dir, path_base(a->target), (long)getpid())
             : -1;
    a->parent = dir;
  }
  if (rc < 0) {
    ms_status s2 = ms__diag_nomem(d, a->target, NULL, "a temporary folder name");
    ms__atomic_deinit(a);
    return s2;
  }
  if (!mkdtemp(tmpl)) {
    ms_status s2 = ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL,
                               "cannot create a folder next to it: %s", strerror(errno));
    free(tmpl);
    ms__atomic_deinit(a);
    return s2;
  }
  (void)chmod(tmpl, 0777 & ~current_umask()); /* mkdtemp creates 0700 */
  a->tmp = tmpl;
  return MS_OK;
}

ms_status ms__atomic_mkdir(ms__atomic *a, const char *target, ms_diag *d) {
  return stage_dir(a, target, 0, 0, d);
}

ms_status ms__atomic_mkdir_whole(ms__atomic *a, const char *target, int force, ms_diag *d) {
  return stage_dir(a, target, 1, force, d);
}

ms_status ms__atomic_sync(ms__atomic *a, ms_diag *d) {
  if (a->synced) return MS_OK;
  if (a->dir) {
    /* A folder written as a whole holds many files written without an
     * fsync each: one syncfs of the file system under it instead. */
    if (!a->replace) return MS_OK;
    int dfd = open(a->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || syncfs(dfd) != 0) {
      int e = errno;
      if (dfd >= 0) close(dfd);
      return ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL, "cannot write: %s", strerror(e));
    }
    close(dfd);
    a->synced = 1;
    return MS_OK;
  }
  int fd = a->fd;
  if (fd < 0) fd = open(a->tmp, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    int e = errno;
    if (fd >= 0 && fd != a->fd) close(fd);
    return ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL, "cannot write: %s", strerror(e));
  }
  if (fd != a->fd) close(fd);
  a->synced = 1;
  return MS_OK;
}

/* Moves every entry of folder src into folder dst (which exists), merging
 * subfolders that exist on both sides; then removes src. */
static ms_status merge_tree(const char *src, const char *dst, const char *shown, ms_diag *d) {
  DIR *dp = opendir(src);
  if (!dp)
    return ms_diag_add(d, MS_ERR_IO, shown, 0, 0, NULL, "cannot read '%s': %s", src,
                       strerror(errno));
  ms_status st = MS_OK;
  struct dirent *e;
  while (st == MS_OK && (e = readdir(dp))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    /* Names on the stack: a merge must not stop half-way for lack of memory. */
    char s[PATH_MAX], t[PATH_MAX];
    if ((size_t)snprintf(s, sizeof s, "%s/%s", src, e->d_name) >= sizeof s ||
        (size_t)snprintf(t, sizeof t, "%s/%s", dst, e->d_name) >= sizeof t) {
      st = ms_diag_add(d, MS_ERR_IO, shown, 0, 0, NULL, "cannot move '%s' into place: %s",
                       e->d_name, strerror(ENAMETOOLONG));
      break;
    }
    struct stat ss, ts;
    if (lstat(s, &ss) == 0 && S_ISDIR(ss.st_mode) && stat(t, &ts) == 0 && S_ISDIR(ts.st_mode))
      st = merge_tree(s, t, t, d);
    else if (rename(s, t) != 0)
      st = ms_diag_add(d, MS_ERR_IO, t, 0, 0, NULL, "cannot move into place: %s", strerror(errno));
  }
  closedir(dp);
  if (st == MS_OK) {
    sync_dir(dst);
    if (rmdir(src) != 0)
      st = ms_diag_add(d, MS_ERR_IO, shown, 0, 0, NULL, "cannot remove '%s': %s", src,
                       strerror(errno));
  }
  return st;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  (void)remove(path);
  return 0; /* keep going: remove as much as possible */
}

ms_status ms__atomic_commit(ms__atomic *a, ms_diag *d) {
  ms_status st = ms__atomic_sync(a, d);
  if (st) return st;
  if (a->fd >= 0) {
    close(a->fd);
    a->fd = -1;
  }
  if (a->dir) {
    struct stat sb;
    if (a->merge) {
      st = merge_tree(a->tmp, a->target, a->target, d);
    } else if (a->replace && stat(a->target, &sb) == 0) {
      /* A whole folder replaced (or one that appeared while writing): */
      if (!a->force)
        return ms_diag_add(d, MS_ERR_EXISTS, a->target, 0, 0, NULL,
                           "output folder appeared while writing (use --force to replace it)");
      /* swap the two in one step, then remove the old tree (now under the
       * temporary name) */
      if (renameat2(AT_FDCWD, a->tmp, AT_FDCWD, a->target, RENAME_EXCHANGE) != 0)
        return ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL, "cannot replace the folder: %s",
                           strerror(errno));
      (void)nftw(a->tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    } else if (rename(a->tmp, a->target) != 0) {
      /* The folder appeared meanwhile: move the entries into it instead. */
      if (!a->replace && (errno == EEXIST || errno == ENOTEMPTY))
        st = merge_tree(a->tmp, a->target, a->target, d);
      else
        st = ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL, "cannot move into place: %s",
                         strerror(errno));
    }
    if (st) return st;
  } else {
    struct stat sb;
    if (!a->force && stat(a->target, &sb) == 0)
      return ms_diag_add(d, MS_ERR_EXISTS, a->target, 0, 0, NULL,
                         "output file appeared while writing (use --force to overwrite)");
    if (rename(a->tmp, a->target) != 0)
      return ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL, "cannot rename '%s' to '%s': %s",
                         a->tmp, a->target, strerror(errno));
  }
  free(a->tmp);
  a->tmp = NULL;
  if (a->parent) sync_dir(a->parent); /* saved at create: no allocation here */
  return MS_OK;
}

void ms__atomic_deinit(ms__atomic *a) {
  if (a->fd >= 0) close(a->fd);
  free(a->target);
  free(a->tmp);
  free(a->parent);
  a->target = a->tmp = a->parent = NULL;
  a->fd = -1;
}

void ms__atomic_discard(ms__atomic *a) {
  if (a->fd >= 0) close(a->fd);
  a->fd = -1;
  if (a->tmp) {
    if (a->dir)
      (void)nftw(a->tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
      (void)unlink(a->tmp);
  }
  ms__atomic_deinit(a);
}

ms_status ms__atomic_write(const char *target, int force, ms__atomic_fill fill, void *ctx,
                           ms_diag *d) {
  ms__atomic a;
  ms_status st = ms__atomic_create(&a, target, force, d);
  if (st) return st;
  int e = 0;
  FILE *fp = fdopen(a.fd, "wb");
  if (!fp) {
    e = errno;
  } else {
    a.fd = -1; /* owned by fp */
    errno = 0;
    e = fill(fp, ctx);
    if (!e && ferror(fp)) e = errno ? errno : EIO;
    if (!e && fflush(fp) != 0) e = errno;
    if (!e && fsync(fileno(fp)) != 0) e = errno;
    if (fclose(fp) != 0 && !e) e = errno;
  }
  if (e) {
    ms__atomic_discard(&a);
    if (e == ENOMEM) return ms__diag_nomem(d, target, NULL, "the file's contents");
    return ms_diag_add(d, MS_ERR_IO, target, 0, 0, NULL, "cannot write: %s", strerror(e));
  }
  a.synced = 1;
  st = ms__atomic_commit(&a, d);
  if (st) ms__atomic_discard(&a);
  else ms__atomic_deinit(&a);
  return st;
}

void ms__atomic_diag_names(const ms__atomic *a, ms_diag *d) {
  if (!d || !a->tmp || !a->target) return;
  size_t n = strlen(a->tmp);
  for (size_t i = 0; i < d->count; i++) {
    char *f = d->entries[i].file;
    if (!f || strncmp(f, a->tmp, n) != 0 || (f[n] != '\0' && f[n] != '/')) continue;
    char *g = NULL;
    /* diag strings come from the system allocator (core/status.c) */
    if (ms__asprintf(&g, "%s%s", a->target, f + n) < 0) continue;
    free(f);
    d->entries[i].file = g;
  }
}

/* ---- public outputs (medsynth/output.h) -------------------------------- */

struct ms_output {
  ms__atomic a;
};

ms_status ms_output_open(ms_output **out, const char *target, ms_output_kind kind, int force,
                          ms_diag *d) {
  *out = NULL;
  if ((unsigned)kind >= MS_OUTPUT_KIND_COUNT)
    return ms_diag_add(d, MS_ERR_INVALID, target, 0, 0, NULL, "unknown output kind %d", (int)kind);
  ms_output *o = ms__calloc(1, sizeof *o);
  if (!o) return ms__diag_nomem(d, target, NULL, "an output");
  ms_status st = kind == MS_OUTPUT_DIR ? ms__atomic_mkdir(&o->a, target, d)
                                       : ms__atomic_create(&o->a, target, force, d);
  if (st) {
    free(o);
    return st;
  }
  if (o->a.fd >= 0) { /* reopened by ms_output_write; other writers replace the file */
    close(o->a.fd);
    o->a.fd = -1;
  }
  *out = o;
  return MS_OK;
}

const char *ms_output_path(const ms_output *o) { return o->a.tmp; }
const char *ms_output_target(const ms_output *o) { return o->a.target; }

ms_status ms_output_write(ms_output *o, const void *data, size_t n, ms_diag *d) {
  if (o->a.dir)
    return ms_diag_add(d, MS_ERR_INVALID, o->a.target, 0, 0, NULL,
                       "bytes written to a folder output");
  if (o->a.fd < 0 && (o->a.fd = open(o->a.tmp, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0)
    return ms_diag_add(d, MS_ERR_IO, o->a.target, 0, 0, NULL, "cannot write: %s", strerror(errno));
  const char *p = data;
  while (n > 0) {
    ssize_t k = write(o->a.fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0)
      return ms_diag_add(d, MS_ERR_IO, o->a.target, 0, 0, NULL, "cannot write: %s",
                         k < 0 ? strerror(errno) : "short write");
    p += k;
    n -= (size_t)k;
  }
  return MS_OK;
}

ms_status ms_output_commit(ms_output *o, ms_diag *d) {
  if (!o) return MS_OK;
  ms_status st = ms__atomic_commit(&o->a, d);
  if (st) ms__atomic_discard(&o->a);
  else ms__atomic_deinit(&o->a);
  free(o);
  return st;
}

void ms_output_name_diag(const ms_output *o, ms_diag *d) {
  if (o) ms__atomic_diag_names(&o->a, d);
}

void ms_output_abort(ms_output *o) {
  if (!o) return;
  ms__atomic_discard(&o->a);
  free(o);
}

/* ---- HDF5 errors ------------------------------------------------------ */

void ms__h5_quiet_begin(ms__h5quiet *q) {
  H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void ms__h5_quiet_end(const ms__h5quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

/* The stack is walked from the innermost call outwards: keep the first entry
 * with text (the root cause). A failed system call (the sec2 driver's "file
 * write failed: time = ..., errno = 28, error message = 'No space left on
 * device', ...") is reduced to the system's message. */
static herr_t walk_last(unsigned n, const H5E_error2_t *e, void *ud) {
  (void)n;
  char *buf = ud;
  if (buf[0] || !e->desc || !e->desc[0]) return 0;
  const char *m = strstr(e->desc, "error message = '");
  const char *end = m ? strchr(m + 17, '\'') : NULL;
  if (m && end)
    snprintf(buf, 256, "%.*s", (int)(end - (m + 17)), m + 17);
  else
    snprintf(buf, 256, "%.*s", (int)strcspn(e->desc, "\n"), e->desc);
  return 0;
}

static ms_status h5_verror(ms_diag *d, ms_status st, const char *file, const char *where,
                           const char *fmt, va_list ap) {
  char cause[256] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_last, cause);
  H5Eclear2(H5E_DEFAULT);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  if (cause[0])
    ms_diag_add(d, st, file, 0, 0, where, "%s (HDF5: %s)", msg ? msg : "HDF5 error", cause);
  else
    ms_diag_add(d, st, file, 0, 0, where, "%s", msg ? msg : "HDF5 error");
  free(msg);
  return st;
}

static herr_t walk_read_error(unsigned n, const H5E_error2_t *e, void *ud) {
  (void)n;
  if (e->min_num == H5E_READERROR) *(int *)ud = 1;
  return 0;
}

ms_status ms__h5_read_status(void) {
  int io = 0;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_read_error, &io);
  return io ? MS_ERR_IO : MS_ERR_DATA;
}

ms_status ms__h5_error(ms_diag *d, ms_status st, const char *where, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  h5_verror(d, st, NULL, where, fmt, ap);
  va_end(ap);
  return st;
}

ms_status ms__h5_error_at(ms_diag *d, ms_status st, const char *file, const char *where,
                          const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  h5_verror(d, st, file, where, fmt, ap);
  va_end(ap);
  return st;
}

/* ---- codec ------------------------------------------------------------ */

/* Byte transpose of 8 elements x 8 bytes: rows r0..r7 (8 bytes each, at
 * src + k * s) become 8 plane segments of 8 bytes (at dst + j * n). */
#ifdef __SSE2__
static inline void tr8x8(uint8_t *dst, size_t n, const uint8_t *src, size_t s) {
  __m128i a[8];
  for (int k = 0; k < 8; k++) a[k] = _mm_loadl_epi64((const __m128i *)(const void *)(src + k * s));
  __m128i t0 = _mm_unpacklo_epi8(a[0], a[1]), t1 = _mm_unpacklo_epi8(a[2], a[3]);
  __m128i t2 = _mm_unpacklo_epi8(a[4], a[5]), t3 = _mm_unpacklo_epi8(a[6], a[7]);
  __m128i u0 = _mm_unpacklo_epi16(t0, t1), u1 = _mm_unpackhi_epi16(t0, t1);
  __m128i u2 = _mm_unpacklo_epi16(t2, t3), u3 = _mm_unpackhi_epi16(t2, t3);
  __m128i v[4] = {_mm_unpacklo_epi32(u0, u2), _mm_unpackhi_epi32(u0, u2),
                  _mm_unpacklo_epi32(u1, u3), _mm_unpackhi_epi32(u1, u3)};
  for (int q = 0; q < 4; q++) {
    _mm_storel_epi64((__m128i *)(void *)(dst + (size_t)(2 * q) * n), v[q]);
    _mm_storel_epi64((__m128i *)(void *)(dst + (size_t)(2 * q + 1) * n),
                     _mm_unpackhi_epi64(v[q], v[q]));
  }
}
#else
static inline void tr8x8(uint8_t *dst, size_t n, const uint8_t *src, size_t s) {
  for (size_t j = 0; j < 8; j++)
    for (size_t k = 0; k < 8; k++) dst[j * n + k] = src[k * s + j];
}
#endif

static void shuffle(uint8_t *dst, const uint8_t *src, size_t nbytes, size_t s) {
  size_t n = nbytes / s;
  if (s <= 1 || n <= 1) {
    memcpy(dst, src, nbytes);
    return;
  }
  /* Blocks of 8 elements: 8x8 byte transposes over the element's bytes in
   * groups of 8, the s % 8 last bytes and the n % 8 last elements one at a
   * time. Each block's source bytes are read once while in L1. */
  size_t n8 = n & ~(size_t)7, s8 = s & ~(size_t)7;
  for (size_t i0 = 0; i0 < n8; i0 += 8) {
    const uint8_t *blk = src + i0 * s;
    for (size_t j = 0; j < s8; j += 8) tr8x8(dst + j * n + i0, n, blk + j, s);
    for (size_t j = s8; j < s; j++)
      for (size_t i = 0; i < 8; i++) dst[j * n + i0 + i] = blk[i * s + j];
  }
  for (size_t i = n8; i < n; i++)
    for (size_t j = 0; j < s; j++) dst[j * n + i] = src[i * s + j];
  size_t done = n * s;
  if (done < nbytes) memcpy(dst + done, src + done, nbytes - done);
}

static void unshuffle(uint8_t *dst, const uint8_t *src, size_t nbytes, size_t s) {
  size_t n = nbytes / s;
  if (s <= 1 || n <= 1) {
    memcpy(dst, src, nbytes);
    return;
  }
  for (size_t j = 0; j < s; j++) {
    const uint8_t *sp = src + j * n;
    uint8_t *dp = dst + j;
    for (size_t i = 0; i < n; i++) dp[i * s] = sp[i];
  }
  size_t done = n * s;
  if (done < nbytes) memcpy(dst + done, src + done, nbytes - done);
}

int ms__chunk_compress(const uint8_t *raw, size_t nbytes, size_t elem_size, int level,
                       uint8_t *scratch, uint8_t *out, size_t *out_len) {
  shuffle(scratch, raw, nbytes, elem_size);
  if (level != 1) {
    uLongf len = compressBound((uLong)nbytes);
    int zr = compress2(out, &len, scratch, (uLong)nbytes, level);
    if (zr != Z_OK) return zr == Z_MEM_ERROR ? -2 : -1;
    *out_len = len;
    return 0;
  }
  /* Level 1: run-length deflate (gen/io/deflate.c). On shuffled rows,
   * whose byte planes are runs and low-entropy symbols, it compresses about
   * as well as zlib level 1 in a fraction of the time (docs/performance.md,
   * Records). */
  return ms__deflate_rle(scratch, nbytes, out, compressBound((uLong)nbytes), out_len);
}

int ms__chunk_decompress(const uint8_t *in, size_t in_len, size_t elem_size, uint8_t *scratch,
                         uint8_t *raw, size_t nbytes) {
  uLongf len = (uLongf)nbytes;
  if (uncompress(scratch, &len, in, (uLong)in_len) != Z_OK || len != nbytes) return -1;
  unshuffle(raw, scratch, nbytes, elem_size);
  return 0;
}
