/* cpu: the multi-threaded CPU backend's internals: context, per-op functions and small helpers. */
#ifndef PN_CPU_H
#define PN_CPU_H

#include <stdint.h>

#include "core/backend.h"

#ifdef PN_HAVE_ONEDNN
#include <dnnl.h>
#endif

/* Creates the cpu backend with `threads` threads (0 = all cores). */
pn_status pn_cpu_backend_create(int threads, pn_backend **out);

/* Why bf16 inference cannot run on this machine ("" never: the cpu backend computes in float32 today).
 * Names the missing ISA (AVX512_BF16) when the CPU lacks it. Writes at most n bytes into why. */
void pn_cpu_bf16_unavailable(char *why, size_t n);

/* Convolution algorithms (--conv-algo): direct everywhere, Winograd for every 3x3 stride-1 convolution where oneDNN
 * has it, or per shape whichever a one-time measurement found faster. The default is PN_CPU_CONV_ALGO, else direct. */
enum { PN_CPU_CONV_DIRECT, PN_CPU_CONV_WINOGRAD, PN_CPU_CONV_AUTO };
pn_status pn_cpu_set_conv_algo(pn_backend *be, const char *algo);
/* Whether a prepared conv node runs Winograd; whether a prepared int8 forward convolution runs the backend's own int8
 * Winograd (conv2d_wino8.c: with --conv-algo auto or winograd, on CPUs with AVX-512 VNNI, where it pays). */
bool pn_cpu_conv_is_winograd(const pn_node *node);
bool pn_cpu_conv_is_int8_winograd(const pn_node *node);
/* Whether an int8 forward convolution takes its input quantized from the int8 convolution before it (an int8 chain:
 * that one's output is this one's input and nobody else's, pn_node.in_last_use). */
bool pn_cpu_conv_takes_quantized(const pn_node *node);
/* Whether int8 convolution `conv` reads its input quantized from node `from` (an int8 chain link). */
bool pn_cpu_conv_reads_quantized_from(const pn_node *conv, const pn_node *from);
/* An upsample or concat whose output only the int8 convolution `reader` reads (linked when that one is prepared): it
 * then writes its output as reader's 8-bit nhwc input (s8 if is_signed, else u8, times scale), not as float32 in
 * channel blocks (quantized_out.c); release forgets that; check fails when reader no longer reads it so. */
typedef struct pn_cpu_quantized_out {
    const pn_node *reader;
    float scale;
    bool is_signed;
} pn_cpu_quantized_out;
pn_status pn_cpu_quantized_out_set(pn_node *node, const pn_node *reader, float scale, bool is_signed);
void pn_cpu_quantized_out_release(pn_node *node);
pn_status pn_cpu_quantized_out_check(const pn_node *node, const pn_cpu_quantized_out *q);
/* Whether this CPU and build have Winograd convolutions; if not, why (one sentence). */
bool pn_cpu_winograd_available(void);
const char *pn_cpu_winograd_why(void);
/* The per-shape choices of auto across runs: load adds the file's entries for this CPU, ISA and thread count (a
 * missing file is fine; choices already known stay); save rewrites it atomically with every choice known, or with
 * `only_if_new` only when something was measured since the last load or such save. No-ops on other backends. */
pn_status pn_cpu_conv_algo_load(pn_backend *be, const char *path);
pn_status pn_cpu_conv_algo_save(pn_backend *be, const char *path, bool only_if_new);

/* What the cpu backend spent its time on outside the ops proper, for start-up breakdowns (zeros on other backends). */
typedef struct pn_cpu_stats {
    double prepare_seconds;         /* preparing nodes: oneDNN primitive creation, reorders, fusion, algorithm choice */
    double algo_seconds;            /* of which: timing direct against Winograd (auto) */
    int algo_shapes, algo_winograd; /* shapes with a choice, and how many of them run Winograd */
    double weight_prep_seconds;     /* forward passes: folding BatchNorm into the weights and reordering them */
} pn_cpu_stats;
void pn_cpu_stats_get(pn_backend *be, pn_cpu_stats *out);

/* int8 inference (oneDNN builds): the forward convolutions named by `labels` (node labels, e.g.
 * "encoder.layer1.0.conv1") run with an 8-bit input quantized over [lo, hi] (u8 when lo >= 0, else s8), s8 weights
 * with one scale per output channel (after BatchNorm folding) and a float32 output; the others stay float32. Applies to
 * nodes prepared from now on. Calibration: while on, every forward convolution records the range of its input. */
bool pn_cpu_int8_available(void);
/* Whether oneDNN's int8 convolutions run on VNNI here (u8 x s8 products summed in 32 bits). Without it they add pairs
 * of u8 x s8 products in 16 bits first (vpmaddubsw), which saturate beyond 2 x 255 x 63 = 32130: the weights are
 * then quantized to 7 bits (the largest |int8 weight| is 63, not 127), and a convolution whose input goes below 0
 * (s8, for which oneDNN rescales the weights in its own way) stays float32. */
bool pn_cpu_int8_vnni(void);
int pn_cpu_int8_weight_max(void);
pn_status pn_cpu_int8_set(pn_backend *be, int n, const char *const *labels, const float *lo, const float *hi);
pn_status pn_cpu_calibrate(pn_backend *be, bool on);
/* The ranges recorded so far (pointers valid until the next forward or the backend closes); returns their count. */
int pn_cpu_calibration(pn_backend *be, const char *const **labels, const float **lo, const float **hi);
/* Entry i's range with the values beyond the `percentile`-th percentile of |x| clipped (100: min and max). */
void pn_cpu_calibration_range(pn_backend *be, int i, double percentile, float *lo, float *hi);

struct cpu_algo_entry;
struct cpu_int8;

/* The backend's shared state. `work` is one scratch area reused by every node (compute is serial);
 * prepare grows it, compute never allocates. */
typedef struct cpu_ctx {
    int threads;
    int blk; /* channel block of the activation layout: 8 (AVX2) or 16 (AVX-512), 0 = plain NCHW only */
    void *work;
    size_t work_bytes;
    bool profile; /* PN_CPU_PROFILE=1: time per op, printed when the backend closes */
    double op_seconds[PN_OP_COUNT];
    /* inference fusion (PN_CPU_FUSE=0 turns it off): the forward conv prepared last, whose output the next
     * prepared node may join; at run time the conv that ran last and how many joined nodes ran since */
    bool fuse;
    pn_node *chain;
    pn_node *ran_conv;
    int ran_step;
    int64_t op_calls[PN_OP_COUNT];
    pn_node *prev_prepared, *ran_last; /* ReLU joins (relu_join.c): the node prepared last, the node computed last */
    int conv_algo;                     /* PN_CPU_CONV_* */
    bool
        conv_blocked; /* convolutions take the blocked activations as they are (PN_CPU_CONV_LAYOUT=any: oneDNN picks) */
    struct cpu_algo_entry *algo; /* the choices per shape (conv2d_algo.c) */
    int n_algo, cap_algo, algo_saved;
    double algo_seconds, prepare_seconds, weight_prep_seconds;
    struct cpu_int8 *int8; /* int8 convolutions and calibration (conv2d_int8.c) */
#ifdef PN_HAVE_ONEDNN
    dnnl_engine_t engine;
    dnnl_stream_t stream;
#endif
} cpu_ctx;

void pn_cpu_conv_algo_free(cpu_ctx *ctx);
void pn_cpu_int8_free(cpu_ctx *ctx);
/* Calibration: records the range of a forward conv's input (a no-op when not calibrating). */
pn_status pn_cpu_calib_observe(cpu_ctx *ctx, const pn_node *node);

/* Grows the shared scratch area to at least `bytes` (prepare only). */
pn_status pn_cpu_work_reserve(cpu_ctx *ctx, size_t bytes);

/* One compute function per op; prepare/release hooks for the ops that keep per-node state. */
#define OP(E, name, P, nin, nout, ...) pn_status pn_cpu_##name(cpu_ctx *ctx, pn_node *node);
#include "core/ops.def"
#undef OP

pn_status pn_cpu_conv2d_prepare(cpu_ctx *ctx, pn_node *node);
/* Reserves the scratch a BatchNorm op (train forward, apply, inference forward, backward) uses. */
pn_status pn_cpu_batchnorm_prepare(cpu_ctx *ctx, const pn_node *node);

/* Inference fusion (oneDNN builds only). fuse_prepare joins an in-place BATCHNORM_INFER_FWD, RELU_FWD or ADD
 * on the output of the forward conv prepared just before it into that conv (*fused = true); a joined
 * node's compute only checks the order. */
pn_status pn_cpu_fuse_prepare(cpu_ctx *ctx, pn_node *node, bool *fused);
bool pn_cpu_fused_node(const pn_node *node);
pn_status pn_cpu_fused_compute(cpu_ctx *ctx, pn_node *node);
void pn_cpu_fused_release(pn_node *node);
void pn_cpu_conv2d_release(cpu_ctx *ctx, pn_node *node);

/* ReLU joins (relu_join.c; PN_CPU_FUSE=0 turns them off too): an in-place RELU_FWD right after a BATCHNORM_TRAIN_FWD,
 * BATCHNORM_APPLY or ADD on its output is applied by that node; a RELU_BWD right before the BATCHNORM_BWD reading its
 * output is computed by the BatchNorm backward. prepare is called for every node of the ops join_op names, in program
 * order; a joined ReLU's compute calls check (and does nothing else); partner: the joined ReLU of a head, or NULL. */
bool pn_cpu_relu_join_op(pn_op op);
pn_status pn_cpu_relu_join_prepare(cpu_ctx *ctx, pn_node *node);
void pn_cpu_relu_join_release(pn_node *node);
bool pn_cpu_relu_joined(const pn_node *node);
bool pn_cpu_relu_joined_head(const pn_node *node);
const pn_node *pn_cpu_relu_join_partner(const pn_node *node);
pn_status pn_cpu_relu_join_check(const cpu_ctx *ctx, const pn_node *node);
pn_status pn_cpu_relu_join_check_bwd(const cpu_ctx *ctx, const pn_node *bn);

/* The layout of a tensor is a function of its shape: a 4-d tensor whose channel count is a multiple of
 * ctx->blk is stored blocked, nChw<B>c (element (n,c,i) at ((n*C/B + c/B)*HW + i)*B + c%B, the layout oneDNN's
 * convolutions use), everything else plain (B = 1, which is NCHW). Same shape means same layout, so
 * elementwise ops are layout-free, and a channel slice [c0, c0+k) of a batch-1 tensor is contiguous in both
 * layouts when c0 and k are multiples of B. tensor_set/tensor_get convert to and from NCHW. */
static inline int64_t cpu_blk(const cpu_ctx *ctx, const pn_tensor *t) {
    return (ctx->blk > 1 && t->ndim == 4 && t->shape[1] % ctx->blk == 0) ? ctx->blk : 1;
}

/* Offset of element (n, c, i) (i = y*W + x) of an N x C x HW tensor stored with channel block b. */
static inline int64_t cpu_at(int64_t b, int64_t c_total, int64_t hw, int64_t n, int64_t c, int64_t i) {
    return ((n * (c_total / b) + c / b) * hw + i) * b + c % b;
}

/* On a loop's helper function: also compiled for AVX-512 and AVX2, the best the CPU has picked when the program loads
 * (x86-64 with GCC or clang; elsewhere the plain build). Not on a function holding an OpenMP region, whose outlined
 * body would stay plain. */
#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CPU_SIMD_CLONES
#endif

/* rne(v * scale) saturated to [lo, hi] (NaN: lo) as a byte, as oneDNN's quantizing reorder does (s8: two's
 * complement); adding and taking away 1.5 * 2^23 rounds a float below 2^22 to the nearest integer, ties to even, in a
 * form the compiler vectorises. */
static inline uint8_t cpu_quantize(float v, float scale, float lo, float hi) {
    float t = v * scale;
    t = t >= lo ? t : lo;
    t = t <= hi ? t : hi;
    return (uint8_t)(int)((t + 12582912.0f) - 12582912.0f);
}

/* Host float pointer of a node slot (NULL for an empty optional slot). */
static inline float *cpu_ptr(const pn_tensor *t) { return t ? pn_tensor_host_f32(t) : NULL; }

#ifdef PN_HAVE_ONEDNN
/* Whether oneDNN runs with at least ISA `want` here. oneDNN's ISA values are sets of feature bits, not ordered as
 * numbers (avx2_vnni, an AVX2 CPU's, is numerically above avx512_core), so the bits are compared. */
static inline bool cpu_isa_has(dnnl_cpu_isa_t want) {
    unsigned have = (unsigned)dnnl_get_effective_cpu_isa();
    return (have & (unsigned)want) == (unsigned)want;
}

/* Turns a oneDNN status into a pn_status with a message naming `what`. */
pn_status pn_cpu_dnnl_check(dnnl_status_t st, const char *what);
#define DNNL_TRY(call)                                                                                                 \
    do {                                                                                                               \
        dnnl_status_t dnnl_st_ = (call);                                                                               \
        if (dnnl_st_ != dnnl_success) return pn_cpu_dnnl_check(dnnl_st_, #call);                                       \
    } while (0)
#endif

#endif
