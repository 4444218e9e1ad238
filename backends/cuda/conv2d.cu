/* conv2d: forward, backward-data and backward-weights through cuDNN 9 (its convolution API), the algorithm
 * chosen once per node in prepare (no FFT/Winograd; deterministic ones only under set_deterministic), float32
 * with FMA math (no TF32) or, in bf16/fp16, on rounded operand copies in the workspace with float accumulation;
 * the bias and its gradient in own float/double code. Parameter gradients accumulate (+=). */
#include <stdlib.h>
#include <string.h>

#include "cuda.h"
#include "reduce.cuh"

/* Per-node state. The workspace holds, in bf16/fp16, copies of the two inputs (a, b) and the output (c), then
 * cuDNN's workspace; in float32 only the latter. */
typedef struct conv_state {
    cuda_precision prec;
    cudnnTensorDescriptor_t xd, yd, yf, bd; /* x and y in the operand type; y and the bias in float32 */
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    int algo;
    size_t ws_bytes;
    size_t off_a, off_b, off_c, off_ws;
} conv_state;

/* One algorithm candidate, whatever the direction. */
typedef struct algo_perf {
    int algo;
    cudnnStatus_t status;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
} algo_perf;

#define MAX_ALGOS 16

/* The x, w and y tensors of a node in forward terms (bwd_data: dx, w, dy; bwd_weights: x, dw, dy). */
static void conv_tensors(const pn_node *node, const pn_tensor **x, const pn_tensor **w, const pn_tensor **y) {
    if (node->op == PN_OP_CONV2D_FWD)
        *y = node->out[0], *x = node->in[0], *w = node->in[1];
    else if (node->op == PN_OP_CONV2D_BWD_DATA)
        *x = node->out[0], *y = node->in[0], *w = node->in[1];
    else
        *w = node->out[0], *y = node->in[0], *x = node->in[1];
}

static void state_free(conv_state *s) {
    if (!s) return;
    if (s->xd) cudnnDestroyTensorDescriptor(s->xd);
    if (s->yd) cudnnDestroyTensorDescriptor(s->yd);
    if (s->yf) cudnnDestroyTensorDescriptor(s->yf);
    if (s->bd) cudnnDestroyTensorDescriptor(s->bd);
    if (s->wd) cudnnDestroyFilterDescriptor(s->wd);
    if (s->cd) cudnnDestroyConvolutionDescriptor(s->cd);
    free(s);
}

static pn_status set_tensor(cudnnTensorDescriptor_t d, cudnnDataType_t dt, const pn_tensor *t) {
    CUDNN_TRY(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, dt, (int)t->shape[0], (int)t->shape[1], (int)t->shape[2],
                                         (int)t->shape[3]));
    return PN_OK;
}

static pn_status make_descriptors(conv_state *s, const pn_node *node) {
    const pn_tensor *x, *w, *y;
    conv_tensors(node, &x, &w, &y);
    const pn_conv2d_params *p = &node->p.conv2d_fwd;
    cudnnDataType_t dt = s->prec == CUDA_BF16   ? CUDNN_DATA_BFLOAT16
                         : s->prec == CUDA_FP16 ? CUDNN_DATA_HALF
                                                : CUDNN_DATA_FLOAT;
    CUDNN_TRY(cudnnCreateTensorDescriptor(&s->xd));
    CUDNN_TRY(cudnnCreateTensorDescriptor(&s->yd));
    CUDNN_TRY(cudnnCreateFilterDescriptor(&s->wd));
    CUDNN_TRY(cudnnCreateConvolutionDescriptor(&s->cd));
    PN_TRY(set_tensor(s->xd, dt, x));
    PN_TRY(set_tensor(s->yd, dt, y));
    CUDNN_TRY(cudnnSetFilter4dDescriptor(s->wd, dt, CUDNN_TENSOR_NCHW, (int)w->shape[0], (int)w->shape[1],
                                         (int)w->shape[2], (int)w->shape[3]));
    CUDNN_TRY(cudnnSetConvolution2dDescriptor(s->cd, p->pad, p->pad, p->stride, p->stride, 1, 1,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_TRY(cudnnSetConvolutionGroupCount(s->cd, p->groups));
    /* float32 stays float32 (no TF32 tensor cores); bf16/fp16 use tensor cores */
    CUDNN_TRY(cudnnSetConvolutionMathType(s->cd, s->prec == CUDA_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
    if (node->op == PN_OP_CONV2D_FWD && node->in[2]) {
        CUDNN_TRY(cudnnCreateTensorDescriptor(&s->yf));
        CUDNN_TRY(cudnnCreateTensorDescriptor(&s->bd));
        PN_TRY(set_tensor(s->yf, CUDNN_DATA_FLOAT, y));
        CUDNN_TRY(cudnnSetTensor4dDescriptor(s->bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, (int)y->shape[1], 1, 1));
    }
    return PN_OK;
}

/* cuDNN's heuristic ranking of the algorithms for this node's direction. */
static pn_status rank_algos(cuda_ctx *ctx, const conv_state *s, pn_op op, algo_perf *out, int *count) {
    *count = 0;
    int n = 0;
    if (op == PN_OP_CONV2D_FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[MAX_ALGOS];
        CUDNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(ctx->dnn, s->xd, s->wd, s->cd, s->yd, MAX_ALGOS, &n, perf));
        for (int i = 0; i < n; i++)
            out[i] =
                (algo_perf){(int)perf[i].algo, perf[i].status, perf[i].memory, perf[i].determinism, perf[i].mathType};
    } else if (op == PN_OP_CONV2D_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_ALGOS];
        CUDNN_TRY(
            cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx->dnn, s->wd, s->yd, s->cd, s->xd, MAX_ALGOS, &n, perf));
        for (int i = 0; i < n; i++)
            out[i] =
                (algo_perf){(int)perf[i].algo, perf[i].status, perf[i].memory, perf[i].determinism, perf[i].mathType};
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[MAX_ALGOS];
        CUDNN_TRY(
            cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx->dnn, s->xd, s->yd, s->cd, s->wd, MAX_ALGOS, &n, perf));
        for (int i = 0; i < n; i++)
            out[i] =
                (algo_perf){(int)perf[i].algo, perf[i].status, perf[i].memory, perf[i].determinism, perf[i].mathType};
    }
    *count = n;
    return PN_OK;
}

static pn_status workspace_size(cuda_ctx *ctx, const conv_state *s, pn_op op, int algo, size_t *bytes) {
    if (op == PN_OP_CONV2D_FWD)
        CUDNN_TRY(cudnnGetConvolutionForwardWorkspaceSize(ctx->dnn, s->xd, s->wd, s->cd, s->yd,
                                                          (cudnnConvolutionFwdAlgo_t)algo, bytes));
    else if (op == PN_OP_CONV2D_BWD_DATA)
        CUDNN_TRY(cudnnGetConvolutionBackwardDataWorkspaceSize(ctx->dnn, s->wd, s->yd, s->cd, s->xd,
                                                               (cudnnConvolutionBwdDataAlgo_t)algo, bytes));
    else
        CUDNN_TRY(cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx->dnn, s->xd, s->yd, s->cd, s->wd,
                                                                 (cudnnConvolutionBwdFilterAlgo_t)algo, bytes));
    return PN_OK;
}

/* FFT and Winograd algorithms transform whole tiles: a NaN or Inf in one input pixel spreads over its tile
 * (where a direct convolution, ref's and PyTorch's CPU one, keeps it in the receptive field) and their
 * rounding error is larger. They are never chosen. */
static bool transforms_tiles(pn_op op, int algo) {
    if (op == PN_OP_CONV2D_FWD)
        return algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT || algo == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
               algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || algo == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
    if (op == PN_OP_CONV2D_BWD_DATA)
        return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
               algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
               algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
    return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
           algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

/* The best-ranked algorithm that works, fits the workspace limit, transforms no tiles, keeps float32 off TF32
 * and, when asked, is deterministic. */
static pn_status choose_algo(cuda_ctx *ctx, conv_state *s, const pn_node *node) {
    algo_perf perf[MAX_ALGOS];
    int n;
    PN_TRY(rank_algos(ctx, s, node->op, perf, &n));
    for (int i = 0; i < n; i++) {
        const algo_perf *a = &perf[i];
        if (a->status != CUDNN_STATUS_SUCCESS || a->memory > ctx->work_limit) continue;
        if (transforms_tiles(node->op, a->algo)) continue;
        if (ctx->deterministic && a->determinism != CUDNN_DETERMINISTIC) continue;
        if (s->prec == CUDA_FP32 && a->math != CUDNN_FMA_MATH && a->math != CUDNN_DEFAULT_MATH) continue;
        if (s->prec != CUDA_FP32) CUDNN_TRY(cudnnSetConvolutionMathType(s->cd, a->math));
        s->algo = a->algo;
        PN_TRY(workspace_size(ctx, s, node->op, s->algo, &s->ws_bytes));
        pn_log_debug("cuda: %s %s: algorithm %d, workspace %zu bytes, %s", pn_op_name(node->op),
                     node->label ? node->label : "", s->algo, s->ws_bytes, pn_cuda_precision_name(s->prec));
        return PN_OK;
    }
    return pn_error(PN_ERR_BACKEND, "cuda: no cuDNN %s algorithm for %s (%d ranked; %s%s, workspace limit %zu MB)",
                    pn_op_name(node->op), node->label ? node->label : "?", n, pn_cuda_precision_name(s->prec),
                    ctx->deterministic ? ", deterministic" : "", ctx->work_limit >> 20);
}

static pn_status prepare_state(cuda_ctx *ctx, conv_state *s, const pn_node *node) {
    s->prec = ctx->precision;
    PN_TRY(make_descriptors(s, node));
    PN_TRY(choose_algo(ctx, s, node));
    size_t low = s->prec == CUDA_FP32 ? 0 : 2; /* bytes per element of the operand copies */
    s->off_a = 0;
    s->off_b = s->off_a + cuda_align(low * cuda_numel(node->in[0]));
    s->off_c = s->off_b + cuda_align(low * cuda_numel(node->in[1]));
    s->off_ws = s->off_c + cuda_align(low * cuda_numel(node->out[0]));
    return pn_cuda_work_reserve(ctx, s->off_ws + s->ws_bytes);
}

pn_status pn_cuda_conv2d_prepare(cuda_ctx *ctx, pn_node *node) {
    pn_cuda_conv2d_release(ctx, node);
    conv_state *s = (conv_state *)calloc(1, sizeof *s);
    if (!s) return pn_error(PN_ERR_NOMEM, "out of memory preparing %s", pn_op_name(node->op));
    pn_status st = prepare_state(ctx, s, node);
    if (st != PN_OK) {
        state_free(s);
        return st;
    }
    node->state = s;
    return PN_OK;
}

void pn_cuda_conv2d_release(cuda_ctx *ctx, pn_node *node) {
    (void)ctx;
    state_free((conv_state *)node->state);
    node->state = NULL;
}

/* ---------------- compute ---------------- */

static void *work_at(cuda_ctx *ctx, size_t offset) { return ctx->work ? (char *)ctx->work + offset : NULL; }

/* The operands cuDNN reads: the float32 tensors themselves, or their rounded copies in the workspace. */
static pn_status operands(cuda_ctx *ctx, const conv_state *s, const pn_node *node, const void **a, const void **b) {
    *a = cuda_ptr(node->in[0]);
    *b = cuda_ptr(node->in[1]);
    if (s->prec == CUDA_FP32) return PN_OK;
    PN_TRY(pn_cuda_to_low(ctx, s->prec, work_at(ctx, s->off_a), cuda_ptr(node->in[0]), cuda_numel(node->in[0])));
    PN_TRY(pn_cuda_to_low(ctx, s->prec, work_at(ctx, s->off_b), cuda_ptr(node->in[1]), cuda_numel(node->in[1])));
    *a = work_at(ctx, s->off_a);
    *b = work_at(ctx, s->off_b);
    return PN_OK;
}

/* Where cuDNN writes: the float32 output, or the low-precision copy that finish() widens. */
static void *result(cuda_ctx *ctx, const conv_state *s, const pn_node *node) {
    return s->prec == CUDA_FP32 ? (void *)cuda_ptr(node->out[0]) : work_at(ctx, s->off_c);
}

static pn_status finish(cuda_ctx *ctx, const conv_state *s, const pn_node *node, bool accumulate) {
    if (s->prec == CUDA_FP32) return PN_OK;
    return pn_cuda_from_low(ctx, s->prec, cuda_ptr(node->out[0]), work_at(ctx, s->off_c), cuda_numel(node->out[0]),
                            accumulate);
}

pn_status pn_cuda_conv2d_fwd(cuda_ctx *ctx, pn_node *node) {
    const conv_state *s = (const conv_state *)node->state;
    const void *x, *w;
    PN_TRY(operands(ctx, s, node, &x, &w));
    const float one = 1.0f, zero = 0.0f;
    CUDNN_TRY(cudnnConvolutionForward(ctx->dnn, &one, s->xd, x, s->wd, w, s->cd, (cudnnConvolutionFwdAlgo_t)s->algo,
                                      work_at(ctx, s->off_ws), s->ws_bytes, &zero, s->yd, result(ctx, s, node)));
    PN_TRY(finish(ctx, s, node, false));
    if (node->in[2])
        CUDNN_TRY(cudnnAddTensor(ctx->dnn, &one, s->bd, cuda_ptr(node->in[2]), &one, s->yf, cuda_ptr(node->out[0])));
    return PN_OK;
}

pn_status pn_cuda_conv2d_bwd_data(cuda_ctx *ctx, pn_node *node) {
    const conv_state *s = (const conv_state *)node->state;
    const void *dy, *w;
    PN_TRY(operands(ctx, s, node, &dy, &w));
    const float one = 1.0f, zero = 0.0f;
    CUDNN_TRY(cudnnConvolutionBackwardData(ctx->dnn, &one, s->wd, w, s->yd, dy, s->cd,
                                           (cudnnConvolutionBwdDataAlgo_t)s->algo, work_at(ctx, s->off_ws), s->ws_bytes,
                                           &zero, s->xd, result(ctx, s, node)));
    return finish(ctx, s, node, false);
}

struct sum_dy {
    const float *dy;
    __device__ void operator()(size_t c, size_t at, double *v) const {
        (void)c;
        v[0] += dy[at];
    }
};

/* db[c] += the channel's total (in double, as ref). */
__global__ void bias_grad_kernel(float *db, const double *partials, unsigned chunks, size_t channels) {
    CUDA_GRID_LOOP(c, channels) {
        double v[1];
        cuda_channel_total<1>(partials, c, chunks, v);
        db[c] += (float)v[0];
    }
}

/* db += the sum of dy over batch and pixels, per channel. */
static pn_status bias_grad(cuda_ctx *ctx, float *db, const pn_tensor *tdy) {
    size_t n = (size_t)tdy->shape[0], c = (size_t)tdy->shape[1], hw = (size_t)(tdy->shape[2] * tdy->shape[3]);
    unsigned chunks = cuda_channel_chunks(c, n * hw, 1, CUDA_REDUCE_DOUBLES);
    dim3 grid((unsigned)c, chunks);
    cuda_channel_partials<1>
        <<<grid, CUDA_THREADS, 0, ctx->stream>>>(ctx->reduce, c, hw, n * hw, chunks, sum_dy{cuda_ptr(tdy)});
    CUDA_LAUNCHED(cuda_channel_partials);
    bias_grad_kernel<<<cuda_blocks(c), CUDA_THREADS, 0, ctx->stream>>>(db, ctx->reduce, chunks, c);
    CUDA_LAUNCHED(bias_grad_kernel);
    return PN_OK;
}

pn_status pn_cuda_conv2d_bwd_weights(cuda_ctx *ctx, pn_node *node) {
    const conv_state *s = (const conv_state *)node->state;
    const void *dy, *x;
    PN_TRY(operands(ctx, s, node, &dy, &x));
    /* float32 accumulates in place (beta 1); bf16/fp16 write a fresh copy that finish() adds */
    const float one = 1.0f, zero = 0.0f;
    const float *beta = s->prec == CUDA_FP32 ? &one : &zero;
    CUDNN_TRY(cudnnConvolutionBackwardFilter(ctx->dnn, &one, s->xd, x, s->yd, dy, s->cd,
                                             (cudnnConvolutionBwdFilterAlgo_t)s->algo, work_at(ctx, s->off_ws),
                                             s->ws_bytes, beta, s->wd, result(ctx, s, node)));
    PN_TRY(finish(ctx, s, node, true));
    if (node->out[1]) PN_TRY(bias_grad(ctx, cuda_ptr(node->out[1]), node->in[0]));
    return PN_OK;
}
