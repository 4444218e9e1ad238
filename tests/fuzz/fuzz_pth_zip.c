/* fuzz_pth_zip: data/pth's zip-format reader (libzip's central directory, the record sizes and their checks against
 * the file, data.pkl, byteorder, one record per storage) on any bytes. In a build without libzip it checks the
 * one-line refusal instead. */
#include "tests/fuzz/fuzz_file.h" /* first: it sets _GNU_SOURCE for memfd_create */

#include "tests/fuzz/fuzz_pth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_pth_check(fuzz_file(data, size));
    return 0;
}
