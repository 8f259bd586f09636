/* Checks of an HDF5 file's superblock made before the HDF5 library sees the
 * file (HDF5 File Format Specification 3.0, section II.A "Superblock").
 *
 * They give a clear diagnostic for the commonest damage, a cut-off file
 * (the superblock's end-of-file address lies beyond the file's length), and
 * stop the library from starting on a file whose first block is already
 * implausible. Reading the file's objects is left to HDF5 (under
 * core/guard.h). */
#ifndef MS_CORE_H5SUPER_H
#define MS_CORE_H5SUPER_H

#include "medsynth/status.h"

/* Looks for the HDF5 signature at offset 0 and at 512, 1024, 2048, ...
 * (where HDF5 itself looks). Returns MS_OK when the file may be opened,
 * MS_ERR_FORMAT (with the message `not_hdf5`) when there is no signature,
 * `damaged` when the superblock at offset 0 is implausible (unknown
 * version, field sizes other than 2/4/8/16, end of file beyond the file's
 * length) and MS_ERR_IO / MS_ERR_NOTFOUND when the file cannot be read.
 * Superblocks after a user block are not inspected further. */
ms_status ms__h5_superblock_check(const char *path, ms_status damaged, const char *not_hdf5,
                                  ms_diag *d);

#endif
