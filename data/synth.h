/* synth: a SIIM-shaped synthetic data set: chest-radiograph-like images, pneumothorax-like regions, DICOM + CSV. */
#ifndef PN_SYNTH_H
#define PN_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base.h"

#define PN_SYNTH_MAX_REGIONS 3

/* One rendered image. `regions` holds n_regions separate 0/255 masks (one CSV row each); `mask`
 * is their union. All buffers are size*size, row-major, owned by the caller. */
typedef struct pn_synth_sample {
    uint8_t *image;
    uint8_t *mask;
    uint8_t *regions[PN_SYNTH_MAX_REGIONS]; /* NULL entries are skipped */
    int n_regions;
} pn_synth_sample;

/* How the findings look: multipliers of the default (1, 1). `contrast` scales how much darker a finding is
 * and its pleural line; `depth` scales how far it reaches into the lung (at most 0.9 of the radius). The
 * rest of the image and the random draws do not depend on them. */
typedef struct pn_synth_look {
    float contrast, depth;
} pn_synth_look;
#define PN_SYNTH_LOOK_DEFAULT ((pn_synth_look){1.0f, 1.0f})

#define PN_SYNTH_MAX_SIZE 4096

/* Renders image `index` of set `test` (false = train) for `seed` at size x size (32..PN_SYNTH_MAX_SIZE); a pure
 * function of its arguments (core/rng.h, PN_RNG_SYNTH). About `pos_rate` of images are positive. Allocates
 * nothing (its scratch is on the stack: about 30 kB). */
void pn_synth_render(uint64_t seed, bool test, uint32_t index, int size, double pos_rate, const pn_synth_look *look,
                     pn_synth_sample *out);

/* The SOPInstanceUID-like id of an image: 1.2.276.0.7230010.3.1.4.<seed>.<1 train|2 test>.<index>. */
void pn_synth_id(uint64_t seed, bool test, uint32_t index, char *buf, size_t cap);

typedef struct pn_synth_opts {
    const char *out_dir;
    int n_train, n_test;
    int size; /* 1024 like SIIM */
    uint64_t seed;
    double pos_rate;    /* 0.22 */
    pn_synth_look look; /* findings' contrast and depth, PN_SYNTH_LOOK_DEFAULT as SIIM-like */
    int jpeg_quality;   /* JPEG baseline quality 1..100; 0 = uncompressed (Explicit VR Little Endian) */
    int threads;        /* 0 = all cores */
    bool force;         /* write into a non-empty out_dir */
    bool progress;
} pn_synth_opts;

/* Writes OUT/dicom-images-train/<study>/<series>/<id>.dcm, OUT/dicom-images-test/..., OUT/train-rle.csv
 * (SIIM's quirks: "ImageId, EncodedPixels", a leading space before each value, -1 for no finding, one
 * row per region), OUT/test-rle.csv (the test set's truth, not part of SIIM) and
 * OUT/sample_submission.csv. Refuses a non-empty out_dir unless force. *positives (may be NULL)
 * gets the number of positive train images. */
pn_status pn_synth_write(const pn_synth_opts *o, int64_t *positives);

#endif
