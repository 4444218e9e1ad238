/* dicom_none: the DICOM API of a build without dcmtk; every call says so. */
#include "dicom.h"

#include <string.h>

void pn_dicom_init(void) {}

pn_status pn_dicom_read_info(const char *path, pn_dicom_info *info) {
    memset(info, 0, sizeof *info);
    return pn_error(PN_ERR_UNSUPPORTED, "%s: cannot read DICOM: built without DCMTK", path);
}

pn_status pn_dicom_read(const char *path, int bits, pn_dicom_image *out, pn_dicom_info *info) {
    memset(out, 0, sizeof *out);
    if (info) memset(info, 0, sizeof *info);
    if (bits != 8 && bits != 16) return pn_error(PN_ERR_ARG, "%s: output bits must be 8 or 16, got %d", path, bits);
    return pn_error(PN_ERR_UNSUPPORTED, "%s: cannot read DICOM: built without DCMTK", path);
}

void pn_dicom_image_free(pn_dicom_image *img) {
    pn_free(img->pixels);
    memset(img, 0, sizeof *img);
}

void pn_dicom_set_fast_jpeg(bool on) { (void)on; }
