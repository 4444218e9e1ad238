/* rng: counter-based Philox4x32-10; every random number is a pure function of (seed, purpose, a, b, index). */
#include "rng.h"

#include <math.h>

static void philox_round(uint32_t c[4], const uint32_t k[2]) {
    const uint64_t p0 = (uint64_t)0xD2511F53u * c[0];
    const uint64_t p1 = (uint64_t)0xCD9E8D57u * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

void pn_philox4x32(uint64_t key, const uint32_t ctr[4], uint32_t out[4]) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    for (int round = 0; round < 10; round++) {
        philox_round(c, k);
        k[0] += 0x9E3779B9u;
        k[1] += 0xBB67AE85u;
    }
    for (int i = 0; i < 4; i++) out[i] = c[i];
}

pn_rng pn_rng_make(uint64_t seed, uint32_t purpose, uint32_t a, uint32_t b) {
    pn_rng r = {.seed = seed, .purpose = purpose, .a = a, .b = b, .index = 0, .cached_block_plus1 = 0};
    return r;
}

void pn_rng_seek(pn_rng *r, uint64_t index) { r->index = index; }

/* Counter layout: (block index low, block index high ^ purpose<<24, a, b). */
static void block_words(const pn_rng *r, uint64_t block, uint32_t out[4]) {
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32) ^ (r->purpose << 24), r->a, r->b};
    pn_philox4x32(r->seed, ctr, out);
}

uint32_t pn_rng_word_at(const pn_rng *r, uint64_t i) {
    uint32_t out[4];
    block_words(r, i >> 2, out);
    return out[i & 3];
}

/* The same words as pn_rng_word_at, computing each block once for its four words. */
uint32_t pn_rng_u32(pn_rng *r) {
    uint64_t i = r->index++, block = i >> 2;
    if (r->cached_block_plus1 != block + 1) {
        block_words(r, block, r->cached);
        r->cached_block_plus1 = block + 1;
    }
    return r->cached[i & 3];
}

float pn_rng_uniform(pn_rng *r) { return (float)(pn_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float pn_rng_uniform_range(pn_rng *r, float lo, float hi) { return lo + (hi - lo) * pn_rng_uniform(r); }

float pn_rng_normal(pn_rng *r) {
    double u1 = ((double)(pn_rng_u32(r) >> 8) + 0.5) / 16777216.0; /* (0, 1) */
    double u2 = (double)(pn_rng_u32(r) >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t pn_rng_below(pn_rng *r, uint32_t n) {
    uint32_t limit = UINT32_MAX - UINT32_MAX % n;
    for (;;) {
        uint32_t x = pn_rng_u32(r);
        if (x < limit) return x % n;
    }
}
