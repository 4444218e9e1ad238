/* cpu: the state of a node that writes the next int8 convolution's 8-bit input itself (an upsample or a concat whose
 * output only that convolution reads): which convolution, with what scale and sign. The link is made when the
 * convolution is prepared (conv2d_dnnl.c) and checked from both ends at run time. */
#include <stdlib.h>

#include "cpu.h"

pn_status pn_cpu_quantized_out_set(pn_node *node, const pn_node *reader, float scale, bool is_signed) {
    pn_cpu_quantized_out_release(node);
    pn_cpu_quantized_out *q = malloc(sizeof *q);
    if (!q) return pn_error(PN_ERR_NOMEM, "out of memory preparing %s", pn_op_name(node->op));
    *q = (pn_cpu_quantized_out){reader, scale, is_signed};
    node->state = q;
    return PN_OK;
}

void pn_cpu_quantized_out_release(pn_node *node) {
    free(node->state);
    node->state = NULL;
}

pn_status pn_cpu_quantized_out_check(const pn_node *node, const pn_cpu_quantized_out *q) {
    if (pn_cpu_conv_reads_quantized_from(q->reader, node)) return PN_OK;
    return pn_error(PN_ERR_BACKEND,
                    "%s %s: the int8 convolution it writes for was prepared again on its own; plan the graph again",
                    pn_op_name(node->op), node->label ? node->label : "");
}
