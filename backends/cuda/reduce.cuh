/* reduce: deterministic block-wide sums of K doubles (fixed tree order) for the reduction kernels. */
#ifndef PN_CUDA_REDUCE_CUH
#define PN_CUDA_REDUCE_CUH

#include "cuda.h"

/* Sums v[0..K) over the CUDA_THREADS threads of the block; thread 0 gets the totals in v. Every thread must
 * call it. The order of additions depends only on the block size, so results repeat bit for bit. */
template <int K> __device__ void cuda_block_sum(double v[K]) {
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
template <int K> __device__ void cuda_sum_partials(const double *partials, unsigned blocks, double v[K]) {
    for (int k = 0; k < K; k++) v[k] = 0.0;
    for (unsigned b = threadIdx.x; b < blocks; b += CUDA_THREADS)
        for (int k = 0; k < K; k++) v[k] += partials[(size_t)b * K + k];
    cuda_block_sum<K>(v);
}

/* ---- per-channel sums over an NCHW tensor, split into `chunks` blocks per channel so that a layer with few
 * channels and many pixels still fills the GPU ---- */

/* Chunks per channel for `channels` channels of `count` elements each with K sums, given `room` doubles of
 * scratch for the partials: about two blocks per SM in all, at least 4096 elements per block. */
static inline unsigned cuda_channel_chunks(size_t channels, size_t count, int k, size_t room) {
    size_t want = (264 + channels - 1) / channels, by_size = (count + 4095) / 4096, by_room = room / (channels * k);
    size_t s = want < by_size ? want : by_size;
    if (s > by_room) s = by_room;
    return (unsigned)(s < 1 ? 1 : s);
}

/* Grid (channels, chunks): block (c, s) adds f(c, at, v) over its share of channel c's elements (element j of
 * the channel is at ((j / hw) * c_total + c) * hw + j % hw) into partials[(c * chunks + s) * K + k]. */
template <int K, typename F>
__global__ void cuda_channel_partials(double *partials, size_t c_total, size_t hw, size_t count, unsigned chunks, F f) {
    size_t c = blockIdx.x;
    double v[K];
    for (int k = 0; k < K; k++) v[k] = 0.0;
    for (size_t j = (size_t)blockIdx.y * CUDA_THREADS + threadIdx.x; j < count; j += (size_t)chunks * CUDA_THREADS)
        f(c, ((j / hw) * c_total + c) * hw + j % hw, v);
    cuda_block_sum<K>(v);
    if (threadIdx.x == 0)
        for (int k = 0; k < K; k++) partials[((size_t)c * chunks + blockIdx.y) * K + k] = v[k];
}

/* Channel c's totals from its chunks' partials, added in chunk order. */
template <int K> __device__ void cuda_channel_total(const double *partials, size_t c, unsigned chunks, double v[K]) {
    for (int k = 0; k < K; k++) v[k] = 0.0;
    for (unsigned s = 0; s < chunks; s++)
        for (int k = 0; k < K; k++) v[k] += partials[((size_t)c * chunks + s) * K + k];
}

#endif
