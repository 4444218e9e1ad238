/* tensor: a logical NCHW view (shape, dtype) into storage owned by a backend buffer. */
#ifndef PN_TENSOR_H
#define PN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pn_dtype { PN_F32 = 0, PN_BF16 = 1, PN_F16 = 2 } pn_dtype;

#define PN_MAX_DIMS 4

struct pn_backend;

/* Memory owned by one backend. `host` is a CPU pointer for host backends (ref, cpu), NULL otherwise. */
typedef struct pn_buffer {
    struct pn_backend *backend;
    void *handle; /* the backend's own handle (for host backends, == host) */
    void *host;
    size_t bytes;
    /* A new process-wide unique value at allocation, at every pn_tensor_set into the buffer and after every node
     * that outputs into it (pn_node_compute): while it is unchanged, so are the contents, and a backend may keep
     * what it derived from them (the cpu backend's int8 weights). Code that writes a buffer by other means calls
     * pn_buffer_touch. */
    uint64_t version;
} pn_buffer;

/* A view: `numel` elements of `dtype` at `offset` bytes into `buf`, logical shape `shape[0..ndim)`.
 * A 4-d tensor is NCHW; 1-d tensors are flat vectors (parameters, scalars). */
typedef struct pn_tensor {
    pn_buffer *buf;
    size_t offset;
    pn_dtype dtype;
    int ndim;
    int64_t shape[PN_MAX_DIMS];
    const char *name; /* for messages; not owned */
} pn_tensor;

/* Number of elements (product of the shape). */
int64_t pn_tensor_numel(const pn_tensor *t);
/* Bytes occupied by the elements. */
size_t pn_tensor_bytes(const pn_tensor *t);
size_t pn_dtype_size(pn_dtype dt);
/* A 4-d NCHW view description (buffer and offset filled in later). */
pn_tensor pn_tensor_nchw(int64_t n, int64_t c, int64_t h, int64_t w);
/* A 1-d view description. */
pn_tensor pn_tensor_vec(int64_t n);
/* True when both have the same rank and shape. */
int pn_tensor_same_shape(const pn_tensor *a, const pn_tensor *b);
/* Writes "2x3x64x64" into buf. */
const char *pn_shape_str(const pn_tensor *t, char *buf, size_t n);
/* The host pointer to the first element (host backends only; asserts otherwise). */
float *pn_tensor_host_f32(const pn_tensor *t);

#ifdef __cplusplus
}
#endif

#endif
