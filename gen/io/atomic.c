/* Atomic output files, HDF5 error translation and the shuffle+deflate chunk
 * codec (see io_private.h).
 *
 * Atomicity: every output is first written to "<dir>/.<base>.tmp.<pid>.XXXXXX"
 * (mkstemp: the random suffix makes concurrent writers safe), fsynced, then
 * renamed over the target with rename(2), which POSIX guarantees to be atomic
 * within one file system; the directory is fsynced afterwards so the rename
 * itself survives a crash. A reader therefore sees either no file / the old
 * file, or the complete new one, never a partial file under the target name.
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
#include <errno.h>
#include "core/alloc.h"
#include <fcntl.h>
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

ms_status ms__atomic_create(ms__atomic *a, const char *target, int force, ms_diag *d) {
  memset(a, 0, sizeof *a);
  a->fd = -1;
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
  if (!dir) return MS_ERR_NOMEM;
  const char *base = path_base(target);
  if (!*base) {
    free(dir);
    return ms_diag_add(d, MS_ERR_INVALID, target, 0, 0, NULL, "output path names no file");
  }
  char *tmpl = NULL;
  if (asprintf(&tmpl, "%s/.%s.tmp.%ld.XXXXXX", dir, base, (long)getpid()) < 0) {
    free(dir);
    return MS_ERR_NOMEM;
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
  free(dir);
  /* mkstemp creates mode 0600; give the file the usual mode (umask). */
  mode_t um = umask(0);
  umask(um);
  (void)fchmod(fd, 0666 & ~um);
  a->target = ms__strdup(target);
  a->tmp = tmpl;
  a->fd = fd;
  if (!a->target) {
    ms__atomic_discard(a);
    return MS_ERR_NOMEM;
  }
  return MS_OK;
}

ms_status ms__atomic_sync(ms__atomic *a, ms_diag *d) {
  int fd = a->fd;
  if (fd < 0) fd = open(a->tmp, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    int e = errno;
    if (fd >= 0 && fd != a->fd) close(fd);
    return ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL, "cannot sync '%s': %s", a->tmp,
                       strerror(e));
  }
  if (fd != a->fd) close(fd);
  return MS_OK;
}

ms_status ms__atomic_rename(ms__atomic *a, ms_diag *d) {
  if (a->fd >= 0) {
    close(a->fd);
    a->fd = -1;
  }
  if (rename(a->tmp, a->target) != 0)
    return ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL, "cannot rename '%s' to '%s': %s",
                       a->tmp, a->target, strerror(errno));
  free(a->tmp);
  a->tmp = NULL;
  char *dir = ms__path_dir(a->target);
  if (dir) {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)fsync(dfd); /* best effort: some file systems refuse directory fsync */
      close(dfd);
    }
    free(dir);
  }
  return MS_OK;
}

void ms__atomic_deinit(ms__atomic *a) {
  if (a->fd >= 0) close(a->fd);
  free(a->target);
  free(a->tmp);
  a->target = a->tmp = NULL;
  a->fd = -1;
}

void ms__atomic_discard(ms__atomic *a) {
  if (a->fd >= 0) close(a->fd);
  a->fd = -1;
  if (a->tmp) unlink(a->tmp);
  ms__atomic_deinit(a);
}

/* ---- atomic directories ---------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path) ? -1 : 0;
}

static void rm_tree(const char *path) { (void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

ms_status ms__atomic_dir_create(ms__atomic *a, const char *target, int force, ms_diag *d) {
  memset(a, 0, sizeof *a);
  a->fd = -1;
  if (!target || !*target)
    return ms_diag_add(d, MS_ERR_INVALID, NULL, 0, 0, NULL, "empty output path");
  size_t tl = strlen(target);
  while (tl > 1 && target[tl - 1] == '/') tl--;
  char *t = ms__strndup(target, tl);
  if (!t) return ms_diag_add(d, MS_ERR_NOMEM, target, 0, 0, NULL, "out of memory");
  struct stat st;
  if (stat(t, &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      free(t);
      return ms_diag_add(d, MS_ERR_IO, target, 0, 0, NULL, "output path exists and is not a directory");
    }
    if (!force) {
      free(t);
      return ms_diag_add(d, MS_ERR_EXISTS, target, 0, 0, NULL,
                         "output directory already exists (use --force to replace it)");
    }
  }
  char *dir = ms__path_dir(t);
  char *tmpl = NULL;
  if (!dir || asprintf(&tmpl, "%s/.%s.tmp.%ld.XXXXXX", dir, path_base(t), (long)getpid()) < 0) {
    free(dir);
    free(t);
    return ms_diag_add(d, MS_ERR_NOMEM, target, 0, 0, NULL, "out of memory");
  }
  if (!mkdtemp(tmpl)) {
    int e = errno;
    ms_status st2 = ms_diag_add(d, MS_ERR_IO, target, 0, 0, NULL,
                                "cannot create a directory in '%s': %s", dir, strerror(e));
    free(dir);
    free(tmpl);
    free(t);
    return st2;
  }
  free(dir);
  mode_t um = umask(0);
  umask(um);
  (void)chmod(tmpl, 0777 & ~um);
  a->target = t;
  a->tmp = tmpl;
  return MS_OK;
}

ms_status ms__atomic_dir_commit(ms__atomic *a, ms_diag *d) {
  int dfd = open(a->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || syncfs(dfd) != 0) {
    int e = errno;
    if (dfd >= 0) close(dfd);
    return ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL, "cannot sync '%s': %s", a->tmp,
                       strerror(e));
  }
  close(dfd);
  struct stat st;
  if (stat(a->target, &st) == 0) {
    /* --force over an existing directory: swap, then remove the old tree
     * (now under the temporary name) */
    if (renameat2(AT_FDCWD, a->tmp, AT_FDCWD, a->target, RENAME_EXCHANGE) != 0)
      return ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL, "cannot replace '%s': %s",
                         a->target, strerror(errno));
    rm_tree(a->tmp);
  } else if (rename(a->tmp, a->target) != 0) {
    return ms_diag_add(d, MS_ERR_IO, a->target, 0, 0, NULL, "cannot rename '%s' to '%s': %s",
                       a->tmp, a->target, strerror(errno));
  }
  free(a->tmp);
  a->tmp = NULL;
  char *dir = ms__path_dir(a->target);
  if (dir) {
    int pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd >= 0) {
      (void)fsync(pfd);
      close(pfd);
    }
    free(dir);
  }
  return MS_OK;
}

void ms__atomic_dir_discard(ms__atomic *a) {
  if (a->tmp) rm_tree(a->tmp);
  ms__atomic_deinit(a);
}

/* ---- HDF5 errors ------------------------------------------------------ */

void ms__h5_quiet_begin(ms__h5quiet *q) {
  H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void ms__h5_quiet_end(const ms__h5quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

static herr_t walk_last(unsigned n, const H5E_error2_t *e, void *ud) {
  (void)n;
  /* The stack is walked from the innermost call outwards: keep the first
   * entry (the root cause), unless it carries no text. */
  char *buf = ud;
  if (!buf[0] && e->desc && e->desc[0]) snprintf(buf, 256, "%s", e->desc);
  return 0;
}

ms_status ms__h5_error(ms_diag *d, ms_status st, const char *where, const char *fmt, ...) {
  char cause[256] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_last, cause);
  H5Eclear2(H5E_DEFAULT);
  char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  if (cause[0])
    ms_diag_add(d, st, NULL, 0, 0, where, "%s (HDF5: %s)", msg ? msg : "HDF5 error", cause);
  else
    ms_diag_add(d, st, NULL, 0, 0, where, "%s", msg ? msg : "HDF5 error");
  free(msg);
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
    if (compress2(out, &len, scratch, (uLong)nbytes, level) != Z_OK) return -1;
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
