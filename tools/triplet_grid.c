/* triplet_grid: parses and prints triplets and the triplet grid of --tops/--areas/--bottoms. */
#include "triplet_grid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

pn_status pn_parse_doubles(const char *text, const char *what, double *out, int cap, int *count) {
    *count = 0;
    const char *p = text;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || (*end && *end != ',') || !isfinite(v))
            return pn_error(PN_ERR_USAGE, "%s: '%s' is not a comma-separated list of numbers", what, text);
        if (*count == cap) return pn_error(PN_ERR_USAGE, "%s: at most %d values", what, cap);
        out[(*count)++] = v;
        p = *end ? end + 1 : end;
    }
    if (*count == 0) return pn_error(PN_ERR_USAGE, "%s: empty list", what);
    return PN_OK;
}

int64_t pn_area_at_size(int64_t area_1024, int size) {
    return (int64_t)llround((double)area_1024 * size * size / (1024.0 * 1024.0));
}

static pn_status check_share(const char *what, double v) {
    if (v > 0 && v <= 1) return PN_OK;
    return pn_error(PN_ERR_USAGE, "%s: %g is outside (0, 1]", what, v);
}

static pn_status check_area(const char *what, double v) {
    if (v >= 0 && v <= 1e12 && v == floor(v)) return PN_OK;
    return pn_error(PN_ERR_USAGE, "%s: %g is not a whole number >= 0 of pixels of a 1024 image", what, v);
}

pn_status pn_tool_grid(const char *tops, const char *areas, const char *bottoms, int size, pn_run_grid *g) {
    double t[PN_GRID_MAX], a[PN_GRID_MAX], b[PN_GRID_MAX];
    int nt, na, nb;
    PN_TRY(pn_parse_doubles(tops ? tops : "0.6,0.75", "--tops", t, PN_GRID_MAX, &nt));
    PN_TRY(pn_parse_doubles(areas ? areas : "1000,2000,3000", "--areas", a, PN_GRID_MAX, &na));
    PN_TRY(pn_parse_doubles(bottoms ? bottoms : "0.3,0.4", "--bottoms", b, PN_GRID_MAX, &nb));
    float tf[PN_GRID_MAX], bf[PN_GRID_MAX];
    int64_t ai[PN_GRID_MAX];
    for (int i = 0; i < nt; i++) {
        PN_TRY(check_share("--tops", t[i]));
        tf[i] = (float)t[i];
    }
    for (int i = 0; i < nb; i++) {
        PN_TRY(check_share("--bottoms", b[i]));
        bf[i] = (float)b[i];
    }
    for (int i = 0; i < na; i++) {
        PN_TRY(check_area("--areas", a[i]));
        g->area_1024[i] = (int64_t)a[i];
        ai[i] = pn_area_at_size(g->area_1024[i], size);
    }
    return pn_as_usage(pn_grid_init(&g->g, tf, nt, ai, na, bf, nb));
}

pn_triplet pn_tool_grid_triplet(const pn_run_grid *g, int index) {
    pn_triplet t = pn_grid_triplet(&g->g, index);
    t.min_area = g->area_1024[(index / g->g.n_bottom) % g->g.n_area];
    return t;
}

pn_status pn_parse_triplet(const char *text, const char *what, pn_triplet *t) {
    double v[3];
    int n;
    PN_TRY(pn_parse_doubles(text, what, v, 3, &n));
    if (n != 3)
        return pn_error(PN_ERR_USAGE, "%s: expected top,min_area,bottom (e.g. 0.75,2000,0.3), got '%s'", what, text);
    PN_TRY(check_share(what, v[0]));
    PN_TRY(check_area(what, v[1]));
    PN_TRY(check_share(what, v[2]));
    *t = (pn_triplet){(float)v[0], (int64_t)v[1], (float)v[2]};
    return PN_OK;
}

/* The shortest %g form of f that reads back to the same float. */
static void float_text(float f, char *buf, size_t cap) {
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, cap, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f) return;
    }
}

const char *pn_triplet_text(const pn_triplet *t, char *buf, size_t cap) {
    char top[32], bottom[32];
    float_text(t->top, top, sizeof top);
    float_text(t->bottom, bottom, sizeof bottom);
    snprintf(buf, cap, "%s,%lld,%s", top, (long long)t->min_area, bottom);
    return buf;
}
