/* param_groups: encoder / rest optimizer groups over flat runs of the model's buffers (see param_groups.h). */
#include "param_groups.h"

#include <string.h>

#include "core/backend.h"

static bool is_encoder(const char *name) { return strncmp(name, "encoder.", 8) == 0; }

static pn_tensor flat_view(const pn_tensor *first, int64_t count) {
    pn_tensor t = pn_tensor_vec(count);
    t.buf = first->buf;
    t.offset = first->offset;
    t.dtype = first->dtype;
    t.name = first->name;
    return t;
}

/* Parameter q continues the run that ends with parameter p: same group, and in all four buffers it starts where p
 * ends, give or take the 64-byte alignment padding (zeros, which an Adam step leaves zero). */
static bool continues(const pn_unet_param *p, const pn_unet_param *q) {
    if (is_encoder(p->name) != is_encoder(q->name)) return false;
    const pn_tensor *a[4] = {&p->value, &p->grad, &p->m, &p->v}, *b[4] = {&q->value, &q->grad, &q->m, &q->v};
    for (int k = 0; k < 4; k++) {
        size_t end = a[k]->offset + pn_tensor_bytes(a[k]);
        if (a[k]->buf != b[k]->buf || b[k]->offset < end || b[k]->offset - end >= 64 ||
            b[k]->offset - a[k]->offset != b[0]->offset - a[0]->offset)
            return false;
    }
    return true;
}

pn_status pn_groups_build(pn_unet *m, pn_param_groups *g) {
    memset(g, 0, sizeof *g);
    int n = pn_unet_num_params(m);
    for (int i = 0; i < n;) {
        const pn_unet_param *first = pn_unet_param_at(m, i);
        if (!first->grad.buf || !first->grad.buf->backend)
            return pn_error(PN_ERR_ARG, "parameter groups: the model's gradients are not allocated yet");
        int j = i + 1;
        while (j < n && continues(pn_unet_param_at(m, j - 1), pn_unet_param_at(m, j))) j++;
        const pn_unet_param *last = pn_unet_param_at(m, j - 1);
        if (g->n_runs == PN_GROUPS_MAX_RUNS)
            return pn_error(PN_ERR_ARG, "parameter groups: the parameters are split into more than %d runs",
                            PN_GROUPS_MAX_RUNS);
        int64_t count =
            (int64_t)((last->value.offset + pn_tensor_bytes(&last->value) - first->value.offset) / sizeof(float));
        pn_param_run *r = &g->runs[g->n_runs++];
        r->p = flat_view(&first->value, count);
        r->g = flat_view(&first->grad, count);
        r->m = flat_view(&first->m, count);
        r->v = flat_view(&first->v, count);
        r->encoder = is_encoder(first->name);
        for (int k = i; k < j; k++) {
            int64_t s = pn_tensor_numel(&pn_unet_param_at(m, k)->value);
            if (r->encoder)
                g->encoder_scalars += s;
            else
                g->other_scalars += s;
        }
        i = j;
    }
    return PN_OK;
}

/* Runs one op outside the model's graph. */
static pn_status run_op(pn_backend *be, pn_op op, pn_op_params p, pn_tensor **outs, int n_out, pn_tensor **ins,
                        int n_in) {
    pn_node node;
    memset(&node, 0, sizeof node);
    node.op = op;
    node.p = p;
    node.label = "optimizer group";
    for (int i = 0; i < n_out; i++) node.out[i] = outs[i];
    for (int i = 0; i < n_in; i++) node.in[i] = ins[i];
    pn_status st = pn_node_prepare(be, &node);
    if (st == PN_OK) st = pn_node_compute(be, &node);
    pn_node_release(be, &node);
    return st;
}

pn_status pn_groups_zero_encoder_grad(pn_unet *m, const pn_param_groups *g) {
    for (int i = 0; i < g->n_runs; i++) {
        if (!g->runs[i].encoder) continue;
        pn_tensor grad = g->runs[i].g;
        pn_tensor *outs[] = {&grad};
        pn_op_params p = {.fill = {0.0f}};
        PN_TRY(run_op(pn_unet_backend(m), PN_OP_FILL, p, outs, 1, NULL, 0));
    }
    return PN_OK;
}

pn_status pn_groups_adam_step(pn_unet *m, const pn_param_groups *g, const pn_adam_params *p, double encoder_scale,
                              int64_t encoder_step, bool encoder_frozen) {
    for (int i = 0; i < g->n_runs; i++) {
        const pn_param_run *r = &g->runs[i];
        pn_adam_params ap = *p;
        if (r->encoder) {
            if (encoder_frozen) continue;
            ap.lr = (float)(p->lr * encoder_scale);
            ap.step = encoder_step;
        }
        pn_tensor pv = r->p, mv = r->m, vv = r->v, gv = r->g;
        pn_tensor *outs[] = {&pv, &mv, &vv}, *ins[] = {&gv};
        pn_op_params op = {.adam_step = ap};
        PN_TRY(run_op(pn_unet_backend(m), PN_OP_ADAM_STEP, op, outs, 3, ins, 1));
    }
    return PN_OK;
}
