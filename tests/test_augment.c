/* test_augment: warps, remaps and LUTs against OpenCV and albumentations goldens, determinism, parser round trips and
 * errors. */
#include <stdlib.h>

#include "core/rng.h"
#include "data/augment.h"
#include "data/npy.h"
#include "tests/check.h"

/* Rotate / ShiftScaleRotate against cv2.warpAffine (tests/ref/make_augment_golden.py). */
static void test_warp_golden(void) {
    pn_npy in, cases, gold;
    if (pn_npy_read("golden/augment_input.npy", 3, 3, &in) != PN_OK ||
        pn_npy_read("golden/augment_cases.npy", 2, 2, &cases) != PN_OK ||
        pn_npy_read("golden/augment_warp.npy", 4, 4, &gold) != PN_OK) {
        CHECK_MSG(0, "golden files: %s", pn_last_error());
        return;
    }
    int h = (int)in.shape[1], w = (int)in.shape[2], k = (int)cases.shape[0];
    size_t n = (size_t)w * h;
    uint8_t *img = malloc(n), *mask = malloc(n), *out = malloc(n);
    for (size_t i = 0; i < n; i++) img[i] = (uint8_t)in.data[i], mask[i] = (uint8_t)in.data[n + i];
    for (int c = 0; c < k; c++) {
        const float *p = cases.data + c * 5;
        double m[6];
        pn_aug_rotation_matrix((w - 1) * 0.5, (h - 1) * 0.5, p[0], p[1], m);
        m[2] += (double)p[2] * w, m[5] += (double)p[3] * h;
        pn_border border = p[4] != 0 ? PN_BORDER_REFLECT101 : PN_BORDER_CONSTANT;
        const float *gi = gold.data + (size_t)c * 2 * n, *gm = gi + n;
        CHECK(pn_aug_warp_affine_u8(img, w, h, out, w, h, m, false, border) == PN_OK);
        size_t within1 = 0, exact = 0;
        int maxdiff = 0;
        for (size_t i = 0; i < n; i++) {
            int d = abs((int)out[i] - (int)gi[i]);
            within1 += d <= 1, exact += d == 0;
            maxdiff = d > maxdiff ? d : maxdiff;
        }
        CHECK_MSG(within1 >= n * 995 / 1000, "case %d: %zu of %zu pixels within 1 grey level (max diff %d)", c, within1,
                  n, maxdiff);
        if (c == 0) printf("warp case 0: %zu/%zu pixels exact, max diff %d\n", exact, n, maxdiff);
        CHECK(pn_aug_warp_affine_u8(mask, w, h, out, w, h, m, true, border) == PN_OK);
        size_t bad = 0;
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++) bad += out[y * w + x] != (uint8_t)gm[y * w + x];
        CHECK_MSG(bad == 0, "case %d: %zu interior mask pixels differ from cv2 INTER_NEAREST", c, bad);
    }
    free(img), free(mask), free(out);
    pn_free(in.data), pn_free(cases.data), pn_free(gold.data);
}

/* OpticalDistortion's map against cv2.initUndistortRectifyMap, and remap against cv2.remap. */
static void test_optical_golden(void) {
    pn_npy in, cases, gold;
    if (pn_npy_read("golden/augment_input.npy", 3, 3, &in) != PN_OK ||
        pn_npy_read("golden/augment_optical_cases.npy", 2, 2, &cases) != PN_OK ||
        pn_npy_read("golden/augment_optical.npy", 4, 4, &gold) != PN_OK) {
        CHECK_MSG(0, "golden files: %s", pn_last_error());
        return;
    }
    int h = (int)in.shape[1], w = (int)in.shape[2], k = (int)cases.shape[0];
    size_t n = (size_t)w * h;
    uint8_t *img = malloc(n), *mask = malloc(n), *out = malloc(n);
    float *mx = malloc(sizeof(float) * n), *my = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) img[i] = (uint8_t)in.data[i], mask[i] = (uint8_t)in.data[n + i];
    for (int c = 0; c < k; c++) {
        const float *p = cases.data + c * 4, *g = gold.data + (size_t)c * 4 * n;
        pn_border border = p[3] != 0 ? PN_BORDER_REFLECT101 : PN_BORDER_CONSTANT;
        pn_aug_optical_map(w, h, p[0], p[1], p[2], mx, my);
        double maxerr = 0;
        for (size_t i = 0; i < n; i++) maxerr = fmax(maxerr, fmax(fabs(mx[i] - g[i]), fabs(my[i] - g[n + i])));
        CHECK_MSG(maxerr < 2e-3, "case %d: map differs from cv2 by %g px", c, maxerr);
        /* remap with OpenCV's own maps */
        pn_aug_remap_u8(img, w, h, out, w, h, g, g + n, false, border);
        size_t within1 = 0, bad = 0;
        for (size_t i = 0; i < n; i++) within1 += abs((int)out[i] - (int)g[2 * n + i]) <= 1;
        CHECK_MSG(within1 >= n * 995 / 1000, "case %d: %zu of %zu pixels within 1 grey level of cv2.remap", c, within1,
                  n);
        pn_aug_remap_u8(mask, w, h, out, w, h, g, g + n, true, border);
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++) bad += out[y * w + x] != (uint8_t)g[3 * n + y * w + x];
        CHECK_MSG(bad == 0, "case %d: %zu interior mask pixels differ from cv2.remap INTER_NEAREST", c, bad);
    }
    free(img), free(mask), free(out), free(mx), free(my);
    pn_free(in.data), pn_free(cases.data), pn_free(gold.data);
}

/* albumentations 1.3.1's own functions (tests/ref/make_albu_golden.py): SSR/Rotate, GridDistortion, LUTs. */
static void test_albumentations_golden(void) {
    pn_npy in, gc, g, grc, gr, lp, lut;
    if (pn_npy_read("golden/augment_input.npy", 3, 3, &in) != PN_OK ||
        pn_npy_read("golden/albu_geo_cases.npy", 2, 2, &gc) != PN_OK ||
        pn_npy_read("golden/albu_geo.npy", 4, 4, &g) != PN_OK ||
        pn_npy_read("golden/albu_grid_cases.npy", 2, 2, &grc) != PN_OK ||
        pn_npy_read("golden/albu_grid.npy", 4, 4, &gr) != PN_OK ||
        pn_npy_read("golden/albu_lut_params.npy", 2, 2, &lp) != PN_OK ||
        pn_npy_read("golden/albu_lut.npy", 2, 2, &lut) != PN_OK) {
        CHECK_MSG(0, "golden files: %s", pn_last_error());
        return;
    }
    int h = (int)in.shape[1], w = (int)in.shape[2];
    size_t n = (size_t)w * h;
    uint8_t *img = malloc(n), *mask = malloc(n), *out = malloc(n);
    float *mx = malloc(sizeof(float) * 2 * n);
    for (size_t i = 0; i < n; i++) img[i] = (uint8_t)in.data[i], mask[i] = (uint8_t)in.data[n + i];
    /* The matrix convention: identical pixels to albumentations (both end in cv2.warpAffine). */
    for (int c = 0; c < (int)gc.shape[0]; c++) {
        const float *p = gc.data + c * 6, *gi = g.data + (size_t)c * 2 * n;
        double m[6];
        pn_aug_rotation_matrix((w - 1) * 0.5, (h - 1) * 0.5, p[1], p[0] == 0 ? p[2] : 1.0, m);
        if (p[0] == 0) m[2] += (double)p[3] * w, m[5] += (double)p[4] * h;
        pn_border border = p[5] != 0 ? PN_BORDER_REFLECT101 : PN_BORDER_CONSTANT;
        CHECK(pn_aug_warp_affine_u8(img, w, h, out, w, h, m, false, border) == PN_OK);
        size_t same = 0, bad = 0;
        for (size_t i = 0; i < n; i++) same += abs((int)out[i] - (int)gi[i]) <= 1;
        CHECK_MSG(same >= n * 995 / 1000, "albumentations geometry case %d: %zu of %zu within 1", c, same, n);
        CHECK(pn_aug_warp_affine_u8(mask, w, h, out, w, h, m, true, border) == PN_OK);
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++) bad += out[y * w + x] != (uint8_t)gi[n + y * w + x];
        CHECK_MSG(bad == 0, "albumentations geometry case %d: %zu interior mask pixels differ", c, bad);
    }
    /* GridDistortion with given step factors. */
    for (int c = 0; c < (int)grc.shape[0]; c++) {
        const float *p = grc.data + c * 18, *gi = gr.data + (size_t)c * 2 * n;
        int steps = (int)p[0];
        double xs[9], ys[9];
        for (int i = 0; i <= steps; i++) xs[i] = p[2 + i], ys[i] = p[10 + i];
        CHECK(pn_aug_grid_map(w, h, steps, xs, ys, mx, mx + n) == PN_OK);
        pn_border border = p[1] != 0 ? PN_BORDER_REFLECT101 : PN_BORDER_CONSTANT;
        pn_aug_remap_u8(img, w, h, out, w, h, mx, mx + n, false, border);
        size_t same = 0, bad = 0;
        for (size_t i = 0; i < n; i++) same += abs((int)out[i] - (int)gi[i]) <= 1;
        CHECK_MSG(same >= n * 995 / 1000, "grid case %d: %zu of %zu within 1 grey level", c, same, n);
        pn_aug_remap_u8(mask, w, h, out, w, h, mx, mx + n, true, border);
        for (int y = 1; y < h - 1; y++)
            for (int x = 1; x < w - 1; x++) bad += out[y * w + x] != (uint8_t)gi[n + y * w + x];
        CHECK_MSG(bad == 0, "grid case %d: %zu interior mask pixels differ", c, bad);
    }
    /* ElasticTransform with albumentations' own random draws. */
    pn_npy ec, er, eo;
    if (pn_npy_read("golden/albu_elastic_cases.npy", 2, 2, &ec) == PN_OK &&
        pn_npy_read("golden/albu_elastic_rand.npy", 2, 2, &er) == PN_OK &&
        pn_npy_read("golden/albu_elastic.npy", 4, 4, &eo) == PN_OK) {
        for (int c = 0; c < (int)ec.shape[0]; c++) {
            const float *p = ec.data + c * 5, *r = er.data + (size_t)c * 3 * n, *go = eo.data + (size_t)c * 2 * n;
            double off[6];
            for (int i = 0; i < 6; i++) off[i] = r[i];
            pn_border border = p[4] != 0 ? PN_BORDER_REFLECT101 : PN_BORDER_CONSTANT;
            memcpy(out, img, n);
            uint8_t *mk = malloc(n);
            memcpy(mk, mask, n);
            CHECK(pn_aug_elastic_u8(out, mk, w, h, p[0], p[1], off, r + n, r + 2 * n, true, border) == PN_OK);
            size_t same = 0, bad = 0;
            for (size_t i = 0; i < n; i++) same += abs((int)out[i] - (int)go[i]) <= 1;
            for (int y = 1; y < h - 1; y++)
                for (int x = 1; x < w - 1; x++) bad += mk[y * w + x] != (uint8_t)go[n + y * w + x];
            CHECK_MSG(same >= n * 99 / 100, "elastic case %d: %zu of %zu within 1 grey level", c, same, n);
            CHECK_MSG(bad <= n / 200, "elastic case %d: %zu interior mask pixels differ", c, bad);
            if (c == 0) printf("elastic case 0: %zu/%zu within 1 grey level, %zu mask pixels differ\n", same, n, bad);
            free(mk);
        }
        pn_free(ec.data), pn_free(er.data), pn_free(eo.data);
    } else {
        CHECK_MSG(0, "golden files: %s", pn_last_error());
    }
    /* Contrast, brightness and gamma tables: exact. */
    for (int k = 0; k < 15; k++) {
        uint8_t t[256];
        double v = lp.data[(k / 5) * 5 + k % 5];
        if (k < 5)
            pn_aug_lut_contrast(v, t);
        else if (k < 10)
            pn_aug_lut_brightness(v, t);
        else
            pn_aug_lut_gamma(v, t);
        int diff = 0;
        for (int i = 0; i < 256; i++) diff += t[i] != (uint8_t)lut.data[k * 256 + i];
        CHECK_MSG(diff == 0, "LUT %d (%g): %d entries differ from albumentations", k, v, diff);
    }
    free(img), free(mask), free(out), free(mx);
    pn_free(in.data), pn_free(gc.data), pn_free(g.data), pn_free(grc.data), pn_free(gr.data), pn_free(lp.data),
        pn_free(lut.data);
}

static void make_sample(uint8_t *img, uint8_t *mask, int w, int h) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            img[y * w + x] = (uint8_t)((x * 3 + y * 5) & 255);
            mask[y * w + x] = (x - w / 3) * (x - w / 3) + (y - h / 2) * (y - h / 2) < w * w / 16 ? 255 : 0;
        }
}

/* Same key -> same result; other keys differ; masks stay binary; nothing reads out of bounds. */
static void test_pipeline_determinism(void) {
    const char *names[] = {"blog", "winner"};
    int w = 96, h = 80;
    size_t n = (size_t)w * h;
    uint8_t *a = malloc(n), *am = malloc(n), *b = malloc(n), *bm = malloc(n);
    for (int q = 0; q < 2; q++) {
        pn_aug_pipeline *p;
        CHECK(pn_aug_parse(names[q], PN_BORDER_CONSTANT, &p) == PN_OK);
        int differ = 0;
        for (uint32_t s = 0; s < 24; s++) {
            make_sample(a, am, w, h), make_sample(b, bm, w, h);
            CHECK(pn_aug_apply(p, a, am, w, h, 7, 3, s) == PN_OK);
            CHECK(pn_aug_apply(p, b, bm, w, h, 7, 3, s) == PN_OK);
            CHECK(memcmp(a, b, n) == 0 && memcmp(am, bm, n) == 0);
            make_sample(b, bm, w, h);
            CHECK(pn_aug_apply(p, b, bm, w, h, 7, 4, s) == PN_OK); /* next epoch */
            differ += memcmp(a, b, n) != 0;
            int nonbinary = 0;
            for (size_t i = 0; i < n; i++) nonbinary += am[i] != 0 && am[i] != 255;
            CHECK_MSG(nonbinary == 0, "%s sample %u: %d mask pixels not 0/255", names[q], s, nonbinary);
        }
        CHECK_MSG(differ >= 12, "%s: only %d of 24 samples change between epochs", names[q], differ);
        pn_aug_free(p);
    }
    free(a), free(am), free(b), free(bm);
}

/* hflip:0.5 flips about half the samples; hflip twice is the identity. */
static void test_probability(void) {
    pn_aug_pipeline *p;
    CHECK(pn_aug_parse("hflip:0.5", PN_BORDER_CONSTANT, &p) == PN_OK);
    int flipped = 0, w = 4, h = 1;
    for (uint32_t s = 0; s < 2000; s++) {
        uint8_t px[4] = {1, 2, 3, 4};
        pn_aug_apply(p, px, NULL, w, h, 1, 0, s);
        flipped += px[0] == 4;
    }
    CHECK_MSG(flipped > 900 && flipped < 1100, "%d of 2000 flipped", flipped);
    pn_aug_free(p);
    uint8_t px[6] = {1, 2, 3, 4, 5, 6};
    pn_aug_hflip_u8(px, 3, 2);
    CHECK(px[0] == 3 && px[2] == 1 && px[3] == 6 && px[5] == 4);
    /* Rows wider than the flip's stack buffer (4096) are swapped in place: the same result. */
    enum { WIDE = 5001 };
    static uint8_t wide[2 * WIDE];
    for (int i = 0; i < 2 * WIDE; i++) wide[i] = (uint8_t)(i * 7);
    pn_aug_hflip_u8(wide, WIDE, 2);
    int bad = 0;
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < WIDE; x++) bad += wide[y * WIDE + x] != (uint8_t)((y * WIDE + WIDE - 1 - x) * 7);
    CHECK_MSG(bad == 0, "%d pixels of a %d-wide flip are wrong", bad, WIDE);
}

/* A soft mask is resampled bilinearly (keeps intermediate values), a binary one by nearest. */
static void test_soft_mask(void) {
    int w = 32, h = 32;
    uint8_t img[32 * 32], mask[32 * 32];
    for (int i = 0; i < w * h; i++) img[i] = 100, mask[i] = (i % w) < 16 ? 255 : ((i % w) == 16 ? 128 : 0);
    pn_aug_pipeline *p;
    CHECK(pn_aug_parse("rotate:1:limit=30", PN_BORDER_CONSTANT, &p) == PN_OK);
    CHECK(pn_aug_apply(p, img, mask, w, h, 5, 0, 0) == PN_OK);
    int mid = 0;
    for (int i = 0; i < w * h; i++) mid += mask[i] != 0 && mask[i] != 255 && mask[i] != 128;
    CHECK_MSG(mid > 10, "soft mask: %d blended pixels", mid);
    pn_aug_free(p);
}

static void test_parser(void) {
    pn_aug_pipeline *p, *q;
    char a[1024], b[1024];
    const char *ok[] = {"none",
                        "blog",
                        "winner",
                        "",
                        "hflip",
                        "vflip:0.2",
                        "ssr:0.5:shift=0.1:scale=0.2:rotate=30:border=reflect101",
                        "oneof:0.3[contrast|gamma:lo=90:hi=110|brightness:p=2]",
                        " hflip : 0.5 , rotate:1 "};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        pn_status st = pn_aug_parse(ok[i], PN_BORDER_CONSTANT, &p);
        CHECK_MSG(st == PN_ERR_ARG || st == PN_OK, "%s", ok[i]);
        if (st != PN_OK) {
            /* "brightness:p=2" is out of range on purpose */
            CHECK(strstr(ok[i], "p=2") != NULL);
            continue;
        }
        pn_aug_describe(p, a, sizeof a);
        CHECK_MSG(pn_aug_parse(a, PN_BORDER_CONSTANT, &q) == PN_OK, "describe '%s' does not parse: %s", a,
                  pn_last_error());
        pn_aug_describe(q, b, sizeof b);
        CHECK_MSG(strcmp(a, b) == 0, "'%s' vs '%s'", a, b);
        pn_aug_free(p), pn_aug_free(q);
    }
    CHECK(pn_aug_parse("winner", PN_BORDER_CONSTANT, &p) == PN_OK);
    pn_aug_describe(p, a, sizeof a);
    CHECK(strstr(a, "elastic:0.5:alpha=120:sigma=6:affine=3.6") &&
          strstr(a, "ssr:0.5:shift=0.0625:scale=0.1:rotate=45"));
    pn_aug_free(p);
    const char *bad[] = {
        "flip",           "hflip:x",           "rotate:limit", "rotate:0.5:angle=3", "oneof:0.3",
        "oneof[]",        "oneof[hflip",       "hflip,,",      "rotate:1.5",         "gamma:lo=120:hi=80",
        "grid:steps=2.5", "hflip:border=wrap", "hflip]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = NULL;
        CHECK_MSG(pn_aug_parse(bad[i], PN_BORDER_CONSTANT, &p) == PN_ERR_ARG, "'%s' accepted", bad[i]);
        CHECK(p == NULL);
        CHECK(strstr(pn_last_error(), "augment spec") != NULL);
    }
}

static void test_normalize(void) {
    uint8_t px[2] = {0, 255};
    float out[6];
    pn_aug_normalize(px, 2, 1, PN_NORM_IMAGENET, out);
    CHECK_NEAR(out[0], -0.485 / 0.229, 1e-5);
    CHECK_NEAR(out[5], (1 - 0.406) / 0.225, 1e-5);
    pn_aug_normalize(px, 2, 1, PN_NORM_UNIT, out);
    CHECK(out[0] == 0 && out[1] == 1 && out[5] == 1);
    pn_norm_mode m;
    CHECK(pn_norm_parse("imagenet", &m) == PN_OK && m == PN_NORM_IMAGENET);
    CHECK(pn_norm_parse("z", &m) == PN_ERR_ARG);
}

int main(void) {
    test_warp_golden();
    test_optical_golden();
    test_albumentations_golden();
    test_pipeline_determinism();
    test_probability();
    test_soft_mask();
    test_parser();
    test_normalize();
    return check_report("test_augment");
}
