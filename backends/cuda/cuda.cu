/* cuda: the CUDA backend module's vtable (device memory, pinned host copies, one stream, node dispatch) and
 * its exported pn_backend_score / pn_backend_init. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda.h"

/* The module's C entry points (core/backend.h, "What a backend module exports"). */
extern "C" {
__attribute__((visibility("default"))) int pn_backend_score(char *reason, size_t n);
__attribute__((visibility("default"))) pn_status pn_backend_init(int api_version, int threads, pn_backend **out);
}

typedef pn_status (*cuda_op_fn)(cuda_ctx *ctx, pn_node *node);

/* An OPTIONAL op without a file here gets a NULL slot (core/backend.h, dispatch tables). */
#define OP(E, name, P, nin, nout, opt_in, opt_out, shape, backward, need)                                              \
    PN_OP_LINK_##need pn_status pn_cuda_##name(cuda_ctx *ctx, pn_node *node);
#include "core/ops.def"
#undef OP

static const cuda_op_fn cuda_ops[PN_OP_COUNT] = {
#define OP(E, name, P, nin, nout, ...) [PN_OP_##E] = pn_cuda_##name,
#include "core/ops.def"
#undef OP
};

static cuda_ctx *ctx_of(pn_backend *be) { return (cuda_ctx *)be->ctx; }

const char *pn_cuda_precision_name(cuda_precision prec) {
    return prec == CUDA_BF16 ? "bf16" : prec == CUDA_FP16 ? "fp16" : "fp32";
}

pn_status pn_cuda_work_reserve(cuda_ctx *ctx, size_t bytes) {
    if (bytes <= ctx->work_bytes) return PN_OK;
    CUDA_TRY(cudaStreamSynchronize(ctx->stream));
    if (ctx->work) CUDA_TRY(cudaFree(ctx->work));
    ctx->work = NULL;
    ctx->work_bytes = 0;
    size_t rounded = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    if (cudaMalloc(&ctx->work, rounded) != cudaSuccess) {
        ctx->work = NULL;
        (void)cudaGetLastError();
        return pn_error(PN_ERR_NOMEM, "cuda: out of GPU memory growing the workspace to %zu MB", rounded >> 20);
    }
    ctx->work_bytes = rounded;
    return PN_OK;
}

/* ---------------- memory and host copies ---------------- */

static pn_status cuda_buffer_alloc(pn_backend *be, pn_buffer *buf, size_t bytes) {
    cuda_ctx *ctx = ctx_of(be);
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        (void)cudaGetLastError();
        return pn_error(PN_ERR_NOMEM, "cuda: out of GPU memory allocating %zu MB", bytes >> 20);
    }
    buf->handle = p;
    buf->host = NULL;
    CUDA_TRY(cudaMemsetAsync(p, 0, bytes, ctx->stream));
    CUDA_TRY(cudaStreamSynchronize(ctx->stream));
    return PN_OK;
}

static void cuda_buffer_free(pn_backend *be, pn_buffer *buf) {
    (void)be;
    cudaError_t st = cudaFree(buf->handle);
    if (st != cudaSuccess) pn_log_warn("cuda: cudaFree failed: %s", cudaGetErrorString(st));
}

/* Host floats go through the pinned staging buffer in chunks (no allocation per call). */
static pn_status cuda_tensor_set(pn_backend *be, const pn_tensor *t, const float *src) {
    cuda_ctx *ctx = ctx_of(be);
    char *dst = (char *)cuda_ptr(t);
    size_t total = pn_tensor_bytes(t);
    for (size_t done = 0; done < total; done += CUDA_PINNED_BYTES) {
        size_t chunk = total - done < CUDA_PINNED_BYTES ? total - done : CUDA_PINNED_BYTES;
        memcpy(ctx->pinned, (const char *)src + done, chunk);
        CUDA_TRY(cudaMemcpyAsync(dst + done, ctx->pinned, chunk, cudaMemcpyHostToDevice, ctx->stream));
        CUDA_TRY(cudaStreamSynchronize(ctx->stream));
    }
    return PN_OK;
}

static pn_status cuda_tensor_get(pn_backend *be, const pn_tensor *t, float *dst) {
    cuda_ctx *ctx = ctx_of(be);
    const char *src = (const char *)cuda_ptr(t);
    size_t total = pn_tensor_bytes(t);
    for (size_t done = 0; done < total; done += CUDA_PINNED_BYTES) {
        size_t chunk = total - done < CUDA_PINNED_BYTES ? total - done : CUDA_PINNED_BYTES;
        CUDA_TRY(cudaMemcpyAsync(ctx->pinned, src + done, chunk, cudaMemcpyDeviceToHost, ctx->stream));
        CUDA_TRY(cudaStreamSynchronize(ctx->stream));
        memcpy((char *)dst + done, ctx->pinned, chunk);
    }
    return PN_OK;
}

/* ---------------- nodes ---------------- */

static bool is_conv(pn_op op) {
    return op == PN_OP_CONV2D_FWD || op == PN_OP_CONV2D_BWD_DATA || op == PN_OP_CONV2D_BWD_WEIGHTS;
}

static const char *cuda_supports_op(pn_backend *be, const pn_node *node) {
    (void)be;
    if (!cuda_ops[node->op]) return PN_OP_LEFT_OUT;
    for (int i = 0; i < PN_OP_MAX_IO; i++) {
        const pn_tensor *ts[2] = {node->in[i], node->out[i]};
        for (int k = 0; k < 2; k++) {
            if (!ts[k]) continue;
            if (ts[k]->dtype != PN_F32) return "the cuda backend keeps float32 tensors only";
            if (is_conv(node->op) && pn_tensor_numel(ts[k]) > INT_MAX)
                return "a convolution tensor has more than 2^31 elements";
        }
    }
    bool bn = node->op == PN_OP_BATCHNORM_TRAIN_FWD || node->op == PN_OP_BATCHNORM_BWD;
    const pn_tensor *x = node->op == PN_OP_BATCHNORM_BWD ? node->in[1] : node->in[0];
    if (bn && x->shape[1] > CUDA_REDUCE_DOUBLES / 4) return "batchnorm with more than 2048 channels";
    if (node->op == PN_OP_CONV2D_BWD_WEIGHTS && node->out[1] && node->out[1]->shape[0] > CUDA_REDUCE_DOUBLES)
        return "a bias gradient of more than 8192 channels";
    if (node->op == PN_OP_CONCAT || node->op == PN_OP_SPLIT) { /* one strided copy: rows must stay under 2 GB */
        const pn_tensor *y = node->op == PN_OP_CONCAT ? node->out[0] : node->in[0];
        if (y->shape[1] * y->shape[2] * y->shape[3] > INT_MAX / 4)
            return "concat/split of more than 2 GB per batch item";
    }
    return NULL;
}

static pn_status cuda_prepare(pn_backend *be, pn_node *node) {
    if (is_conv(node->op)) return pn_cuda_conv2d_prepare(ctx_of(be), node);
    return PN_OK;
}

static pn_status cuda_compute(pn_backend *be, pn_node *node) { return cuda_ops[node->op](ctx_of(be), node); }

static void cuda_release(pn_backend *be, pn_node *node) {
    if (is_conv(node->op)) pn_cuda_conv2d_release(ctx_of(be), node);
}

static pn_status cuda_synchronize(pn_backend *be) {
    CUDA_TRY(cudaStreamSynchronize(ctx_of(be)->stream));
    return PN_OK;
}

static pn_status cuda_set_precision(pn_backend *be, const char *precision) {
    cuda_ctx *ctx = ctx_of(be);
    if (!strcmp(precision, "fp32"))
        ctx->precision = CUDA_FP32;
    else if (!strcmp(precision, "bf16"))
        ctx->precision = CUDA_BF16;
    else if (!strcmp(precision, "fp16"))
        ctx->precision = CUDA_FP16;
    else
        return pn_error(PN_ERR_ARG, "--precision must be fp32, bf16 or fp16, got '%s'", precision);
    return PN_OK;
}

static pn_status cuda_set_deterministic(pn_backend *be, bool deterministic) {
    ctx_of(be)->deterministic = deterministic;
    return PN_OK;
}

/* ---------------- life cycle ---------------- */

static void ctx_free(cuda_ctx *ctx) {
    if (!ctx) return;
    if (ctx->stream) cudaStreamSynchronize(ctx->stream);
    if (ctx->work) cudaFree(ctx->work);
    if (ctx->reduce) cudaFree(ctx->reduce);
    if (ctx->pinned) cudaFreeHost(ctx->pinned);
    if (ctx->dnn) cudnnDestroy(ctx->dnn);
    if (ctx->stream) cudaStreamDestroy(ctx->stream);
    free(ctx);
}

static void cuda_destroy(pn_backend *be) {
    ctx_free(ctx_of(be));
    free(be);
}

static pn_status ctx_init(cuda_ctx *ctx) {
    ctx->device = 0;
    CUDA_TRY(cudaSetDevice(ctx->device));
    cudaDeviceProp prop;
    CUDA_TRY(cudaGetDeviceProperties(&prop, ctx->device));
    snprintf(ctx->device_name, sizeof ctx->device_name, "%s", prop.name);
    CUDA_TRY(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    CUDNN_TRY(cudnnCreate(&ctx->dnn));
    CUDNN_TRY(cudnnSetStream(ctx->dnn, ctx->stream));
    CUDA_TRY(cudaMalloc((void **)&ctx->reduce, CUDA_REDUCE_DOUBLES * sizeof(double)));
    CUDA_TRY(cudaMallocHost(&ctx->pinned, CUDA_PINNED_BYTES));
    const char *mb = getenv("PN_CUDA_WORKSPACE_MB");
    ctx->work_limit = (size_t)(mb && atoi(mb) > 0 ? atoi(mb) : 1024) << 20;
    pn_log_info("cuda: device %d %s (compute capability %d.%d, %.1f GB), cuDNN %zu", ctx->device, prop.name, prop.major,
                prop.minor, (double)prop.totalGlobalMem / 1e9, cudnnGetVersion());
    return PN_OK;
}

int pn_backend_score(char *reason, size_t n) {
    int driver = 0, runtime = 0, count = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    cudaError_t st = cudaGetDeviceCount(&count);
    if (st != cudaSuccess) {
        if (driver == 0)
            snprintf(reason, n, "no CUDA driver (cudaGetDeviceCount: %s)", cudaGetErrorString(st));
        else if (st == cudaErrorInsufficientDriver)
            snprintf(reason, n, "the CUDA driver is too old: it supports CUDA %d.%d, this module needs %d.%d",
                     driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
        else
            snprintf(reason, n, "no usable CUDA device (cudaGetDeviceCount: %s)", cudaGetErrorString(st));
        return 0;
    }
    if (count == 0) {
        snprintf(reason, n, "no CUDA device (the driver supports CUDA %d.%d)", driver / 1000, driver % 1000 / 10);
        return 0;
    }
    size_t dnn = cudnnGetVersion();
    if (dnn / 10000 != CUDNN_MAJOR || dnn < 90000) {
        snprintf(reason, n,
                 "cuDNN version mismatch: the module was built with %d.%d.%d, the loaded library is %zu.%zu.%zu",
                 CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL, dnn / 10000, dnn % 10000 / 100, dnn % 100);
        return 0;
    }
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) != cudaSuccess) {
        snprintf(reason, n, "cannot query CUDA device 0 (%s)", cudaGetErrorString(cudaGetLastError()));
        return 0;
    }
    if (major < 8) {
        snprintf(reason, n, "CUDA device 0 has compute capability %d.%d; the module needs 8.0 or newer", major, minor);
        return 0;
    }
    return 100;
}

pn_status pn_backend_init(int api_version, int threads, pn_backend **out) {
    (void)threads;
    *out = NULL;
    if (api_version != PN_BACKEND_API_VERSION)
        return pn_error(PN_ERR_BACKEND, "cuda backend module speaks API %d, this binary needs %d",
                        PN_BACKEND_API_VERSION, api_version);
    pn_backend *be = (pn_backend *)calloc(1, sizeof *be);
    cuda_ctx *ctx = (cuda_ctx *)calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        return pn_error(PN_ERR_NOMEM, "out of memory creating the cuda backend");
    }
    pn_status st = ctx_init(ctx);
    if (st != PN_OK) {
        ctx_free(ctx);
        free(be);
        return st;
    }
    be->name = "cuda";
    be->api_version = PN_BACKEND_API_VERSION;
    be->host_memory = false;
    be->ctx = ctx;
    be->buffer_alloc = cuda_buffer_alloc;
    be->buffer_free = cuda_buffer_free;
    be->tensor_set = cuda_tensor_set;
    be->tensor_get = cuda_tensor_get;
    be->supports_op = cuda_supports_op;
    be->prepare = cuda_prepare;
    be->compute = cuda_compute;
    be->release = cuda_release;
    be->synchronize = cuda_synchronize;
    be->destroy = cuda_destroy;
    be->set_precision = cuda_set_precision;
    be->set_deterministic = cuda_set_deterministic;
#ifdef PN_HAVE_NCCL
    be->collectives = pn_cuda_collectives;
#endif
    *out = be;
    return PN_OK;
}
