/* postprocess: the winner's triplet rule, connected components, small-region removal, flips and the
 * bilinear resize of probability maps; pure functions on float / uint8 arrays. */
#ifndef PN_POSTPROCESS_H
#define PN_POSTPROCESS_H

#include <stdint.h>

#include "base.h"

/* The triplet rule on a w x h probability map: if fewer than min_area pixels have P > top, the mask is
 * empty; else mask = P > bottom (255 / 0). Then, if min_region > 0, every 8-connected region whose
 * contour area (pn_pp_contour_area) is not above min_region is removed. Returns the foreground pixel
 * count of `mask`. */
int64_t pn_pp_triplet(const float *prob, int w, int h, float top, int64_t min_area, float bottom, double min_region,
                      uint8_t *mask);

/* Labels the 8-connected foreground regions of `mask` (nonzero) into labels[w*h] (0 = background,
 * 1..count in raster order of first pixel). Returns the count, or -1 when scratch memory is short. */
int pn_pp_components(const uint8_t *mask, int w, int h, int32_t *labels);
/* cv2.contourArea of the outer border that cv2.findContours traces around the region whose first pixel
 * in raster order is (x0, y0): the shoelace area of the polygon through the border pixels' centres,
 * holes not subtracted. A single pixel or a one-pixel-wide line has area 0, a k x k block (k-1)^2. */
double pn_pp_contour_area(const uint8_t *mask, int w, int h, int x0, int y0);
/* areas[1..count] = the contour area of each region of `labels` (from pn_pp_components); areas[0] = 0.
 * Returns the regions measured. */
int pn_pp_region_areas(const uint8_t *mask, int w, int h, const int32_t *labels, int count, double *areas);
/* Zeroes every 8-connected region whose contour area is not above min_area (the winner's
 * remove_smallest keeps contourArea > MIN_CONTOUR_AREA). Returns the pixels removed, or -1 when scratch
 * memory is short (mask unchanged). */
int64_t pn_pp_remove_small(uint8_t *mask, int w, int h, double min_area);

/* Mirrors each row of a w x h float map in place. */
void pn_pp_hflip_f32(float *map, int w, int h);
/* Bilinear resize with half-pixel centres (cv2.resize INTER_LINEAR geometry, clamped borders). */
void pn_pp_resize_f32(const float *src, int sw, int sh, float *dst, int dw, int dh);
/* The submission's mask at dw x dh from a binary mask at sw x sh: the 0/1 mask resized bilinearly and
 * thresholded at > 0.5 (docs/REFERENCE.md), written as 255 / 0. */
void pn_pp_upscale_mask(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);

#endif
