/* ref concat/split: join two NCHW tensors along channels, and the inverse. */
#include <string.h>

#include "ref.h"

/* whole[:, c0:c0+part_c] = part, for each of the n batch items. */
static void put_channels(float *whole, int64_t whole_c, int64_t c0, const float *part, int64_t part_c, int64_t n,
                         int64_t hw) {
    for (int64_t i = 0; i < n; i++)
        memcpy(whole + (i * whole_c + c0) * hw, part + i * part_c * hw, (size_t)(part_c * hw) * sizeof(float));
}

/* part = whole[:, c0:c0+part_c], for each of the n batch items. */
static void take_channels(float *part, int64_t part_c, const float *whole, int64_t whole_c, int64_t c0, int64_t n,
                          int64_t hw) {
    for (int64_t i = 0; i < n; i++)
        memcpy(part + i * part_c * hw, whole + (i * whole_c + c0) * hw, (size_t)(part_c * hw) * sizeof(float));
}

pn_status pn_ref_concat(pn_node *node) {
    const pn_tensor *a = node->in[0], *b = node->in[1], *y = node->out[0];
    int64_t n = y->shape[0], hw = y->shape[2] * y->shape[3], cy = y->shape[1], ca = a->shape[1];
    put_channels(ref_ptr(y), cy, 0, ref_ptr(a), ca, n, hw);
    put_channels(ref_ptr(y), cy, ca, ref_ptr(b), cy - ca, n, hw);
    return PN_OK;
}

pn_status pn_ref_split(pn_node *node) {
    const pn_tensor *dy = node->in[0], *da = node->out[0], *db = node->out[1];
    int64_t n = dy->shape[0], hw = dy->shape[2] * dy->shape[3], cy = dy->shape[1], ca = da->shape[1];
    take_channels(ref_ptr(da), ca, ref_ptr(dy), cy, 0, n, hw);
    if (db) take_channels(ref_ptr(db), cy - ca, ref_ptr(dy), cy, ca, n, hw);
    return PN_OK;
}
