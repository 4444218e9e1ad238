/* reduce: deterministic block-wide sums of K doubles (fixed tree order) for the reduction kernels. */
#ifndef PN_CUDA_REDUCE_CUH
#define PN_CUDA_REDUCE_CUH

#include "cuda.h"

/* Sums v[0..K) over the CUDA_THREADS threads of the block; thread 0 gets the totals in v. Every thread must
 * call it. The order of additions depends only on the block size, so results repeat bit for bit. */
template <int K>
__device__ void cuda_block_sum(double v[K]) {
    __shared__ double s[K][CUDA_THREADS];
    for (int k = 0; k < K; k++) s[k][threadIdx.x] = v[k];
    __syncthreads();
    for (unsigned half = CUDA_THREADS / 2; half > 0; half /= 2) {
        if (threadIdx.x < half)
            for (int k = 0; k < K; k++) s[k][threadIdx.x] += s[k][threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        for (int k = 0; k < K; k++) v[k] = s[k][0];
    __syncthreads();
}

/* Second stage of a two-stage sum: one block adds the `blocks` partials (partials[b * K + k]) into v (thread 0). */
template <int K>
__device__ void cuda_sum_partials(const double *partials, unsigned blocks, double v[K]) {
    for (int k = 0; k < K; k++) v[k] = 0.0;
    for (unsigned b = threadIdx.x; b < blocks; b += CUDA_THREADS)
        for (int k = 0; k < K; k++) v[k] += partials[(size_t)b * K + k];
    cuda_block_sum<K>(v);
}

#endif
