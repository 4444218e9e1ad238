/* npy: NumPy .npy files (format 1.0/2.0/3.0) of little-endian float32 in C order, read and written. */
#ifndef PN_NPY_H
#define PN_NPY_H

#include <stdint.h>

#include "core/base.h"

/* An array read from a .npy file. Free `data` with pn_free. */
typedef struct pn_npy {
    int ndim;
    int64_t shape[8];
    float *data;
} pn_npy;

/* Reads a float32 ('<f4') C-order array. Rejects Fortran order, other dtypes, truncated data,
 * and a rank outside [min_rank, max_rank], each with a message naming the file. */
pn_status pn_npy_read(const char *path, int min_rank, int max_rank, pn_npy *out);
/* Writes a float32 C-order array atomically (temporary file, then rename). */
pn_status pn_npy_write(const char *path, int ndim, const int64_t *shape, const float *data);

#endif
