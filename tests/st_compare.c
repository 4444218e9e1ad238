/* st_compare: compares the tensors of two safetensors files whose names start with a prefix, bit for bit.
 * Prints "same S differ D missing M" (missing: in A, not in B). --params leaves out BatchNorm running statistics
 * and batch counters. Usage: st_compare A B PREFIX [--params] */
#include <stdio.h>
#include <string.h>

#include "core/safetensors.h"

static bool is_stat(const char *name) {
    return strstr(name, ".running_mean") || strstr(name, ".running_var") || strstr(name, ".num_batches_tracked");
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: st_compare A B PREFIX [--params]\n");
        return 2;
    }
    bool params = argc > 4 && !strcmp(argv[4], "--params");
    pn_st_file *a, *b;
    if (pn_st_open(argv[1], &a) != PN_OK || pn_st_open(argv[2], &b) != PN_OK) {
        fprintf(stderr, "st_compare: %s\n", pn_last_error());
        return 1;
    }
    int same = 0, differ = 0, missing = 0;
    size_t plen = strlen(argv[3]);
    for (int i = 0; i < a->count; i++) {
        const pn_st_entry *e = &a->entries[i];
        if (strncmp(e->name, argv[3], plen) || (params && is_stat(e->name))) continue;
        const pn_st_entry *o = pn_st_find(b, e->name);
        if (!o) {
            missing++;
            continue;
        }
        bool eq = o->end - o->begin == e->end - e->begin && o->ndim == e->ndim &&
                  !strcmp(o->dtype_name, e->dtype_name) && !memcmp(pn_st_raw(a, e), pn_st_raw(b, o), e->end - e->begin);
        for (int d = 0; eq && d < e->ndim; d++) eq = e->shape[d] == o->shape[d];
        if (eq)
            same++;
        else
            differ++;
    }
    printf("same %d differ %d missing %d\n", same, differ, missing);
    pn_st_close(a);
    pn_st_close(b);
    return 0;
}
