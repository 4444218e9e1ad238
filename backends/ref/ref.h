/* ref: the reference backend's op functions, plain single-threaded C written for obviousness. */
#ifndef PN_REF_H
#define PN_REF_H

#include "core/backend.h"

/* Creates the ref backend (threads is ignored: ref is single-threaded). */
pn_status pn_ref_backend_create(int threads, pn_backend **out);

/* One function per op; each takes the checked node. */
#define OP(E, name, P, nin, nout) pn_status pn_ref_##name(pn_node *node);
#include "core/ops.def"
#undef OP

/* Shorthand for a host float pointer to a node slot (NULL for an empty optional slot). */
static inline float *ref_ptr(const pn_tensor *t) { return t ? pn_tensor_host_f32(t) : NULL; }

#endif
