/* fuzz_rle: data/rle on any EncodedPixels text (the first bytes pick the mask size and the format): decoding never
 * writes outside the mask, and what it decodes encodes and decodes back to the same mask. */
#include <stdlib.h>
#include <string.h>

#include "data/rle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    int w = 1 + data[0] % 64, h = 1 + data[1] % 64;
    pn_rle_format fmt = (pn_rle_format)(data[2] % 3);
    char *text = malloc(size - 2);
    if (!text) return 0;
    memcpy(text, data + 3, size - 3);
    text[size - 3] = 0;
    uint8_t *mask = calloc((size_t)w * h, 1), *back = calloc((size_t)w * h, 1);
    if (mask && back && pn_rle_decode(text, w, h, fmt, mask, "fuzz") == PN_OK) {
        char *enc = NULL;
        if (pn_rle_encode(mask, w, h, &enc) != PN_OK) abort();
        if (pn_rle_decode(enc, w, h, PN_RLE_RELATIVE, back, "fuzz round trip") != PN_OK) abort();
        if (memcmp(mask, back, (size_t)w * h) != 0) abort();
        free(enc);
    }
    free(mask), free(back), free(text);
    return 0;
}
