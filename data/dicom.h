/* dicom: reads DICOM pixels (as rendered grey, 8 or 16 bit) and patient tags through a small dcmtk shim. */
#ifndef PN_DICOM_H
#define PN_DICOM_H

#include <stdint.h>

#include "core/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Header facts of one file (no pixel decoding). Strings are "" when the tag is absent. */
typedef struct pn_dicom_info {
    char patient_id[72];
    char sex[8];   /* PatientSex: "M", "F", "O" or "" */
    int age_years; /* from PatientAge ("045Y", "006M", ...), -1 if absent or unreadable */
    char sop_instance_uid[72];
    char transfer_syntax[72]; /* the UID */
    char photometric[24];
    int rows, cols, samples_per_pixel, bits_allocated, bits_stored, pixel_signed, frames;
} pn_dicom_info;

/* A decoded image: grey, row-major, uint8 or (bits 16) native uint16. Free with pn_dicom_image_free. */
typedef struct pn_dicom_image {
    int width, height, bits;
    void *pixels; /* pn_alloc'ed */
} pn_dicom_image;

/* Registers the JPEG, JPEG-LS and RLE decoders and quiets dcmtk's logger; called by the readers, and
 * safe to call from several threads (runs once). */
void pn_dicom_init(void);

/* Reads the tags of `path` without decoding pixels. */
pn_status pn_dicom_read_info(const char *path, pn_dicom_info *info);

/* Decodes the first frame of `path` to grey at `bits` (8 or 16) with this rule:
 *  - colour (RGB, YBR, palette) becomes grey with weights 0.299/0.587/0.114 first;
 *  - modality rescale (slope/intercept) is applied;
 *  - if the file has a VOI window, the first one is applied (DICOM linear function);
 *  - else unsigned data of at most 8 stored bits without a rescale maps its stored range 0..2^bits-1
 *    onto the output range (8 stored bits: 8-bit output is the stored pixels, 16-bit is them x 257);
 *  - else the image's own min..max maps linearly onto the output range;
 *  - MONOCHROME1 is inverted, so bright is always dense; values are truncated to integers.
 * Every failure (not DICOM, truncated, no pixel data, a transfer syntax dcmtk cannot decode such as
 * JPEG 2000, 32-bit pixels in explicit big endian which dcmtk misreads, a size above 16384x16384) is one message naming
 * the file and the reason (with the transfer syntax UID where it is the reason). Built without dcmtk:
 * PN_ERR_UNSUPPORTED. */
pn_status pn_dicom_read(const char *path, int bits, pn_dicom_image *out, pn_dicom_info *info);

void pn_dicom_image_free(pn_dicom_image *img);

/* The SIIM case (one 8-bit grey JPEG frame, no rescale/window/LUT) is decoded with libjpeg directly,
 * bit-exact with dcmtk's own decoder and about 3x faster; off sends every file through dcmtk (tests,
 * benchmarks). On by default; applies to all threads. */
void pn_dicom_set_fast_jpeg(bool on);

#ifdef __cplusplus
}
#endif

#endif
