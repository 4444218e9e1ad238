/* image_limit: the largest decoded image the readers accept (PNG, DICOM, JPEG), checked from the header before any
 * pixel is decoded, so that a file of a few hundred bytes cannot claim gigabytes. Process-wide. */
#ifndef PN_IMAGE_LIMIT_H
#define PN_IMAGE_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The default: 256 MB, a 16-bit 11k x 11k image or an 8-bit 16k x 16k one (SIIM's are 1 MB). */
#define PN_IMAGE_LIMIT_DEFAULT_MB 256

/* Sets the limit in MB (10^6 bytes); values below 1 are taken as 1. Safe to call before readers start. */
void pn_image_set_limit_mb(double mb);
/* The limit in bytes. */
size_t pn_image_limit_bytes(void);
/* PN_OK when `count` images of w x h with `channels` samples of `bytes_per_sample` bytes fit the limit; else
 * PN_ERR_UNSUPPORTED naming `name`, the dimensions, the decoded size and the limit (and its option). */
pn_status pn_image_check_size(const char *name, int64_t w, int64_t h, int64_t channels, int64_t bytes_per_sample,
                              int64_t count);

#ifdef __cplusplus
}
#endif

#endif
