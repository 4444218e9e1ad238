/* cuda: the CUDA backend's internals: context, the CHECK macro family, launch helpers, per-op functions. */
#ifndef PN_CUDA_H
#define PN_CUDA_H

#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/backend.h"

/* Arithmetic of the convolutions (everything else is float32). */
typedef enum cuda_precision { CUDA_FP32 = 0, CUDA_BF16, CUDA_FP16 } cuda_precision;

/* Threads per block of every kernel, and the most blocks a grid-stride or reduction kernel launches. */
#define CUDA_THREADS 256
#define CUDA_MAX_BLOCKS 1024
/* Doubles in the reduction scratch: CUDA_MAX_BLOCKS partials of up to 8 sums each. */
#define CUDA_REDUCE_DOUBLES (CUDA_MAX_BLOCKS * 8)
/* Bytes of the pinned staging buffer tensor_set/tensor_get copy through (in chunks). */
#define CUDA_PINNED_BYTES ((size_t)8 << 20)

/* The backend's shared state. Every kernel and library call runs on `stream`, in node order. */
typedef struct cuda_ctx {
    int device;
    char device_name[256];
    cudaStream_t stream;
    cudnnHandle_t dnn;
    /* The workspace arena: cuDNN workspaces and low-precision operand copies. prepare grows it (once per
     * shape); compute never allocates. */
    void *work;
    size_t work_bytes;
    size_t work_limit; /* the most workspace one convolution may ask for */
    double *reduce;    /* CUDA_REDUCE_DOUBLES doubles: partial sums of the reductions */
    void *pinned;      /* CUDA_PINNED_BYTES of page-locked host memory */
    cuda_precision precision;
    bool deterministic;
} cuda_ctx;

/* ---- the CHECK family: a failed CUDA, cuDNN or launch call becomes pn_error naming the call ---- */

/* Sets the error "<function> failed: <message>" (the function name is cut from the call text) and returns
 * PN_ERR_BACKEND. */
pn_status pn_cuda_fail(const char *call, const char *message, const char *file, int line);

#define CUDA_TRY(call)                                                                                                 \
    do {                                                                                                               \
        cudaError_t cuda_st_ = (call);                                                                                 \
        if (cuda_st_ != cudaSuccess) return pn_cuda_fail(#call, cudaGetErrorString(cuda_st_), __FILE__, __LINE__);     \
    } while (0)

#define CUDNN_TRY(call)                                                                                                \
    do {                                                                                                               \
        cudnnStatus_t cudnn_st_ = (call);                                                                              \
        if (cudnn_st_ != CUDNN_STATUS_SUCCESS)                                                                         \
            return pn_cuda_fail(#call, cudnnGetErrorString(cudnn_st_), __FILE__, __LINE__);                            \
    } while (0)

/* After a <<<...>>> launch: a bad configuration shows up here ("kernel" names it in the message). */
#define CUDA_LAUNCHED(kernel)                                                                                          \
    do {                                                                                                               \
        cudaError_t cuda_st_ = cudaGetLastError();                                                                     \
        if (cuda_st_ != cudaSuccess)                                                                                   \
            return pn_cuda_fail(#kernel "<<<>>>", cudaGetErrorString(cuda_st_), __FILE__, __LINE__);                   \
    } while (0)

/* ---- helpers ---- */

/* Device pointer of a node slot (NULL for an empty optional slot). */
static inline float *cuda_ptr(const pn_tensor *t) { return t ? (float *)((char *)t->buf->handle + t->offset) : NULL; }

static inline size_t cuda_numel(const pn_tensor *t) { return (size_t)pn_tensor_numel(t); }

/* Blocks for a grid-stride loop over n elements (at least 1, at most CUDA_MAX_BLOCKS). */
static inline unsigned cuda_blocks(size_t n) {
    size_t b = (n + CUDA_THREADS - 1) / CUDA_THREADS;
    return (unsigned)(b < 1 ? 1 : b > CUDA_MAX_BLOCKS ? CUDA_MAX_BLOCKS : b);
}

/* A grid-stride loop over [0, n) with size_t indices (inside a kernel). */
#define CUDA_GRID_LOOP(i, n)                                                                                           \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)(n); i += (size_t)gridDim.x * blockDim.x)

/* Grows the workspace arena to at least `bytes` (prepare only: it synchronizes and reallocates). */
pn_status pn_cuda_work_reserve(cuda_ctx *ctx, size_t bytes);

/* Rounds a byte count up to 256 (the alignment of every part of the workspace). */
static inline size_t cuda_align(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

/* ---- mixed precision (convert.cu) ---- */

/* dst[i] = src[i] rounded to bf16 / fp16 (round to nearest even); dst holds n 2-byte values. */
pn_status pn_cuda_to_low(cuda_ctx *ctx, cuda_precision prec, void *dst, const float *src, size_t n);
/* dst[i] = (accumulate ? dst[i] : 0) + float(src[i]). */
pn_status pn_cuda_from_low(cuda_ctx *ctx, cuda_precision prec, float *dst, const void *src, size_t n, bool accumulate);
/* "fp32", "bf16" or "fp16". */
const char *pn_cuda_precision_name(cuda_precision prec);

/* ---- per-op functions: one per op in ops.def (each in its own file) ---- */

#define OP(E, name, P, nin, nout, ...) pn_status pn_cuda_##name(cuda_ctx *ctx, pn_node *node);
#include "core/ops.def"
#undef OP

/* Convolutions keep per-node state (descriptors, the chosen algorithm, workspace layout). */
pn_status pn_cuda_conv2d_prepare(cuda_ctx *ctx, pn_node *node);
void pn_cuda_conv2d_release(cuda_ctx *ctx, pn_node *node);

/* The backend's collectives slot (nccl.cu, built where nccl.h was found): NCCL, or an error if it is not installed. */
struct pn_collectives_i;
pn_status pn_cuda_collectives(pn_backend *be, const struct pn_collectives_i **out);

#endif
