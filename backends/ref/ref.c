/* ref: the reference backend's vtable and dispatch table: host memory, float32 NCHW, every op in ops.def. */
#include "ref.h"

#include <stdlib.h>
#include <string.h>

const pn_ref_op_fn pn_ref_ops[PN_OP_COUNT] = {
#define OP(E, name, P, nin, nout, ...) [PN_OP_##E] = pn_ref_##name,
#include "core/ops.def"
#undef OP
};

/* The backend and the table it dispatches through, in one allocation. */
typedef struct ref_backend {
    pn_backend be;
    const pn_ref_op_fn *ops;
} ref_backend;

static const pn_ref_op_fn *ops_of(const pn_backend *be) { return ((const ref_backend *)be->ctx)->ops; }

static pn_status ref_buffer_alloc(pn_backend *be, pn_buffer *buf, size_t bytes) {
    (void)be;
    buf->host = pn_alloc(bytes);
    if (!buf->host) return PN_ERR_NOMEM;
    buf->handle = buf->host;
    return PN_OK;
}

static void ref_buffer_free(pn_backend *be, pn_buffer *buf) {
    (void)be;
    pn_free(buf->host);
}

static pn_status ref_tensor_set(pn_backend *be, const pn_tensor *t, const float *src) {
    (void)be;
    memcpy(pn_tensor_host_f32(t), src, pn_tensor_bytes(t));
    return PN_OK;
}

static pn_status ref_tensor_get(pn_backend *be, const pn_tensor *t, float *dst) {
    (void)be;
    memcpy(dst, pn_tensor_host_f32(t), pn_tensor_bytes(t));
    return PN_OK;
}

static const char *ref_supports_op(pn_backend *be, const pn_node *node) {
    if (!ops_of(be)[node->op]) return PN_OP_LEFT_OUT;
    for (int i = 0; i < PN_OP_MAX_IO; i++) {
        if ((node->in[i] && node->in[i]->dtype != PN_F32) || (node->out[i] && node->out[i]->dtype != PN_F32))
            return "ref computes float32 only";
    }
    return NULL;
}

static pn_status ref_compute(pn_backend *be, pn_node *node) { return ops_of(be)[node->op](node); }

static void ref_destroy(pn_backend *be) { free(be->ctx); }

/* NCHW: the channels of one image are contiguous, so a channel slice is a plain tensor when the batch is 1. */
static bool ref_channel_view(pn_backend *be, const pn_tensor *parent, int64_t c0, const pn_tensor *view,
                             size_t *offset) {
    (void)be, (void)view;
    if (parent->shape[0] != 1) return false;
    *offset = (size_t)(c0 * parent->shape[2] * parent->shape[3]) * sizeof(float);
    return true;
}

pn_status pn_ref_backend_create_with_ops(const pn_ref_op_fn *ops, pn_backend **out) {
    ref_backend *rb = calloc(1, sizeof *rb);
    if (!rb) return pn_error(PN_ERR_NOMEM, "out of memory creating the ref backend");
    rb->ops = ops;
    pn_backend *be = &rb->be;
    be->ctx = rb;
    be->name = "ref";
    be->api_version = PN_BACKEND_API_VERSION;
    be->host_memory = true;
    be->buffer_alloc = ref_buffer_alloc;
    be->buffer_free = ref_buffer_free;
    be->tensor_set = ref_tensor_set;
    be->tensor_get = ref_tensor_get;
    be->supports_op = ref_supports_op;
    be->compute = ref_compute;
    be->destroy = ref_destroy;
    be->channel_view = ref_channel_view;
    *out = be;
    return PN_OK;
}

pn_status pn_ref_backend_create(int threads, pn_backend **out) {
    (void)threads;
    return pn_ref_backend_create_with_ops(pn_ref_ops, out);
}
