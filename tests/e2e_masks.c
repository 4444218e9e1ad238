/* e2e_masks: checks that a submission CSV decodes back to the mask PNGs predict saved (--save-masks):
 * usage e2e_masks SUBMISSION.csv MASK_DIR SIDE; exits 0 when every row matches, naming the first mismatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/csv.h"
#include "data/png.h"
#include "data/rle.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: e2e_masks SUBMISSION.csv MASK_DIR SIDE\n");
        return 2;
    }
    int side = atoi(argv[3]);
    pn_csv csv;
    if (pn_csv_read(argv[1], &csv) != PN_OK) {
        fprintf(stderr, "%s\n", pn_last_error());
        return 1;
    }
    int ci = pn_csv_column(&csv, "ImageId"), ce = pn_csv_column(&csv, "EncodedPixels"), bad = 0, positive = 0;
    if (ci != 0 || ce != 1) {
        fprintf(stderr, "%s: header is not ImageId,EncodedPixels\n", argv[1]);
        return 1;
    }
    uint8_t *mask = malloc((size_t)side * side);
    for (int r = 0; r < csv.nrows && !bad; r++) {
        memset(mask, 0, (size_t)side * side);
        const char *enc = pn_csv_get(&csv, r, ce);
        if (pn_rle_decode(enc, side, side, PN_RLE_RELATIVE, mask, argv[1]) != PN_OK) {
            fprintf(stderr, "%s\n", pn_last_error());
            bad = 1;
            break;
        }
        positive += strcmp(enc, "-1") != 0;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.png", argv[2], pn_csv_get(&csv, r, ci));
        pn_image img;
        if (pn_png_read(path, &img) != PN_OK || img.width != side || img.height != side) {
            fprintf(stderr, "%s: missing or wrong size\n", path);
            bad = 1;
            break;
        }
        const uint8_t *px = img.pixels;
        for (int64_t i = 0; i < (int64_t)side * side; i++)
            if ((px[i] != 0) != (mask[i] != 0)) {
                fprintf(stderr, "%s: row %d decodes differently at pixel %lld\n", argv[1], r + 1, (long long)i);
                bad = 1;
                break;
            }
        pn_image_free(&img);
    }
    printf("e2e_masks: %d rows, %d with a mask, %s\n", csv.nrows, positive,
           bad ? "MISMATCH" : "all decode to the saved masks");
    free(mask);
    pn_csv_free(&csv);
    return bad;
}
