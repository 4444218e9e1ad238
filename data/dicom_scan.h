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

/* The first element whose declared length runs past the end of the data (a reader would allocate that length
 * before finding the bytes missing). */
typedef struct pn_dicom_overrun {
    bool found;
    uint16_t group, element;
    uint64_t claimed, left; /* bytes the element claims, bytes left after its header */
} pn_dicom_overrun;

/* What the preamble and the meta group say. */
typedef struct pn_dicom_meta {
    size_t dataset_at; /* where the data set starts */
    pn_dicom_syntax_kind syntax;
    char transfer_syntax[68]; /* the meta group's (0002,0010), "" if none */
} pn_dicom_meta;

/* What the scan of a data set found. */
typedef struct pn_dicom_structure {
    int depth;        /* the deepest sequence nesting (where not followed: a bound, every item tag left counted) */
    bool followed;    /* the element structure was followed to the end of the data */
    size_t broken_at; /* where it could not be followed */
    pn_dicom_overrun overrun; /* the first element whose length runs past the end (the scan stops there) */
} pn_dicom_structure;

/* Reads the preamble and the meta group of `n` bytes: the transfer syntax and where the data set starts (at the
 * latest at a sequence or an element of undefined length, so that the data set's scan sees every sequence). */
void pn_dicom_scan_meta(const uint8_t *data, size_t n, pn_dicom_meta *out);
/* Follows the element structure of a data set of `n` bytes in `syntax` (not DEFLATED: inflate it first), with an
 * explicit stack: the sequence nesting, and the first element whose length runs past the end. Stops early once the
 * depth passes `max_depth`. `hint` may be NULL. */
void pn_dicom_scan_structure(const uint8_t *data, size_t n, pn_dicom_syntax_kind syntax, pn_dicom_sq_hint hint,
                             int max_depth, pn_dicom_structure *out);

#ifdef __cplusplus
}
#endif

#endif
