/* ref: the reference backend's op functions, plain single-threaded C written for obviousness. */
#ifndef PN_REF_H
#define PN_REF_H

#include "core/backend.h"

/* Creates the ref backend (threads is ignored: ref is single-threaded). */
pn_status pn_ref_backend_create(int threads, pn_backend **out);

/* One function per op, each in the file of its op; each takes the checked node. ref is the oracle the other
 * backends are tested against, so it has every op, OPTIONAL ones too (a missing function is a link error). */
#define OP(E, name, P, nin, nout, ...) pn_status pn_ref_##name(pn_node *node);
#include "core/ops.def"
#undef OP

/* The ref backend's dispatch table, indexed by pn_op. */
typedef pn_status (*pn_ref_op_fn)(pn_node *node);
extern const pn_ref_op_fn pn_ref_ops[PN_OP_COUNT];
/* A ref backend that dispatches through `ops` (PN_OP_COUNT entries the caller keeps while the backend lives); a NULL
 * entry is an op the backend leaves out. For tests: a copy of pn_ref_ops with a slot cleared. */
pn_status pn_ref_backend_create_with_ops(const pn_ref_op_fn *ops, pn_backend **out);

/* Shorthand for a host float pointer to a node slot (NULL for an empty optional slot). */
static inline float *ref_ptr(const pn_tensor *t) { return t ? pn_tensor_host_f32(t) : NULL; }

#endif
