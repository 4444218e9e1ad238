/* dicom_write: writes an 8-bit MONOCHROME2 DICOM (JPEG baseline or uncompressed) through a small dcmtk shim. */
#ifndef PN_DICOM_WRITE_H
#define PN_DICOM_WRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The identifying tags of one file. Strings may be "" (then the tag is written empty). */
typedef struct pn_dicom_meta {
    const char *sop_instance_uid, *study_uid, *series_uid;
    const char *patient_id, *patient_name, *patient_sex, *patient_age; /* age as "038Y" or "38" */
    const char *view_position;                                         /* "PA" or "AP" */
    double pixel_spacing_mm;
} pn_dicom_meta;

/* Whether this build can write DICOM (false without dcmtk). */
bool pn_dicom_write_supported(void);

/* Writes `px` (width*height grey bytes, row-major) to `path` as a Secondary Capture CR chest image,
 * 8 bits allocated/stored, MONOCHROME2, either JPEG baseline (Process 1, encoded by libjpeg at
 * `jpeg_quality` 1..100 and stored as one fragment after an empty offset table, with the Lossy Image
 * Compression tags) or, when jpeg_quality is 0, Explicit VR Little Endian. The file appears
 * under its name only when complete (temporary file, then rename). Built without dcmtk:
 * PN_ERR_UNSUPPORTED. */
pn_status pn_dicom_write_u8(const char *path, const uint8_t *px, int width, int height, const pn_dicom_meta *meta,
                            int jpeg_quality);

#ifdef __cplusplus
}
#endif

#endif
