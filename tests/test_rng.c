/* test_rng: Philox4x32-10 known answers (Random123's KAT vectors) and stream independence. */
#include "core/rng.h"
#include "tests/check.h"

static void kat(uint64_t key, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, const uint32_t expect[4]) {
    uint32_t ctr[4] = {c0, c1, c2, c3}, out[4];
    pn_philox4x32(key, ctr, out);
    for (int i = 0; i < 4; i++) CHECK_MSG(out[i] == expect[i], "word %d: %08x vs %08x", i, out[i], expect[i]);
}

int main(void) {
    const uint32_t zero[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    const uint32_t ones[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
    const uint32_t pi[4] = {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u};
    kat(0, 0, 0, 0, 0, zero);
    kat(0xffffffffffffffffull, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, ones);
    kat(((uint64_t)0x299f31d0u << 32) | 0xa4093822u, 0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, pi);

    /* Random access equals sequential drawing; different purposes differ. */
    pn_rng a = pn_rng_make(42, PN_RNG_INIT, 3, 0), b = pn_rng_make(42, PN_RNG_SHUFFLE, 3, 0);
    int same = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        uint32_t w = pn_rng_u32(&a);
        CHECK(w == pn_rng_word_at(&a, i));
        same += w == pn_rng_u32(&b);
    }
    CHECK(same < 5);

    /* Uniform and normal moments. */
    pn_rng r = pn_rng_make(7, PN_RNG_TEST, 0, 0);
    double su = 0, sn = 0, sn2 = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        float u = pn_rng_uniform(&r);
        CHECK(u >= 0.0f && u < 1.0f);
        su += u;
        float z = pn_rng_normal(&r);
        sn += z;
        sn2 += (double)z * z;
    }
    CHECK_NEAR(su / n, 0.5, 0.005);
    CHECK_NEAR(sn / n, 0.0, 0.01);
    CHECK_NEAR(sn2 / n, 1.0, 0.02);
    for (int i = 0; i < 1000; i++) CHECK(pn_rng_below(&r, 7) < 7);
    return check_report("test_rng");
}
