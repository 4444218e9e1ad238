/* fuzz_checkpoint: data/checkpoint (a .pth or safetensors file as one tensor list) and data/keymap (unwrapping,
 * naming detection, the mapping onto every encoder and decoder, the guesses of import) on any bytes. */
#include "tests/fuzz/fuzz_file.h" /* first: it sets _GNU_SOURCE for memfd_create */
#include <string.h>

#include "data/checkpoint.h"
#include "data/keymap.h"

static void map_all(const pn_ckpt *c, const char **paths, const char **names, const int64_t **shapes, int *ndims) {
    static const char *const encoders[] = {"resnet34", "se_resnext50_32x4d"};
    for (int from = PN_FROM_AUTO; from <= PN_FROM_ALBUNET; from++)
        for (int e = 0; e < 2; e++)
            for (int d = 0; d < 2; d++) {
                pn_keymap map;
                if (pn_keymap_make(paths, names, c->count, (pn_keymap_from)from, encoders[e], d ? "albunet" : "unet",
                                   &map) != PN_OK)
                    continue;
                if (map.n != c->count) abort();
                int k = 0;
                for (int i = 0; i < map.n; i++)
                    if (map.items[i].target[0]) {
                        if (!memchr(map.items[i].target, 0, sizeof map.items[i].target)) abort();
                        names[k] = map.items[i].target, shapes[k] = c->tensors[i].shape, ndims[k] = c->tensors[i].ndim;
                        k++;
                    }
                bool scse;
                pn_keymap_guess_encoder(names, shapes, ndims, k);
                pn_keymap_guess_decoder(names, k, &scse);
                for (int i = 0; i < c->count; i++) names[i] = c->tensors[i].name; /* restore */
                pn_keymap_free(&map);
            }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pn_ckpt *c;
    if (pn_ckpt_open(fuzz_file(data, size), &c) != PN_OK) return 0;
    size_t n = (size_t)c->count + 1;
    const char **paths = calloc(n, sizeof *paths), **names = calloc(n, sizeof *names);
    const int64_t **shapes = calloc(n, sizeof *shapes);
    int *ndims = calloc(n, sizeof *ndims);
    if (paths && names && shapes && ndims) {
        for (int i = 0; i < c->count; i++) {
            const pn_ckpt_tensor *t = &c->tensors[i];
            if (!t->path || !t->name || !t->dtype || t->ndim < 0 || t->ndim > PN_CKPT_MAX_DIMS) abort();
            paths[i] = t->path, names[i] = t->name;
        }
        map_all(c, paths, names, shapes, ndims);
    }
    free(paths), free(names), free(shapes), free(ndims);
    pn_ckpt_close(c);
    return 0;
}
