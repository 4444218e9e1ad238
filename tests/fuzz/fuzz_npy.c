/* fuzz_npy: data/npy's reader on any bytes: a header's claims are checked against the file before any allocation. */
#include "tests/fuzz/fuzz_file.h" /* first: it sets _GNU_SOURCE for memfd_create */
#include <stdlib.h>

#include "data/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pn_npy x;
    if (pn_npy_read(fuzz_file(data, size), 0, 8, &x) == PN_OK) {
        size_t count = 1;
        for (int i = 0; i < x.ndim; i++) count *= (size_t)x.shape[i];
        if (count * sizeof(float) > size) abort(); /* more data than the file held */
        pn_free(x.data);
    }
    return 0;
}
