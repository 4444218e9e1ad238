/* write_pth: writes the tensors of a safetensors file as a legacy-format PyTorch checkpoint (what torch.save(...,
 * _use_new_zipfile_serialization=False) writes: magic, protocol, system info, the pickled OrderedDict of
 * _rebuild_tensor_v2 calls over persistent-id storages, the storage keys, the raw storages), so the CLI tests get
 * full-size .pth files without Python. The format itself is checked against real torch.save files in test_pth.
 * Usage: write_pth IN.safetensors OUT.pth [--torchvision] [--wrap KEY] [--module] [--flat KEY]
 *   --torchvision  only the encoder.* tensors, without "encoder.", plus a classifier fc.weight [1000, C], fc.bias
 *   --wrap KEY     the state dict inside {KEY: state_dict, 'epoch': 3}
 *   --module       every key with a "module." prefix (DataParallel)
 *   --flat KEY     that tensor stored 1-d (a shape mismatch) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"

typedef struct buf {
    unsigned char *b;
    size_t n, cap;
} buf;

static void put(buf *o, const void *p, size_t n) {
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2 + 1024;
        o->b = realloc(o->b, o->cap);
        if (!o->b) exit(1);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void put_byte(buf *o, unsigned char c) { put(o, &c, 1); }
static void put_u32(buf *o, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(o, b, 4);
}
static void put_str(buf *o, const char *s) { /* BINUNICODE */
    put_byte(o, 'X');
    put_u32(o, (uint32_t)strlen(s));
    put(o, s, strlen(s));
}
static void put_int(buf *o, int64_t v) { /* BININT (4 bytes) or LONG1 (8 bytes) */
    if (v >= -2147483647LL && v <= 2147483647LL) {
        put_byte(o, 'J');
        put_u32(o, (uint32_t)(int32_t)v);
        return;
    }
    put_byte(o, 0x8a);
    put_byte(o, 8);
    for (int i = 0; i < 8; i++) put_byte(o, (unsigned char)((uint64_t)v >> (8 * i)));
}
static void put_global(buf *o, const char *module, const char *name) {
    put_byte(o, 'c');
    put(o, module, strlen(module));
    put_byte(o, '\n');
    put(o, name, strlen(name));
    put_byte(o, '\n');
}

typedef struct item {
    char key[300];
    int ndim;
    int64_t shape[8];
    bool is_long;
    void *data; /* float or int64, numel elements */
    int64_t numel;
} item;

/* key: _rebuild_tensor_v2(('storage', torch.XStorage, '<i>', 'cpu', numel), 0, shape, strides, False, OrderedDict()) */
static void put_tensor(buf *o, const item *it, int index) {
    char id[16];
    snprintf(id, sizeof id, "%d", index);
    put_str(o, it->key);
    put_global(o, "torch._utils", "_rebuild_tensor_v2");
    put_byte(o, '(');
    put_byte(o, '(');
    put_str(o, "storage");
    put_global(o, "torch", it->is_long ? "LongStorage" : "FloatStorage");
    put_str(o, id);
    put_str(o, "cpu");
    put_int(o, it->numel);
    put_byte(o, 't');
    put_byte(o, 'Q');
    put_int(o, 0);
    put_byte(o, '(');
    for (int d = 0; d < it->ndim; d++) put_int(o, it->shape[d]);
    put_byte(o, 't');
    put_byte(o, '(');
    int64_t stride = 1, strides[8];
    for (int d = it->ndim - 1; d >= 0; d--) strides[d] = stride, stride *= it->shape[d];
    for (int d = 0; d < it->ndim; d++) put_int(o, strides[d]);
    put_byte(o, 't');
    put_byte(o, 0x89);
    put_global(o, "collections", "OrderedDict");
    put_byte(o, ')');
    put_byte(o, 'R');
    put_byte(o, 't');
    put_byte(o, 'R');
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr,
                "usage: write_pth IN.safetensors OUT.pth [--torchvision] [--wrap KEY] [--module] [--flat KEY]\n");
        return 2;
    }
    bool torchvision = false, module = false;
    const char *wrap = NULL, *flat = NULL;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--torchvision"))
            torchvision = true;
        else if (!strcmp(argv[i], "--module"))
            module = true;
        else if (!strcmp(argv[i], "--wrap") && i + 1 < argc)
            wrap = argv[++i];
        else if (!strcmp(argv[i], "--flat") && i + 1 < argc)
            flat = argv[++i];
        else
            return 2;
    }
    pn_st_file *f;
    if (pn_st_open(argv[1], &f) != PN_OK) {
        fprintf(stderr, "write_pth: %s\n", pn_last_error());
        return 1;
    }
    item *items = calloc((size_t)f->count + 2, sizeof *items);
    int n = 0;
    int64_t last_channels = 512;
    for (int i = 0; i < f->count; i++) {
        const pn_st_entry *e = &f->entries[i];
        const char *name = e->name;
        if (torchvision) {
            if (strncmp(name, "encoder.", 8)) continue;
            name += 8;
        }
        item *it = &items[n++];
        snprintf(it->key, sizeof it->key, "%s%s", module ? "module." : "", name);
        it->ndim = e->ndim;
        memcpy(it->shape, e->shape, sizeof(int64_t) * (size_t)e->ndim);
        it->numel = pn_st_numel(e);
        it->is_long = e->dtype == PN_ST_I64;
        it->data = malloc((size_t)it->numel * 8 + 8);
        if (it->is_long)
            pn_st_read_i64(f, e, it->data, it->numel);
        else
            pn_st_read_f32(f, e, it->data, it->numel);
        if (flat && !strcmp(name, flat)) {
            it->ndim = 1;
            it->shape[0] = it->numel;
        }
        if (torchvision && e->ndim == 1 && !strncmp(name, "layer4.", 7)) last_channels = e->shape[0];
    }
    if (torchvision) { /* an ImageNet classifier, as torchvision's files hold */
        const char *fc[2] = {"fc.weight", "fc.bias"};
        for (int k = 0; k < 2; k++) {
            item *it = &items[n++];
            snprintf(it->key, sizeof it->key, "%s%s", module ? "module." : "", fc[k]);
            it->ndim = k ? 1 : 2;
            it->shape[0] = 1000;
            it->shape[1] = last_channels;
            it->numel = k ? 1000 : 1000 * last_channels;
            it->data = calloc((size_t)it->numel, sizeof(float));
            for (int64_t j = 0; j < it->numel; j++) ((float *)it->data)[j] = (float)(j % 7) * 0.01f;
        }
    }
    static const unsigned char magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                          0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
    static const unsigned char proto[] = {0x80, 0x02, 'M', 0xe9, 0x03, '.'};
    buf o = {0};
    put(&o, magic, sizeof magic);
    put(&o, proto, sizeof proto);
    put(&o, "\x80\x02}(", 4); /* sys info */
    put_str(&o, "protocol_version");
    put(&o, "M\xe9\x03", 3);
    put_str(&o, "little_endian");
    put_byte(&o, 0x88);
    put_str(&o, "type_sizes");
    put(&o, "}(", 2);
    put_str(&o, "short");
    put(&o, "K\x02", 2);
    put_str(&o, "int");
    put(&o, "K\x04", 2);
    put_str(&o, "long");
    put(&o, "K\x04", 2);
    put(&o, "uu.", 3);
    put(&o, "\x80\x02", 2); /* the object */
    if (wrap) {
        put(&o, "}(", 2);
        put_str(&o, "epoch");
        put_int(&o, 3);
        put_str(&o, wrap);
    }
    put_global(&o, "collections", "OrderedDict");
    put(&o, ")R(", 3);
    for (int i = 0; i < n; i++) put_tensor(&o, &items[i], i);
    put_byte(&o, 'u');
    if (wrap) put_byte(&o, 'u');
    put_byte(&o, '.');
    put(&o, "\x80\x02](", 4); /* the storage keys */
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        put_str(&o, id);
    }
    put(&o, "e.", 2);
    for (int i = 0; i < n; i++) { /* int64 element count, then the little-endian data */
        for (int b = 0; b < 8; b++) put_byte(&o, (unsigned char)((uint64_t)items[i].numel >> (8 * b)));
        put(&o, items[i].data, (size_t)items[i].numel * (items[i].is_long ? 8 : 4));
        free(items[i].data);
    }
    FILE *out = fopen(argv[2], "wb");
    int rc = out && fwrite(o.b, 1, o.n, out) == o.n ? 0 : 1;
    if (out) fclose(out);
    free(o.b);
    free(items);
    pn_st_close(f);
    return rc;
}
