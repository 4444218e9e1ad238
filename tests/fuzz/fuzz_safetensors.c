/* fuzz_safetensors: core/safetensors' reader (header JSON, offsets, dtypes) and the model card in its metadata on any
 * bytes; every tensor it accepts converts to floats within the file's bytes. */
#include "tests/fuzz/fuzz_file.h" /* first: it sets _GNU_SOURCE for memfd_create */
#include <stdlib.h>

#include "core/model_card.h"
#include "core/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    pn_st_file *f;
    if (pn_st_open_header(path, &f) == PN_OK) pn_st_close(f);
    if (pn_st_open(path, &f) != PN_OK) return 0;
    pn_model_card card;
    pn_model_card_read(f, &card);
    for (int i = 0; i < f->count; i++) {
        const pn_st_entry *e = &f->entries[i];
        if (e->end < e->begin || e->end > f->data_len) abort();
        int64_t n = pn_st_numel(e);
        if (n < 0 || (size_t)n * pn_st_dtype_size(e) != e->end - e->begin) abort();
        float *v = malloc((size_t)n * sizeof *v + 1);
        if (v) pn_st_read_f32(f, e, v, n);
        free(v);
        int64_t *iv = malloc((size_t)n * sizeof *iv + 1);
        if (iv) pn_st_read_i64(f, e, iv, n);
        free(iv);
    }
    pn_st_close(f);
    return 0;
}
