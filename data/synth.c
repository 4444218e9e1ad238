/* synth: renders chest-radiograph-like images with pneumothorax-like regions and writes a SIIM-shaped set. */
#include "synth.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/rng.h"
#include "data/dicom_write.h"
#include "data/rle.h"

#define PI_F 3.14159265f
#define GRID1_N 20 /* sides of the two random grids of lung markings */
#define GRID2_N 56

/* ---------------------------------------------------------------- rendering */

typedef struct lung_p {
    float cx, cy, side; /* side: -1 = image-left lung (its lateral edge is at smaller x) */
    float r_lat, r_med, r_top, r_bot;
    float inv_lat, inv_med, inv_top, inv_bot;
    float harm_a[3], harm_c[3], harm_s[3]; /* outline harmonics k = 2..4: amplitude, cos and sin of the phase */
} lung_p;

typedef struct ptx_p {
    int lung;
    float theta, halfw, depth, dark;
    float ct, st, cos_halfw;
} ptx_p;

typedef struct scene {
    int size;
    lung_p lung[2];
    ptx_p ptx[PN_SYNTH_MAX_REGIONS];
    int n_ptx;
    float body_rx, body_ry, body_cy, mshift;
    float heart_cx, heart_cy, heart_rx, heart_ry;
    float rib_r0, rib_rs, rib_rc, rib_gain, rib_inv;
    float contrast, bright, noise_sigma, tissue;
    bool marker, fold;
    float pose_c, pose_s, pose_du, pose_dv; /* patient pose: a small rotation and shift of the anatomy */
    float tilt;                             /* exposure gradient across the image */
    float contrast_k, depth_k;              /* findings: darkening and pleural line, and depth multipliers */
    float fold_u, fold_v, fold_r;
    int g1n, g2n;
    float *g1, *g2; /* coarse random grids for lung markings, in `grids` */
    float grids[GRID1_N * GRID1_N + GRID2_N * GRID2_N];
} scene;

static inline float smoothstep(float e0, float e1, float x) {
    float t = (x - e0) * (1.0f / (e1 - e0)); /* constant edges: the reciprocal folds at compile time */
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return t * t * (3 - 2 * t);
}

static float grid_sample(const float *g, int n, float u, float v) {
    float x = u * (n - 1), y = v * (n - 1);
    x = x < 0 ? 0 : x > n - 1.001f ? n - 1.001f : x;
    y = y < 0 ? 0 : y > n - 1.001f ? n - 1.001f : y;
    int x0 = (int)x, y0 = (int)y;
    float fx = x - x0, fy = y - y0;
    const float *r0 = g + y0 * n + x0, *r1 = r0 + n;
    return (r0[0] * (1 - fx) + r0[1] * fx) * (1 - fy) + (r1[0] * (1 - fx) + r1[1] * fx) * fy;
}

/* Lung-local polar coordinates: rho < 1 inside; (ct, st) = (cos, sin) of the angle, 0 = lateral, -pi/2 = apex. */
static void lung_coords(const lung_p *l, float u, float v, float *rho, float *ct, float *st) {
    float dx = (u - l->cx) * l->side, dy = v - l->cy;
    float px = dx * (dx >= 0 ? l->inv_lat : l->inv_med), py = dy * (dy < 0 ? l->inv_top : l->inv_bot);
    if (py < 0) px *= 1 + 0.7f * -py; /* narrower apex */
    float r = sqrtf(px * px + py * py), ir = r > 0 ? 1.0f / r : 0;
    float c = r > 0 ? px * ir : 1, sn = py * ir;
    /* cos(k t + phi) for k = 2, 3, 4 by complex powers of (c + i sn) */
    float c2 = c * c - sn * sn, s2 = 2 * c * sn, c3 = c2 * c - s2 * sn, s3 = c2 * sn + s2 * c;
    float c4 = c2 * c2 - s2 * s2, s4 = 2 * c2 * s2;
    float mod = 1 + l->harm_a[0] * (c2 * l->harm_c[0] - s2 * l->harm_s[0]) +
                l->harm_a[1] * (c3 * l->harm_c[1] - s3 * l->harm_s[1]) +
                l->harm_a[2] * (c4 * l->harm_c[2] - s4 * l->harm_s[2]);
    *rho = r / mod, *ct = c, *st = sn;
}

/* The pneumothorax profile: how deep (fraction of the radius) region p reaches at the angle (ct, st). */
static float ptx_reach(const ptx_p *p, float ct, float st) {
    float dot = ct * p->ct + st * p->st;
    if (dot <= p->cos_halfw) return 0;
    float d = acosf(fminf(dot, 1.0f));
    float c = cosf(0.5f * PI_F * d / p->halfw);
    return p->depth * c * c;
}

static void scene_make(uint64_t seed, bool test, uint32_t index, int size, double pos_rate, const pn_synth_look *look,
                       scene *s) {
    pn_rng r = pn_rng_make(seed, PN_RNG_SYNTH, index, test ? 1 : 0);
    memset(s, 0, sizeof *s);
    s->size = size;
    s->contrast_k = look->contrast, s->depth_k = look->depth;
    float ls = pn_rng_uniform_range(&r, 0.92f, 1.08f); /* patient size */
    for (int i = 0; i < 2; i++) {
        lung_p *l = &s->lung[i];
        l->side = i == 0 ? -1.f : 1.f;
        l->cx = 0.5f + l->side * pn_rng_uniform_range(&r, 0.19f, 0.22f) * ls;
        l->cy = pn_rng_uniform_range(&r, 0.44f, 0.49f);
        l->r_lat = pn_rng_uniform_range(&r, 0.15f, 0.18f) * ls;
        l->r_med = pn_rng_uniform_range(&r, 0.09f, 0.11f) * ls;
        l->r_top = pn_rng_uniform_range(&r, 0.29f, 0.33f) * ls;
        l->r_bot = pn_rng_uniform_range(&r, 0.20f, 0.24f) * ls;
        l->inv_lat = 1 / l->r_lat, l->inv_med = 1 / l->r_med, l->inv_top = 1 / l->r_top, l->inv_bot = 1 / l->r_bot;
        for (int k = 0; k < 3; k++) {
            l->harm_a[k] = pn_rng_uniform_range(&r, -0.05f, 0.05f);
            float ph = pn_rng_uniform_range(&r, 0, 2 * PI_F);
            l->harm_c[k] = cosf(ph), l->harm_s[k] = sinf(ph);
        }
    }
    s->body_rx = pn_rng_uniform_range(&r, 0.40f, 0.47f) * ls, s->body_ry = 0.6f, s->body_cy = 0.62f;
    s->mshift = pn_rng_uniform_range(&r, -0.015f, 0.015f);
    s->heart_cx = 0.5f + pn_rng_uniform_range(&r, 0.02f, 0.06f), s->heart_cy = pn_rng_uniform_range(&r, 0.62f, 0.67f);
    s->heart_rx = pn_rng_uniform_range(&r, 0.12f, 0.16f) * ls,
    s->heart_ry = pn_rng_uniform_range(&r, 0.10f, 0.13f) * ls;
    s->rib_r0 = pn_rng_uniform_range(&r, 0.12f, 0.16f), s->rib_rs = pn_rng_uniform_range(&r, 0.062f, 0.072f) * ls;
    s->rib_rc = pn_rng_uniform_range(&r, 0.7f, 1.1f), s->rib_gain = pn_rng_uniform_range(&r, 0.05f, 0.09f);
    s->rib_inv = 1 / s->rib_rs;
    s->contrast = pn_rng_uniform_range(&r, 0.85f, 1.15f), s->bright = pn_rng_uniform_range(&r, -0.05f, 0.05f);
    s->noise_sigma = pn_rng_uniform_range(&r, 2.0f, 4.5f), s->tissue = pn_rng_uniform_range(&r, 0.55f, 0.64f);
    s->marker = pn_rng_uniform(&r) < 0.7f;
    s->fold = pn_rng_uniform(&r) < 0.25f; /* a skin fold: an edge-like line that is not a finding */
    s->fold_u = pn_rng_uniform_range(&r, 0.15f, 0.85f), s->fold_v = pn_rng_uniform_range(&r, 0.3f, 0.6f);
    s->fold_r = pn_rng_uniform_range(&r, 0.15f, 0.3f);
    /* The findings' parameters are always drawn, so pos_rate only decides whether they are used and the
     * rest of the image is the same either way. */
    bool positive = pn_rng_uniform(&r) < pos_rate;
    float u = pn_rng_uniform(&r);
    int n_ptx = u < 0.72f ? 1 : u < 0.93f ? 2 : 3;
    int first_lung = (int)pn_rng_below(&r, 2);
    float used_hi[2] = {-10, -10}; /* per lung: the highest angle used so far */
    for (int k = 0; k < PN_SYNTH_MAX_REGIONS; k++) {
        ptx_p *p = &s->ptx[k];
        p->lung = k == 1 ? 1 - first_lung : first_lung;
        p->halfw = (20 + 45 * pn_rng_uniform(&r)) * PI_F / 180;
        float dd = pn_rng_uniform(&r);
        p->depth = fminf(0.9f, (0.06f + 0.44f * dd * sqrtf(dd)) * s->depth_k);
        p->dark = pn_rng_uniform_range(&r, 0.035f, 0.08f);
        float lo = -115 * PI_F / 180 + p->halfw;
        if (used_hi[p->lung] > -9) lo = used_hi[p->lung] + 0.2f + p->halfw;
        p->theta = lo + pn_rng_uniform(&r) * 1.0f;
        used_hi[p->lung] = p->theta + p->halfw;
        p->ct = cosf(p->theta), p->st = sinf(p->theta), p->cos_halfw = cosf(p->halfw);
    }
    s->n_ptx = positive ? n_ptx : 0;
    s->g1n = GRID1_N, s->g2n = GRID2_N;
    s->g1 = s->grids;
    s->g2 = s->g1 + s->g1n * s->g1n;
    for (int i = 0; i < s->g1n * s->g1n + s->g2n * s->g2n; i++) s->g1[i] = pn_rng_uniform(&r);
    float a = pn_rng_uniform_range(&r, -4, 4) * PI_F / 180;
    s->pose_c = cosf(a), s->pose_s = sinf(a);
    s->pose_du = pn_rng_uniform_range(&r, -0.03f, 0.03f), s->pose_dv = pn_rng_uniform_range(&r, -0.03f, 0.03f);
    s->tilt = pn_rng_uniform_range(&r, -0.06f, 0.06f);
}

static float ribs(const scene *s, float u, float v) {
    float d = fabsf(u - 0.5f);
    if (d < 0.05f || d > 0.46f) return 0;
    float fade = smoothstep(0.05f, 0.09f, d) * (1 - smoothstep(0.40f, 0.46f, d));
    float base = s->rib_r0 + s->rib_rc * d * d;
    float k = floorf((v - base) * s->rib_inv);
    float best = 0, inv_th = 1.0f / (0.016f + 0.012f * d);
    for (int j = 0; j < 2; j++) {
        float kk = k + j;
        if (kk < 0 || kk > 9) continue;
        float yk = base + kk * s->rib_rs;
        float t = (v - yk) * inv_th;
        if (fabsf(t) < 1) {
            float val = 0.55f + 0.45f * t * t;
            best = val > best ? val : best;
        }
    }
    return best * fade;
}

static float clavicles(float u, float v) {
    float best = 0;
    if (v < 0.08f || v > 0.24f) return 0;
    for (int side = -1; side <= 1; side += 2) {
        float ax = 0.5f + side * 0.05f, ay = 0.20f, bx = 0.5f + side * 0.33f, by = 0.12f;
        float vx = bx - ax, vy = by - ay, wx = u - ax, wy = v - ay;
        float t = (wx * vx + wy * vy) / (vx * vx + vy * vy);
        if (t < 0 || t > 1) continue;
        float dx = wx - t * vx, dy = wy - t * vy, dist = sqrtf(dx * dx + dy * dy);
        float val = 1 - smoothstep(0.010f, 0.016f, dist);
        best = val > best ? val : best;
    }
    return best;
}

/* The image point (ui, vi in [-0.5, 0.5], centred) seen in anatomy coordinates under the patient's pose. */
static void pose(const scene *s, float ui, float vi, float *u, float *v) {
    *u = 0.5f + s->pose_c * ui + s->pose_s * vi + s->pose_du;
    *v = 0.5f - s->pose_s * ui + s->pose_c * vi + s->pose_dv;
}

/* The lung field's share L (soft edge of about 2.5 pixels), its polar coordinates, texture and hilum
 * weight at (u, v); false outside the lung. */
typedef struct lung_at {
    float L, rho, ct, st, tex, hilum;
} lung_at;

static bool lung_sample(const scene *s, const lung_p *l, float u, float v, lung_at *a) {
    float ldx = (u - l->cx) * l->side, ldy = v - l->cy;
    if (ldx > 1.2f * l->r_lat || ldx < -1.2f * l->r_med || ldy < -1.2f * l->r_top || ldy > 1.2f * l->r_bot)
        return false;
    lung_coords(l, u, v, &a->rho, &a->ct, &a->st);
    if (a->rho > 1.1f) return false;
    float edge = 2.5f / s->size * l->inv_lat;
    a->L = 1 - smoothstep(1 - edge, 1, a->rho);
    if (a->L <= 0) return false;
    a->tex = (grid_sample(s->g1, s->g1n, u, v) - 0.5f) * 0.08f + (grid_sample(s->g2, s->g2n, u, v) - 0.5f) * 0.05f;
    a->hilum = 0.5f + 0.8f * (1 - smoothstep(0.2f, 1.0f, a->rho));
    return true;
}

/* Everything smooth: body, mediastinum, lung fields with their markings, heart, ribs, clavicles. */
static float anatomy(const scene *s, float u, float v) {
    float bx = (u - 0.5f) / s->body_rx, by = (v - s->body_cy) / s->body_ry;
    float body = 1 - smoothstep(0.92f, 1.0f, bx * bx + by * by);
    if (v < 0.16f)
        body = fmaxf(body * smoothstep(0.02f, 0.16f, v), 0.8f * (1 - smoothstep(0.06f, 0.09f, fabsf(u - 0.5f))));
    float f = 0.05f + body * (s->tissue + 0.08f * (v - 0.5f));
    float med = (1 - smoothstep(0.05f, 0.08f, fabsf(u - 0.5f - s->mshift))) * smoothstep(0.08f, 0.2f, v);
    f += 0.16f * med * body;
    float in_lung = 0;
    for (int li = 0; li < 2; li++) {
        const lung_p *l = &s->lung[li];
        lung_at a;
        if (!lung_sample(s, l, u, v, &a)) continue;
        float py = v - l->cy;
        in_lung = fmaxf(in_lung, a.L);
        f -= a.L * (0.34f - 0.12f * (py > 0 ? py : 0) * l->inv_bot);
        f += a.L * a.tex * a.hilum;
    }
    float hx = (u - s->heart_cx) / s->heart_rx, hy = (v - s->heart_cy) / s->heart_ry;
    f += 0.17f * (1 - smoothstep(0.55f, 1.0f, hx * hx + hy * hy)) * body;
    f += s->rib_gain * ribs(s, u, v) * body * (0.45f + 0.55f * in_lung) + 0.08f * clavicles(u, v) * body;
    return f;
}

/* The findings of lung li at (u, v): the change they make to the image (no markings, darker, a pleural
 * line) and, at full resolution, their mask pixels. */
static float findings(const scene *s, int li, float u, float v, size_t i, pn_synth_sample *out, float line_w) {
    const lung_p *l = &s->lung[li];
    lung_at a;
    if (!lung_sample(s, l, u, v, &a)) return 0;
    float clear = 1, darker = 0, line = 0, inv_lw = 1.0f / line_w;
    for (int k = 0; k < s->n_ptx; k++) {
        const ptx_p *p = &s->ptx[k];
        if (p->lung != li) continue;
        float reach = ptx_reach(p, a.ct, a.st);
        if (reach <= 0) continue;
        float inner = 1 - reach;
        float dist_px = (a.rho - inner) * l->r_lat * s->size;
        float inside = smoothstep(-line_w, line_w, dist_px);
        clear *= 1 - inside;
        darker += p->dark * inside;
        if (reach > 0.01f) line += expf(-(dist_px * inv_lw) * (dist_px * inv_lw)) * smoothstep(0.0f, 0.03f, reach);
        if (a.rho < 1 && a.rho > inner && reach > 0.004f) {
            if (out->regions[k]) out->regions[k][i] = 255;
            out->mask[i] = 255;
        }
    }
    return a.L * (a.tex * a.hilum * (clear - 1) - s->contrast_k * darker + s->contrast_k * 0.05f * line);
}

/* Row gy of the anatomy grid: the smooth image at pixel (2 gx, 2 gy) for gx in [0, gw). */
static void anatomy_row(const scene *s, int gy, int gw, float inv, float *row) {
    for (int gx = 0; gx < gw; gx++) {
        float u, v;
        pose(s, (2 * gx + 0.5f) * inv - 0.5f, (2 * gy + 0.5f) * inv - 0.5f, &u, &v);
        row[gx] = anatomy(s, u, v);
    }
}

void pn_synth_render(uint64_t seed, bool test, uint32_t index, int size, double pos_rate, const pn_synth_look *look,
                     pn_synth_sample *out) {
    PN_ASSERT(size >= 1 && size <= PN_SYNTH_MAX_SIZE); /* the callers check sizes from users */
    scene s;
    scene_make(seed, test, index, size, pos_rate, look, &s);
    uint32_t ctr[4] = {PN_RNG_SYNTH, index, test ? 3u : 2u, 0}, words[4] = {0};
    size_t n = (size_t)size * size;
    for (int k = 0; k < PN_SYNTH_MAX_REGIONS; k++)
        if (out->regions[k]) memset(out->regions[k], 0, n);
    memset(out->mask, 0, n);
    float inv = 1.0f / size, line_w = fmaxf(0.9f, size / 600.0f), inv_lw = 1.0f / line_w;
    bool lung_has_ptx[2] = {false, false};
    for (int k = 0; k < s.n_ptx; k++) lung_has_ptx[s.ptx[k].lung] = true;
    /* The smooth anatomy on every second pixel, then bilinear in between: a quarter of the work. Grid rows gy and
     * gy + 1 serve image rows 2 gy and 2 gy + 1; two rows are kept, row r in rows[r & 1]. */
    int gw = size / 2 + 2;
    float rows[2][PN_SYNTH_MAX_SIZE / 2 + 2];
    anatomy_row(&s, 0, gw, inv, rows[0]);
    for (int y = 0; y < size; y++) {
        float vi = (y + 0.5f) * inv - 0.5f;
        if ((y & 1) == 0) anatomy_row(&s, y / 2 + 1, gw, inv, rows[(y / 2 + 1) & 1]);
        const float *g0 = rows[(y / 2) & 1], *g1 = rows[(y / 2 + 1) & 1];
        float wy = (y & 1) * 0.5f;
        for (int x = 0; x < size; x++) {
            float ui = (x + 0.5f) * inv - 0.5f, wx = (x & 1) * 0.5f;
            int gx = x / 2;
            float f = (g0[gx] * (1 - wx) + g0[gx + 1] * wx) * (1 - wy) + (g1[gx] * (1 - wx) + g1[gx + 1] * wx) * wy;
            size_t i = (size_t)y * size + x;
            float u, v;
            pose(&s, ui, vi, &u, &v);
            for (int li = 0; li < 2; li++)
                if (lung_has_ptx[li]) f += findings(&s, li, u, v, i, out, line_w);
            if (s.fold) { /* a skin fold: a thin edge that is not a finding */
                float fd = sqrtf((u - s.fold_u) * (u - s.fold_u) + (v - s.fold_v) * (v - s.fold_v)) - s.fold_r;
                float fpx = fd * size;
                if (fabsf(fpx) < 4 * line_w && v > s.fold_v) f += 0.035f * expf(-(fpx * inv_lw) * (fpx * inv_lw));
            }
            if (s.marker && ui > 0.34f && ui < 0.37f && vi > -0.44f && vi < -0.4f) f = 0.95f; /* an L/R marker */
            /* exposure and noise */
            f = (f - 0.4f) * s.contrast + 0.4f + s.bright + s.tilt * ui;
            if ((i & 3) == 0) {
                ctr[3] = (uint32_t)(i >> 2);
                pn_philox4x32(seed ^ 0x9e3779b97f4a7c15ULL, ctr, words);
            }
            uint32_t w = words[i & 3];
            float g =
                ((float)((w & 255) + ((w >> 8) & 255) + ((w >> 16) & 255) + (w >> 24)) - 510.0f) * (1.0f / 147.8f);
            float val = f * 255.0f + g * s.noise_sigma;
            out->image[i] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : val + 0.5f);
        }
    }
    /* Regions that vanished at this size are dropped (the image may become negative). */
    int kept = 0;
    for (int k = 0; k < s.n_ptx; k++) {
        size_t cnt = 0;
        if (out->regions[k])
            for (size_t i = 0; i < n; i++) cnt += out->regions[k][i] != 0;
        else
            cnt = 1; /* not asked for: counted as present */
        if (!cnt) continue;
        if (kept != k && out->regions[k]) memcpy(out->regions[kept], out->regions[k], n), memset(out->regions[k], 0, n);
        kept++;
    }
    out->n_regions = kept;
}

void pn_synth_id(uint64_t seed, bool test, uint32_t index, char *buf, size_t cap) {
    snprintf(buf, cap, "1.2.276.0.7230010.3.1.4.%llu.%d.%u", (unsigned long long)seed, test ? 2 : 1, index);
}

/* ---------------------------------------------------------------- writing the set */

static pn_status mkdir_p(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                return pn_error(PN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
            *p = '/';
        }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
        return pn_error(PN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    return PN_OK;
}

static bool dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return true;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = false;
    closedir(d);
    return empty;
}

typedef struct job_state {
    const pn_synth_opts *o;
    int64_t next, total, done;
    char **rows; /* per image: its CSV rows (train, then test) */
    pn_status err;
    char err_msg[512];
    int64_t positives;
    pthread_mutex_t mu;
    pn_progress bar;
} job_state;

static char *append_row(char *rows, const char *id, const char *rle) {
    size_t old = rows ? strlen(rows) : 0, add = strlen(id) + strlen(rle) + 4;
    char *r = realloc(rows, old + add + 1);
    if (!r) return NULL;
    snprintf(r + old, add + 1, "%s, %s\n", id, rle);
    return r;
}

static pn_status synth_one(job_state *js, int64_t j, uint8_t *bufs) {
    const pn_synth_opts *o = js->o;
    bool test = j >= o->n_train;
    uint32_t index = (uint32_t)(test ? j - o->n_train : j);
    size_t n = (size_t)o->size * o->size;
    pn_synth_sample s = {bufs, bufs + n, {bufs + 2 * n, bufs + 3 * n, bufs + 4 * n}, 0};
    pn_synth_render(o->seed, test, index, o->size, o->pos_rate, &o->look, &s);
    char id[96], study[96], series[96], dir[4096], path[4300], pid[40], age[8];
    pn_synth_id(o->seed, test, index, id, sizeof id);
    snprintf(study, sizeof study, "1.2.276.0.7230010.3.1.2.%llu.%d.%u", (unsigned long long)o->seed, test ? 2 : 1,
             index);
    snprintf(series, sizeof series, "1.2.276.0.7230010.3.1.3.%llu.%d.%u", (unsigned long long)o->seed, test ? 2 : 1,
             index);
    pn_rng r = pn_rng_make(o->seed, PN_RNG_SYNTH, index, test ? 5 : 4);
    snprintf(pid, sizeof pid, "%08x-%04x-%04x-%04x-%08x%04x", pn_rng_u32(&r), pn_rng_u32(&r) & 0xffff,
             pn_rng_u32(&r) & 0xffff, pn_rng_u32(&r) & 0xffff, pn_rng_u32(&r), pn_rng_u32(&r) & 0xffff);
    snprintf(age, sizeof age, "%u", 18 + pn_rng_below(&r, 70));
    pn_dicom_meta meta = {id,
                          study,
                          series,
                          pid,
                          pid,
                          pn_rng_below(&r, 2) ? "M" : "F",
                          age,
                          pn_rng_below(&r, 3) ? "PA" : "AP",
                          0.168 * 1024.0 / o->size};
    snprintf(dir, sizeof dir, "%s/%s/%s/%s", o->out_dir, test ? "dicom-images-test" : "dicom-images-train", study,
             series);
    PN_TRY(mkdir_p(dir));
    snprintf(path, sizeof path, "%s/%s.dcm", dir, id);
    PN_TRY(pn_dicom_write_u8(path, s.image, o->size, o->size, &meta, o->jpeg_quality));
    char *rows = NULL;
    if (s.n_regions == 0) rows = append_row(NULL, id, "-1");
    for (int k = 0; k < s.n_regions; k++) {
        char *rle;
        PN_TRY(pn_rle_encode(s.regions[k], o->size, o->size, &rle));
        char *grown = append_row(rows, id, rle);
        free(rle);
        if (!grown) {
            free(rows);
            return pn_error(PN_ERR_NOMEM, "synth: no memory");
        }
        rows = grown;
    }
    if (!rows) return pn_error(PN_ERR_NOMEM, "synth: no memory");
    pthread_mutex_lock(&js->mu);
    js->rows[j] = rows;
    if (!test && s.n_regions > 0) js->positives++;
    pthread_mutex_unlock(&js->mu);
    return PN_OK;
}

static void *synth_worker(void *arg) {
    job_state *js = arg;
    size_t n = (size_t)js->o->size * js->o->size;
    uint8_t *bufs = malloc(n * (2 + PN_SYNTH_MAX_REGIONS));
    pthread_mutex_lock(&js->mu);
    if (!bufs && js->err == PN_OK) {
        js->err = PN_ERR_NOMEM;
        snprintf(js->err_msg, sizeof js->err_msg, "synth: no memory for %d^2 images", js->o->size);
    }
    for (;;) {
        if (js->err != PN_OK || js->next >= js->total) break;
        int64_t j = js->next++;
        pthread_mutex_unlock(&js->mu);
        pn_status st = synth_one(js, j, bufs);
        pthread_mutex_lock(&js->mu);
        if (st != PN_OK && js->err == PN_OK) {
            js->err = st;
            snprintf(js->err_msg, sizeof js->err_msg, "%s", pn_last_error());
        }
        if (js->o->progress) pn_progress_step(&js->bar, 1, NULL);
    }
    pthread_mutex_unlock(&js->mu);
    free(bufs);
    return NULL;
}

static pn_status write_csv(const char *path, const char *header, char **rows, int64_t from, int64_t to, bool submission,
                           const pn_synth_opts *o) {
    pn_atomic_file af;
    PN_TRY(pn_atomic_open(&af, path));
    fprintf(af.f, "%s\n", header);
    for (int64_t j = from; j < to; j++) {
        if (submission) {
            char id[96];
            pn_synth_id(o->seed, true, (uint32_t)(j - from), id, sizeof id);
            fprintf(af.f, "%s,-1\n", id);
        } else {
            fputs(rows[j], af.f);
        }
    }
    return pn_atomic_commit(&af);
}

pn_status pn_synth_write(const pn_synth_opts *o, int64_t *positives) {
    if (o->size < 32 || o->size > PN_SYNTH_MAX_SIZE)
        return pn_error(PN_ERR_ARG, "synth: size %d (expected 32..%d)", o->size, PN_SYNTH_MAX_SIZE);
    if (o->n_train < 0 || o->n_test < 0 || o->n_train + (int64_t)o->n_test < 1 || o->n_train > 10000000 ||
        o->n_test > 10000000)
        return pn_error(PN_ERR_ARG, "synth: %d train and %d test images (expected at least one, at most 10^7 each)",
                        o->n_train, o->n_test);
    if (!(o->pos_rate >= 0 && o->pos_rate <= 1))
        return pn_error(PN_ERR_ARG, "synth: positive rate %g is outside [0, 1]", o->pos_rate);
    if (!(o->look.contrast > 0 && o->look.contrast <= 10))
        return pn_error(PN_ERR_ARG, "synth: findings' contrast %g is outside (0, 10]", o->look.contrast);
    if (!(o->look.depth > 0 && o->look.depth <= 10))
        return pn_error(PN_ERR_ARG, "synth: findings' depth %g is outside (0, 10]", o->look.depth);
    if (!pn_dicom_write_supported())
        return pn_error(PN_ERR_UNSUPPORTED, "synth: this pneumoseg was built without dcmtk, so it cannot write DICOM "
                                            "(install libdcmtk-dev and libjpeg-dev, then reconfigure)");
    if (!o->force && !dir_is_empty(o->out_dir))
        return pn_error(PN_ERR_ARG, "%s: not empty (use --force to write into it)", o->out_dir);
    PN_TRY(mkdir_p(o->out_dir));
    job_state js = {0};
    js.o = o, js.total = (int64_t)o->n_train + o->n_test;
    js.rows = calloc((size_t)js.total, sizeof(char *));
    if (!js.rows) return pn_error(PN_ERR_NOMEM, "synth: no memory");
    pthread_mutex_init(&js.mu, NULL);
    int threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    if (o->progress) pn_progress_begin(&js.bar, "synth", js.total);
    pthread_t tid[64];
    int started = 0;
    for (int t = 0; t < threads; t++)
        if (pthread_create(&tid[t], NULL, synth_worker, &js) == 0) started++;
    if (!started) synth_worker(&js);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    if (o->progress) pn_progress_end(&js.bar);
    pn_status st = js.err;
    if (st != PN_OK) pn_error(st, "%s", js.err_msg);
    char path[4200];
    if (st == PN_OK && o->n_train > 0) {
        snprintf(path, sizeof path, "%s/train-rle.csv", o->out_dir);
        st = write_csv(path, "ImageId, EncodedPixels", js.rows, 0, o->n_train, false, o);
    }
    if (st == PN_OK && o->n_test > 0) {
        snprintf(path, sizeof path, "%s/test-rle.csv", o->out_dir);
        st = write_csv(path, "ImageId, EncodedPixels", js.rows, o->n_train, js.total, false, o);
        snprintf(path, sizeof path, "%s/sample_submission.csv", o->out_dir);
        if (st == PN_OK) st = write_csv(path, "ImageId,EncodedPixels", js.rows, o->n_train, js.total, true, o);
    }
    for (int64_t j = 0; j < js.total; j++) free(js.rows[j]);
    free(js.rows);
    pthread_mutex_destroy(&js.mu);
    if (positives) *positives = js.positives;
    return st;
}
