/* dicom_write_none: stands in for the dcmtk writer in a build without dcmtk. */
#include "data/dicom_write.h"

bool pn_dicom_write_supported(void) { return false; }

pn_status pn_dicom_write_u8(const char *path, const uint8_t *px, int width, int height, const pn_dicom_meta *meta,
                            int jpeg_quality) {
    (void)px, (void)width, (void)height, (void)meta, (void)jpeg_quality;
    return pn_error(PN_ERR_UNSUPPORTED, "%s: this pneumoseg was built without dcmtk, so it cannot write DICOM", path);
}
