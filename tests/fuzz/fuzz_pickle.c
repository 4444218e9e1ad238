/* fuzz_pickle: data/pickle's allowlist interpreter on any bytes: a load ends with a value or one error, never a
 * crash; every tensor the walk reaches views its storage within the elements the storage declares. */
#include <stdlib.h>

#include "data/pickle.h"

static pn_status check_tensor(void *ctx, const char *path, const char *key, const pn_pk_value *v) {
    (void)ctx;
    if (!path || !key || v->kind != PN_PK_TENSOR) abort();
    const pn_pk_tensor *t = v->u.tensor;
    const pn_pk_storage *s = t->storage->u.storage;
    if (t->ndim < 0 || t->ndim > PN_PK_MAX_DIMS || t->offset < 0 || pn_pk_tensor_numel(t) < 0) abort();
    int64_t last = t->offset, step;
    for (int d = 0; d < t->ndim; d++)
        if (t->size[d] > 0 &&
            (__builtin_mul_overflow(t->size[d] - 1, t->stride[d], &step) || __builtin_add_overflow(last, step, &last)))
            abort();                                            /* an extent the reader should have refused */
    if (pn_pk_tensor_numel(t) > 0 && last >= s->numel) abort(); /* a view past its storage was let through */
    return PN_OK;
}

static pn_status check_storage(void *ctx, const pn_pk_storage *s) {
    (void)ctx;
    if (!s->key || s->numel < 0 || s->dtype >= PN_TD_COUNT || s->base_off < 0 || s->base_off + s->numel > s->root_numel)
        abort();
    return PN_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pn_pickle *p;
    pn_pk_value *root;
    size_t used = 0;
    if (pn_pk_load(data, size, "fuzz", &p, &root, &used) != PN_OK) return 0;
    if (used == 0 || used > size) abort();
    pn_pk_each_storage(p, check_storage, NULL);
    pn_pk_walk_tensors(p, root, check_tensor, NULL);
    pn_pk_walk_tensors(p, root, check_tensor, NULL); /* a second walk (the visit marks are per walk) */
    pn_pk_free(p);
    return 0;
}
