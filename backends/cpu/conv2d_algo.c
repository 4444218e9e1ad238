/* cpu conv2d algorithm choice: direct or Winograd per convolution shape, picked by a one-time measurement of both
 * oneDNN primitives when a node is prepared (auto), cached per shape for the backend's life and, when the caller
 * names a file, across runs. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conv2d.h"

/* One measured shape: the op, the sizes, the choice and the two timings (milliseconds, best of the rounds). */
struct cpu_algo_entry {
    int op;
    int64_t n, cin, h, w, cout, k, stride, pad, groups;
    int winograd; /* 1: Winograd was faster */
    double ms_direct, ms_winograd;
};

static const char *algo_names[] = {"direct", "winograd", "auto"};

pn_status pn_cpu_set_conv_algo(pn_backend *be, const char *algo) {
    if (!be || strcmp(be->name, "cpu") != 0) return pn_error(PN_ERR_ARG, "--conv-algo applies to the cpu backend only");
    for (int i = 0; i < 3; i++)
        if (strcmp(algo, algo_names[i]) == 0) {
            cpu_ctx *ctx = be->ctx;
            if (i == PN_CPU_CONV_WINOGRAD && !pn_cpu_winograd_available())
                return pn_error(PN_ERR_UNSUPPORTED, "--conv-algo winograd: %s", pn_cpu_winograd_why());
            ctx->conv_algo = i;
            return PN_OK;
        }
    return pn_error(PN_ERR_ARG, "--conv-algo must be direct, winograd or auto, got '%s'", algo);
}

bool pn_cpu_winograd_available(void) {
#ifdef PN_HAVE_ONEDNN
    return cpu_isa_has(dnnl_cpu_isa_avx512_core);
#else
    return false;
#endif
}

const char *pn_cpu_winograd_why(void) {
#ifdef PN_HAVE_ONEDNN
    if (pn_cpu_winograd_available()) return "";
    return "Winograd convolutions come from oneDNN 2.6, which implements them for AVX-512 CPUs only, and this CPU "
           "lacks AVX-512";
#else
    return "Winograd convolutions need oneDNN and this build has none";
#endif
}

#ifndef PN_HAVE_ONEDNN
bool pn_cpu_conv_is_winograd(const pn_node *node) {
    (void)node;
    return false;
}

bool pn_cpu_conv_is_int8_winograd(const pn_node *node) {
    (void)node;
    return false;
}
#endif

static bool same_shape(const struct cpu_algo_entry *e, int op, const pn_conv_dims *d) {
    return e->op == op && e->n == d->n && e->cin == d->cin && e->h == d->h && e->w == d->w && e->cout == d->cout &&
           e->k == d->k && e->stride == d->stride && e->pad == d->pad && e->groups == d->groups;
}

int pn_cpu_conv_algo_cached(const cpu_ctx *ctx, int op, const pn_conv_dims *d) {
    for (int i = 0; i < ctx->n_algo; i++)
        if (same_shape(&ctx->algo[i], op, d)) return ctx->algo[i].winograd;
    return -1;
}

pn_status pn_cpu_conv_algo_record(cpu_ctx *ctx, int op, const pn_conv_dims *d, int winograd, double ms_d, double ms_w) {
    if (ctx->n_algo == ctx->cap_algo) {
        int cap = ctx->cap_algo ? 2 * ctx->cap_algo : 32;
        struct cpu_algo_entry *a = realloc(ctx->algo, (size_t)cap * sizeof *a);
        if (!a) return pn_error(PN_ERR_NOMEM, "out of memory recording a convolution algorithm");
        ctx->algo = a;
        ctx->cap_algo = cap;
    }
    struct cpu_algo_entry e = {op,        d->n,   d->cin,    d->h,     d->w, d->cout, d->k,
                               d->stride, d->pad, d->groups, winograd, ms_d, ms_w};
    ctx->algo[ctx->n_algo++] = e;
    return PN_OK;
}

#ifdef PN_HAVE_ONEDNN
/* A runnable primitive with memories for its arguments (filled with small varied values), for timing only. */
typedef struct timed_prim {
    dnnl_primitive_t prim;
    dnnl_exec_arg_t args[12];
    int nargs;
} timed_prim;

static void timed_prim_free(timed_prim *t) {
    for (int i = 0; i < t->nargs; i++) dnnl_memory_destroy(t->args[i].memory);
    if (t->prim) dnnl_primitive_destroy(t->prim);
    memset(t, 0, sizeof *t);
}

/* Where the timed primitives' memories go: the graph's arena (empty while it is planned) while it lasts, fresh
 * allocations after that. */
typedef struct timing_memory {
    char *at;
    size_t left;
} timing_memory;

static size_t align_up64(size_t v) { return (v + 63) & ~(size_t)63; }

/* Takes `bytes` from tm (NULL once it has no room left). */
static void *take_room(timing_memory *tm, size_t bytes) {
    if (align_up64(bytes) > tm->left) return NULL;
    void *p = tm->at;
    tm->at += align_up64(bytes), tm->left -= align_up64(bytes);
    return p;
}

/* The data of `first`'s argument `arg` when it has the layout `md`, else NULL. */
static void *same_argument(const timed_prim *first, int arg, const dnnl_memory_desc_t *md) {
    for (int i = 0; first && i < first->nargs; i++) {
        const dnnl_memory_desc_t *fmd = NULL;
        void *p = NULL;
        if (first->args[i].arg != arg || dnnl_memory_get_memory_desc(first->args[i].memory, &fmd) != dnnl_success)
            continue;
        if (dnnl_memory_desc_equal(md, fmd) && dnnl_memory_get_data_handle(first->args[i].memory, &p) == dnnl_success)
            return p;
    }
    return NULL;
}

/* The primitive of `pd` with memories for its arguments: the scratchpad at `scratch`, an argument of the same layout
 * as one of `first` (the other candidate, or NULL) that memory (only one of them runs at a time), the rest from tm
 * while it has room, else allocated. */
static pn_status timed_prim_make(cpu_ctx *ctx, dnnl_primitive_desc_t pd, timing_memory *tm, const timed_prim *first,
                                 void *scratch, timed_prim *t) {
    static const int args[] = {DNNL_ARG_SRC,          DNNL_ARG_WEIGHTS,   DNNL_ARG_BIAS,
                               DNNL_ARG_DST,          DNNL_ARG_DIFF_SRC,  DNNL_ARG_DIFF_DST,
                               DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS, DNNL_ARG_SCRATCHPAD};
    memset(t, 0, sizeof *t);
    DNNL_TRY(dnnl_primitive_create(&t->prim, pd));
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, args[i]);
        size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
        if (bytes == 0) continue;
        void *handle = args[i] == DNNL_ARG_SCRATCHPAD ? scratch : same_argument(first, args[i], md);
        bool shared = handle != NULL;
        if (!handle) handle = take_room(tm, bytes);
        dnnl_memory_t mem;
        if (dnnl_memory_create(&mem, md, ctx->engine, handle ? handle : DNNL_MEMORY_ALLOCATE) != dnnl_success) {
            timed_prim_free(t);
            return pn_error(PN_ERR_NOMEM, "out of memory timing a convolution");
        }
        t->args[t->nargs].arg = args[i];
        t->args[t->nargs++].memory = mem;
        void *p = NULL;
        if (!shared && dnnl_memory_get_data_handle(mem, &p) == dnnl_success && p) {
            float *f = p;
            for (size_t j = 0; j < bytes / sizeof *f; j++) f[j] = 0.01f * (float)((int)(j % 13) - 6);
        }
    }
    return PN_OK;
}

size_t pn_cpu_scratchpad_bytes(dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return smd ? dnnl_memory_desc_get_size(smd) : 0;
}

static pn_status timed_run(cpu_ctx *ctx, timed_prim *t, double *ms) {
    double t0 = pn_now();
    DNNL_TRY(dnnl_primitive_execute(t->prim, ctx->stream, t->nargs, t->args));
    DNNL_TRY(dnnl_stream_wait(ctx->stream));
    *ms = (pn_now() - t0) * 1e3;
    return PN_OK;
}

#define ALGO_ROUNDS 3

/* Runs both primitives once (warm-up), then ALGO_ROUNDS times each, alternating; the best time of each counts. Their
 * memories come from `room` (room_bytes of memory that holds nothing, given back zeroed) as far as they fit, one
 * scratchpad and the arguments of the same layout shared: planning a training step at batch 4 would otherwise add
 * some 200 MB of its own to the process's peak, and a forward at 512 some 90 MB. */
static pn_status time_both(cpu_ctx *ctx, dnnl_primitive_desc_t pd[2], char *room, size_t room_bytes, double best[2]) {
    timed_prim t[2];
    memset(t, 0, sizeof t);
    timing_memory tm = {room, room_bytes};
    size_t scratch_bytes = pn_cpu_scratchpad_bytes(pd[0]);
    if (pn_cpu_scratchpad_bytes(pd[1]) > scratch_bytes) scratch_bytes = pn_cpu_scratchpad_bytes(pd[1]);
    void *own = NULL, *scratch = scratch_bytes ? take_room(&tm, scratch_bytes) : NULL;
    if (scratch_bytes && !scratch && posix_memalign(&own, 64, align_up64(scratch_bytes)) != 0) own = NULL;
    if (!scratch) scratch = own;
    pn_status st = scratch_bytes && !scratch ? pn_error(PN_ERR_NOMEM, "out of memory timing a convolution") : PN_OK;
    if (st == PN_OK) st = timed_prim_make(ctx, pd[0], &tm, NULL, scratch, &t[0]);
    if (st == PN_OK) st = timed_prim_make(ctx, pd[1], &tm, &t[0], scratch, &t[1]);
    best[0] = best[1] = 1e300;
    for (int r = 0; r <= ALGO_ROUNDS && st == PN_OK; r++)
        for (int a = 0; a < 2 && st == PN_OK; a++) {
            double ms = 0;
            st = timed_run(ctx, &t[a], &ms);
            if (r > 0 && ms < best[a]) best[a] = ms;
        }
    timed_prim_free(&t[1]); /* first: it may use memory of t[0]'s */
    timed_prim_free(&t[0]);
    free(own);
    if (room) memset(room, 0, (size_t)(tm.at - room));
    return st;
}

pn_status pn_cpu_conv_algo_measure(cpu_ctx *ctx, const pn_node *node, const pn_conv_dims *d,
                                   dnnl_primitive_desc_t direct, dnnl_primitive_desc_t winograd) {
    dnnl_primitive_desc_t pd[2] = {direct, winograd};
    double best[2];
    double t0 = pn_now();
    int op = (int)node->op;
    /* while the graph is planned its arena holds nothing yet: all of it serves (pn_node) */
    char *arena = node->spare_buf ? node->spare_buf->host : NULL;
    PN_TRY(time_both(ctx, pd, arena, arena ? node->spare_buf->bytes : 0, best));
    ctx->algo_seconds += pn_now() - t0;
    return pn_cpu_conv_algo_record(ctx, op, d, best[1] < best[0], best[0], best[1]);
}
#endif

/* ---- the choices across runs: a small text file, one line per shape, valid for one CPU, ISA, thread count and
 * activation layout (blocked: the convolutions take nChw16c/nChw8c as stored; older files timed oneDNN's choice) ----
 */

static void cpu_signature(const cpu_ctx *ctx, char *sig, size_t n) {
    char model[128] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *colon = strchr(line, ':');
        if (!colon) break;
        colon += 1 + (colon[1] == ' ');
        snprintf(model, sizeof model, "%s", colon);
        model[strcspn(model, "\n")] = 0;
        for (char *c = model; *c; c++)
            if (*c == ' ' || *c == '\t') *c = '_';
        break;
    }
    if (f) fclose(f);
    unsigned isa = 0;
#ifdef PN_HAVE_ONEDNN
    isa = (unsigned)dnnl_get_effective_cpu_isa();
    const dnnl_version_t *v = dnnl_version();
    snprintf(sig, n, "cpu=%s isa=0x%x onednn=%d.%d.%d threads=%d%s", model, isa, v->major, v->minor, v->patch,
             ctx->threads, ctx->conv_blocked ? " layout=blocked" : "");
#else
    snprintf(sig, n, "cpu=%s isa=0x%x onednn=none threads=%d", model, isa, ctx->threads);
#endif
}

#define ALGO_FILE_HEADER                                                                                               \
    "# pneumoseg convolution algorithms v2: op n cin h w cout k stride pad groups winograd ms_direct ms_winograd"

pn_status pn_cpu_conv_algo_load(pn_backend *be, const char *path) {
    if (!be || strcmp(be->name, "cpu") != 0) return PN_OK;
    cpu_ctx *ctx = be->ctx;
    FILE *f = fopen(path, "r");
    if (!f) return PN_OK; /* nothing measured yet */
    char sig[256], line[512];
    cpu_signature(ctx, sig, sizeof sig);
    bool ours = false, header = false;
    pn_status st = PN_OK;
    while (st == PN_OK && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!header) {
            header = strcmp(line, ALGO_FILE_HEADER) == 0;
            if (!header) break; /* not ours: ignore the file */
            continue;
        }
        if (line[0] == '#') {
            ours = strcmp(line + (line[1] == ' ' ? 2 : 1), sig) == 0;
            continue;
        }
        if (!ours) continue;
        pn_conv_dims d;
        memset(&d, 0, sizeof d);
        int op = -1, wino, stride, pad;
        long long n, cin, h, w, cout, k, groups;
        double md, mw;
        char name[32];
        if (sscanf(line, "%31s %lld %lld %lld %lld %lld %lld %d %d %lld %d %lf %lf", name, &n, &cin, &h, &w, &cout, &k,
                   &stride, &pad, &groups, &wino, &md, &mw) != 13)
            continue; /* a damaged line costs one measurement, nothing more */
        for (int i = 0; i < PN_OP_COUNT; i++)
            if (strcmp(pn_op_name((pn_op)i), name) == 0) op = i;
        if (op < 0) continue;
        d.n = n, d.cin = cin, d.h = h, d.w = w, d.cout = cout, d.k = k, d.stride = stride, d.pad = pad,
        d.groups = groups;
        if (pn_cpu_conv_algo_cached(ctx, op, &d) < 0) st = pn_cpu_conv_algo_record(ctx, op, &d, wino != 0, md, mw);
    }
    fclose(f);
    ctx->algo_saved = ctx->n_algo;
    return st;
}

pn_status pn_cpu_conv_algo_save(pn_backend *be, const char *path, bool only_if_new) {
    if (!be || strcmp(be->name, "cpu") != 0) return PN_OK;
    cpu_ctx *ctx = be->ctx;
    if (only_if_new && ctx->n_algo == ctx->algo_saved) return PN_OK; /* nothing new */
    char sig[256], line[512], tmp[4096];
    cpu_signature(ctx, sig, sizeof sig);
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return pn_error(PN_ERR_ARG, "%s: path too long", path);
    FILE *out = fopen(tmp, "w");
    if (!out) return pn_error(PN_ERR_IO, "%s: cannot write the convolution algorithm choices", tmp);
    fprintf(out, "%s\n", ALGO_FILE_HEADER);
    /* keep other machines' sections as they are */
    FILE *in = fopen(path, "r");
    bool header = false, other = false;
    while (in && fgets(line, sizeof line, in)) {
        char body[512];
        snprintf(body, sizeof body, "%s", line);
        body[strcspn(body, "\n")] = 0;
        if (!header) {
            header = strcmp(body, ALGO_FILE_HEADER) == 0;
            if (!header) break;
            continue;
        }
        if (body[0] == '#') other = strcmp(body + (body[1] == ' ' ? 2 : 1), sig) != 0;
        if (other) fputs(line, out);
    }
    if (in) fclose(in);
    fprintf(out, "# %s\n", sig);
    for (int i = 0; i < ctx->n_algo; i++) {
        const struct cpu_algo_entry *e = &ctx->algo[i];
        fprintf(out, "%s %lld %lld %lld %lld %lld %lld %lld %lld %lld %d %.4f %.4f\n", pn_op_name((pn_op)e->op),
                (long long)e->n, (long long)e->cin, (long long)e->h, (long long)e->w, (long long)e->cout,
                (long long)e->k, (long long)e->stride, (long long)e->pad, (long long)e->groups, e->winograd,
                e->ms_direct, e->ms_winograd);
    }
    bool ok = !ferror(out);
    ok = fclose(out) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return pn_error(PN_ERR_IO, "%s: cannot write the convolution algorithm choices", path);
    }
    if (only_if_new) ctx->algo_saved = ctx->n_algo;
    return PN_OK;
}

void pn_cpu_stats_get(pn_backend *be, pn_cpu_stats *out) {
    memset(out, 0, sizeof *out);
    if (!be || strcmp(be->name, "cpu") != 0) return;
    cpu_ctx *ctx = be->ctx;
    for (int i = 0; i < ctx->n_algo; i++) out->algo_winograd += ctx->algo[i].winograd;
    out->algo_shapes = ctx->n_algo;
    out->algo_seconds = ctx->algo_seconds;
    out->prepare_seconds = ctx->prepare_seconds;
    out->weight_prep_seconds = ctx->weight_prep_seconds;
}

void pn_cpu_conv_algo_free(cpu_ctx *ctx) {
    free(ctx->algo);
    ctx->algo = NULL;
    ctx->n_algo = ctx->cap_algo = ctx->algo_saved = 0;
}
