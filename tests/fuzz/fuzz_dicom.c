/* fuzz_dicom: data/dicom's reader (the nesting scan, dcmtk's parser, the fast JPEG path and the rendering rule) on
 * any bytes: it must return a status, never crash, hang or allocate past the image limit. */
#include "tests/fuzz/fuzz_file.h" /* first: it sets _GNU_SOURCE for memfd_create */
#include "data/dicom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    /* two bits of the length pick the output depth and the decoder, so both paths get every shape of input */
    pn_dicom_set_fast_jpeg((size >> 1) & 1);
    pn_dicom_image img;
    pn_dicom_info info;
    if (pn_dicom_read(path, size & 1 ? 16 : 8, &img, &info) == PN_OK) {
        if (img.width <= 0 || img.height <= 0 || !img.pixels) abort();
        pn_dicom_image_free(&img);
    }
    return 0; /* pn_dicom_read_info is the first half of this (load + tags): no input of its own */
}
