/* pth: reads torch.save's zip (libzip) and legacy checkpoints into tensors over checked storages (see pth.h). */
#define _DEFAULT_SOURCE
#include "pth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef PN_HAVE_LIBZIP
#include <zip.h>
#endif

/* The legacy format's first pickle: the long 0x1950a86a20f9469cfc6c, little-endian. */
static const uint8_t LEGACY_MAGIC[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
#define LEGACY_PROTOCOL 1001

struct pn_pth_owned {
    void **bufs;
    int n, cap;
    size_t name_bytes; /* the tensors' names and paths so far (MAX_NAME_BYTES) */
};

bool pn_pth_have_zip(void) {
#ifdef PN_HAVE_LIBZIP
    return true;
#else
    return false;
#endif
}

static bool host_big_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 0;
}

/* ---------------------------------------------------------------- file bookkeeping */

static pn_status own(pn_pth_file *f, void *buf) {
    struct pn_pth_owned *o = f->owned;
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 16;
        void **b = realloc(o->bufs, (size_t)cap * sizeof *b);
        if (!b) return pn_error(PN_ERR_NOMEM, "%s: out of memory", f->path);
        o->bufs = b;
        o->cap = cap;
    }
    o->bufs[o->n++] = buf;
    return PN_OK;
}

void pn_pth_close(pn_pth_file *f) {
    if (!f) return;
    for (int i = 0; i < f->count; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].path);
    }
    free(f->tensors);
    for (int i = 0; i < f->n_storages; i++) free(f->storages[i].key);
    free(f->storages);
    if (f->owned) {
        for (int i = 0; i < f->owned->n; i++) free(f->owned->bufs[i]);
        free(f->owned->bufs);
        free(f->owned);
    }
    free(f->path);
    free(f);
}

int64_t pn_pth_numel(const pn_pth_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* A model has a few thousand tensors at most; more is a hostile file (and quadratic work elsewhere). */
#define MAX_TENSORS 100000
/* Their names and paths together: a few hundred kB in a real checkpoint. One long key reached through many list
 * entries would otherwise be copied once per entry. */
#define MAX_NAME_BYTES ((size_t)16 << 20)
/* Zip records may inflate to at most this many times the file's size (plus EXPAND_SLACK): float weights barely
 * compress and torch.save stores its records uncompressed, so more is a zip bomb, refused before inflating. */
#define MAX_EXPANSION 8
#define EXPAND_SLACK ((uint64_t)1 << 20)

static int cmp_storage_keys(const void *a, const void *b) {
    return strcmp(((const pn_pth_storage *)a)->key, ((const pn_pth_storage *)b)->key);
}

/* The storages are sorted by key (after dedupe_storages). */
static int find_storage(const pn_pth_file *f, const char *key) {
    pn_pth_storage probe = {.key = (char *)key};
    const pn_pth_storage *s = bsearch(&probe, f->storages, (size_t)f->n_storages, sizeof probe, cmp_storage_keys);
    return s ? (int)(s - f->storages) : -1;
}

/* Every persistent id, as declared (a shared storage comes once per tensor); dedupe_storages merges them. */
static pn_status add_storage(void *ctx, const pn_pk_storage *s) {
    pn_pth_file *f = ctx;
    if ((f->n_storages & (f->n_storages - 1)) == 0) { /* grow at powers of two */
        pn_pth_storage *st = realloc(f->storages, (size_t)(f->n_storages ? 2 * f->n_storages : 1) * sizeof *st);
        if (!st) return pn_error(PN_ERR_NOMEM, "%s: out of memory", f->path);
        f->storages = st;
    }
    if (f->n_storages >= MAX_TENSORS) return pn_error(PN_ERR_FORMAT, "%s: more than %d storages", f->path, MAX_TENSORS);
    pn_pth_storage *n = &f->storages[f->n_storages];
    memset(n, 0, sizeof *n);
    if (!(n->key = pn_strdup(s->key))) return pn_error(PN_ERR_NOMEM, "%s: out of memory", f->path);
    n->dtype = s->dtype;
    n->numel = s->root_numel;
    f->n_storages++;
    return PN_OK;
}

/* One storage per key, sorted; a key declared twice must agree on type and size. */
static pn_status dedupe_storages(pn_pth_file *f) {
    if (f->n_storages == 0) return PN_OK;
    qsort(f->storages, (size_t)f->n_storages, sizeof *f->storages, cmp_storage_keys);
    int kept = 1;
    for (int i = 1; i < f->n_storages; i++) {
        pn_pth_storage *o = &f->storages[kept - 1], *s = &f->storages[i];
        if (strcmp(o->key, s->key)) {
            f->storages[kept++] = *s;
            continue;
        }
        pn_status st = PN_OK;
        if (o->dtype != s->dtype || o->numel != s->numel)
            st = pn_error(PN_ERR_FORMAT, "%s: storage '%s' is declared as %lld %s and as %lld %s", f->path, s->key,
                          (long long)o->numel, pn_torch_dtype_name(o->dtype), (long long)s->numel,
                          pn_torch_dtype_name(s->dtype));
        free(s->key);
        s->key = NULL;
        if (st != PN_OK) {
            for (int j = i + 1; j < f->n_storages; j++) f->storages[kept++] = f->storages[j]; /* all freed by close */
            f->n_storages = kept;
            return st;
        }
    }
    f->n_storages = kept;
    return PN_OK;
}

static pn_status add_tensor(void *ctx, const char *path, const char *key, const pn_pk_value *v) {
    pn_pth_file *f = ctx;
    const pn_pk_tensor *t = v->u.tensor;
    const pn_pk_storage *s = t->storage->u.storage;
    int si = find_storage(f, s->key);
    if (si < 0) return pn_error(PN_ERR_FORMAT, "%s: tensor '%s' views an undeclared storage", f->path, key ? key : "");
    if (f->count >= MAX_TENSORS) return pn_error(PN_ERR_FORMAT, "%s: more than %d tensors", f->path, MAX_TENSORS);
    if ((f->count & (f->count - 1)) == 0) { /* grow at powers of two */
        pn_pth_tensor *nt = realloc(f->tensors, (size_t)(f->count ? 2 * f->count : 1) * sizeof *nt);
        if (!nt) return pn_error(PN_ERR_NOMEM, "%s: out of memory", f->path);
        f->tensors = nt;
    }
    size_t name_bytes = strlen(key ? key : "(root)") + strlen(path) + 2;
    if (name_bytes > MAX_NAME_BYTES - f->owned->name_bytes)
        return pn_error(PN_ERR_FORMAT, "%s: the tensors' names take more than %zu MB (a file built to exhaust memory?)",
                        f->path, MAX_NAME_BYTES >> 20);
    f->owned->name_bytes += name_bytes;
    pn_pth_tensor *o = &f->tensors[f->count];
    memset(o, 0, sizeof *o);
    o->name = pn_strdup(key ? key : "(root)");
    o->path = pn_strdup(path);
    f->count++;
    if (!o->name || !o->path) return pn_error(PN_ERR_NOMEM, "%s: out of memory", f->path);
    o->dtype = t->dtype;
    o->ndim = t->ndim;
    memcpy(o->shape, t->size, sizeof o->shape);
    memcpy(o->stride, t->stride, sizeof o->stride);
    o->offset = s->base_off + t->offset;
    o->storage = si;
    return PN_OK;
}

static int cmp_tensor_names(const void *a, const void *b) {
    const pn_pth_tensor *x = *(pn_pth_tensor *const *)a, *y = *(pn_pth_tensor *const *)b;
    int c = strcmp(x->path, y->path);
    return c ? c : strcmp(x->name, y->name);
}

/* Two tensors under one name would make the mapping ambiguous. */
static pn_status check_unique(const pn_pth_file *f) {
    if (f->count < 2) return PN_OK;
    const pn_pth_tensor **order = malloc((size_t)f->count * sizeof *order);
    if (!order) return pn_error(PN_ERR_NOMEM, "%s: out of memory", f->path);
    for (int i = 0; i < f->count; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->count, sizeof *order, cmp_tensor_names);
    pn_status st = PN_OK;
    for (int i = 1; i < f->count && st == PN_OK; i++)
        if (!cmp_tensor_names(&order[i - 1], &order[i]))
            st = pn_error(PN_ERR_FORMAT, "%s: two tensors are named '%s'%s%s", f->path, order[i]->name,
                          order[i]->path[0] ? " in " : "", order[i]->path);
    free(order);
    return st;
}

/* Builds the tensor and storage lists from the object pickle. */
static pn_status collect(pn_pth_file *f, pn_pickle *pk, const pn_pk_value *root) {
    PN_TRY(pn_pk_each_storage(pk, add_storage, f));
    PN_TRY(dedupe_storages(f));
    pn_status st = pn_pk_walk_tensors(pk, root, add_tensor, f);
    if (st != PN_OK && !strstr(pn_last_error(), f->path)) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", pn_last_error());
        return pn_error(st, "%s: %s", f->path, msg);
    }
    PN_TRY(st);
    if (f->count == 0) return pn_error(PN_ERR_FORMAT, "%s: the checkpoint holds no tensors", f->path);
    return check_unique(f);
}

static pn_status storage_bytes(const pn_pth_file *f, const pn_pth_storage *s, size_t *bytes) {
    if (!pn_mul_size((size_t)s->numel, pn_torch_dtype_size(s->dtype), bytes))
        return pn_error(PN_ERR_FORMAT, "%s: storage '%s' declares an absurd size (%lld elements)", f->path, s->key,
                        (long long)s->numel);
    return PN_OK;
}

/* Every storage a tensor views must have its data. */
static pn_status check_all_read(const pn_pth_file *f) {
    for (int i = 0; i < f->count; i++) {
        const pn_pth_storage *s = &f->storages[f->tensors[i].storage];
        if (!s->data && s->numel > 0)
            return pn_error(PN_ERR_FORMAT, "%s: storage '%s' of tensor '%s' has no data in the file", f->path, s->key,
                            f->tensors[i].name);
    }
    return PN_OK;
}

static pn_status read_file(const char *path, uint8_t **out, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return pn_error(PN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return pn_error(PN_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(fp);
        return pn_error(PN_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, fp);
    fclose(fp);
    if (got != n) {
        free(buf);
        return pn_error(PN_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
    }
    *out = buf;
    *len = n;
    return PN_OK;
}

/* ---------------------------------------------------------------- legacy format */

/* One of the header pickles; `root` is valid until *pk is freed. */
static pn_status header_pickle(pn_pth_file *f, const uint8_t *buf, size_t len, size_t *pos, const char *what,
                               pn_pickle **pk, pn_pk_value **root) {
    char label[512];
    snprintf(label, sizeof label, "%s: %s", f->path, what);
    size_t used;
    PN_TRY(pn_pk_load(buf + *pos, len - *pos, label, pk, root, &used));
    *pos += used;
    return PN_OK;
}

static pn_status legacy_header(pn_pth_file *f, const uint8_t *buf, size_t len, size_t *pos) {
    pn_pickle *pk = NULL;
    pn_pk_value *v;
    PN_TRY(header_pickle(f, buf, len, pos, "magic number", &pk, &v));
    bool magic = v->kind == PN_PK_BIGINT && v->u.str.len == sizeof LEGACY_MAGIC &&
                 !memcmp(v->u.str.s, LEGACY_MAGIC, sizeof LEGACY_MAGIC);
    pn_pk_free(pk);
    if (!magic) return pn_error(PN_ERR_FORMAT, "%s: wrong magic number: not a PyTorch checkpoint", f->path);
    PN_TRY(header_pickle(f, buf, len, pos, "protocol version", &pk, &v));
    bool proto = v->kind == PN_PK_INT && v->u.i == LEGACY_PROTOCOL;
    int64_t got = v->kind == PN_PK_INT ? v->u.i : -1;
    pn_pk_free(pk);
    if (!proto)
        return pn_error(PN_ERR_UNSUPPORTED, "%s: legacy protocol %lld (only %d is known)", f->path, (long long)got,
                        LEGACY_PROTOCOL);
    PN_TRY(header_pickle(f, buf, len, pos, "system info", &pk, &v));
    bool dict = v->kind == PN_PK_DICT;
    pn_pk_free(pk);
    if (!dict) return pn_error(PN_ERR_FORMAT, "%s: the system info is not a dict", f->path);
    return PN_OK;
}

/* After the object: the list of storage keys, then per key an int64 element count and the raw little-endian data
 * (torch writes legacy storages little-endian whatever the machine). */
static pn_status legacy_storages(pn_pth_file *f, const uint8_t *buf, size_t len, size_t pos) {
    pn_pickle *pk = NULL;
    pn_pk_value *keys;
    PN_TRY(header_pickle(f, buf, len, &pos, "storage keys", &pk, &keys));
    pn_status st =
        keys->kind == PN_PK_LIST ? PN_OK : pn_error(PN_ERR_FORMAT, "%s: the storage keys are not a list", f->path);
    for (size_t k = 0; st == PN_OK && k < keys->u.seq.n; k++) {
        const pn_pk_value *key = keys->u.seq.items[k];
        int i = key->kind == PN_PK_STR ? find_storage(f, key->u.str.s) : -1;
        if (i < 0) {
            st = pn_error(PN_ERR_FORMAT, "%s: storage key %zu is not one the pickle declared", f->path, k);
            break;
        }
        pn_pth_storage *s = &f->storages[i];
        size_t bytes;
        if ((st = storage_bytes(f, s, &bytes)) != PN_OK) break;
        if (len - pos < 8) {
            st = pn_error(PN_ERR_FORMAT, "%s: truncated: storage '%s' has no size (file ends at byte %zu)", f->path,
                          s->key, len);
            break;
        }
        int64_t numel = 0;
        for (int b = 7; b >= 0; b--) numel = (int64_t)((uint64_t)numel << 8 | buf[pos + (size_t)b]);
        pos += 8;
        if (numel != s->numel) {
            st = pn_error(PN_ERR_FORMAT, "%s: storage '%s' holds %lld elements, the pickle declares %lld", f->path,
                          s->key, (long long)numel, (long long)s->numel);
            break;
        }
        if (bytes > len - pos) {
            st = pn_error(PN_ERR_FORMAT, "%s: truncated: storage '%s' needs %zu bytes, %zu left", f->path, s->key,
                          bytes, len - pos);
            break;
        }
        s->data = buf + pos;
        pos += bytes;
    }
    pn_pk_free(pk);
    return st;
}

static pn_status open_legacy(pn_pth_file *f) {
    uint8_t *buf = NULL;
    size_t len = 0, pos = 0;
    PN_TRY(read_file(f->path, &buf, &len));
    pn_status st = own(f, buf);
    if (st != PN_OK) {
        free(buf);
        return st;
    }
    f->format = "legacy";
    PN_TRY(legacy_header(f, buf, len, &pos));
    pn_pickle *pk = NULL;
    pn_pk_value *root;
    PN_TRY(header_pickle(f, buf, len, &pos, "object", &pk, &root));
    st = collect(f, pk, root);
    pn_pk_free(pk);
    if (st == PN_OK) st = legacy_storages(f, buf, len, pos);
    return st;
}

/* ---------------------------------------------------------------- zip format */

#ifdef PN_HAVE_LIBZIP
typedef struct zip_ctx {
    pn_pth_file *f;
    zip_t *za;
    uint64_t file_size;
    uint64_t stored_total;   /* bytes the records read so far occupy in the file */
    uint64_t inflated_total; /* bytes they hold once inflated */
    char prefix[256];        /* "<name>/" */
} zip_ctx;

/* A record's bytes: its sizes must be ones the file can hold (stored: the size it claims; deflated: at most
 * deflate's 1032:1 ratio, and all records together at most MAX_EXPANSION times the file) and at least `need`, all
 * checked before anything is allocated; then exactly that many bytes must come out. *found = false when absent and
 * optional. */
static pn_status zip_record(zip_ctx *z, const char *name, bool optional, size_t need, bool *found, uint8_t **out,
                            size_t *len) {
    const char *path = z->f->path;
    *out = NULL;
    *len = 0;
    zip_int64_t idx = zip_name_locate(z->za, name, 0);
    if (found) *found = idx >= 0;
    if (idx < 0) return optional ? PN_OK : pn_error(PN_ERR_FORMAT, "%s: zip record '%s' is missing", path, name);
    zip_stat_t sb;
    zip_stat_init(&sb);
    if (zip_stat_index(z->za, (zip_uint64_t)idx, 0, &sb) != 0 || !(sb.valid & ZIP_STAT_SIZE) ||
        !(sb.valid & ZIP_STAT_COMP_SIZE) || !(sb.valid & ZIP_STAT_COMP_METHOD))
        return pn_error(PN_ERR_FORMAT, "%s: zip record '%s' has no sizes", path, name);
    if (sb.comp_size > z->file_size)
        return pn_error(PN_ERR_FORMAT, "%s: zip record '%s' claims %llu bytes, more than the file's %llu", path, name,
                        (unsigned long long)sb.comp_size, (unsigned long long)z->file_size);
    /* records that share their bytes (an overlapping-entries zip bomb) add up to more than the file */
    z->stored_total += sb.comp_size;
    if (z->stored_total > z->file_size)
        return pn_error(PN_ERR_FORMAT, "%s: zip records overlap: with '%s' they occupy %llu bytes of a %llu-byte file",
                        path, name, (unsigned long long)z->stored_total, (unsigned long long)z->file_size);
    if (sb.comp_method == ZIP_CM_STORE) {
        if (sb.size != sb.comp_size)
            return pn_error(PN_ERR_FORMAT, "%s: stored zip record '%s' claims %llu bytes but stores %llu", path, name,
                            (unsigned long long)sb.size, (unsigned long long)sb.comp_size);
    } else if (sb.comp_method == ZIP_CM_DEFLATE) {
        if (sb.size / 1032 > sb.comp_size + 64)
            return pn_error(PN_ERR_FORMAT,
                            "%s: zip record '%s' claims %llu bytes from %llu compressed, more than deflate "
                            "can expand (a zip bomb?)",
                            path, name, (unsigned long long)sb.size, (unsigned long long)sb.comp_size);
    } else {
        return pn_error(PN_ERR_UNSUPPORTED, "%s: zip record '%s' uses compression method %d (stored or deflate only)",
                        path, name, (int)sb.comp_method);
    }
    if (sb.size > (zip_uint64_t)SIZE_MAX / 2)
        return pn_error(PN_ERR_FORMAT, "%s: zip record '%s' is too large", path, name);
    z->inflated_total += sb.size;
    if (z->inflated_total > MAX_EXPANSION * z->file_size + EXPAND_SLACK)
        return pn_error(PN_ERR_FORMAT,
                        "%s: zip records inflate to more than %d times the file's %llu bytes (with '%s': %llu bytes; a "
                        "zip bomb?)",
                        path, MAX_EXPANSION, (unsigned long long)z->file_size, name,
                        (unsigned long long)z->inflated_total);
    if (need && sb.size < need)
        return pn_error(PN_ERR_FORMAT, "%s: zip record '%s' holds %llu bytes; its storage needs %zu", path, name,
                        (unsigned long long)sb.size, need);
    size_t n = (size_t)sb.size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return pn_error(PN_ERR_NOMEM, "%s: out of memory reading record '%s' (%zu bytes)", path, name, n);
    zip_file_t *zf = zip_fopen_index(z->za, (zip_uint64_t)idx, 0);
    if (!zf) {
        free(buf);
        return pn_error(PN_ERR_FORMAT, "%s: zip record '%s': %s", path, name, zip_strerror(z->za));
    }
    size_t got = 0;
    while (got < n) {
        zip_int64_t r = zip_fread(zf, buf + got, n - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    char extra;
    bool longer = got == n && zip_fread(zf, &extra, 1) > 0;
    const char *why = got < n ? zip_file_strerror(zf) : "";
    char reason[200];
    snprintf(reason, sizeof reason, "%s", why);
    zip_fclose(zf);
    if (got < n || longer) {
        free(buf);
        if (longer)
            return pn_error(PN_ERR_FORMAT, "%s: zip record '%s' holds more than the %zu bytes it claims", path, name,
                            n);
        return pn_error(PN_ERR_FORMAT, "%s: zip record '%s' ends after %zu of its %zu bytes (%s)", path, name, got, n,
                        reason);
    }
    *out = buf;
    *len = n;
    return PN_OK;
}

/* The archive's folder: the record "<name>/data.pkl". */
static pn_status zip_prefix(zip_ctx *z) {
    zip_int64_t n = zip_get_num_entries(z->za, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(z->za, (zip_uint64_t)i, 0);
        if (!name) continue;
        const char *slash = strchr(name, '/');
        if (slash && !strcmp(slash, "/data.pkl") && (size_t)(slash - name) + 2 < sizeof z->prefix) {
            memcpy(z->prefix, name, (size_t)(slash - name) + 1);
            z->prefix[slash - name + 1] = 0;
            return PN_OK;
        }
    }
    return pn_error(PN_ERR_FORMAT, "%s: a zip file without a '<name>/data.pkl' record: not a PyTorch checkpoint",
                    z->f->path);
}

static pn_status zip_byteorder(zip_ctx *z) {
    char name[300];
    snprintf(name, sizeof name, "%sbyteorder", z->prefix);
    uint8_t *buf;
    size_t len;
    bool found;
    PN_TRY(zip_record(z, name, true, 0, &found, &buf, &len));
    if (!found) return PN_OK; /* before PyTorch 2.1: little-endian */
    bool little = len == 6 && !memcmp(buf, "little", 6), big = len == 3 && !memcmp(buf, "big", 3);
    free(buf);
    if (!little && !big)
        return pn_error(PN_ERR_FORMAT, "%s: record '%s' is neither 'little' nor 'big'", z->f->path, name);
    z->f->big_endian = big;
    return PN_OK;
}

static pn_status zip_storages(zip_ctx *z) {
    pn_pth_file *f = z->f;
    for (int i = 0; i < f->n_storages; i++) {
        pn_pth_storage *s = &f->storages[i];
        size_t bytes, len;
        PN_TRY(storage_bytes(f, s, &bytes));
        char name[400];
        snprintf(name, sizeof name, "%sdata/%s", z->prefix, s->key);
        uint8_t *buf;
        PN_TRY(zip_record(z, name, false, bytes, NULL, &buf, &len));
        pn_status st = own(f, buf);
        if (st != PN_OK) {
            free(buf);
            return st;
        }
        if (len < bytes)
            return pn_error(PN_ERR_FORMAT,
                            "%s: storage '%s' (record '%s') holds %zu bytes; its %lld %s elements need %zu", f->path,
                            s->key, name, len, (long long)s->numel, pn_torch_dtype_name(s->dtype), bytes);
        s->data = buf;
    }
    return PN_OK;
}

static pn_status zip_read(zip_ctx *z) {
    PN_TRY(zip_prefix(z));
    PN_TRY(zip_byteorder(z));
    char name[300], label[600];
    snprintf(name, sizeof name, "%sdata.pkl", z->prefix);
    uint8_t *pkl;
    size_t len, used;
    PN_TRY(zip_record(z, name, false, 0, NULL, &pkl, &len));
    snprintf(label, sizeof label, "%s: %s", z->f->path, name);
    pn_pickle *pk = NULL;
    pn_pk_value *root;
    pn_status st = pn_pk_load(pkl, len, label, &pk, &root, &used);
    if (st == PN_OK) st = collect(z->f, pk, root);
    pn_pk_free(pk);
    free(pkl);
    if (st == PN_OK) st = zip_storages(z);
    return st;
}

static pn_status open_zip(pn_pth_file *f) {
    f->format = "zip";
    struct stat sb;
    if (stat(f->path, &sb) != 0) return pn_error(PN_ERR_IO, "%s: %s", f->path, strerror(errno));
    int err = 0;
    zip_t *za = zip_open(f->path, ZIP_RDONLY, &err);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        pn_status st = pn_error(PN_ERR_FORMAT, "%s: not a readable zip file: %s", f->path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_ctx z = {.f = f, .za = za, .file_size = (uint64_t)sb.st_size};
    pn_status st = zip_read(&z);
    zip_discard(za);
    return st;
}
#else
static pn_status open_zip(pn_pth_file *f) {
    return pn_error(PN_ERR_UNSUPPORTED,
                    "%s is a zip-format PyTorch checkpoint (PyTorch >= 1.6) and this build has no "
                    "libzip: install libzip-dev and configure with PN_LIBZIP=ON (or re-save it with "
                    "_use_new_zipfile_serialization=False)",
                    f->path);
}
#endif

/* ---------------------------------------------------------------- opening */

typedef enum { KIND_NONE, KIND_ZIP, KIND_LEGACY, KIND_TAR } file_kind;

static file_kind sniff(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return KIND_NONE;
    uint8_t head[512];
    size_t n = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (n >= 4 && !memcmp(head, "PK\x03\x04", 4)) return KIND_ZIP;
    if (n >= 4 && head[0] == 0x80 && head[1] == 0x02 && head[2] == 0x8a && head[3] == 0x0a) return KIND_LEGACY;
    if (n >= 262 && !memcmp(head + 257, "ustar", 5)) return KIND_TAR;
    return KIND_NONE;
}

bool pn_pth_sniff(const char *path) { return sniff(path) != KIND_NONE; }

pn_status pn_pth_open(const char *path, pn_pth_file **out) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return pn_error(PN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fclose(fp);
    file_kind kind = sniff(path);
    if (kind == KIND_TAR)
        return pn_error(PN_ERR_UNSUPPORTED, "%s: a tar-format checkpoint (PyTorch before 0.1.10) is not supported",
                        path);
    if (kind == KIND_NONE)
        return pn_error(PN_ERR_FORMAT, "%s: not a PyTorch checkpoint (neither a zip nor a legacy pickle)", path);
    pn_pth_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = pn_strdup(path)) || !(f->owned = calloc(1, sizeof *f->owned))) {
        pn_pth_close(f);
        return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
    }
    pn_status st = kind == KIND_ZIP ? open_zip(f) : open_legacy(f);
    if (st == PN_OK) st = check_all_read(f);
    if (st != PN_OK) {
        pn_pth_close(f);
        return st;
    }
    *out = f;
    return PN_OK;
}

/* ---------------------------------------------------------------- reading tensors */

/* Calls fn(ctx, src, n, at) for runs of n elements that lie one after another in the storage, in row-major order
 * of the tensor (`at` = the first's row-major index). */
typedef void (*run_fn)(void *ctx, const uint8_t *src, int64_t n, int64_t at);

static void for_each_run(const pn_pth_file *f, const pn_pth_tensor *t, run_fn fn, void *ctx) {
    const uint8_t *base = f->storages[t->storage].data;
    size_t es = pn_torch_dtype_size(t->dtype);
    int64_t numel = pn_pth_numel(t);
    if (numel == 0) return;
    bool contiguous = true;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect) contiguous = false;
        expect *= t->shape[d];
    }
    if (contiguous) {
        fn(ctx, base + (size_t)t->offset * es, numel, 0);
        return;
    }
    int outer = t->ndim;
    int64_t run = 1;
    if (t->ndim > 0 && t->stride[t->ndim - 1] == 1) {
        run = t->shape[t->ndim - 1];
        outer = t->ndim - 1;
    }
    int64_t idx[PN_PK_MAX_DIMS] = {0};
    for (int64_t at = 0; at < numel; at += run) {
        int64_t off = t->offset;
        for (int d = 0; d < outer; d++) off += idx[d] * t->stride[d];
        fn(ctx, base + (size_t)off * es, run, at);
        for (int d = outer - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

typedef struct conv_ctx {
    pn_torch_dtype dtype;
    size_t es;
    bool swap;
    void *dst;
} conv_ctx;

/* One element's bytes in host order. */
static void load(const conv_ctx *c, const uint8_t *src, uint8_t *out) {
    for (size_t i = 0; i < c->es; i++) out[i] = src[c->swap ? c->es - 1 - i : i];
}

static void raw_run(void *ctx, const uint8_t *src, int64_t n, int64_t at) {
    conv_ctx *c = ctx;
    uint8_t *dst = (uint8_t *)c->dst + (size_t)at * c->es;
    if (!c->swap) {
        memcpy(dst, src, (size_t)n * c->es);
        return;
    }
    for (int64_t i = 0; i < n; i++) load(c, src + (size_t)i * c->es, dst + (size_t)i * c->es);
}

static float half_to_float(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m + 1024), e - 25);
    return h & 0x8000 ? -v : v;
}

/* An integer or bool element (0 for another dtype). */
static int64_t element_i64(pn_torch_dtype dt, const uint8_t *b) {
    switch (dt) {
    case PN_TD_I64: {
        int64_t v;
        memcpy(&v, b, 8);
        return v;
    }
    case PN_TD_I32: {
        int32_t v;
        memcpy(&v, b, 4);
        return v;
    }
    case PN_TD_I16: {
        int16_t v;
        memcpy(&v, b, 2);
        return v;
    }
    case PN_TD_I8: return (int8_t)b[0];
    case PN_TD_U8: return b[0];
    case PN_TD_BOOL: return b[0] != 0;
    default: return 0;
    }
}

static float element_f32(pn_torch_dtype dt, const uint8_t *b) {
    switch (dt) {
    case PN_TD_F32: {
        float v;
        memcpy(&v, b, 4);
        return v;
    }
    case PN_TD_F64: {
        double v;
        memcpy(&v, b, 8);
        return (float)v;
    }
    case PN_TD_F16: {
        uint16_t h;
        memcpy(&h, b, 2);
        return half_to_float(h);
    }
    case PN_TD_BF16: {
        uint16_t h;
        memcpy(&h, b, 2);
        uint32_t w = (uint32_t)h << 16;
        float v;
        memcpy(&v, &w, 4);
        return v;
    }
    case PN_TD_I64:
    case PN_TD_I32:
    case PN_TD_I16:
    case PN_TD_I8:
    case PN_TD_U8:
    case PN_TD_BOOL: return (float)element_i64(dt, b);
    default: return NAN;
    }
}

static void f32_run(void *ctx, const uint8_t *src, int64_t n, int64_t at) {
    conv_ctx *c = ctx;
    float *dst = (float *)c->dst + at;
    if (c->dtype == PN_TD_F32 && !c->swap) {
        memcpy(dst, src, (size_t)n * 4);
        return;
    }
    uint8_t b[8];
    for (int64_t i = 0; i < n; i++) {
        load(c, src + (size_t)i * c->es, b);
        dst[i] = element_f32(c->dtype, b);
    }
}

static void i64_run(void *ctx, const uint8_t *src, int64_t n, int64_t at) {
    conv_ctx *c = ctx;
    int64_t *dst = (int64_t *)c->dst + at;
    uint8_t b[8];
    for (int64_t i = 0; i < n; i++) {
        load(c, src + (size_t)i * c->es, b);
        dst[i] = element_i64(c->dtype, b);
    }
}

static conv_ctx conv_of(const pn_pth_file *f, const pn_pth_tensor *t, void *dst) {
    conv_ctx c = {.dtype = t->dtype, .es = pn_torch_dtype_size(t->dtype), .dst = dst};
    c.swap = c.es > 1 && f->big_endian != host_big_endian();
    return c;
}

pn_status pn_pth_read_raw(const pn_pth_file *f, const pn_pth_tensor *t, void *dst) {
    conv_ctx c = conv_of(f, t, dst);
    for_each_run(f, t, raw_run, &c);
    return PN_OK;
}

pn_status pn_pth_read_f32(const pn_pth_file *f, const pn_pth_tensor *t, float *dst, int64_t count) {
    if (count != pn_pth_numel(t))
        return pn_error(PN_ERR_ARG, "%s: tensor '%s' has %lld elements, not %lld", f->path, t->name,
                        (long long)pn_pth_numel(t), (long long)count);
    conv_ctx c = conv_of(f, t, dst);
    for_each_run(f, t, f32_run, &c);
    return PN_OK;
}

pn_status pn_pth_read_i64(const pn_pth_file *f, const pn_pth_tensor *t, int64_t *dst, int64_t count) {
    if (count != pn_pth_numel(t))
        return pn_error(PN_ERR_ARG, "%s: tensor '%s' has %lld elements, not %lld", f->path, t->name,
                        (long long)pn_pth_numel(t), (long long)count);
    if (pn_torch_dtype_is_float(t->dtype))
        return pn_error(PN_ERR_FORMAT, "%s: tensor '%s' is %s, an integer was expected", f->path, t->name,
                        pn_torch_dtype_name(t->dtype));
    conv_ctx c = conv_of(f, t, dst);
    for_each_run(f, t, i64_run, &c);
    return PN_OK;
}
