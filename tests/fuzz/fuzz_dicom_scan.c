/* fuzz_dicom_scan: the explicit-stack nesting scan on its own (no dcmtk behind it, so many more inputs a second):
 * any bytes, any syntax; the depth it reports must be sane and it must never read outside the input. */
#include <stdlib.h>

#include "data/dicom_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pn_dicom_scan s;
    pn_dicom_scan_meta(data, size, &s);
    if (s.dataset_at > size) abort();
    bool followed;
    for (int syntax = PN_DCM_EXPLICIT_LE; syntax <= PN_DCM_EXPLICIT_BE; syntax++) {
        int depth = pn_dicom_scan_depth(data + s.dataset_at, size - s.dataset_at, (pn_dicom_syntax_kind)syntax, NULL,
                                        PN_DICOM_MAX_DEPTH, &followed);
        if (depth < 0) abort();
    }
    return 0;
}
