/* backend: the interface every backend implements (a vtable), the node it computes, and the registry. */
#ifndef PN_BACKEND_H
#define PN_BACKEND_H

#include <stdbool.h>

#include "base.h"
#include "ops.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2: the optional set_precision and set_deterministic slots at the end of pn_backend; 3: the optional collectives slot.
 */
#define PN_BACKEND_API_VERSION 3

struct pn_collectives_i;

/* One op applied to concrete tensors. Outputs first, then inputs (see ops.def). */
typedef struct pn_node {
    pn_op op;
    pn_op_params p;
    pn_tensor *out[PN_OP_MAX_IO];
    pn_tensor *in[PN_OP_MAX_IO];
    void *state;       /* the backend's per-node state, made by prepare, freed by release */
    const char *label; /* e.g. "encoder.layer1.0.conv1", for messages */
    /* Arena bytes that no tensor alive at this node occupies (set by pn_graph_plan before prepare; none when
     * spare_bytes is 0): while the node runs, the backend may use [spare_offset, spare_offset + spare_bytes) of
     * *spare_buf as scratch, so a convolution's workspace costs no memory beyond the arena's peak. While the graph is
     * planned (prepare), the whole arena holds nothing yet: a backend may use all of *spare_buf for one-off work
     * then (timing algorithms), and gives it back zeroed. */
    const pn_buffer *spare_buf;
    size_t spare_offset, spare_bytes;
    /* Set by pn_graph_plan before prepare: no node after this one uses in[i]'s memory and the graph does not keep
     * it, so its contents are dead once this node has run (false where the graph cannot tell). */
    bool in_last_use[PN_OP_MAX_IO];
} pn_node;

/* A backend. Optional slots may be NULL. Every call goes through the checked wrappers below. */
typedef struct pn_backend {
    const char *name;
    int api_version;
    bool host_memory; /* buffers are plain host memory (buf->host is valid) */
    void *ctx;
    pn_status (*buffer_alloc)(struct pn_backend *be, pn_buffer *buf, size_t bytes); /* zeroed */
    void (*buffer_free)(struct pn_backend *be, pn_buffer *buf);
    /* Host NCHW float32 <-> the tensor (any internal layout or dtype). */
    pn_status (*tensor_set)(struct pn_backend *be, const pn_tensor *t, const float *src);
    pn_status (*tensor_get)(struct pn_backend *be, const pn_tensor *t, float *dst);
    /* Bytes of storage the backend needs for t (e.g. padded blocked layouts); NULL = numel * dtype size. */
    size_t (*storage_bytes)(struct pn_backend *be, const pn_tensor *t);
    /* NULL if the node can run here, else a short reason (e.g. "groups > 1 not implemented"). */
    const char *(*supports_op)(struct pn_backend *be, const pn_node *node);
    pn_status (*prepare)(struct pn_backend *be, pn_node *node); /* optional */
    pn_status (*compute)(struct pn_backend *be, pn_node *node);
    void (*release)(struct pn_backend *be, pn_node *node);        /* optional; every node, state or none */
    pn_status (*synchronize)(struct pn_backend *be);              /* optional */
    pn_status (*set_threads)(struct pn_backend *be, int threads); /* optional */
    void (*destroy)(struct pn_backend *be);
    /* Arithmetic of the nodes prepared from now on: "fp32", "bf16" or "fp16" (tensors stay float32; the
     * backend converts operands where it computes in lower precision). NULL slot = float32 only. A
     * backend that cannot do it returns PN_ERR_UNSUPPORTED with the reason. Optional. */
    pn_status (*set_precision)(struct pn_backend *be, const char *precision);
    /* Picks only deterministic algorithms for the nodes prepared from now on. Optional (NULL = the
     * backend is deterministic anyway). */
    pn_status (*set_deterministic)(struct pn_backend *be, bool deterministic);
    /* Optional (NULL = never): whether channels [c0, c0 + view->shape[1]) of `parent` are stored exactly as a tensor
     * of view's shape would be, starting *offset bytes into parent's storage (so a producer can write a slice of a
     * concatenation directly). */
    bool (*channel_view)(struct pn_backend *be, const pn_tensor *parent, int64_t c0, const pn_tensor *view,
                         size_t *offset);
    /* Optional (NULL = none): the backend's own collectives on its buffers for data-parallel training (core/dist.h;
     * NCCL in the cuda module); an error with the reason where they cannot run (the library is missing). */
    pn_status (*collectives)(struct pn_backend *be, const struct pn_collectives_i **out);
} pn_backend;

/* ---- dispatch tables ----
 * A backend's op functions sit in a table indexed by pn_op, a static const designated initialiser generated from
 * ops.def ([PN_OP_X] = pn_<backend>_x), so an entry that is not there is NULL, never a shifted row. In the file
 * that holds the table the functions are declared with PN_OP_LINK_<need> of their ops.def row: an OPTIONAL op's
 * function is a weak reference, NULL when no file of the backend defines it (the backend leaves the op out); a
 * REQUIRED op's missing function is a link error naming it. supports_op answers PN_OP_LEFT_OUT for a NULL slot. */
#define PN_OP_LINK_REQUIRED
#define PN_OP_LINK_OPTIONAL __attribute__((weak))
/* supports_op's reason for an op the backend leaves out (its table's slot is NULL). */
#define PN_OP_LEFT_OUT "the backend leaves this op out"

/* ---- checked wrappers ---- */

/* Allocates `bytes` of zeroed backend memory into *buf. */
pn_status pn_buffer_alloc(pn_backend *be, pn_buffer *buf, size_t bytes);
void pn_buffer_free(pn_buffer *buf);
/* Gives the buffer a new version (pn_buffer.version): for writes that bypass pn_tensor_set and pn_node_compute. */
void pn_buffer_touch(pn_buffer *buf);
/* Copies numel floats (host, NCHW) into the tensor / out of it. */
pn_status pn_tensor_set(const pn_tensor *t, const float *src);
pn_status pn_tensor_get(const pn_tensor *t, float *dst);
/* Bytes of backend storage a tensor of this shape needs. */
size_t pn_backend_storage_bytes(pn_backend *be, const pn_tensor *t);
/* Whether channels [c0, c0 + view->shape[1]) of parent can be addressed as a tensor of view's shape at *offset
 * bytes into parent's storage (false when the backend has no such views, e.g. batch > 1 or a channel block split). */
bool pn_backend_channel_view(pn_backend *be, const pn_tensor *parent, int64_t c0, const pn_tensor *view,
                             size_t *offset);
/* Checks slot counts, required slots, shapes and dtypes of a node; PN_ERR_ARG with a message if wrong. */
pn_status pn_node_check(const pn_node *node);
/* NULL if `be` can run the node, else the reason. */
const char *pn_node_unsupported(pn_backend *be, const pn_node *node);
/* Checks the node and whether `be` can run it: PN_ERR_UNSUPPORTED with one line naming the backend, the op, the
 * node's label and the reason if not. */
pn_status pn_node_supported(pn_backend *be, const pn_node *node);
/* Checks the node and lets the backend prepare it (once per node and shape). */
pn_status pn_node_prepare(pn_backend *be, pn_node *node);
/* Runs the node (prepare must have succeeded). */
pn_status pn_node_compute(pn_backend *be, pn_node *node);
/* Lets the backend free the node's state and forget the node (called for every prepared node, state or none). */
void pn_node_release(pn_backend *be, pn_node *node);
pn_status pn_backend_synchronize(pn_backend *be);

/* ---- registry ---- */

/* Makes a backend with `threads` threads (0 = all cores). */
typedef pn_status (*pn_backend_factory)(int threads, pn_backend **out);

/* Registers a built-in backend under `name` (backends/register.c does this at start-up). */
void pn_backend_register(const char *name, pn_backend_factory factory);
/* The order "auto" tries backends in: comma-separated names, built-in or modules (backends/register.c sets it; the
 * string must outlive every open). Unset: the first backend registered. */
void pn_backend_set_auto_order(const char *order);
/* Opens "ref", "cpu", "cuda" or "auto". A name that is not built in is looked for as a module
 * libpneumoseg-<name>.so in $PN_BACKEND_PATH, then next to the executable. "auto" = the first usable backend of
 * the auto order (a module that does not load or finds no device is skipped with one line saying why). */
pn_status pn_backend_open(const char *name, int threads, pn_backend **out);
void pn_backend_close(pn_backend *be);
/* Loads module libpneumoseg-<name>.so (as pn_backend_open would find it) and asks its score: > 0 usable, 0 not
 * (the reason in why: not found, not loadable, or what the module says, e.g. "no CUDA driver (...)"). */
int pn_backend_module_probe(const char *name, char *why, size_t n);
/* Names of the built-in backends, comma separated. */
const char *pn_backend_builtin_names(void);

/* What a backend module exports (C linkage):
 *   int pn_backend_score(char *reason, size_t n);   > 0 usable (higher is better), 0 not, reason filled
 *   pn_status pn_backend_init(int api_version, int threads, pn_backend **out);          */
typedef int (*pn_module_score_fn)(char *reason, size_t n);
typedef pn_status (*pn_module_init_fn)(int api_version, int threads, pn_backend **out);

#ifdef __cplusplus
}
#endif

#endif
