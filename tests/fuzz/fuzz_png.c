/* fuzz_png: data/png's reader (libpng behind the image-size limit) on any bytes. */
#include <stdlib.h>

#include "data/image_limit.h"
#include "data/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pn_image img;
    if (pn_png_read_memory(data, size, "fuzz.png", &img) == PN_OK) {
        size_t bytes = (size_t)img.width * img.height * img.channels * (img.bit_depth / 8);
        if (!img.pixels || bytes > pn_image_limit_bytes()) abort();
        pn_image_free(&img);
    }
    return 0;
}
