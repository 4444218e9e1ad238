/* jpeg: decodes one 8-bit JPEG (baseline/extended, one component) from memory with the system libjpeg. */
#ifndef PN_JPEG_H
#define PN_JPEG_H

#include <stddef.h>
#include <stdint.h>

#include "core/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Decodes `size` bytes into a pn_alloc'ed grey image (*w x *h). Fails (message naming `name`) for a
 * corrupt or truncated stream (libjpeg's warnings count as errors), more than one component, or a sample precision
 * other than 8; the IDCT is the accurate integer one (JDCT_ISLOW), as dcmtk's decoder uses, so the pixels are the same.
 */
pn_status pn_jpeg_decode_gray8(const uint8_t *data, size_t size, const char *name, int *w, int *h, uint8_t **out);

#ifdef __cplusplus
}
#endif

#endif
