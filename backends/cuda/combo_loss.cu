/* combo_loss: the SIIM ComboLoss and its gradient on the device with core/combo_loss.h's formulas: the five
 * batch sums in double (two-stage, deterministic), then the loss value or the per-pixel gradient. */
#include "core/combo_loss.h"
#include "cuda.h"
#include "reduce.cuh"

/* Partial sums per block: bce, focal, inter, sum_s, sum_t at partials[block * 5 + k]. */
__global__ void combo_partial_kernel(double *partials, const float *x, const float *t, size_t n) {
    double v[5] = {0.0, 0.0, 0.0, 0.0, 0.0};
    CUDA_GRID_LOOP(i, n) {
        double bce, focal, s;
        pn_combo_terms(x[i], t[i], &bce, &focal, &s);
        v[0] += bce;
        v[1] += focal;
        v[2] += s * t[i];
        v[3] += s;
        v[4] += t[i];
    }
    cuda_block_sum<5>(v);
    if (threadIdx.x == 0)
        for (int k = 0; k < 5; k++) partials[(size_t)blockIdx.x * 5 + k] = v[k];
}

/* One block: the totals into *sums, and (when loss is not NULL) the floored loss value. */
__global__ void combo_final_kernel(pn_combo_sums *sums, float *loss, const double *partials, unsigned blocks,
                                   double count, pn_combo_loss_params p) {
    double v[5];
    cuda_sum_partials<5>(partials, blocks, v);
    if (threadIdx.x != 0) return;
    pn_combo_sums a = {v[0], v[1], v[2], v[3], v[4], count};
    *sums = a;
    if (loss) *loss = (float)pn_combo_loss_value(&a, &p);
}

__global__ void combo_grad_kernel(float *dx, const float *x, const float *t, size_t n, const pn_combo_sums *sums,
                                  pn_combo_loss_params p) {
    pn_combo_sums a = *sums;
    bool floored = pn_combo_total(&a, &p) < PN_COMBO_LOSS_FLOOR;
    CUDA_GRID_LOOP(i, n) dx[i] = pn_combo_grad(x[i], t[i], &a, &p, floored);
}

/* Reduces logits x against target t; the sums land after the partials in the reduction scratch. */
static pn_status combo_sums(cuda_ctx *ctx, const pn_node *node, const pn_combo_loss_params *p, float *loss,
                            pn_combo_sums **sums) {
    size_t n = cuda_numel(node->in[0]);
    unsigned blocks = cuda_blocks(n);
    *sums = (pn_combo_sums *)(ctx->reduce + (size_t)CUDA_MAX_BLOCKS * 5);
    combo_partial_kernel<<<blocks, CUDA_THREADS, 0, ctx->stream>>>(ctx->reduce, cuda_ptr(node->in[0]),
                                                                   cuda_ptr(node->in[1]), n);
    CUDA_LAUNCHED(combo_partial_kernel);
    combo_final_kernel<<<1, CUDA_THREADS, 0, ctx->stream>>>(*sums, loss, ctx->reduce, blocks, (double)n, *p);
    CUDA_LAUNCHED(combo_final_kernel);
    return PN_OK;
}

pn_status pn_cuda_combo_loss_fwd(cuda_ctx *ctx, pn_node *node) {
    pn_combo_sums *sums;
    return combo_sums(ctx, node, &node->p.combo_loss_fwd, cuda_ptr(node->out[0]), &sums);
}

pn_status pn_cuda_combo_loss_bwd(cuda_ctx *ctx, pn_node *node) {
    const pn_combo_loss_params *p = &node->p.combo_loss_bwd;
    pn_combo_sums *sums;
    PN_TRY(combo_sums(ctx, node, p, NULL, &sums));
    size_t n = cuda_numel(node->in[0]);
    combo_grad_kernel<<<cuda_blocks(n), CUDA_THREADS, 0, ctx->stream>>>(cuda_ptr(node->out[0]), cuda_ptr(node->in[0]),
                                                                        cuda_ptr(node->in[1]), n, sums, *p);
    CUDA_LAUNCHED(combo_grad_kernel);
    return PN_OK;
}
