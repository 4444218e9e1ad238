/* rle: the SIIM run-length mask format (relative or absolute starts, column-major pixels), both directions. */
#ifndef PN_RLE_H
#define PN_RLE_H

#include <stdint.h>

#include "core/base.h"

/* How the starts of an EncodedPixels string are read. RELATIVE (SIIM): each start is the offset from
 * the end of the previous run, the first is absolute (0-based). ABSOLUTE: every start is a 0-based
 * pixel index. AUTO: relative unless that runs past the image and the absolute reading fits. */
typedef enum pn_rle_format { PN_RLE_AUTO, PN_RLE_RELATIVE, PN_RLE_ABSOLUTE } pn_rle_format;

/* Parses "auto", "relative" or "absolute". */
pn_status pn_rle_format_parse(const char *s, pn_rle_format *fmt);

/* Decodes one EncodedPixels string into `mask` (width*height bytes, row-major: mask[y*width+x]),
 * setting every run pixel to 255 and leaving the others as they are, so decoding several rows for
 * one image gives their union. The pixel index of the format is column-major: x*height+y.
 * "-1" or an empty/blank string leaves the mask untouched. A malformed number, an odd count or a run
 * past the end fails with a message that starts with `what` (e.g. "train-rle.csv row 12"). */
pn_status pn_rle_decode(const char *text, int width, int height, pn_rle_format fmt, uint8_t *mask, const char *what);

/* True when `text` is "-1", empty or blank: a row without a finding. */
bool pn_rle_is_empty(const char *text);

/* Encodes `mask` (row-major, nonzero = foreground) as relative column-major RLE ("-1" if empty).
 * A run that reaches the last pixel is written. *out is malloc'ed; free it with free(). */
pn_status pn_rle_encode(const uint8_t *mask, int width, int height, char **out);

#endif
