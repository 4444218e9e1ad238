/* png: 8/16-bit grey and RGB PNG files, written with libpng (atomically) and read with libpng. */
#ifndef PN_PNG_H
#define PN_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "core/base.h"

/* An image in memory: row-major, interleaved channels, 8-bit (uint8) or 16-bit (native uint16). */
typedef struct pn_image {
    int width, height, channels, bit_depth;
    void *pixels; /* pn_alloc'ed; free with pn_image_free */
} pn_image;

void pn_image_free(pn_image *img);

/* Writes `pixels` (channels 1 = grey or 3 = RGB; bit_depth 8 or 16) to `path` via a temporary file and a
 * rename, so no reader sees half a file and a failed write leaves none (not fsynced, for speed on data
 * sets of thousands of files). Thread-safe. Built without libpng: PN_ERR_UNSUPPORTED. */
pn_status pn_png_write(const char *path, int width, int height, int channels, int bit_depth, const void *pixels);

/* Reads a PNG keeping grey or colour (palette/alpha are converted to grey or RGB, alpha dropped) and
 * 8 or 16 bits. Errors name the file and what libpng reported. */
pn_status pn_png_read(const char *path, pn_image *out);
/* A PNG as 8-bit grey in a pn_alloc'ed buffer (16-bit: the high byte; colour: the first channel), as the loader
 * reads training images. */
pn_status pn_png_read_grey(const char *path, uint8_t **px, int *w, int *h);
/* The same from memory; `name` is used in messages. */
pn_status pn_png_read_memory(const void *data, size_t size, const char *name, pn_image *out);

#endif
