/* augment: albumentations-style transforms of an 8-bit grey image and its mask, and text-spec pipelines. */
#ifndef PN_AUGMENT_H
#define PN_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base.h"

/* What a warp samples outside the image: 0 (our default) or OpenCV's BORDER_REFLECT_101. */
typedef enum pn_border { PN_BORDER_CONSTANT = 0, PN_BORDER_REFLECT101 = 1 } pn_border;

/* How the float input is scaled: raw 0..255, [0,1] (x/255), or ImageNet mean/std on x/255. */
typedef enum pn_norm_mode { PN_NORM_NONE = 0, PN_NORM_UNIT = 1, PN_NORM_IMAGENET = 2 } pn_norm_mode;

/* ---- Building blocks (OpenCV-compatible; the pipeline uses them, tests and tools may too) ---- */

/* cv2.getRotationMatrix2D((cx, cy), angle_deg, scale) into m[6] (row-major 2x3, src -> dst). */
void pn_aug_rotation_matrix(double cx, double cy, double angle_deg, double scale, double m[6]);
/* cv2.warpAffine(src, m, (dw, dh)) with INTER_LINEAR (nearest=false) or INTER_NEAREST, the given
 * border (constant value 0), using OpenCV's fixed-point arithmetic (1/32 pixel, 15-bit weights).
 * PN_ERR_NOMEM when its row scratch (16 bytes per output column) cannot be allocated. */
pn_status pn_aug_warp_affine_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, const double m[6],
                                bool nearest, pn_border border);
/* cv2.remap(src, map_x, map_y) with float maps of dw*dh entries (source coordinates per dst pixel). */
void pn_aug_remap_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, const float *map_x,
                     const float *map_y, bool nearest, pn_border border);
/* The source maps of albumentations' OpticalDistortion: cv2.initUndistortRectifyMap with camera
 * fx = w, fy = h, centre (w/2 + dx, h/2 + dy), distortion (k, k, 0, 0, 0) and OpenCV's default new
 * camera (principal point ((w-1)/2, (h-1)/2)); maps hold w*h floats. */
void pn_aug_optical_map(int w, int h, double k, double dx, double dy, float *map_x, float *map_y);
/* albumentations' GridDistortion maps for steps+1 x and y step factors (1 + uniform(-limit, limit)). PN_ERR_NOMEM
 * when its scratch (w + h floats) cannot be allocated. */
pn_status pn_aug_grid_map(int w, int h, int steps, const double *xsteps, const double *ysteps, float *map_x,
                          float *map_y);
/* albumentations' uint8 lookup tables: contrast (x*alpha), brightness (x + beta*255), gamma
 * ((x/255)^gamma*255), clipped to 0..255 and truncated as numpy's astype(uint8) does. */
void pn_aug_lut_contrast(double alpha, uint8_t lut[256]);
void pn_aug_lut_brightness(double beta, uint8_t lut[256]);
void pn_aug_lut_gamma(double gamma, uint8_t lut[256]);
/* albumentations' ElasticTransform (approximate=False) with its random inputs given: `offsets` moves
 * the three affine anchor points (alpha_affine), rand_x/rand_y are w*h uniform [0,1) fields that are
 * mapped to [-1,1], smoothed with gaussian_filter(sigma) and scaled by alpha. Warps img (bilinear) and
 * mask (may be NULL; nearest or bilinear) in place. */
pn_status pn_aug_elastic_u8(uint8_t *img, uint8_t *mask, int w, int h, double alpha, double sigma,
                            const double offsets[6], const float *rand_x, const float *rand_y, bool mask_nearest,
                            pn_border border);
/* Resize (dw, dh): bilinear with half-pixel centres (cv2.INTER_LINEAR geometry) or nearest
 * (cv2.INTER_NEAREST: source index floor(d * s / dst)). */
void pn_aug_resize_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, bool nearest);
/* Mirrors each row in place. */
void pn_aug_hflip_u8(uint8_t *img, int w, int h);
/* Writes the 3 identical channels of one (3, h, w) float input from an 8-bit image. */
void pn_aug_normalize(const uint8_t *img, int w, int h, pn_norm_mode mode, float *chw);
/* "none" | "unit" (also "01") | "imagenet" -> mode; PN_ERR_ARG naming the value otherwise. */
pn_status pn_norm_parse(const char *s, pn_norm_mode *out);

/* ---- Pipelines ---- */

/* A parsed pipeline: an ordered list of (transform, probability), OneOf groups allowed. */
typedef struct pn_aug_pipeline pn_aug_pipeline;

/* Parses a pipeline. `spec` is "none", "blog", "winner", or a list of items separated by ',':
 *   name[:p][:key=value]...                        e.g. hflip:0.5  rotate:0.5:limit=10
 *   oneof:p[item|item|...]                         children's p are selection weights
 * Transforms and keys (defaults in brackets):
 *   hflip, vflip; rotate limit[90]; ssr shift[0.0625] scale[0.1] rotate[45];
 *   contrast limit[0.2]; brightness limit[0.2]; gamma lo[80] hi[120];
 *   elastic alpha[1] sigma[50] affine[50]; grid steps[5] limit[0.3]; optical k[0.05] shift[0.05].
 * Any transform also takes border=constant|reflect101 (else `border` given here) and p[0.5].
 * "blog" = hflip:0.5,rotate:0.5:limit=10. "winner" = hflip:0.5, oneof:0.3[contrast|gamma|brightness],
 * oneof:0.3[elastic:alpha=120:sigma=6:affine=3.6|grid|optical:k=2:shift=0.5], ssr:0.5; its final Resize is
 * the loader's output size (pn_aug_resize_u8). Normalize is pn_aug_normalize, also done by the loader.
 * On error returns PN_ERR_ARG with a message naming the item and what was expected. */
pn_status pn_aug_parse(const char *spec, pn_border border, pn_aug_pipeline **out);
void pn_aug_free(pn_aug_pipeline *p);
/* A canonical text form of the pipeline (parsable again); returns the length it needed. */
size_t pn_aug_describe(const pn_aug_pipeline *p, char *buf, size_t cap);

/* Augments a w x h image and (optional, may be NULL) mask in place. Every random draw comes from
 * pn_rng_make(seed, PN_RNG_AUGMENT, epoch, sample), so a sample is augmented the same way on any
 * thread. Images are sampled bilinearly; binary masks (only 0 and one other value) by nearest
 * neighbour, soft masks bilinearly. Returns PN_ERR_NOMEM if scratch memory is short. */
pn_status pn_aug_apply(const pn_aug_pipeline *p, uint8_t *img, uint8_t *mask, int w, int h, uint64_t seed,
                       uint32_t epoch, uint32_t sample);

#endif
