/* cpu conv2d internals: the convolution's sizes and the two implementations (oneDNN, im2col + sgemm). */
#ifndef PN_CPU_CONV2D_H
#define PN_CPU_CONV2D_H

#include "cpu.h"

typedef struct pn_conv_dims {
    int64_t n, cin, h, w;     /* input */
    int64_t cout, oh, ow;     /* output */
    int64_t k, cin_g, cout_g; /* kernel size, channels per group */
    int64_t groups;
    int stride, pad;
} pn_conv_dims;

/* The sizes of a conv node (any of the three conv ops). */
pn_conv_dims pn_cpu_conv_dims(const pn_node *node);

/* im2col + sgemm: scratch bytes needed in ctx->work, then the three ops (dw and db accumulate). */
size_t pn_cpu_conv2d_gemm_work(const pn_conv_dims *d);
void pn_cpu_conv2d_gemm_fwd(cpu_ctx *ctx, const pn_conv_dims *d, float *y, const float *x, const float *w,
                            const float *b);
void pn_cpu_conv2d_gemm_bwd_data(cpu_ctx *ctx, const pn_conv_dims *d, float *dx, const float *dy, const float *w);
void pn_cpu_conv2d_gemm_bwd_weights(cpu_ctx *ctx, const pn_conv_dims *d, float *dw, float *db, const float *dy,
                                    const float *x);

/* The conv algorithm per shape (conv2d_algo.c): the recorded choice for (op, sizes), 1 Winograd, 0 direct, -1 none
 * yet; record one (timings in ms, 0 when not measured). */
int pn_cpu_conv_algo_cached(const cpu_ctx *ctx, int op, const pn_conv_dims *d);
pn_status pn_cpu_conv_algo_record(cpu_ctx *ctx, int op, const pn_conv_dims *d, int winograd, double ms_direct,
                                  double ms_winograd);

/* int8 (conv2d_int8.c): whether the conv labelled `label` runs in int8, with its input's calibrated range; the
 * input's scale (u8 for ranges without negatives, else s8; *is_signed says which); per output channel of weights w
 * (cout runs of `per` floats, BN scales bn_scale or NULL): the weight reorder's scales (w * wei_scale = the int8
 * weights), the output scales, and the bias rescaled in place to the accumulator's scale; false when a weight or
 * BN scale is NaN or infinite (nothing to scale by). */
bool pn_cpu_int8_find(const cpu_ctx *ctx, const char *label, float *lo, float *hi);
float pn_cpu_int8_src_scale(float lo, float hi, bool *is_signed);
bool pn_cpu_int8_scales(const float *w, int64_t cout, int64_t per, const float *bn_scale, float src_scale,
                        float *wei_scale, float *out_scale, float *bias);

/* An int8 convolution's float32 output (conv2d_int8.c): y (n x c x hw, channel blocks of b) = x (nhwc), plus
 * `addend` (y's layout; NULL: none), then max(., 0) if relu (NaN stays NaN). With c == b both layouts are one and y may
 * be x. */
void pn_cpu_int8_output(float *y, const float *x, const float *addend, bool relu, int64_t n, int64_t c, int64_t hw,
                        int64_t b);

/* One output channel on a channel-blocked input (conv2d_cout1.c): whether it applies to this forward node, and the
 * convolution (y plain, x and w in their blocked layout, b NULL or one value). */
bool pn_cpu_conv_cout1_applies(const cpu_ctx *ctx, const pn_node *node, const pn_conv_dims *d);
void pn_cpu_conv_cout1_fwd(const cpu_ctx *ctx, const pn_conv_dims *d, float *y, const float *x, const float *w,
                           const float *b);

/* int8 Winograd F(2x2, 3x3) (conv2d_wino8.c), for 3x3 stride-1 pad-1 convolutions with a u8 nhwc input on CPUs with
 * AVX-512 VNNI: whether it applies to these sizes here; the transformed weights from float weights (cout x cin x 3 x 3
 * in input channel blocks of wblk, as cpu_at lays them out; times bn_scale per output channel, NULL: 1), a float bias
 * (NULL: 0) and the input's scale (u8 = x * src_scale); the scratch a run on `threads` threads needs; a run: y (nhwc,
 * cout channels) = the convolution of x (n x h x w x cin, u8), ReLU if relu, as float32 or as 8 bits of y * out_mul
 * (nearest, saturated). */
typedef struct pn_wino8 pn_wino8;
enum { PN_WINO8_F32, PN_WINO8_U8, PN_WINO8_S8 };
bool pn_cpu_wino8_supported(void);
bool pn_cpu_wino8_applies(const pn_conv_dims *d);
pn_status pn_cpu_wino8_make(pn_wino8 **out, const float *weights, int64_t wblk, int64_t cout, int64_t cin,
                            const float *bn_scale, const float *bias, float src_scale);
void pn_cpu_wino8_free(pn_wino8 *w);
size_t pn_cpu_wino8_scratch_bytes(int64_t cin, int64_t n, int64_t h, int64_t wd, int threads);
void pn_cpu_wino8_run(const pn_wino8 *w, const uint8_t *x, int64_t n, int64_t h, int64_t wd, void *y, int out_type,
                      float out_mul, bool relu, int threads, char *scratch);

#ifdef PN_HAVE_ONEDNN
/* Bytes of the scratchpad a primitive needs (0: none). */
size_t pn_cpu_scratchpad_bytes(dnnl_primitive_desc_t pd);
/* Times the two primitives of the node's shape (a warm-up, then the best of three alternating runs) on memory in the
 * graph's arena as far as it fits (prepare time: it holds nothing yet; given back zeroed), then of their own, and
 * records the faster. */
pn_status pn_cpu_conv_algo_measure(cpu_ctx *ctx, const pn_node *node, const pn_conv_dims *d,
                                   dnnl_primitive_desc_t direct, dnnl_primitive_desc_t winograd);

/* oneDNN: builds the node's primitive and reorders (node->state), runs it, frees it. */
pn_status pn_cpu_conv2d_dnnl_prepare(cpu_ctx *ctx, pn_node *node, const pn_conv_dims *d);
pn_status pn_cpu_conv2d_dnnl_run(cpu_ctx *ctx, pn_node *node);
void pn_cpu_conv2d_dnnl_release(pn_node *node);
#endif

#endif
