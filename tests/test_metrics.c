/* test_metrics: the Kaggle score on hand-made cases against the formula, the triplet rule, connected
 * components, contour areas and small-region removal against cv2 (tests/ref/contour_golden.txt), the
 * triplet grid search, the host ComboLoss and the LR schedules against torch.optim.lr_scheduler
 * (tests/ref/sched_golden.txt). */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/metrics.h"
#include "core/postprocess.h"
#include "core/sched.h"

enum { W = 8, H = 8, N = W * H };

static void rect(uint8_t *m, int x0, int y0, int x1, int y1) {
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) m[y * W + x] = 255;
}

static void test_kaggle(void) {
    uint8_t p[N] = {0}, t[N] = {0};
    CHECK_NEAR(pn_kaggle_dice(p, t, N), 1.0, 0); /* empty / empty */
    p[5] = 1;
    CHECK_NEAR(pn_kaggle_dice(p, t, N), 0.0, 0); /* one false-positive pixel on an empty image */
    memset(p, 0, N);
    rect(t, 0, 0, 2, 2);
    CHECK_NEAR(pn_kaggle_dice(p, t, N), 0.0, 0); /* false negative */
    rect(p, 1, 0, 4, 2);                         /* 6 predicted, 4 true, 2 shared */
    CHECK_NEAR(pn_kaggle_dice(p, t, N), 2.0 * 2 / (6 + 4), 1e-12);
    memcpy(p, t, N);
    CHECK_NEAR(pn_kaggle_dice(p, t, N), 1.0, 1e-12);
    CHECK_NEAR(pn_kaggle_dice_counts(0, 0, 0), 1.0, 0);
    CHECK_NEAR(pn_kaggle_dice_counts(3, 5, 2), 0.5, 1e-12);
}

static void test_triplet_rule(void) {
    float prob[N];
    uint8_t mask[N];
    for (int i = 0; i < N; i++) prob[i] = 0.1f;
    /* 3 pixels above top 0.7, a 2x4 block above bottom 0.3 */
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 2; x++) prob[y * W + x] = 0.4f;
    prob[0] = prob[1] = prob[W] = 0.9f;
    CHECK(pn_pp_triplet(prob, W, H, 0.7f, 4, 0.3f, 0, mask) == 0); /* 3 < min_area 4: empty */
    for (int i = 0; i < N; i++) CHECK(mask[i] == 0);
    CHECK(pn_pp_triplet(prob, W, H, 0.7f, 3, 0.3f, 0, mask) == 8); /* 3 >= 3: mask = P > 0.3 */
    CHECK(mask[3 * W + 1] == 255 && mask[4 * W] == 0 && mask[2] == 0);
    CHECK(pn_pp_triplet(prob, W, H, 0.7f, 3, 0.5f, 0, mask) == 3); /* bottom 0.5 keeps the three 0.9s */
    /* an isolated pixel above bottom is dropped by min_region 2, the block stays */
    prob[7 * W + 7] = 0.35f;
    CHECK(pn_pp_triplet(prob, W, H, 0.7f, 3, 0.3f, 0, mask) == 9);
    CHECK(pn_pp_triplet(prob, W, H, 0.7f, 3, 0.3f, 2, mask) == 8);
    CHECK(mask[7 * W + 7] == 0);
}

static void test_components(void) {
    uint8_t m[N] = {0};
    int32_t labels[N];
    rect(m, 0, 0, 2, 2);
    m[2 * W + 2] = 1; /* diagonal neighbour: same 8-connected region */
    rect(m, 5, 5, 8, 8);
    m[0 * W + 7] = 1;
    CHECK(pn_pp_components(m, W, H, labels) == 3);
    CHECK(labels[0] == 1 && labels[2 * W + 2] == 1 && labels[7] == 2 && labels[5 * W + 5] == 3);
    /* contour areas: the 2x2 block with its diagonal spur 1, the 3x3 block 4, the single pixel 0 */
    CHECK_NEAR(pn_pp_contour_area(m, W, H, 0, 0), 1.0, 0);
    CHECK_NEAR(pn_pp_contour_area(m, W, H, 5, 5), 4.0, 0);
    CHECK_NEAR(pn_pp_contour_area(m, W, H, 7, 0), 0.0, 0);
    CHECK(pn_pp_remove_small(m, W, H, 0.5) == 1); /* only the single pixel (area 0) is not above 0.5 */
    CHECK(m[7] == 0 && m[0] && m[2 * W + 2]);
    CHECK(pn_pp_remove_small(m, W, H, 1.0) == 5); /* area 1 is not above 1: the 5-pixel region goes too */
    CHECK(m[0] == 0 && m[5 * W + 5]);
    CHECK(pn_pp_remove_small(m, W, H, 3.99) == 0); /* the 3x3 block (area 4) stays */
}

/* Reads "W H | runs | x y area ..." of tests/ref/contour_golden.txt into mask (cap pixels) and regions. */
static bool read_contour_case(char *line, int *w, int *h, uint8_t *mask, int cap, double *regs, int *nregs) {
    char *p = line, *end;
    *w = (int)strtol(p, &end, 10);
    *h = (int)strtol(end, &p, 10);
    if (*w <= 0 || *h <= 0 || *w * *h > cap || !(p = strchr(p, '|'))) return false;
    int64_t at = 0;
    uint8_t v = 0;
    for (p++;; v ^= 1) {
        long r = strtol(p, &end, 10);
        if (end == p) break;
        for (long k = 0; k < r && at < cap; k++) mask[at++] = v ? 255 : 0;
        p = end;
    }
    if (at != (int64_t)*w * *h || !(p = strchr(p, '|'))) return false;
    *nregs = 0;
    for (p++;;) {
        double x = strtod(p, &end);
        if (end == p) break;
        regs[3 * *nregs] = x;
        regs[3 * *nregs + 1] = strtod(end, &p);
        regs[3 * *nregs + 2] = strtod(p, &end);
        p = end;
        (*nregs)++;
    }
    return true;
}

/* cv2.findContours + cv2.contourArea on random masks (tests/ref/contour_golden.txt): every region's
 * first pixel and contour area, and remove_small at a threshold between two areas. */
static void test_contour_golden(void) {
    FILE *f = fopen("ref/contour_golden.txt", "r");
    CHECK_MSG(f != NULL, "tests/ref/contour_golden.txt missing");
    if (!f) return;
    enum { CAP = 64 * 64 };
    static char line[1 << 17];
    static uint8_t mask[CAP], kept[CAP];
    static int32_t labels[CAP];
    static double regs[3 * CAP], areas[CAP + 1];
    int cases = 0, regions = 0, wrong = 0, nonzero = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        int w, h, nr;
        if (!read_contour_case(line, &w, &h, mask, CAP, regs, &nr)) {
            CHECK_MSG(0, "bad golden line %d", cases + 1);
            continue;
        }
        int count = pn_pp_components(mask, w, h, labels);
        CHECK_MSG(count == nr, "mask %d: %d regions, cv2 %d", cases, count, nr);
        if (count != nr) continue;
        pn_pp_region_areas(mask, w, h, labels, count, areas);
        for (int r = 0; r < nr; r++) {
            int x = (int)regs[3 * r], y = (int)regs[3 * r + 1];
            bool ok = labels[y * w + x] == r + 1 && areas[r + 1] == regs[3 * r + 2];
            if (!ok && wrong++ < 5)
                CHECK_MSG(0, "mask %d region %d at (%d,%d): label %d area %.1f, cv2 %.1f", cases, r, x, y,
                          labels[y * w + x], areas[r + 1], regs[3 * r + 2]);
            nonzero += regs[3 * r + 2] > 0;
        }
        regions += nr;
        /* drop at the median area: exactly the regions cv2 measures above it stay */
        if (nr > 0) {
            double cut = regs[3 * (nr / 2) + 2];
            memcpy(kept, mask, (size_t)w * h);
            pn_pp_remove_small(kept, w, h, cut);
            int bad = 0;
            for (int64_t i = 0; i < (int64_t)w * h; i++) {
                bool want = labels[i] && regs[3 * (labels[i] - 1) + 2] > cut;
                bad += (kept[i] != 0) != want;
            }
            CHECK_MSG(bad == 0, "mask %d: remove_small(%.1f) wrong on %d pixels", cases, cut, bad);
        }
        cases++;
    }
    fclose(f);
    CHECK_MSG(wrong == 0, "%d of %d regions differ from cv2", wrong, regions);
    CHECK_MSG(cases >= 100 && regions >= 1000 && nonzero >= 200, "golden: %d masks, %d regions, %d non-zero areas",
              cases, regions, nonzero);
}

static void test_grid(void) {
    float tops[] = {0.5f, 0.8f}, bottoms[] = {0.3f};
    int64_t areas[] = {1, 3};
    pn_triplet_grid g;
    CHECK(pn_grid_init(&g, tops, 2, areas, 2, bottoms, 1) == PN_OK);
    float prob[N];
    uint8_t truth[N] = {0};
    /* image 1: empty truth, two pixels at 0.6 (a false positive unless top 0.8 or area 3) */
    for (int i = 0; i < N; i++) prob[i] = 0.0f;
    prob[0] = prob[1] = 0.6f;
    pn_grid_add(&g, prob, truth, N);
    /* image 2: truth 4 pixels, predicted 0.9 on them */
    rect(truth, 0, 0, 2, 2);
    for (int i = 0; i < N; i++) prob[i] = truth[i] ? 0.9f : 0.0f;
    pn_grid_add(&g, prob, truth, N);
    double s, d, e;
    pn_grid_means(&g, 0, &s, &d, &e); /* (0.5, 1, 0.3): FP on image 1 -> (0 + 1) / 2 */
    CHECK_NEAR(s, 0.5, 1e-12);
    CHECK_NEAR(d, 1.0, 1e-12);
    CHECK_NEAR(e, 0.0, 1e-12);
    int best = pn_grid_best(&g);
    pn_grid_means(&g, best, &s, &d, &e);
    CHECK_NEAR(s, 1.0, 1e-12);
    pn_triplet t = pn_grid_triplet(&g, best);
    CHECK(t.top == 0.5f && t.min_area == 3); /* the first triplet in grid order that scores 1 */
    CHECK(pn_grid_init(&g, tops, 0, areas, 2, bottoms, 1) == PN_ERR_ARG);
}

static void test_combo_loss(void) {
    float x[4] = {2.0f, -1.0f, 0.5f, 0.0f}, t[4] = {1, 0, 0, 1};
    double bce = 0, inter = 0, ss = 0, ts = 0, focal = 0;
    for (int i = 0; i < 4; i++) {
        double s = 1 / (1 + exp(-x[i]));
        bce += -(t[i] * log(s) + (1 - t[i]) * log(1 - s));
        inter += s * t[i];
        ss += s;
        ts += t[i];
        double pt = t[i] ? s : 1 - s;
        focal += -(1 - pt) * (1 - pt) * log(pt);
    }
    double want = 3 * bce / 4 + (1 - (2 * inter + 1e-6) / (ss + ts + 1e-6)) + 4 * focal / 4;
    CHECK_NEAR(pn_combo_loss_host(x, t, 4, 3, 1, 4), want, 1e-6);
    CHECK_NEAR(pn_combo_loss_host(x, t, 4, 0, 0, 0), 1e-5, 0); /* clamped below */
}

static void test_sched(void) {
    pn_sched s;
    pn_sched_defaults(&s, PN_SCHED_MULTISTEP, 1e-4);
    CHECK_NEAR(pn_sched_lr(&s, 0), 1e-4, 1e-15);
    CHECK_NEAR(pn_sched_lr(&s, 2), 1e-4, 1e-15);
    CHECK_NEAR(pn_sched_lr(&s, 3), 0.75e-4, 1e-15);
    CHECK_NEAR(pn_sched_lr(&s, 5), 0.75 * 0.75e-4, 1e-15);
    pn_sched_defaults(&s, PN_SCHED_COSINE, 1.0);
    s.eta_min = 0;
    s.period = 4;
    CHECK_NEAR(pn_sched_lr(&s, 0), 1.0, 1e-12);
    CHECK_NEAR(pn_sched_lr(&s, 2), 0.5, 1e-12);
    CHECK_NEAR(pn_sched_lr(&s, 4), 0.0, 1e-12); /* T_max epochs: eta_min */
    CHECK_NEAR(pn_sched_lr(&s, 8), 1.0, 1e-12); /* PyTorch's cosine rises again, no restart */
    pn_sched_defaults(&s, PN_SCHED_PLATEAU, 1.0);
    pn_sched_observe(&s, 0, 0.5);
    pn_sched_observe(&s, 1, 0.5); /* bad 1 */
    pn_sched_observe(&s, 2, 0.4); /* bad 2 */
    CHECK_NEAR(pn_sched_lr(&s, 3), 1.0, 0);
    pn_sched_observe(&s, 3, 0.4); /* bad 3 > patience 2: cut */
    CHECK_NEAR(pn_sched_lr(&s, 4), 0.1, 1e-12);
    pn_sched_observe(&s, 4, 0.9); /* improvement */
    CHECK(s.bad == 0);
    pn_sched_kind k;
    CHECK(pn_sched_parse("cosine", &k) == PN_OK && k == PN_SCHED_COSINE);
    CHECK(pn_sched_parse("plateau-cosine", &k) == PN_OK && k == PN_SCHED_PLATEAU_COSINE);
    CHECK(pn_sched_parse("step", &k) == PN_ERR_ARG);
}

/* Reads up to cap numbers after the next '|' of *p. */
static int read_list(char **p, double *out, int cap) {
    char *bar = strchr(*p, '|');
    if (!bar) return -1;
    char *q = bar + 1, *end;
    int n = 0;
    for (double v = strtod(q, &end); end != q && n < cap; v = strtod(q, &end)) {
        out[n++] = v;
        q = end;
    }
    *p = q;
    return n;
}

/* PyTorch's lr_scheduler on the same score sequences (tests/ref/sched_golden.txt), the way the trainer
 * drives pn_sched: lr of epoch e before it, observe(e, score) after it. */
static void test_sched_golden(void) {
    FILE *f = fopen("ref/sched_golden.txt", "r");
    CHECK_MSG(f != NULL, "tests/ref/sched_golden.txt missing");
    if (!f) return;
    static char line[65536];
    int cases = 0, kinds[4] = {0};
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char kind[32];
        double base, eta, factor, min_lr, thr, scores[256], lrs[256];
        int epochs, start, period, patience;
        if (sscanf(line, "%31s %lf %d %d %d %lf %lf %d %lf %lf", kind, &base, &epochs, &start, &period, &eta, &factor,
                   &patience, &min_lr, &thr) != 10) {
            CHECK_MSG(0, "bad golden line: %.60s", line);
            continue;
        }
        char *p = line;
        int ns = read_list(&p, scores, 256), nl = read_list(&p, lrs, 256);
        CHECK_MSG(ns == epochs && nl == epochs, "golden line lists: %d %d of %d", ns, nl, epochs);
        pn_sched_kind k;
        CHECK(pn_sched_parse(kind, &k) == PN_OK);
        pn_sched s;
        pn_sched_defaults(&s, k, base);
        s.eta_min = eta;
        s.factor = factor;
        s.patience = patience;
        s.min_lr = min_lr;
        s.threshold = thr;
        s.period = period;
        s.cosine_start = start;
        int bad = 0;
        for (int e = 0; e < epochs && e < nl; e++) {
            double lr = pn_sched_lr(&s, e);
            if (fabs(lr - lrs[e]) > 1e-12 * fabs(lrs[e]) + 1e-20) {
                if (!bad++) CHECK_MSG(0, "%s case %d epoch %d: lr %.17g, torch %.17g", kind, cases, e, lr, lrs[e]);
            }
            pn_sched_observe(&s, e, scores[e]);
        }
        CHECK_MSG(bad == 0, "%s case %d: %d epochs differ", kind, cases, bad);
        kinds[k]++;
        cases++;
    }
    fclose(f);
    CHECK_MSG(cases >= 10 && kinds[PN_SCHED_PLATEAU_COSINE] >= 5 && kinds[PN_SCHED_PLATEAU] >= 3 &&
                  kinds[PN_SCHED_COSINE] >= 1 && kinds[PN_SCHED_MULTISTEP] >= 1,
              "golden cases: %d", cases);
}

static void test_resize(void) {
    uint8_t small[4] = {0, 255, 0, 0}, big[16];
    pn_pp_upscale_mask(small, 2, 2, big, 4, 4);
    /* cv2 half-pixel geometry: the top-right quadrant stays exactly on, its neighbours fall to <= 0.5 */
    CHECK(big[2] == 255 && big[3] == 255 && big[7] == 255 && big[0] == 0 && big[1] == 0 && big[12] == 0);
    float f[4] = {0, 1, 2, 3}, g[16];
    pn_pp_resize_f32(f, 2, 2, g, 4, 4);
    CHECK_NEAR(g[0], 0.0, 1e-6);
    CHECK_NEAR(g[1], 0.25, 1e-6);
    CHECK_NEAR(g[15], 3.0, 1e-6);
    pn_pp_hflip_f32(f, 2, 2);
    CHECK(f[0] == 1 && f[1] == 0 && f[2] == 3);
}

int main(void) {
    test_kaggle();
    test_triplet_rule();
    test_components();
    test_contour_golden();
    test_grid();
    test_combo_loss();
    test_sched();
    test_sched_golden();
    test_resize();
    return check_report("test_metrics");
}
