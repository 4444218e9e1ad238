/* backend: checked wrappers around the backend vtable, node shape checks, and the backend registry. */
#define _GNU_SOURCE
#include "backend.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------- buffers and tensors ---------------- */

void pn_buffer_touch(pn_buffer *buf) {
    static uint64_t last;
    buf->version = __atomic_add_fetch(&last, 1, __ATOMIC_RELAXED);
}

pn_status pn_buffer_alloc(pn_backend *be, pn_buffer *buf, size_t bytes) {
    PN_ASSERT(be && buf);
    memset(buf, 0, sizeof *buf);
    buf->backend = be;
    buf->bytes = bytes;
    pn_buffer_touch(buf);
    pn_status st = be->buffer_alloc(be, buf, bytes);
    if (st != PN_OK) buf->backend = NULL;
    return st;
}

void pn_buffer_free(pn_buffer *buf) {
    if (!buf || !buf->backend) return;
    buf->backend->buffer_free(buf->backend, buf);
    memset(buf, 0, sizeof *buf);
}

static void check_in_bounds(const pn_tensor *t) {
    PN_ASSERT(t->buf && t->buf->backend);
    PN_ASSERT(t->offset + pn_tensor_bytes(t) <= t->buf->bytes);
}

pn_status pn_tensor_set(const pn_tensor *t, const float *src) {
    check_in_bounds(t);
    pn_backend *be = t->buf->backend;
    pn_buffer_touch(t->buf);
    return be->tensor_set(be, t, src);
}

pn_status pn_tensor_get(const pn_tensor *t, float *dst) {
    check_in_bounds(t);
    pn_backend *be = t->buf->backend;
    return be->tensor_get(be, t, dst);
}

size_t pn_backend_storage_bytes(pn_backend *be, const pn_tensor *t) {
    return be->storage_bytes ? be->storage_bytes(be, t) : pn_tensor_bytes(t);
}

bool pn_backend_channel_view(pn_backend *be, const pn_tensor *parent, int64_t c0, const pn_tensor *view,
                             size_t *offset) {
    if (!be->channel_view || parent->ndim != 4 || view->ndim != 4 || parent->dtype != view->dtype) return false;
    if (view->shape[0] != parent->shape[0] || view->shape[2] != parent->shape[2] || view->shape[3] != parent->shape[3])
        return false;
    if (c0 < 0 || view->shape[1] < 1 || c0 + view->shape[1] > parent->shape[1]) return false;
    return be->channel_view(be, parent, c0, view, offset);
}

/* ---------------- node checks ---------------- */

static pn_status shape_error(const pn_node *n, const char *what, const pn_tensor *t, const char *expected) {
    char s[64];
    return pn_error(PN_ERR_ARG, "%s%s%s: %s has shape %s, expected %s", pn_op_name(n->op), n->label ? " " : "",
                    n->label ? n->label : "", what, t ? pn_shape_str(t, s, sizeof s) : "(none)", expected);
}

static pn_status expect_shape(const pn_node *n, const char *what, const pn_tensor *t, int ndim, int64_t d0, int64_t d1,
                              int64_t d2, int64_t d3) {
    int64_t d[4] = {d0, d1, d2, d3};
    int ok = t && t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == d[i];
    if (ok) return PN_OK;
    char e[96] = "";
    size_t used = 0;
    for (int i = 0; i < ndim; i++)
        used += (size_t)snprintf(e + used, sizeof e - used, i ? "x%lld" : "%lld", (long long)d[i]);
    return shape_error(n, what, t, e);
}

static pn_status expect_same(const pn_node *n, const char *what, const pn_tensor *t, const pn_tensor *like) {
    char s[64];
    if (t && pn_tensor_same_shape(t, like)) return PN_OK;
    return shape_error(n, what, t, pn_shape_str(like, s, sizeof s));
}

static pn_status expect_vec(const pn_node *n, const char *what, const pn_tensor *t, int64_t len) {
    return expect_shape(n, what, t, 1, len, 0, 0, 0);
}

static int64_t conv_out(int64_t in, int64_t k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

/* CONV2D_FWD / BWD_DATA / BWD_WEIGHTS: x, w and y (or their gradients) agree; the bias is a vector. */
static pn_status shape_conv(const pn_node *n) {
    const pn_conv2d_params *p = &n->p.conv2d_fwd;
    const pn_tensor *x, *w, *y;
    if (p->stride < 1 || p->pad < 0 || p->groups < 1) return pn_error(PN_ERR_ARG, "conv2d: bad stride/pad/groups");
    if (n->op == PN_OP_CONV2D_FWD) {
        y = n->out[0], x = n->in[0], w = n->in[1];
    } else if (n->op == PN_OP_CONV2D_BWD_DATA) {
        x = n->out[0], y = n->in[0], w = n->in[1];
    } else {
        w = n->out[0], y = n->in[0], x = n->in[1];
    }
    if (!x || !w || !y || x->ndim != 4 || w->ndim != 4 || y->ndim != 4)
        return pn_error(PN_ERR_ARG, "%s: needs 4-d x, w and y", pn_op_name(n->op));
    int64_t cout = w->shape[0], k = w->shape[2];
    if (w->shape[3] != k) return shape_error(n, "weight", w, "a square kernel");
    if (x->shape[1] != w->shape[1] * p->groups || cout % p->groups)
        return shape_error(n, "weight", w, "channels matching x and groups");
    int64_t oh = conv_out(x->shape[2], k, p->stride, p->pad), ow = conv_out(x->shape[3], k, p->stride, p->pad);
    if (oh < 1 || ow < 1) return shape_error(n, "x", x, "a spatial size at least the kernel");
    PN_TRY(expect_shape(n, n->op == PN_OP_CONV2D_FWD ? "y" : "dy", y, 4, x->shape[0], cout, oh, ow));
    const pn_tensor *bias = n->op == PN_OP_CONV2D_FWD ? n->in[2] : n->op == PN_OP_CONV2D_BWD_WEIGHTS ? n->out[1] : NULL;
    if (bias) PN_TRY(expect_vec(n, "bias", bias, cout));
    return PN_OK;
}

/* BATCHNORM_*: x and y (dx, dy) the same, the parameters and statistics vectors of x's channels. */
static pn_status shape_batchnorm(const pn_node *n) {
    const pn_tensor *x = n->op == PN_OP_BATCHNORM_BWD ? n->in[1] : n->in[0];
    if (!x || x->ndim != 4) return pn_error(PN_ERR_ARG, "%s: x must be 4-d", pn_op_name(n->op));
    int64_t c = x->shape[1];
    switch (n->op) {
    case PN_OP_BATCHNORM_TRAIN_FWD:
        if (x->shape[0] * x->shape[2] * x->shape[3] < 2)
            return pn_error(PN_ERR_ARG, "batchnorm in train mode needs more than 1 value per channel (got %s)",
                            pn_shape_str(x, (char[64]){0}, 64));
        PN_TRY(expect_same(n, "y", n->out[0], x));
        for (int i = 1; i < 5; i++) PN_TRY(expect_vec(n, "statistics", n->out[i], c));
        for (int i = 1; i < 3; i++) PN_TRY(expect_vec(n, "gamma/beta", n->in[i], c));
        return PN_OK;
    case PN_OP_BATCHNORM_INFER_FWD:
    case PN_OP_BATCHNORM_APPLY:
        PN_TRY(expect_same(n, "y", n->out[0], x));
        for (int i = 1; i < 5; i++) PN_TRY(expect_vec(n, "parameters", n->in[i], c));
        return PN_OK;
    default:
        PN_TRY(expect_same(n, "dx", n->out[0], x));
        PN_TRY(expect_same(n, "dy", n->in[0], x));
        for (int i = 1; i < 3; i++) PN_TRY(expect_vec(n, "dgamma/dbeta", n->out[i], c));
        for (int i = 2; i < 5; i++) PN_TRY(expect_vec(n, "gamma/statistics", n->in[i], c));
        return PN_OK;
    }
}

/* MAXPOOL_FWD / BWD: y the pooled size of x. */
static pn_status shape_pool(const pn_node *n) {
    const pn_pool_params *p = &n->p.maxpool_fwd;
    const pn_tensor *x = n->op == PN_OP_MAXPOOL_FWD ? n->in[0] : n->in[1];
    const pn_tensor *y = n->op == PN_OP_MAXPOOL_FWD ? n->out[0] : n->in[0];
    if (p->kernel < 1 || p->stride < 1 || p->pad < 0 || 2 * p->pad > p->kernel)
        return pn_error(PN_ERR_ARG, "maxpool: bad kernel/stride/pad");
    if (!x || x->ndim != 4) return pn_error(PN_ERR_ARG, "maxpool: x must be 4-d");
    int64_t oh = pn_pool_out_size(x->shape[2], p), ow = pn_pool_out_size(x->shape[3], p);
    if (oh < 1 || ow < 1) return shape_error(n, "x", x, "a spatial size at least the kernel");
    PN_TRY(expect_shape(n, "y", y, 4, x->shape[0], x->shape[1], oh, ow));
    if (n->op == PN_OP_MAXPOOL_BWD) PN_TRY(expect_same(n, "dx", n->out[0], x));
    return PN_OK;
}

/* UPSAMPLE2X_* and BILINEAR2X_*: the large tensor twice the small one in H and W. */
static pn_status shape_resize2x(const pn_node *n) {
    bool fwd = n->op == PN_OP_UPSAMPLE2X_FWD || n->op == PN_OP_BILINEAR2X_FWD;
    const pn_tensor *small = fwd ? n->in[0] : n->out[0];
    const pn_tensor *big = fwd ? n->out[0] : n->in[0];
    if (!small || small->ndim != 4) return pn_error(PN_ERR_ARG, "upsample2x: tensors must be 4-d");
    return expect_shape(n, "the large tensor", big, 4, small->shape[0], small->shape[1], 2 * small->shape[2],
                        2 * small->shape[3]);
}

/* CONCAT / SPLIT: the joined tensor has the channels of both parts. */
static pn_status shape_concat(const pn_node *n) {
    const pn_tensor *a = n->op == PN_OP_CONCAT ? n->in[0] : n->out[0];
    const pn_tensor *b = n->op == PN_OP_CONCAT ? n->in[1] : n->out[1];
    const pn_tensor *y = n->op == PN_OP_CONCAT ? n->out[0] : n->in[0];
    if (!a || !y || a->ndim != 4 || y->ndim != 4) return pn_error(PN_ERR_ARG, "concat/split: tensors must be 4-d");
    int64_t cb = y->shape[1] - a->shape[1];
    if (cb < 1) return shape_error(n, "the joined tensor", y, "more channels than the first part");
    if (b) PN_TRY(expect_shape(n, "second part", b, 4, a->shape[0], cb, a->shape[2], a->shape[3]));
    return expect_shape(n, "the joined tensor", y, 4, a->shape[0], a->shape[1] + cb, a->shape[2], a->shape[3]);
}

/* GLOBAL_AVG_POOL_*, CHANNEL_MUL*, PIXEL_MUL*: a full tensor x (N,C,H,W) and a reduced one, (N,C,1,1) per channel
 * or (N,1,H,W) per pixel. */
static pn_status shape_reduced(const pn_node *n) {
    const pn_tensor *x, *r, *other = NULL;
    bool per_pixel = false;
    switch (n->op) {
    case PN_OP_GLOBAL_AVG_POOL_FWD: x = n->in[0], r = n->out[0]; break;
    case PN_OP_GLOBAL_AVG_POOL_BWD: x = n->out[0], r = n->in[0]; break;
    case PN_OP_PIXEL_MUL: per_pixel = true; /* fall through */
    case PN_OP_CHANNEL_MUL: x = n->in[0], r = n->in[1], other = n->out[0]; break;
    case PN_OP_PIXEL_MUL_BWD_SCALE: per_pixel = true; /* fall through */
    default: x = n->in[1], r = n->out[0], other = n->in[0]; break;
    }
    if (!x || x->ndim != 4) return pn_error(PN_ERR_ARG, "%s: x must be 4-d", pn_op_name(n->op));
    if (other) PN_TRY(expect_same(n, "the full-size tensor", other, x));
    if (per_pixel) return expect_shape(n, "the per-pixel tensor", r, 4, x->shape[0], 1, x->shape[2], x->shape[3]);
    return expect_shape(n, "the per-channel tensor", r, 4, x->shape[0], x->shape[1], 1, 1);
}

/* Elementwise ops: every input and output has the shape of the first input (or of the output). */
static pn_status shape_same(const pn_node *n) {
    const pn_tensor *ref = n->in[0] ? n->in[0] : n->out[0];
    int nin = pn_op_num_inputs(n->op), nout = pn_op_num_outputs(n->op);
    for (int i = 0; i < nin; i++) PN_TRY(expect_same(n, "input", n->in[i], ref));
    for (int i = 0; i < nout; i++) PN_TRY(expect_same(n, "output", n->out[i], ref));
    return PN_OK;
}

/* SUM_SQUARES: s is one element. */
static pn_status shape_scalar_out(const pn_node *n) { return expect_vec(n, "s", n->out[0], 1); }

/* COMBO_LOSS_FWD: target as logits, the loss one element. */
static pn_status shape_loss(const pn_node *n) {
    PN_TRY(expect_same(n, "target", n->in[1], n->in[0]));
    return expect_vec(n, "loss", n->out[0], 1);
}

/* Each op's shape rule, named in its ops.def row (`any`: no rule). */
typedef pn_status (*shape_rule)(const pn_node *n);
#define shape_any NULL
static const shape_rule shape_rules[PN_OP_COUNT] = {
#define OP(E, name, P, nin, nout, opt_in, opt_out, shape, ...) [PN_OP_##E] = shape_##shape,
#include "ops.def"
#undef OP
};
#undef shape_any

pn_status pn_node_check(const pn_node *n) {
    if ((unsigned)n->op >= PN_OP_COUNT) return pn_error(PN_ERR_ARG, "unknown op %d", (int)n->op);
    for (int s = 0; s < 2; s++) {
        bool is_out = s == 0;
        int count = is_out ? pn_op_num_outputs(n->op) : pn_op_num_inputs(n->op);
        pn_tensor *const *slots = is_out ? n->out : n->in;
        for (int i = 0; i < PN_OP_MAX_IO; i++) {
            const pn_tensor *t = slots[i];
            if (i >= count) {
                if (t)
                    return pn_error(PN_ERR_ARG, "%s: unexpected %s slot %d", pn_op_name(n->op),
                                    is_out ? "output" : "input", i);
                continue;
            }
            if (!t) {
                if (pn_op_slot_optional(n->op, is_out, i)) continue;
                return pn_error(PN_ERR_ARG, "%s: %s slot %d is missing", pn_op_name(n->op), is_out ? "output" : "input",
                                i);
            }
            if (!t->buf || !t->buf->backend)
                return pn_error(PN_ERR_ARG, "%s: a tensor has no storage", pn_op_name(n->op));
            if (t->offset + pn_tensor_bytes(t) > t->buf->bytes)
                return pn_error(PN_ERR_ARG, "%s: a tensor runs past its buffer", pn_op_name(n->op));
        }
    }
    return shape_rules[n->op] ? shape_rules[n->op](n) : PN_OK;
}

const char *pn_node_unsupported(pn_backend *be, const pn_node *node) {
    if (!be->supports_op) return NULL;
    return be->supports_op(be, node);
}

pn_status pn_node_supported(pn_backend *be, const pn_node *node) {
    PN_TRY(pn_node_check(node));
    const char *why = pn_node_unsupported(be, node);
    if (!why) return PN_OK;
    return pn_error(PN_ERR_UNSUPPORTED, "backend %s cannot run %s%s%s: %s", be->name, pn_op_name(node->op),
                    node->label ? " " : "", node->label ? node->label : "", why);
}

pn_status pn_node_prepare(pn_backend *be, pn_node *node) {
    PN_TRY(pn_node_supported(be, node));
    if (be->prepare) return be->prepare(be, node);
    return PN_OK;
}

pn_status pn_node_compute(pn_backend *be, pn_node *node) {
    pn_status st = be->compute(be, node);
    for (int i = 0; i < PN_OP_MAX_IO; i++)
        if (node->out[i] && node->out[i]->buf) pn_buffer_touch(node->out[i]->buf);
    return st;
}

void pn_node_release(pn_backend *be, pn_node *node) {
    /* also a node without state: the backend may remember it (the cpu backend's ReLU joins keep the node prepared
     * last) and must forget it before the node and its tensors go */
    if (be->release) be->release(be, node);
    node->state = NULL;
}

pn_status pn_backend_synchronize(pn_backend *be) { return be->synchronize ? be->synchronize(be) : PN_OK; }

/* ---------------- registry ---------------- */

#define MAX_BACKENDS 8
static struct {
    const char *name;
    pn_backend_factory factory;
} registry[MAX_BACKENDS];
static int registry_count;
static char builtin_names[128];

void pn_backend_register(const char *name, pn_backend_factory factory) {
    for (int i = 0; i < registry_count; i++)
        if (strcmp(registry[i].name, name) == 0) return;
    PN_ASSERT(registry_count < MAX_BACKENDS);
    registry[registry_count].name = name;
    registry[registry_count].factory = factory;
    registry_count++;
    size_t used = strlen(builtin_names);
    snprintf(builtin_names + used, sizeof builtin_names - used, "%s%s", used ? "," : "", name);
}

const char *pn_backend_builtin_names(void) { return builtin_names; }

static const char *auto_order; /* comma separated; NULL = the built-in backends in registration order */

void pn_backend_set_auto_order(const char *order) { auto_order = order; }

static pn_backend_factory find_builtin(const char *name) {
    for (int i = 0; i < registry_count; i++)
        if (strcmp(registry[i].name, name) == 0) return registry[i].factory;
    return NULL;
}

/* Tries dir/libpneumoseg-<name>.so; returns the dlopen handle or NULL (reason in `why`); *found is set
 * when the file exists. */
static void *try_module_dir(const char *dir, const char *name, char *why, size_t n, bool *found) {
    char path[PATH_MAX + 64];
    if (snprintf(path, sizeof path, "%s/libpneumoseg-%s.so", dir, name) >= (int)sizeof path) return NULL;
    if (access(path, R_OK) != 0) return NULL;
    *found = true;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) snprintf(why, n, "%s", dlerror());
    return h;
}

/* Where an installed binary's modules are, relative to its folder (cmake --install puts them there; the build tree
 * keeps them next to the binary). */
#ifndef PN_MODULE_SUBDIR
#define PN_MODULE_SUBDIR "../lib/pneumoseg"
#endif

/* Looks for libpneumoseg-<name>.so in $PN_BACKEND_PATH, next to the executable, then in its installed module folder. */
static void *find_module(const char *name, char *why, size_t n, bool *found) {
    *found = false;
    snprintf(why, n, "libpneumoseg-%s.so was not found in PN_BACKEND_PATH or next to the executable", name);
    const char *env = getenv("PN_BACKEND_PATH");
    if (env && *env) {
        char copy[PATH_MAX];
        snprintf(copy, sizeof copy, "%s", env);
        for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
            void *h = try_module_dir(dir, name, why, n, found);
            if (h) return h;
        }
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) return NULL;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    void *h = try_module_dir(exe, name, why, n, found);
    if (h) return h;
    char installed[PATH_MAX + 64], resolved[PATH_MAX];
    snprintf(installed, sizeof installed, "%s/%s", exe, PN_MODULE_SUBDIR);
    const char *dir = realpath(installed, resolved) ? resolved : installed;
    h = try_module_dir(dir, name, why, n, found);
    if (!h && !*found)
        snprintf(why, n, "libpneumoseg-%s.so was not found in PN_BACKEND_PATH, next to the executable (%s) or in %s",
                 name, exe, dir);
    return h;
}

/* Loads a backend module; never dlclose'd (its code may stay referenced by atexit handlers).
 * *found tells whether a module file exists at all (so "unknown backend" and "module failed" differ). */
static pn_status open_module(const char *name, int threads, pn_backend **out, bool *found) {
    char why[512];
    void *h = find_module(name, why, sizeof why, found);
    if (!h) return pn_error(PN_ERR_BACKEND, "%s backend unavailable: %s", name, why);
    pn_module_score_fn score = (pn_module_score_fn)(uintptr_t)dlsym(h, "pn_backend_score");
    pn_module_init_fn init = (pn_module_init_fn)(uintptr_t)dlsym(h, "pn_backend_init");
    if (!score || !init)
        return pn_error(PN_ERR_BACKEND, "%s backend unavailable: the module lacks pn_backend_score/pn_backend_init",
                        name);
    if (score(why, sizeof why) <= 0) return pn_error(PN_ERR_BACKEND, "%s backend unavailable: %s", name, why);
    pn_status st = init(PN_BACKEND_API_VERSION, threads, out);
    if (st != PN_OK) return st;
    if ((*out)->api_version != PN_BACKEND_API_VERSION) {
        int api = (*out)->api_version;
        (*out)->destroy(*out);
        *out = NULL;
        return pn_error(PN_ERR_BACKEND, "%s backend module speaks API %d, this binary needs %d", name, api,
                        PN_BACKEND_API_VERSION);
    }
    return PN_OK;
}

int pn_backend_module_probe(const char *name, char *why, size_t n) {
    bool found;
    void *h = find_module(name, why, n, &found);
    if (!h) return 0;
    pn_module_score_fn score = (pn_module_score_fn)(uintptr_t)dlsym(h, "pn_backend_score");
    if (!score) {
        snprintf(why, n, "the module lacks pn_backend_score");
        return 0;
    }
    return score(why, n);
}

/* The first usable backend of the auto order: a built-in one opens; a module that does not load is skipped with one
 * line saying why (the built-in backends that follow it run on the host: "using the CPU"). */
static pn_status open_auto(int threads, pn_backend **out) {
    if (!auto_order) {
        if (registry_count == 0) return pn_error(PN_ERR_BACKEND, "no backend is built in");
        return registry[0].factory(threads, out);
    }
    char names[128];
    snprintf(names, sizeof names, "%s", auto_order);
    for (char *save = NULL, *n = strtok_r(names, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
        pn_backend_factory f = find_builtin(n);
        if (f) return f(threads, out);
        bool found;
        if (open_module(n, threads, out, &found) == PN_OK) return PN_OK;
        pn_log_info("%s; using the CPU", pn_last_error());
    }
    return pn_error(PN_ERR_BACKEND, "no backend of the auto order (%s) is available", auto_order);
}

pn_status pn_backend_open(const char *name, int threads, pn_backend **out) {
    *out = NULL;
    bool found;
    if (threads < 0) return pn_error(PN_ERR_ARG, "--threads must be >= 0 (0 = all cores), got %d", threads);
    if (strcmp(name, "auto") == 0) return open_auto(threads, out);
    pn_backend_factory f = find_builtin(name);
    if (f) return f(threads, out);
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return pn_error(PN_ERR_ARG, "unknown backend '%s' (built in: %s)", name, builtin_names);
    pn_status st = open_module(name, threads, out, &found);
    if (st != PN_OK && !found && strcmp(name, "cuda") != 0)
        return pn_error(PN_ERR_ARG, "unknown backend '%s' (built in: %s; no module libpneumoseg-%s.so found)", name,
                        builtin_names, name);
    return st;
}

void pn_backend_close(pn_backend *be) {
    if (be) be->destroy(be);
}
