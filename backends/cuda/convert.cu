/* convert: float32 <-> bf16/fp16 copies for the mixed-precision convolutions (an autocast-like design: tensors
 * stay float32, a convolution's operands are rounded into the workspace and its result widened back). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda.h"

template <typename T> __device__ T to_low(float v);
template <> __device__ __nv_bfloat16 to_low<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __half to_low<__half>(float v) { return __float2half_rn(v); }

__device__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ float to_float(__half v) { return __half2float(v); }

template <typename T> __global__ void to_low_kernel(T *dst, const float *src, size_t n) {
    CUDA_GRID_LOOP(i, n)
    dst[i] = to_low<T>(src[i]);
}

template <typename T> __global__ void from_low_kernel(float *dst, const T *src, size_t n, bool accumulate) {
    CUDA_GRID_LOOP(i, n)
    dst[i] = accumulate ? dst[i] + to_float(src[i]) : to_float(src[i]);
}

pn_status pn_cuda_to_low(cuda_ctx *ctx, cuda_precision prec, void *dst, const float *src, size_t n) {
    if (prec == CUDA_BF16)
        to_low_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>((__nv_bfloat16 *)dst, src, n);
    else
        to_low_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>((__half *)dst, src, n);
    CUDA_LAUNCHED(to_low_kernel);
    return PN_OK;
}

pn_status pn_cuda_from_low(cuda_ctx *ctx, cuda_precision prec, float *dst, const void *src, size_t n, bool accumulate) {
    if (prec == CUDA_BF16)
        from_low_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(dst, (const __nv_bfloat16 *)src, n,
                                                                          accumulate);
    else
        from_low_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(dst, (const __half *)src, n, accumulate);
    CUDA_LAUNCHED(from_low_kernel);
    return PN_OK;
}
