/* Superblock checks before HDF5 opens a file (see core/h5super.h).
 *
 * Layout (little-endian; offsets in bytes from the signature):
 *   versions 0 and 1: version at 8, size of offsets at 13, size of lengths
 *     at 14; after 24 (v0) or 28 (v1) bytes come the base address, the
 *     free-space address, the end-of-file address and the driver address,
 *     each `size of offsets` bytes;
 *   versions 2 and 3: version at 8, size of offsets at 9, size of lengths
 *     at 10; from 12: base address, superblock extension address,
 *     end-of-file address, root object header address, then a checksum.
 * The end-of-file address is relative to the base address. */
#include "core/h5super.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t k_sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

static uint64_t le(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n && i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static int good_size(unsigned s) { return s == 2 || s == 4 || s == 8 || s == 16; }

ms_status ms__h5_superblock_check(const char *path, ms_status damaged, const char *not_hdf5,
                                  ms_diag *d) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ms_diag_add(d, errno == ENOENT ? MS_ERR_NOTFOUND : MS_ERR_IO, path, 0, 0, NULL,
                       "cannot open: %s", strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return ms_diag_add(d, MS_ERR_IO, path, 0, 0, NULL, "cannot read: %s", strerror(e));
  }
  uint64_t size = (uint64_t)sb.st_size;
  uint8_t b[96];
  uint64_t at = 0;
  int found = 0;
  for (at = 0; at + sizeof k_sig <= size; at = at ? at * 2 : 512) {
    ssize_t n = pread(fd, b, sizeof b, (off_t)at);
    if (n < 0) {
      int e = errno;
      close(fd);
      return ms_diag_add(d, MS_ERR_IO, path, 0, 0, NULL, "cannot read: %s", strerror(e));
    }
    if ((size_t)n >= sizeof k_sig && !memcmp(b, k_sig, sizeof k_sig)) {
      found = 1;
      if ((size_t)n < sizeof b) memset(b + n, 0, sizeof b - (size_t)n);
      break;
    }
    if (at > UINT64_MAX / 2) break;
  }
  close(fd);
  if (!found) return ms_diag_add(d, MS_ERR_FORMAT, path, 0, 0, NULL, "%s", not_hdf5);
  if (at != 0) return MS_OK;
  unsigned ver = b[8], so, sl, eof_at;
  if (ver <= 1) {
    so = b[13];
    sl = b[14];
    eof_at = (ver == 0 ? 24 : 28) + 2 * so;
  } else if (ver <= 3) {
    so = b[9];
    sl = b[10];
    eof_at = 12 + 2 * so;
  } else {
    return ms_diag_add(d, damaged, path, 0, 0, "superblock",
                       "unknown superblock version %u (damaged file?)", ver);
  }
  if (!good_size(so) || !good_size(sl))
    return ms_diag_add(d, damaged, path, 0, 0, "superblock",
                       "implausible address/length sizes %u/%u (damaged file)", so, sl);
  if (so > 8 || eof_at + so > sizeof b) return MS_OK;
  uint64_t base = le(b + eof_at - 2 * so, so), eof = le(b + eof_at, so);
  uint64_t undef = so == 8 ? UINT64_MAX : ((uint64_t)1 << (8 * so)) - 1;
  if (base == undef || eof == undef)
    return ms_diag_add(d, damaged, path, 0, 0, "superblock",
                       "end-of-file address is undefined (damaged file)");
  if (base > UINT64_MAX - eof || base + eof > size)
    return ms_diag_add(d, damaged, path, 0, 0, "superblock",
                       "the file is truncated or corrupt: its superblock records %" PRIu64
                       " bytes, the file has %" PRIu64,
                       base + eof, size);
  return MS_OK;
}
