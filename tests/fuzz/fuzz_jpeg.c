/* fuzz_jpeg: data/jpeg, the fast decoder of SIIM's JPEG frames (libjpeg behind the image-size limit), on any bytes. */
#include <stdlib.h>

#include "data/jpeg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int w = 0, h = 0;
    uint8_t *px = NULL;
    if (pn_jpeg_decode_gray8(data, size, "fuzz.jpg", &w, &h, &px) == PN_OK) {
        if (w <= 0 || h <= 0 || !px) abort();
        pn_free(px);
    }
    return 0;
}
