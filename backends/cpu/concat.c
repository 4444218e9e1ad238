/* cpu concat/split: join two NCHW tensors along channels, and the inverse. When the parts and the whole
 * share a layout, each image's part is one contiguous run (plain, or blocked with channel counts that are
 * multiples of the block); otherwise elements are moved one by one between the layouts. Before an int8 convolution
 * that alone reads it, the concat writes that convolution's 8-bit nhwc input instead (pn_cpu_quantized_out_set). */
#include <string.h>

#include "cpu.h"

/* Copies `rows` blocks of `len` floats from src (stride src_stride) to dst (stride dst_stride), in chunks
 * of at most CHUNK floats so that one large block (batch 1) is still split over the threads. */
#define CHUNK 32768
static void copy_blocks(float *dst, int64_t dst_stride, const float *src, int64_t src_stride, int64_t rows,
                        int64_t len) {
    int64_t chunks = (len + CHUNK - 1) / CHUNK;
#pragma omp parallel for collapse(2) schedule(static) if (rows * len > 65536)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t at = c * CHUNK, n = len - at < CHUNK ? len - at : CHUNK;
            memcpy(dst + r * dst_stride + at, src + r * src_stride + at, (size_t)n * sizeof(float));
        }
}

/* Moves channels [c0, c0 + pc) of `whole` (wc channels, block wb) to/from `part` (pc channels, block pb). */
static void move_channels(float *whole, int64_t wc, int64_t wb, int64_t c0, float *part, int64_t pc, int64_t pb,
                          int64_t n, int64_t hw, bool to_whole) {
    if (wb == pb) {
        if (to_whole)
            copy_blocks(whole + c0 * hw, wc * hw, part, pc * hw, n, pc * hw);
        else
            copy_blocks(part, pc * hw, whole + c0 * hw, wc * hw, n, pc * hw);
        return;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t in = 0; in < n; in++)
        for (int64_t c = 0; c < pc; c++)
            for (int64_t i = 0; i < hw; i++) {
                float *w = whole + cpu_at(wb, wc, hw, in, c0 + c, i), *p = part + cpu_at(pb, pc, hw, in, c, i);
                if (to_whole)
                    *w = *p;
                else
                    *p = *w;
            }
}

/* Part t (channel blocks of b) of an image's pixels [p0, p1) into y: nhwc, 8 bits per value, from channel c0. */
CPU_SIMD_CLONES static void part_to_int8(uint8_t *y, int64_t cy, int64_t c0, const float *x, int64_t c, int64_t b,
                                         int64_t hw, int64_t img, int64_t p0, int64_t p1,
                                         const pn_cpu_quantized_out *q) {
    float lo = q->is_signed ? -128.0f : 0.0f, hi = q->is_signed ? 127.0f : 255.0f;
    for (int64_t cb = 0; cb < c / b; cb++) {
        const float *src = x + ((img * (c / b) + cb) * hw) * b;
        for (int64_t p = p0; p < p1; p++) {
            uint8_t *to = y + (img * hw + p) * cy + c0 + cb * b;
            for (int64_t l = 0; l < b; l++) to[l] = cpu_quantize(src[p * b + l], q->scale, lo, hi);
        }
    }
}

/* Both parts (in channel blocks) written as the reading int8 convolution's nhwc 8-bit input, a run of pixels at a
 * time so that each output pixel's bytes are written together. */
#define PIXELS 256
static pn_status concat_to_int8(cpu_ctx *ctx, pn_node *node, const pn_cpu_quantized_out *q) {
    PN_TRY(pn_cpu_quantized_out_check(node, q));
    const pn_tensor *a = node->in[0], *b = node->in[1], *y = node->out[0];
    int64_t n = y->shape[0], hw = y->shape[2] * y->shape[3], cy = y->shape[1], ca = a->shape[1];
    int64_t ba = cpu_blk(ctx, a), bb = cpu_blk(ctx, b), runs = (hw + PIXELS - 1) / PIXELS;
    uint8_t *out = (uint8_t *)cpu_ptr(y);
    const float *xa = cpu_ptr(a), *xb = cpu_ptr(b);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t img = 0; img < n; img++)
        for (int64_t r = 0; r < runs; r++) {
            int64_t p0 = r * PIXELS, p1 = p0 + PIXELS < hw ? p0 + PIXELS : hw;
            part_to_int8(out, cy, 0, xa, ca, ba, hw, img, p0, p1, q);
            part_to_int8(out, cy, ca, xb, cy - ca, bb, hw, img, p0, p1, q);
        }
    return PN_OK;
}

pn_status pn_cpu_concat(cpu_ctx *ctx, pn_node *node) {
    if (node->state) return concat_to_int8(ctx, node, node->state);
    const pn_tensor *a = node->in[0], *b = node->in[1], *y = node->out[0];
    int64_t n = y->shape[0], hw = y->shape[2] * y->shape[3], cy = y->shape[1], ca = a->shape[1], cb = cy - ca;
    int64_t by = cpu_blk(ctx, y);
    move_channels(cpu_ptr(y), cy, by, 0, cpu_ptr(a), ca, cpu_blk(ctx, a), n, hw, true);
    move_channels(cpu_ptr(y), cy, by, ca, cpu_ptr(b), cb, cpu_blk(ctx, b), n, hw, true);
    return PN_OK;
}

pn_status pn_cpu_split(cpu_ctx *ctx, pn_node *node) {
    const pn_tensor *dy = node->in[0], *da = node->out[0], *db = node->out[1];
    int64_t n = dy->shape[0], hw = dy->shape[2] * dy->shape[3], cy = dy->shape[1], ca = da->shape[1], cb = cy - ca;
    int64_t by = cpu_blk(ctx, dy);
    move_channels(cpu_ptr(dy), cy, by, 0, cpu_ptr(da), ca, cpu_blk(ctx, da), n, hw, false);
    if (db) move_channels(cpu_ptr(dy), cy, by, ca, cpu_ptr(db), cb, cpu_blk(ctx, db), n, hw, false);
    return PN_OK;
}
