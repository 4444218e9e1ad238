/* rng: counter-based Philox4x32-10; every random number is a pure function of (seed, purpose, a, b, index). */
#ifndef PN_RNG_H
#define PN_RNG_H

#include <stdint.h>

/* What a stream is for, so different uses never share numbers. */
enum {
    PN_RNG_INIT = 1,    /* weight initialisation; a = parameter index */
    PN_RNG_SHUFFLE = 2, /* sample order; a = epoch */
    PN_RNG_SAMPLER = 3, /* positive-share sampler; a = epoch */
    PN_RNG_AUGMENT = 4, /* augmentation; a = epoch, b = sample index */
    PN_RNG_TEST = 5,    /* test inputs */
    PN_RNG_SYNTH = 6,   /* synthetic data set; a = image index */
};

/* One Philox4x32-10 block: 4 words from a 64-bit key and a 128-bit counter. */
void pn_philox4x32(uint64_t key, const uint32_t ctr[4], uint32_t out[4]);

/* A sequential view of the stream (seed, purpose, a, b); draws are numbered from 0. */
typedef struct pn_rng {
    uint64_t seed;
    uint32_t purpose, a, b;
    uint64_t index; /* next 32-bit word to hand out */
    /* the last Philox block drawn (one block gives four words): block number + 1 (0: none yet) and its words */
    uint64_t cached_block_plus1;
    uint32_t cached[4];
} pn_rng;

/* Starts the stream (seed, purpose, a, b) at draw 0. */
pn_rng pn_rng_make(uint64_t seed, uint32_t purpose, uint32_t a, uint32_t b);
/* Moves the stream to draw `index` (the next word handed out is pn_rng_word_at(r, index)). */
void pn_rng_seek(pn_rng *r, uint64_t index);
/* The i-th 32-bit word of the stream, independent of how many were drawn before. */
uint32_t pn_rng_word_at(const pn_rng *r, uint64_t i);
uint32_t pn_rng_u32(pn_rng *r);
/* Uniform in [0, 1) with 24 bits (exactly representable as float). */
float pn_rng_uniform(pn_rng *r);
/* Uniform in [lo, hi). */
float pn_rng_uniform_range(pn_rng *r, float lo, float hi);
/* Standard normal (Box-Muller on two uniforms, in double). */
float pn_rng_normal(pn_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint32_t pn_rng_below(pn_rng *r, uint32_t n);

#endif
