/* graph: a straight-line program of nodes over tensors, reverse-mode differentiation of it, and one
 * planned activation arena (tensors whose lifetimes do not overlap share memory). */
#ifndef PN_GRAPH_H
#define PN_GRAPH_H

#include <stdbool.h>

#include "backend.h"

typedef struct pn_graph pn_graph;

/* An empty graph that will run on `be` (NULL when out of memory, the error set).
 * Out of memory while building: the calls below that return a tensor never return NULL (they hand out a
 * placeholder that never runs), and the graph remembers the failure: pn_graph_add, pn_graph_backward and
 * pn_graph_plan then return PN_ERR_NOMEM, so a builder checks the status of those calls only. */
pn_graph *pn_graph_new(pn_backend *be);
/* Releases the nodes' backend state, the arena and every tensor the graph made. */
void pn_graph_free(pn_graph *g);

/* A new activation tensor of the given shape, placed in the arena by pn_graph_plan. `name` is copied. */
pn_tensor *pn_graph_activation(pn_graph *g, pn_tensor shape, const char *name);
/* A view of channels [c0, c0 + channels) of activation `parent` (same N, H, W) stored inside it, so a producer can
 * write its part of a concatenation in place; NULL when the backend cannot address that slice as a tensor of its
 * own (batch > 1, a split channel block; see pn_backend_channel_view): then write a tensor and copy. The parent
 * lives while any view of it is used. Views are for programs without backward. */
pn_tensor *pn_graph_channel_view(pn_graph *g, pn_tensor *parent, int64_t c0, int64_t channels, const char *name);
/* A tensor whose storage lives outside the arena (a parameter, running statistic, ...): `view` must
 * already have its buffer and offset. `grad` (may be NULL) is where gradients accumulate. */
pn_tensor *pn_graph_external(pn_graph *g, pn_tensor view, pn_tensor *grad);
/* Keeps an activation alive for the whole program (inputs, targets, logits, loss). */
void pn_graph_keep(pn_graph *g, pn_tensor *t);
/* Marks a tensor as not needing a gradient (the network input, the target). */
void pn_graph_no_grad(pn_graph *g, pn_tensor *t);

/* Marks an activation that backward should not keep: pn_graph_backward recomputes it from the forward nodes that
 * wrote it (their inputs kept or recomputed in turn) when a backward node needs it, so it lives only in forward.
 * For outputs of cheap nodes (train BN + ReLU, upsample, concat). */
void pn_graph_recompute(pn_graph *g, pn_tensor *t);

/* Appends a node; `outs` and `ins` are NULL-padded arrays of the op's slot counts. */
pn_status pn_graph_add(pn_graph *g, pn_op op, pn_op_params p, pn_tensor *const *outs, pn_tensor *const *ins,
                       const char *label);
/* Number of nodes so far (use it to mark segments such as "forward ends here"). */
int pn_graph_size(const pn_graph *g);

/* Appends the backward program of nodes [0, fwd_end): `dy` is the gradient of `y`. Parameter
 * gradients accumulate into the `grad` tensors given to pn_graph_external. Forward nodes may work in place
 * (out[0] == an input) when no backward node needs the overwritten value; backward then works in place too
 * where a gradient tensor is not shared (ReLU backward, gradient sums). */
pn_status pn_graph_backward(pn_graph *g, int fwd_end, pn_tensor *y, pn_tensor *dy);

/* Computes lifetimes, places activations in one arena, allocates it and prepares every node. A graph with a node
 * the backend cannot run (an op it leaves out: a NULL slot of its table) is refused before any node is prepared:
 * PN_ERR_UNSUPPORTED, one line naming the backend, the op and the node. */
pn_status pn_graph_plan(pn_graph *g);
/* Bytes of the activation arena (after planning) and the sum of all activation sizes (no reuse). */
size_t pn_graph_arena_bytes(const pn_graph *g);
size_t pn_graph_unshared_bytes(const pn_graph *g);
/* The most bytes of activations alive at once (a lower bound on the arena any placement can reach). */
size_t pn_graph_peak_live_bytes(const pn_graph *g);
/* Runs nodes [from, to). */
pn_status pn_graph_run(pn_graph *g, int from, int to);
/* The node at index i (for tests and diagnostics). */
pn_node *pn_graph_node(pn_graph *g, int i);

#endif
