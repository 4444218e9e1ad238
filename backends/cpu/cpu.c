/* cpu: the cpu backend's vtable: host memory, float32 tensors in a channel-blocked layout (nChw8c/nChw16c where the
 * channels divide, plain NCHW otherwise; see cpu.h), OpenMP threads, oneDNN/OpenBLAS kernels. */
#define _POSIX_C_SOURCE 200809L
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef PN_HAVE_OPENMP
#include <omp.h>
#endif
#ifdef PN_HAVE_OPENBLAS
#include <cblas.h>
#endif

typedef pn_status (*cpu_op_fn)(cpu_ctx *ctx, pn_node *node);

/* An OPTIONAL op without a file here gets a NULL slot (core/backend.h, dispatch tables). */
#define OP(E, name, P, nin, nout, opt_in, opt_out, shape, backward, need)                                              \
    PN_OP_LINK_##need pn_status pn_cpu_##name(cpu_ctx *ctx, pn_node *node);
#include "core/ops.def"
#undef OP

static const cpu_op_fn cpu_ops[PN_OP_COUNT] = {
#define OP(E, name, P, nin, nout, ...) [PN_OP_##E] = pn_cpu_##name,
#include "core/ops.def"
#undef OP
};

#ifdef PN_HAVE_ONEDNN
pn_status pn_cpu_dnnl_check(dnnl_status_t st, const char *what) {
    return pn_error(PN_ERR_BACKEND, "oneDNN call failed with status %d: %s", (int)st, what);
}
#endif

void pn_cpu_bf16_unavailable(char *why, size_t n) {
#ifdef PN_HAVE_ONEDNN
    if (!cpu_isa_has(dnnl_cpu_isa_avx512_core_bf16)) {
        snprintf(why, n,
                 "bf16 inference needs a CPU with AVX512_BF16 and this one lacks it (oneDNN ISA level 0x%x, "
                 "AVX512_BF16 is 0x%x); use --precision fp32",
                 (unsigned)dnnl_get_effective_cpu_isa(), (unsigned)dnnl_cpu_isa_avx512_core_bf16);
        return;
    }
    snprintf(why, n,
             "bf16 inference is not implemented in the cpu backend yet (the CPU has AVX512_BF16); "
             "use --precision fp32");
#else
    snprintf(why, n, "bf16 inference needs oneDNN and AVX512_BF16; this build has no oneDNN; use --precision fp32");
#endif
}

pn_status pn_cpu_work_reserve(cpu_ctx *ctx, size_t bytes) {
    if (bytes <= ctx->work_bytes) return PN_OK;
    /* the contents need not survive: free first (no old + new peak) and leave the pages untouched until used */
    free(ctx->work);
    ctx->work = NULL;
    ctx->work_bytes = 0;
    size_t rounded = (bytes + 4095) & ~(size_t)4095;
    if (posix_memalign(&ctx->work, 4096, rounded) != 0) {
        ctx->work = NULL;
        return pn_error(PN_ERR_NOMEM, "cpu backend: out of memory reserving %zu scratch bytes", bytes);
    }
    ctx->work_bytes = rounded;
    return PN_OK;
}

static pn_status cpu_buffer_alloc(pn_backend *be, pn_buffer *buf, size_t bytes) {
    (void)be;
    buf->host = pn_alloc(bytes);
    if (!buf->host) return PN_ERR_NOMEM;
    buf->handle = buf->host;
    return PN_OK;
}

static void cpu_buffer_free(pn_backend *be, pn_buffer *buf) {
    (void)be;
    pn_free(buf->host);
}

/* Copies between NCHW `plain` and the tensor's own layout with channel block b (to_plain picks the direction). */
static void convert_layout(const pn_tensor *t, int64_t b, float *plain, float *own, bool to_plain) {
    int64_t n = t->shape[0], c = t->shape[1], hw = t->shape[2] * t->shape[3], cb = c / b;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t in = 0; in < n; in++)
        for (int64_t ib = 0; ib < cb; ib++) {
            float *blk = own + (in * cb + ib) * hw * b;
            for (int64_t l = 0; l < b; l++) {
                float *pl = plain + (in * c + ib * b + l) * hw;
                if (to_plain)
                    for (int64_t i = 0; i < hw; i++) pl[i] = blk[i * b + l];
                else
                    for (int64_t i = 0; i < hw; i++) blk[i * b + l] = pl[i];
            }
        }
}

static pn_status cpu_tensor_set(pn_backend *be, const pn_tensor *t, const float *src) {
    int64_t b = cpu_blk(be->ctx, t);
    if (b == 1)
        memcpy(pn_tensor_host_f32(t), src, pn_tensor_bytes(t));
    else
        convert_layout(t, b, (float *)src, pn_tensor_host_f32(t), false);
    return PN_OK;
}

static pn_status cpu_tensor_get(pn_backend *be, const pn_tensor *t, float *dst) {
    int64_t b = cpu_blk(be->ctx, t);
    if (b == 1)
        memcpy(dst, pn_tensor_host_f32(t), pn_tensor_bytes(t));
    else
        convert_layout(t, b, dst, pn_tensor_host_f32(t), true);
    return PN_OK;
}

static const char *cpu_supports_op(pn_backend *be, const pn_node *node) {
    (void)be;
    if (!cpu_ops[node->op]) return PN_OP_LEFT_OUT;
    for (int i = 0; i < PN_OP_MAX_IO; i++) {
        if ((node->in[i] && node->in[i]->dtype != PN_F32) || (node->out[i] && node->out[i]->dtype != PN_F32))
            return "the cpu backend's ops take float32 tensors";
    }
    return NULL;
}

static bool is_conv(pn_op op) {
    return op == PN_OP_CONV2D_FWD || op == PN_OP_CONV2D_BWD_DATA || op == PN_OP_CONV2D_BWD_WEIGHTS;
}

static inline bool is_fusable(pn_op op) {
    return op == PN_OP_BATCHNORM_INFER_FWD || op == PN_OP_RELU_FWD || op == PN_OP_ADD;
}

static pn_status cpu_prepare_conv_fusion(cpu_ctx *ctx, pn_node *node) {
    if (is_conv(node->op)) return pn_cpu_conv2d_prepare(ctx, node);
#ifdef PN_HAVE_ONEDNN
    if (is_fusable(node->op)) {
        bool fused;
        if (pn_cpu_fused_node(node)) pn_cpu_fused_release(node); /* prepared again */
        return pn_cpu_fuse_prepare(ctx, node, &fused);
    }
#endif
    ctx->chain = NULL;
    return PN_OK;
}

static pn_status cpu_prepare_node(pn_backend *be, pn_node *node) {
    cpu_ctx *ctx = be->ctx;
    bool joinable = pn_cpu_relu_join_op(node->op);
    if (node->op == PN_OP_BATCHNORM_TRAIN_FWD || node->op == PN_OP_BATCHNORM_APPLY ||
        node->op == PN_OP_BATCHNORM_INFER_FWD || node->op == PN_OP_BATCHNORM_BWD)
        PN_TRY(pn_cpu_batchnorm_prepare(ctx, node));
    if (joinable) pn_cpu_relu_join_release(node); /* prepared again */
    PN_TRY(cpu_prepare_conv_fusion(ctx, node));
    if (joinable) return pn_cpu_relu_join_prepare(ctx, node); /* where the conv fusion took nothing */
    ctx->prev_prepared = node;
    return PN_OK;
}

static pn_status cpu_prepare(pn_backend *be, pn_node *node) {
    cpu_ctx *ctx = be->ctx;
    double t0 = pn_now();
    pn_status st = cpu_prepare_node(be, node);
    ctx->prepare_seconds += pn_now() - t0;
    return st;
}

static pn_status cpu_run_node(cpu_ctx *ctx, pn_node *node) {
    if (ctx->int8) PN_TRY(pn_cpu_calib_observe(ctx, node));
#ifdef PN_HAVE_ONEDNN
    if (is_fusable(node->op) && pn_cpu_fused_node(node)) return pn_cpu_fused_compute(ctx, node);
#endif
    if ((node->op == PN_OP_RELU_FWD || node->op == PN_OP_RELU_BWD) && pn_cpu_relu_joined(node))
        return pn_cpu_relu_join_check(ctx, node);
    if (node->op != PN_OP_CONV2D_FWD) ctx->ran_conv = NULL;
    return cpu_ops[node->op](ctx, node);
}

static pn_status cpu_run(cpu_ctx *ctx, pn_node *node) {
    pn_status st = cpu_run_node(ctx, node);
    ctx->ran_last = node;
    return st;
}

static pn_status cpu_compute(pn_backend *be, pn_node *node) {
    cpu_ctx *ctx = be->ctx;
    if (!ctx->profile) return cpu_run(ctx, node);
    double t0 = pn_now();
    pn_status st = cpu_run(ctx, node);
    ctx->op_seconds[node->op] += pn_now() - t0;
    ctx->op_calls[node->op]++;
    return st;
}

static void print_profile(const cpu_ctx *ctx) {
    double total = 0;
    for (int i = 0; i < PN_OP_COUNT; i++) total += ctx->op_seconds[i];
    pn_log_info("cpu backend profile (%d threads): %.3f s in ops", ctx->threads, total);
    for (int i = 0; i < PN_OP_COUNT; i++)
        if (ctx->op_calls[i])
            pn_log_info("  %-22s %7lld calls %9.3f s %5.1f%%", pn_op_name((pn_op)i), (long long)ctx->op_calls[i],
                        ctx->op_seconds[i], 100.0 * ctx->op_seconds[i] / (total > 0 ? total : 1));
}

static void cpu_release(pn_backend *be, pn_node *node) {
    cpu_ctx *ctx = be->ctx;
    if (ctx->chain == node) ctx->chain = NULL;
    if (ctx->ran_conv == node) ctx->ran_conv = NULL;
    if (ctx->prev_prepared == node) ctx->prev_prepared = NULL;
    if (ctx->ran_last == node) ctx->ran_last = NULL;
    if (is_conv(node->op)) pn_cpu_conv2d_release(ctx, node);
    if (node->op == PN_OP_UPSAMPLE2X_FWD || node->op == PN_OP_CONCAT) pn_cpu_quantized_out_release(node);
    if (pn_cpu_relu_join_op(node->op)) pn_cpu_relu_join_release(node);
#ifdef PN_HAVE_ONEDNN
    if (is_fusable(node->op) && pn_cpu_fused_node(node)) pn_cpu_fused_release(node);
#endif
}

/* A channel slice of a batch-1 tensor is contiguous in both layouts when parent and slice have the same channel
 * block b and the slice starts on a block boundary (see cpu_blk). */
static bool cpu_channel_view(pn_backend *be, const pn_tensor *parent, int64_t c0, const pn_tensor *view,
                             size_t *offset) {
    int64_t b = cpu_blk(be->ctx, parent);
    if (parent->shape[0] != 1 || cpu_blk(be->ctx, view) != b || c0 % b != 0) return false;
    *offset = (size_t)(c0 * parent->shape[2] * parent->shape[3]) * sizeof(float);
    return true;
}

static pn_status cpu_set_threads(pn_backend *be, int threads) {
    cpu_ctx *ctx = be->ctx;
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (int)cores : 1;
    }
    ctx->threads = threads;
#ifdef PN_HAVE_OPENMP
    omp_set_num_threads(threads);
#endif
#ifdef PN_HAVE_OPENBLAS
    openblas_set_num_threads(threads);
#endif
    return PN_OK;
}

static void cpu_destroy(pn_backend *be) {
    cpu_ctx *ctx = be->ctx;
    if (ctx->profile) print_profile(ctx);
#ifdef PN_HAVE_ONEDNN
    if (ctx->stream) dnnl_stream_destroy(ctx->stream);
    if (ctx->engine) dnnl_engine_destroy(ctx->engine);
#endif
    pn_cpu_conv_algo_free(ctx);
    pn_cpu_int8_free(ctx);
    free(ctx->work);
    free(ctx);
    free(be);
}

pn_status pn_cpu_backend_create(int threads, pn_backend **out) {
    pn_backend *be = calloc(1, sizeof *be);
    cpu_ctx *ctx = calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        return pn_error(PN_ERR_NOMEM, "out of memory creating the cpu backend");
    }
    be->name = "cpu";
    be->api_version = PN_BACKEND_API_VERSION;
    be->host_memory = true;
    be->ctx = ctx;
    be->buffer_alloc = cpu_buffer_alloc;
    be->buffer_free = cpu_buffer_free;
    be->tensor_set = cpu_tensor_set;
    be->tensor_get = cpu_tensor_get;
    be->supports_op = cpu_supports_op;
    be->prepare = cpu_prepare;
    be->compute = cpu_compute;
    be->release = cpu_release;
    be->set_threads = cpu_set_threads;
    be->destroy = cpu_destroy;
    be->channel_view = cpu_channel_view;
#ifdef PN_HAVE_ONEDNN
    if (dnnl_engine_create(&ctx->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags) != dnnl_success) {
        cpu_destroy(be);
        return pn_error(PN_ERR_BACKEND, "cpu backend: oneDNN could not create a CPU engine and stream");
    }
    ctx->blk = cpu_isa_has(dnnl_cpu_isa_avx512_core) ? 16 : 8;
#endif
    const char *layout = getenv("PN_CPU_LAYOUT"); /* "nchw": keep every tensor plain (for comparisons) */
    if (layout && strcmp(layout, "nchw") == 0) ctx->blk = 0;
    const char *profile = getenv("PN_CPU_PROFILE");
    ctx->profile = profile && strcmp(profile, "1") == 0;
    const char *fuse = getenv("PN_CPU_FUSE");
    ctx->fuse = !(fuse && strcmp(fuse, "0") == 0);
    const char *conv_layout = getenv("PN_CPU_CONV_LAYOUT"); /* "any": oneDNN picks the convolutions' layouts */
    ctx->conv_blocked = !(conv_layout && strcmp(conv_layout, "any") == 0);
    const char *algo = getenv("PN_CPU_CONV_ALGO");
    if (algo && pn_cpu_set_conv_algo(be, algo) != PN_OK) ctx->conv_algo = PN_CPU_CONV_DIRECT;
    cpu_set_threads(be, threads);
    *out = be;
    return PN_OK;
}
