/* fuzz_pth: what the .pth targets check on a checkpoint the reader accepted: every tensor reads, as floats (and as
 * integers when it holds them), within its storage's bytes. */
#ifndef PN_FUZZ_PTH_H
#define PN_FUZZ_PTH_H

#include <stdlib.h>

#include "data/pth.h"

/* Tensors above this many elements are not read (a stride-0 view of one element may claim billions). */
#define FUZZ_PTH_MAX_READ (1 << 22)

static void fuzz_pth_check(const char *path) {
    pn_pth_file *f;
    if (pn_pth_open(path, &f) != PN_OK) return;
    if (f->count <= 0) abort();
    for (int i = 0; i < f->count; i++) {
        const pn_pth_tensor *t = &f->tensors[i];
        if (t->storage < 0 || t->storage >= f->n_storages || !t->name || !t->path) abort();
        const pn_pth_storage *s = &f->storages[t->storage];
        int64_t n = pn_pth_numel(t);
        if (n < 0) abort();
        if (n > 0 && !s->data) abort(); /* accepted without its bytes */
        if (n > FUZZ_PTH_MAX_READ) continue;
        float *v = malloc((size_t)n * sizeof *v + 1);
        if (v && pn_pth_read_f32(f, t, v, n) != PN_OK) abort();
        free(v);
        if (!pn_torch_dtype_is_float(t->dtype)) {
            int64_t *iv = malloc((size_t)n * sizeof *iv + 1);
            if (iv && pn_pth_read_i64(f, t, iv, n) != PN_OK) abort();
            free(iv);
        }
    }
    pn_pth_close(f);
}

#endif
