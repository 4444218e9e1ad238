/* postprocess: the winner's triplet rule, connected components, small-region removal, flips and the
 * bilinear resize of probability maps; pure functions on float / uint8 arrays. */
#ifndef PN_POSTPROCESS_H
#define PN_POSTPROCESS_H

#include <stdint.h>

#include "base.h"

/* The triplet rule on a w x h probability map: if fewer than min_area pixels have P > top, the mask is
 * empty; else mask = P > bottom (255 / 0). Then, if min_region > 0, connected regions (8-connected)
 * of fewer than min_region pixels are removed. Returns the foreground pixel count of `mask`. */
int64_t pn_pp_triplet(const float *prob, int w, int h, float top, int64_t min_area, float bottom,
                      int64_t min_region, uint8_t *mask);

/* Labels the 8-connected foreground regions of `mask` (nonzero) into labels[w*h] (0 = background,
 * 1..count in raster order of first pixel). Returns the count, or -1 when scratch memory is short. */
int pn_pp_components(const uint8_t *mask, int w, int h, int32_t *labels);
/* Zeroes every 8-connected region of fewer than min_pixels pixels. Returns the pixels removed,
 * or -1 when scratch memory is short (mask unchanged). */
int64_t pn_pp_remove_small(uint8_t *mask, int w, int h, int64_t min_pixels);

/* Mirrors each row of a w x h float map in place. */
void pn_pp_hflip_f32(float *map, int w, int h);
/* Bilinear resize with half-pixel centres (cv2.resize INTER_LINEAR geometry, clamped borders). */
void pn_pp_resize_f32(const float *src, int sw, int sh, float *dst, int dw, int dh);
/* The submission's mask at dw x dh from a binary mask at sw x sh: the 0/1 mask resized bilinearly and
 * thresholded at > 0.5 (SPEC.md), written as 255 / 0. */
void pn_pp_upscale_mask(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);

#endif
