/* concat: joining two NCHW tensors along channels and the inverse (split), as one strided copy per part. */
#include "cuda.h"

/* Copies n rows of `row` bytes between tensors whose rows are dst_pitch / src_pitch bytes apart. */
static pn_status copy_rows(cuda_ctx *ctx, void *dst, size_t dst_pitch, const void *src, size_t src_pitch, size_t row,
                           size_t n) {
    CUDA_TRY(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row, n, cudaMemcpyDeviceToDevice, ctx->stream));
    return PN_OK;
}

pn_status pn_cuda_concat(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *a = node->in[0], *b = node->in[1], *y = node->out[0];
    size_t n = (size_t)y->shape[0], hw = (size_t)(y->shape[2] * y->shape[3]) * sizeof(float);
    size_t cy = (size_t)y->shape[1], ca = (size_t)a->shape[1], cb = cy - ca;
    float *yp = cuda_ptr(y);
    PN_TRY(copy_rows(ctx, yp, cy * hw, cuda_ptr(a), ca * hw, ca * hw, n));
    return copy_rows(ctx, (char *)yp + ca * hw, cy * hw, cuda_ptr(b), cb * hw, cb * hw, n);
}

pn_status pn_cuda_split(cuda_ctx *ctx, pn_node *node) {
    const pn_tensor *dy = node->in[0], *da = node->out[0], *db = node->out[1];
    size_t n = (size_t)dy->shape[0], hw = (size_t)(dy->shape[2] * dy->shape[3]) * sizeof(float);
    size_t cy = (size_t)dy->shape[1], ca = (size_t)da->shape[1], cb = cy - ca;
    const float *dyp = cuda_ptr(dy);
    PN_TRY(copy_rows(ctx, cuda_ptr(da), ca * hw, dyp, cy * hw, ca * hw, n));
    if (db) PN_TRY(copy_rows(ctx, cuda_ptr(db), cb * hw, (const char *)dyp + ca * hw, cy * hw, cb * hw, n));
    return PN_OK;
}
