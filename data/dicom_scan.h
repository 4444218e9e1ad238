/* dicom_scan: follows a DICOM file's element structure without recursion to find how deeply its sequences nest,
 * so that a file nested deeper than a recursive parser's stack can take is refused before it is parsed. */
#ifndef PN_DICOM_SCAN_H
#define PN_DICOM_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The deepest sequence nesting the readers accept (real files nest a handful of levels; structured reports a few
 * tens). */
#define PN_DICOM_MAX_DEPTH 64

/* Whether an implicit-VR element is a sequence: 1 yes (the data dictionary says SQ), 0 no, -1 unknown (a private
 * or unknown tag: then a value that starts with an item is taken for a sequence). */
typedef int (*pn_dicom_sq_hint)(uint16_t group, uint16_t element);

typedef enum pn_dicom_syntax_kind {
    PN_DCM_EXPLICIT_LE,
    PN_DCM_IMPLICIT_LE,
    PN_DCM_EXPLICIT_BE,
    PN_DCM_DEFLATED, /* explicit little endian, the data set after the meta group compressed with raw deflate */
} pn_dicom_syntax_kind;

typedef struct pn_dicom_scan {
    int depth;         /* the deepest sequence nesting found (an upper bound where the structure was not followed) */
    bool followed;     /* the structure was followed to the end (else the rest was bounded by counting item tags) */
    size_t dataset_at; /* where the data set starts (after preamble and meta group) */
    pn_dicom_syntax_kind syntax;
    char transfer_syntax[68]; /* the meta group's (0002,0010), "" if none */
} pn_dicom_scan;

/* Reads the preamble and the meta group of `n` bytes: the transfer syntax and where the data set starts (at the
 * latest at a sequence or an element of undefined length, so that the depth scan sees every sequence). */
void pn_dicom_scan_meta(const uint8_t *data, size_t n, pn_dicom_scan *out);
/* Measures the sequence nesting of a data set of `n` bytes in `syntax` (not DEFLATED: inflate it first). Stops
 * early once the depth passes `max_depth`. Where the structure cannot be followed (a malformed or unusual file),
 * the rest of the bytes count: every item tag could open one more level. Returns the depth found. */
int pn_dicom_scan_depth(const uint8_t *data, size_t n, pn_dicom_syntax_kind syntax, pn_dicom_sq_hint hint,
                        int max_depth, bool *followed);

#ifdef __cplusplus
}
#endif

#endif
