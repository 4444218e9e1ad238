/* fuzz_dicom_scan: the explicit-stack structure scan on its own (no dcmtk behind it, so many more inputs a second):
 * any bytes, any syntax; what it reports must be consistent and it must never read outside the input. */
#include <stdlib.h>

#include "data/dicom_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pn_dicom_meta m;
    pn_dicom_scan_meta(data, size, &m);
    if (m.dataset_at > size) abort();
    for (int syntax = PN_DCM_EXPLICIT_LE; syntax <= PN_DCM_EXPLICIT_BE; syntax++) {
        pn_dicom_structure s;
        pn_dicom_scan_structure(data + m.dataset_at, size - m.dataset_at, (pn_dicom_syntax_kind)syntax, NULL,
                                PN_DICOM_MAX_DEPTH, &s);
        if (s.depth < 0 || (s.overrun.found && s.overrun.claimed <= s.overrun.left) ||
            (!s.followed && s.broken_at > size - m.dataset_at))
            abort();
    }
    return 0;
}
