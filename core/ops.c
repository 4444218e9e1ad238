/* ops: the op names, slot counts, optional slots and optional ops generated from ops.def. */
#include "ops.h"

#include <string.h>

static const char *const op_names[] = {
#define OP(E, name, P, nin, nout, ...) #name,
#include "ops.def"
#undef OP
};
static const int op_inputs[] = {
#define OP(E, name, P, nin, nout, ...) nin,
#include "ops.def"
#undef OP
};
static const int op_outputs[] = {
#define OP(E, name, P, nin, nout, ...) nout,
#include "ops.def"
#undef OP
};

static const unsigned op_optional_inputs[] = {
#define OP(E, name, P, nin, nout, opt_in, ...) opt_in,
#include "ops.def"
#undef OP
};
static const unsigned op_optional_outputs[] = {
#define OP(E, name, P, nin, nout, opt_in, opt_out, ...) opt_out,
#include "ops.def"
#undef OP
};
#define REQUIRED false
#define OPTIONAL true
static const bool op_optional[] = {
#define OP(E, name, P, nin, nout, opt_in, opt_out, shape, backward, need) need,
#include "ops.def"
#undef OP
};
#undef REQUIRED
#undef OPTIONAL

_Static_assert(sizeof op_names / sizeof op_names[0] == PN_OP_COUNT, "op table and enum disagree");
#define OP(E, name, P, nin, nout, opt_in, opt_out, ...)                                                                \
    _Static_assert(nin <= PN_OP_MAX_IO && nout <= PN_OP_MAX_IO && (opt_in) >> (nin) == 0 && (opt_out) >> (nout) == 0,  \
                   #name);
#include "ops.def"
#undef OP

const char *pn_op_name(pn_op op) { return (unsigned)op < PN_OP_COUNT ? op_names[op] : "?"; }
int pn_op_num_inputs(pn_op op) { return op_inputs[op]; }
int pn_op_num_outputs(pn_op op) { return op_outputs[op]; }
bool pn_op_optional(pn_op op) { return op_optional[op]; }

bool pn_op_slot_optional(pn_op op, bool is_out, int i) {
    unsigned mask = is_out ? op_optional_outputs[op] : op_optional_inputs[op];
    return i >= 0 && i < PN_OP_MAX_IO && (mask >> i & 1u);
}

pn_op pn_op_from_name(const char *name) {
    for (int i = 0; i < PN_OP_COUNT; i++)
        if (strcmp(op_names[i], name) == 0) return (pn_op)i;
    return PN_OP_COUNT;
}

int64_t pn_pool_out_size(int64_t in, const pn_pool_params *p) {
    /* torch's pooling_output_shape: floor((in + 2 pad - k [+ stride - 1 in ceil mode]) / stride) + 1, so in ceil
     * mode an input a little smaller than the window still gives one output (2 wide, k 3, stride 2: 1) */
    int64_t num = in + 2 * (int64_t)p->pad - p->kernel + (p->ceil_mode ? p->stride - 1 : 0);
    if (num < 0) return 0;
    int64_t out = num / p->stride + 1;
    /* torch: the last window must start inside the input or its left padding */
    if (p->ceil_mode && (out - 1) * p->stride >= in + p->pad) out--;
    return out;
}
