/* test_augment_fuzz: truncated, bit-flipped and spliced augmentation specs never crash the parser or apply. */
#include <stdlib.h>

#include "core/rng.h"
#include "data/augment.h"
#include "tests/check.h"

int main(void) {
    const char *seeds[] = {
        "winner", "hflip:0.5,rotate:0.5:limit=10",
        "hflip:0.5,oneof:0.3[contrast:limit=0.2|gamma:lo=80:hi=120|brightness:limit=0.2],"
        "oneof:0.3[elastic:alpha=120:sigma=6:affine=3.6|grid:steps=5:limit=0.3|optical:k=2:shift=0.5],"
        "ssr:0.5:shift=0.0625:scale=0.1:rotate=45:border=reflect101",
        "oneof:1[oneof:1[hflip|vflip]|rotate:limit=45]"};
    const char alphabet[] = ":,|[]=.-0123456789ehpkablrio \t";
    pn_rng rng = pn_rng_make(99, PN_RNG_TEST, 0, 0);
    int parsed = 0, rejected = 0, w = 24, h = 20;
    uint8_t img[24 * 20], mask[24 * 20];
    char buf[512];
    for (int it = 0; it < 20000; it++) {
        const char *s = seeds[pn_rng_below(&rng, sizeof seeds / sizeof seeds[0])];
        if (!strcmp(s, "winner")) s = seeds[2];
        size_t len = strlen(s);
        memcpy(buf, s, len + 1);
        int edits = 1 + (int)pn_rng_below(&rng, 4);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = pn_rng_below(&rng, (uint32_t)len);
            switch (pn_rng_below(&rng, 4)) {
            case 0: buf[len = at] = 0; break;                              /* truncate */
            case 1: buf[at] ^= (char)(1u << pn_rng_below(&rng, 7)); break; /* bit flip */
            case 2: buf[at] = alphabet[pn_rng_below(&rng, sizeof alphabet - 1)]; break;
            default: /* duplicate a tail */
                if (len + (len - at) < sizeof buf - 1) {
                    memmove(buf + len, buf + at, len - at);
                    len += len - at;
                    buf[len] = 0;
                }
            }
        }
        pn_aug_pipeline *p = NULL;
        if (pn_aug_parse(buf, PN_BORDER_CONSTANT, &p) != PN_OK) {
            rejected++;
            CHECK(p == NULL && pn_last_error()[0] != 0);
            continue;
        }
        parsed++;
        if (it % 16 == 0) {
            for (int i = 0; i < w * h; i++) img[i] = (uint8_t)i, mask[i] = i % 7 ? 0 : 255;
            CHECK(pn_aug_apply(p, img, mask, w, h, 1, 0, (uint32_t)it) == PN_OK);
        }
        char d[2048];
        pn_aug_describe(p, d, sizeof d);
        pn_aug_free(p);
    }
    printf("fuzz: %d specs parsed, %d rejected\n", parsed, rejected);
    CHECK(parsed > 100 && rejected > 100);
    return check_report("test_augment_fuzz");
}
