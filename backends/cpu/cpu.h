/* cpu: the multi-threaded CPU backend's internals: context, per-op functions and small helpers. */
#ifndef PN_CPU_H
#define PN_CPU_H

#include "core/backend.h"

#ifdef PN_HAVE_ONEDNN
#include <dnnl.h>
#endif

/* Creates the cpu backend with `threads` threads (0 = all cores). */
pn_status pn_cpu_backend_create(int threads, pn_backend **out);

/* The backend's shared state. `work` is one scratch area reused by every node (compute is serial);
 * prepare grows it, compute never allocates. */
typedef struct cpu_ctx {
    int threads;
    void *work;
    size_t work_bytes;
#ifdef PN_HAVE_ONEDNN
    dnnl_engine_t engine;
    dnnl_stream_t stream;
#endif
} cpu_ctx;

/* Grows the shared scratch area to at least `bytes` (prepare only). */
pn_status pn_cpu_work_reserve(cpu_ctx *ctx, size_t bytes);

/* One compute function per op; prepare/release hooks for the ops that keep per-node state. */
#define OP(E, name, P, nin, nout) pn_status pn_cpu_##name(cpu_ctx *ctx, pn_node *node);
#include "core/ops.def"
#undef OP

pn_status pn_cpu_conv2d_prepare(cpu_ctx *ctx, pn_node *node);
void pn_cpu_conv2d_release(cpu_ctx *ctx, pn_node *node);

/* Host float pointer of a node slot (NULL for an empty optional slot). */
static inline float *cpu_ptr(const pn_tensor *t) { return t ? pn_tensor_host_f32(t) : NULL; }

#ifdef PN_HAVE_ONEDNN
/* Turns a oneDNN status into a pn_status with a message naming `what`. */
pn_status pn_cpu_dnnl_check(dnnl_status_t st, const char *what);
#define DNNL_TRY(call)                                                   \
    do {                                                                 \
        dnnl_status_t dnnl_st_ = (call);                                 \
        if (dnnl_st_ != dnnl_success) return pn_cpu_dnnl_check(dnnl_st_, #call); \
    } while (0)
#endif

#endif
