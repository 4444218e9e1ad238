/* prepare: DICOM + train-rle.csv -> the reference's PNG layout (OUT/train, OUT/mask, OUT/test), on all cores. */
#ifndef PN_PREPARE_H
#define PN_PREPARE_H

#include <stdint.h>

#include "core/base.h"
#include "data/rle.h"

typedef struct pn_prepare_opts {
    const char *train_dir; /* searched recursively for *.dcm; NULL to skip */
    const char *test_dir;  /* searched recursively for *.dcm; NULL to skip */
    const char *rle_csv;   /* ImageId,EncodedPixels; required with train_dir */
    const char *out_dir;
    int size;          /* output side; the DICOM side (1024) gives the pixels unchanged */
    bool binary_masks; /* false: soft masks as the reference (edges 64/128/191); true: 255 where >= 128 */
    bool force;        /* write into a non-empty out_dir */
    int threads;       /* 0 = all cores */
    pn_rle_format rle_format;
    bool progress; /* show a progress bar */
    /* Called once per skipped file or CSV row with one line naming it and why; calls never overlap. NULL: skipped
     * files are only counted in the summary. */
    void (*on_skip)(void *user, const char *message);
    void *user;
} pn_prepare_opts;

enum {
    PN_PREP_FAIL_DICOM,  /* unreadable or malformed DICOM */
    PN_PREP_FAIL_SYNTAX, /* a transfer syntax we cannot decode */
    PN_PREP_FAIL_ID,     /* an ImageId that is not a valid UID file name, or a duplicate */
    PN_PREP_FAIL_RLE,    /* a bad EncodedPixels row */
    PN_PREP_FAIL_WRITE,  /* a PNG could not be written */
    PN_PREP_FAIL_COUNT
};

typedef struct pn_prepare_summary {
    int64_t train_images, test_images, positives;
    int64_t failures, fail_by_reason[PN_PREP_FAIL_COUNT];
    int64_t csv_ids_without_dicom; /* ids in the CSV with no DICOM under train_dir (not written) */
    int64_t dicoms_without_row;    /* train DICOMs with no CSV row (written with an empty mask) */
    double seconds;
} pn_prepare_summary;

/* The short name of a failure reason ("unreadable DICOM", ...). */
const char *pn_prepare_reason_name(int reason);

/* Runs the whole preparation. Each failing file is reported through opts->on_skip (one line naming it and why),
 * skipped and counted in `summary`; the return status is not OK only for a setup error (bad options,
 * a non-empty out_dir without force, an unreadable CSV), in which case nothing was written. */
pn_status pn_prepare_run(const pn_prepare_opts *opts, pn_prepare_summary *summary);

/* True when `id` can name a file: 1..64 characters, digits and '.', no empty component, so no path
 * separator and no "..". Sets a message naming `where` otherwise. */
bool pn_prepare_id_valid(const char *id, const char *where);

/* Resizes an 8-bit grey image or 0/255 mask as the reference prepare_png.py does (PN_ERR_NOMEM when the scratch
 * for a size other than 1/1 or 1/2 cannot be allocated): skimage
 * resize(order=1) (scipy zoom with grid_mode: half-pixel centres; no anti-aliasing, as the skimage of
 * the reference) of the image as float (the image via img_as_float, v * (1/255), the mask as its 0/255
 * values), clipped to the input's range, brought back to 0..255 and written by cv2.imwrite, which rounds
 * half to even. An exact halving is the rounded mean of each 2x2 block (mask edges 64/128/191); equal
 * sizes copy the pixels. */
pn_status pn_prepare_resize(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, bool mask);
/* A PNG read as the loader reads it (pn_png_read_grey) and resized to s x s as an image by pn_prepare_resize. */
pn_status pn_prepare_read_png(const char *path, int s, uint8_t *dst);

#endif
