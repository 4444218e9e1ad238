/* safetensors: a strict bounded JSON header parser, a validating reader and an atomic writer. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* madvise */
#include "safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sys/stat.h>

#include "atomic_file.h"

#define ST_MAX_HEADER 100000000ull /* the limit the reference implementation uses */
#define JSON_MAX_DEPTH 64

/* ------------------------------------------------------------------------------------------------ */
/* Small helpers                                                                                    */
/* ------------------------------------------------------------------------------------------------ */

/* Writes `s` quoted and escaped into `out` (at most 80 visible bytes), so a message stays one line. */
static const char *st_quote(const char *s, char *out, size_t cap) {
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; s[i] && o + 6 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= 80) {
            o += (size_t)snprintf(out + o, cap - o, "...");
            break;
        }
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (o + 2 > cap) o = cap - 2;
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* Length of a valid UTF-8 sequence starting at s[0] (max `n` bytes available), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0; /* overlong */
    if (cp >= 0xd800 && cp <= 0xdfff) return 0;                                              /* surrogate */
    return len;
}

static bool utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

typedef struct st_dtype_info {
    const char *name;
    pn_st_dtype dtype;
    size_t size;
} st_dtype_info;

static const st_dtype_info st_dtypes[] = {
    {"F32", PN_ST_F32, 4},   {"F16", PN_ST_F16, 2},       {"BF16", PN_ST_BF16, 2},     {"F64", PN_ST_F64, 8},
    {"I64", PN_ST_I64, 8},   {"I32", PN_ST_I32, 4},       {"U8", PN_ST_U8, 1},         {"BOOL", PN_ST_BOOL, 1},
    {"I8", PN_ST_OTHER, 1},  {"I16", PN_ST_OTHER, 2},     {"U16", PN_ST_OTHER, 2},     {"U32", PN_ST_OTHER, 4},
    {"U64", PN_ST_OTHER, 8}, {"F8_E4M3", PN_ST_OTHER, 1}, {"F8_E5M2", PN_ST_OTHER, 1},
};

static const st_dtype_info *st_dtype_by_name(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return &st_dtypes[i];
    return NULL;
}

size_t pn_st_dtype_size(const pn_st_entry *e) {
    const st_dtype_info *d = st_dtype_by_name(e->dtype_name);
    return d ? d->size : 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* JSON: a strict recursive-descent parser into a node pool (indices, siblings linked by `next`).   */
/* ------------------------------------------------------------------------------------------------ */

typedef enum { J_NULL, J_TRUE, J_FALSE, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jnode {
    jtype type;
    int32_t child;   /* first element/member, -1 if none */
    int32_t next;    /* next sibling, -1 if none */
    int32_t count;   /* number of children */
    const char *key; /* member name (object members only) */
    size_t key_len;
    const char *str; /* decoded string (J_STR) */
    size_t str_len;
    bool is_int; /* J_NUM: no fraction/exponent and fits int64 */
    int64_t ival;
} jnode;

typedef struct jparser {
    const char *s;
    size_t n, pos;
    jnode *nodes;
    int32_t count, cap;
    char *sbuf; /* decoded strings, each NUL-terminated; total <= header length + 1 */
    size_t slen, scap;
    char err[200];
} jparser;

static bool jfail(jparser *p, const char *what) {
    if (!p->err[0]) snprintf(p->err, sizeof p->err, "%s at byte %zu of the header", what, p->pos);
    return false;
}

static void jskip_ws(jparser *p) {
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int32_t jnew(jparser *p, jtype t) {
    if (p->count == p->cap) {
        if (p->cap > INT32_MAX / 2) {
            jfail(p, "too many JSON values");
            return -1;
        }
        int32_t cap = p->cap ? p->cap * 2 : 64;
        jnode *nn = realloc(p->nodes, (size_t)cap * sizeof *nn);
        if (!nn) {
            jfail(p, "out of memory parsing");
            return -1;
        }
        p->nodes = nn;
        p->cap = cap;
    }
    jnode *j = &p->nodes[p->count];
    memset(j, 0, sizeof *j);
    j->type = t;
    j->child = j->next = -1;
    return p->count++;
}

static bool jput(jparser *p, const char *b, size_t k) {
    if (p->slen + k >= p->scap) return jfail(p, "string buffer overflow"); /* cannot happen; bounds anyway */
    memcpy(p->sbuf + p->slen, b, k);
    p->slen += k;
    return true;
}

static int jhex4(jparser *p, uint32_t *out) {
    if (p->n - p->pos < 4) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + (size_t)i];
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0) return 0;
        v = v * 16 + (uint32_t)d;
    }
    p->pos += 4;
    *out = v;
    return 1;
}

static bool jput_cp(jparser *p, uint32_t cp) {
    char b[4];
    size_t k;
    if (cp < 0x80)
        b[0] = (char)cp, k = 1;
    else if (cp < 0x800)
        b[0] = (char)(0xc0 | (cp >> 6)), b[1] = (char)(0x80 | (cp & 0x3f)), k = 2;
    else if (cp < 0x10000)
        b[0] = (char)(0xe0 | (cp >> 12)), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[2] = (char)(0x80 | (cp & 0x3f)),
        k = 3;
    else
        b[0] = (char)(0xf0 | (cp >> 18)), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), k = 4;
    return jput(p, b, k);
}

/* Parses a string at p->pos (which is at '"'); sets *out to the decoded, NUL-terminated copy. */
static bool jstring(jparser *p, const char **out, size_t *out_len) {
    p->pos++; /* opening quote */
    size_t start = p->slen;
    for (;;) {
        if (p->pos >= p->n) return jfail(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) return jfail(p, "control character in string");
        if (c == '\\') {
            if (++p->pos >= p->n) return jfail(p, "unterminated escape");
            char e = p->s[p->pos++];
            static const char names[] = "\"\\/bfnrt", repl[] = "\"\\/\b\f\n\r\t";
            const char *simple = e ? strchr(names, e) : NULL;
            if (simple) {
                if (!jput(p, &repl[simple - names], 1)) return false;
                continue;
            }
            if (e != 'u') return jfail(p, "invalid escape in string");
            uint32_t cp, lo;
            if (!jhex4(p, &cp)) return jfail(p, "invalid \\u escape");
            if (cp >= 0xdc00 && cp <= 0xdfff) return jfail(p, "lone low surrogate in \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                    return jfail(p, "high surrogate without its pair");
                p->pos += 2;
                if (!jhex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff) return jfail(p, "invalid surrogate pair");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (!jput_cp(p, cp)) return false;
            continue;
        }
        size_t k = utf8_seq((const unsigned char *)p->s + p->pos, p->n - p->pos);
        if (!k) return jfail(p, "invalid UTF-8 in string");
        if (!jput(p, p->s + p->pos, k)) return false;
        p->pos += k;
    }
    *out_len = p->slen - start;
    if (!jput(p, "", 1)) return false;
    *out = p->sbuf + start;
    return true;
}

static bool jnumber(jparser *p, jnode *j) {
    size_t i = p->pos;
    bool neg = false, is_int = true, overflow = false;
    uint64_t mag = 0;
    if (i < p->n && p->s[i] == '-') neg = true, i++;
    if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') return jfail(p, "invalid number");
    if (p->s[i] == '0') {
        i++;
        if (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') return jfail(p, "number with a leading zero");
    } else {
        while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') {
            unsigned d = (unsigned)(p->s[i] - '0');
            if (mag > (UINT64_MAX - d) / 10)
                overflow = true;
            else
                mag = mag * 10 + d;
            i++;
        }
    }
    if (i < p->n && p->s[i] == '.') {
        is_int = false;
        i++;
        if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') return jfail(p, "invalid number fraction");
        while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
    }
    if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
        is_int = false;
        i++;
        if (i < p->n && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->n || p->s[i] < '0' || p->s[i] > '9') return jfail(p, "invalid number exponent");
        while (i < p->n && p->s[i] >= '0' && p->s[i] <= '9') i++;
    }
    p->pos = i;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    j->is_int = is_int && !overflow && mag <= lim;
    if (j->is_int) j->ival = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return true;
}

static int jkey_cmp(const void *a, const void *b) {
    const jnode *x = *(const jnode *const *)a, *y = *(const jnode *const *)b;
    if (x->key_len != y->key_len) return x->key_len < y->key_len ? -1 : 1;
    return memcmp(x->key, y->key, x->key_len);
}

/* Rejects an object with two members of the same name (compared as decoded bytes). */
static bool jcheck_dup_keys(jparser *p, int32_t obj) {
    int32_t n = p->nodes[obj].count;
    if (n < 2) return true;
    const jnode **v = malloc((size_t)n * sizeof *v);
    if (!v) return jfail(p, "out of memory parsing");
    int32_t k = 0;
    for (int32_t c = p->nodes[obj].child; c >= 0; c = p->nodes[c].next) v[k++] = &p->nodes[c];
    qsort(v, (size_t)n, sizeof *v, jkey_cmp);
    for (int32_t i = 1; i < n; i++) {
        if (jkey_cmp(&v[i - 1], &v[i]) == 0) {
            char q[200];
            if (!p->err[0]) snprintf(p->err, sizeof p->err, "duplicate key %s", st_quote(v[i]->key, q, sizeof q));
            free(v);
            return false;
        }
    }
    free(v);
    return true;
}

static bool jvalue(jparser *p, int depth, int32_t *out);

/* Parses the members or elements of an object/array at p->pos (at '{' or '['). */
static bool jcontainer(jparser *p, int depth, int32_t self) {
    bool obj = p->nodes[self].type == J_OBJ;
    char close = obj ? '}' : ']';
    int32_t last = -1;
    p->pos++;
    jskip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        return true;
    }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        if (obj) {
            jskip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != '"') return jfail(p, "expected a member name");
            if (!jstring(p, &key, &key_len)) return false;
            jskip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':') return jfail(p, "expected ':'");
            p->pos++;
        }
        int32_t child;
        if (!jvalue(p, depth + 1, &child)) return false;
        p->nodes[child].key = key;
        p->nodes[child].key_len = key_len;
        if (last < 0)
            p->nodes[self].child = child;
        else
            p->nodes[last].next = child;
        last = child;
        p->nodes[self].count++;
        jskip_ws(p);
        if (p->pos >= p->n) return jfail(p, obj ? "unterminated object" : "unterminated array");
        char c = p->s[p->pos++];
        if (c == close) break;
        if (c != ',') return jfail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    return obj ? jcheck_dup_keys(p, self) : true;
}

static bool jliteral(jparser *p, const char *word) {
    size_t k = strlen(word);
    if (p->n - p->pos < k || memcmp(p->s + p->pos, word, k) != 0) return jfail(p, "invalid JSON token");
    p->pos += k;
    return true;
}

static bool jvalue(jparser *p, int depth, int32_t *out) {
    if (depth > JSON_MAX_DEPTH) return jfail(p, "JSON nested too deeply");
    jskip_ws(p);
    if (p->pos >= p->n) return jfail(p, "unexpected end of JSON");
    char c = p->s[p->pos];
    jtype t = c == '{'   ? J_OBJ
              : c == '[' ? J_ARR
              : c == '"' ? J_STR
              : c == 't' ? J_TRUE
              : c == 'f' ? J_FALSE
              : c == 'n' ? J_NULL
                         : J_NUM;
    int32_t self = jnew(p, t);
    if (self < 0) return false;
    *out = self;
    switch (t) {
    case J_OBJ:
    case J_ARR: return jcontainer(p, depth, self);
    case J_STR: {
        const char *s;
        size_t len;
        if (!jstring(p, &s, &len)) return false;
        p->nodes[self].str = s;
        p->nodes[self].str_len = len;
        return true;
    }
    case J_TRUE: return jliteral(p, "true");
    case J_FALSE: return jliteral(p, "false");
    case J_NULL: return jliteral(p, "null");
    case J_NUM: return jnumber(p, &p->nodes[self]);
    }
    return jfail(p, "invalid JSON");
}

/* ------------------------------------------------------------------------------------------------ */
/* Reader                                                                                           */
/* ------------------------------------------------------------------------------------------------ */

static uint64_t st_le64(const uint8_t *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static bool jkey_is(const jnode *m, const char *key) {
    size_t k = strlen(key);
    return m->key_len == k && memcmp(m->key, key, k) == 0;
}

/* A JSON member of object `obj` called `key`, or NULL. */
static const jnode *jget(const jparser *p, const jnode *obj, const char *key) {
    for (int32_t c = obj->child; c >= 0; c = p->nodes[c].next)
        if (jkey_is(&p->nodes[c], key)) return &p->nodes[c];
    return NULL;
}

static pn_status st_bad(const char *path, const char *name, const char *fmt, const char *detail) {
    char q[200];
    if (name)
        return pn_error(PN_ERR_FORMAT, "%s: tensor %s: %s%s", path, st_quote(name, q, sizeof q), fmt,
                        detail ? detail : "");
    return pn_error(PN_ERR_FORMAT, "%s: %s%s", path, fmt, detail ? detail : "");
}

/* Fills entry `e` from the JSON description `v` of tensor `name`; checks everything but coverage. */
static pn_status st_parse_entry(const char *path, const jparser *p, const jnode *v, const char *name, size_t data_len,
                                pn_st_entry *e) {
    if (v->type != J_OBJ) return st_bad(path, name, "description is not a JSON object", NULL);
    for (int32_t c = v->child; c >= 0; c = p->nodes[c].next) {
        const jnode *m = &p->nodes[c];
        if (!jkey_is(m, "dtype") && !jkey_is(m, "shape") && !jkey_is(m, "data_offsets")) {
            char q[200];
            return st_bad(path, name, "unexpected key ", st_quote(m->key, q, sizeof q));
        }
    }
    const jnode *dt = jget(p, v, "dtype"), *sh = jget(p, v, "shape"), *off = jget(p, v, "data_offsets");
    if (!dt || dt->type != J_STR) return st_bad(path, name, "\"dtype\" missing or not a string", NULL);
    if (!sh || sh->type != J_ARR) return st_bad(path, name, "\"shape\" missing or not an array", NULL);
    if (!off || off->type != J_ARR || off->count != 2)
        return st_bad(path, name, "\"data_offsets\" missing or not an array of two integers", NULL);
    const st_dtype_info *di = st_dtype_by_name(dt->str);
    if (!di || strlen(dt->str) != dt->str_len) {
        char q[200];
        return st_bad(path, name, "unknown dtype ", st_quote(dt->str, q, sizeof q));
    }
    e->dtype = di->dtype;
    snprintf(e->dtype_name, sizeof e->dtype_name, "%s", di->name);
    if (sh->count > PN_ST_MAX_DIMS) return st_bad(path, name, "more than 8 dimensions", NULL);
    e->ndim = sh->count;
    uint64_t numel = 1;
    int d = 0;
    for (int32_t c = sh->child; c >= 0; c = p->nodes[c].next, d++) {
        const jnode *x = &p->nodes[c];
        if (x->type != J_NUM || !x->is_int) return st_bad(path, name, "shape entry is not an integer", NULL);
        if (x->ival < 0) return st_bad(path, name, "negative shape entry", NULL);
        e->shape[d] = x->ival;
        if (x->ival != 0 && numel > (uint64_t)INT64_MAX / (uint64_t)x->ival)
            return st_bad(path, name, "element count overflows", NULL);
        numel *= (uint64_t)x->ival;
    }
    if (numel > (uint64_t)SIZE_MAX / di->size) return st_bad(path, name, "byte size overflows", NULL);
    size_t bytes = (size_t)numel * di->size;
    const jnode *b = &p->nodes[off->child], *en = &p->nodes[b->next];
    if (b->type != J_NUM || !b->is_int || b->ival < 0 || en->type != J_NUM || !en->is_int || en->ival < 0)
        return st_bad(path, name, "\"data_offsets\" are not two non-negative integers", NULL);
    if (b->ival > en->ival) return st_bad(path, name, "data_offsets begin > end", NULL);
    if ((uint64_t)en->ival > (uint64_t)data_len) {
        char det[96];
        snprintf(det, sizeof det, " (end %lld, data section %zu bytes)", (long long)en->ival, data_len);
        return st_bad(path, name, "data_offsets past the end of the data section", det);
    }
    e->begin = (size_t)b->ival;
    e->end = (size_t)en->ival;
    if (e->end - e->begin != bytes) {
        char det[96];
        snprintf(det, sizeof det, " (shape and dtype need %zu bytes, offsets give %zu)", bytes, e->end - e->begin);
        return st_bad(path, name, "byte size does not match data_offsets", det);
    }
    return PN_OK;
}

typedef struct st_span {
    size_t begin, end;
    int index;
} st_span;

static int st_cmp_spans(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->index - y->index;
}

/* The tensors must tile the data section exactly: no overlap, no gap, nothing left over. */
static pn_status st_check_coverage(const char *path, pn_st_file *f) {
    if (f->count == 0) {
        if (f->data_len) return st_bad(path, NULL, "data section has bytes but no tensors describe them", NULL);
        return PN_OK;
    }
    st_span *order = malloc((size_t)f->count * sizeof *order);
    if (!order) return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < f->count; i++) order[i] = (st_span){f->entries[i].begin, f->entries[i].end, i};
    qsort(order, (size_t)f->count, sizeof *order, st_cmp_spans);
    size_t pos = 0;
    pn_status st = PN_OK;
    for (int i = 0; i < f->count && st == PN_OK; i++) {
        const pn_st_entry *e = &f->entries[order[i].index];
        if (e->begin < pos)
            st = st_bad(path, e->name, "data overlaps another tensor", NULL);
        else if (e->begin > pos)
            st = st_bad(path, e->name, "gap in the data section before this tensor", NULL);
        pos = e->end;
    }
    if (st == PN_OK && pos != f->data_len) {
        char det[96];
        snprintf(det, sizeof det, " (%zu of %zu bytes covered)", pos, f->data_len);
        st = st_bad(path, NULL, "data section has trailing bytes no tensor covers", det);
    }
    free(order);
    return st;
}

/* Turns the parsed header into entries and metadata. The strings stay in p->sbuf, now owned by f. */
static pn_status st_from_json(const char *path, jparser *p, pn_st_file *f) {
    const jnode *root = &p->nodes[0];
    if (root->type != J_OBJ) return st_bad(path, NULL, "header is not a JSON object", NULL);
    f->entries = calloc((size_t)root->count + 1, sizeof *f->entries);
    if (!f->entries) return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
    for (int32_t c = root->child; c >= 0; c = p->nodes[c].next) {
        const jnode *m = &p->nodes[c];
        if (strlen(m->key) != m->key_len) return st_bad(path, NULL, "tensor name contains a NUL character", NULL);
        if (strcmp(m->key, "__metadata__") == 0) {
            if (m->type != J_OBJ) return st_bad(path, NULL, "\"__metadata__\" is not an object", NULL);
            f->meta_keys = calloc((size_t)m->count + 1, sizeof(char *));
            f->meta_values = calloc((size_t)m->count + 1, sizeof(char *));
            if (!f->meta_keys || !f->meta_values) return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
            for (int32_t k = m->child; k >= 0; k = p->nodes[k].next) {
                const jnode *kv = &p->nodes[k];
                if (kv->type != J_STR) return st_bad(path, NULL, "\"__metadata__\" value is not a string", NULL);
                if (strlen(kv->key) != kv->key_len || strlen(kv->str) != kv->str_len)
                    return st_bad(path, NULL, "\"__metadata__\" string contains a NUL character", NULL);
                f->meta_keys[f->meta_count] = (char *)kv->key;
                f->meta_values[f->meta_count] = (char *)kv->str;
                f->meta_count++;
            }
            continue;
        }
        pn_st_entry *e = &f->entries[f->count];
        e->name = (char *)m->key;
        PN_TRY(st_parse_entry(path, p, m, m->key, f->data_len, e));
        f->count++;
    }
    return st_check_coverage(path, f);
}

/* Maps the whole file read-only (the data section is read from there, tensor by tensor, so a model's weights are
 * not resident twice while they are copied out) and copies the header bytes (NUL-terminated). The writers replace
 * files by renaming, which leaves a mapping of the old file intact. */
static pn_status st_read_file(const char *path, pn_st_file *f, char **header, size_t *header_len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return pn_error(PN_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    struct stat sb;
    pn_status st = PN_OK;
    uint8_t len8[8];
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = pn_error(PN_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        st = st_bad(path, NULL, "file shorter than the 8-byte header length", NULL);
        goto done;
    }
    if (fread(len8, 1, 8, fp) != 8) {
        st = pn_error(PN_ERR_IO, "%s: read failed", path);
        goto done;
    }
    uint64_t n = st_le64(len8);
    if (n > ST_MAX_HEADER) {
        char det[64];
        snprintf(det, sizeof det, " (%llu bytes)", (unsigned long long)n);
        st = st_bad(path, NULL, "header length is absurd", det);
        goto done;
    }
    if (n > size - 8) {
        char det[96];
        snprintf(det, sizeof det, " (%llu bytes, file has %llu after the length)", (unsigned long long)n,
                 (unsigned long long)(size - 8));
        st = st_bad(path, NULL, "header length runs past the end of the file", det);
        goto done;
    }
    if (size > (uint64_t)SIZE_MAX / 2) {
        st = pn_error(PN_ERR_NOMEM, "%s: data section too large", path);
        goto done;
    }
    *header_len = (size_t)n;
    f->data_len = (size_t)(size - 8 - n);
    f->map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fileno(fp), 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        st = pn_error(PN_ERR_IO, "%s: cannot map %llu bytes (%s)", path, (unsigned long long)size, strerror(errno));
        goto done;
    }
    f->map_len = (size_t)size;
    f->data = (uint8_t *)f->map + 8 + n;
    *header = malloc((size_t)n + 1);
    if (!*header) {
        st = pn_error(PN_ERR_NOMEM, "%s: out of memory reading %llu bytes", path, (unsigned long long)n);
        goto done;
    }
    memcpy(*header, (uint8_t *)f->map + 8, (size_t)n);
    (*header)[n] = '\0';
done:
    fclose(fp);
    return st;
}

/* Lets the pages of an entry that has been copied out go (they come back from the file if read again). */
static void st_release_pages(const pn_st_file *f, const pn_st_entry *e) {
    long page = sysconf(_SC_PAGESIZE);
    if (!f->map || page <= 0) return;
    uintptr_t lo = (uintptr_t)(f->data + e->begin), hi = (uintptr_t)(f->data + e->end);
    lo = (lo + (uintptr_t)page - 1) & ~((uintptr_t)page - 1); /* whole pages only */
    hi &= ~((uintptr_t)page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static pn_status st_parse_header(const char *path, const char *header, size_t n, jparser *p) {
    memset(p, 0, sizeof *p);
    p->s = header;
    p->n = n;
    p->scap = n + 1;
    p->sbuf = malloc(p->scap);
    if (!p->sbuf) return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
    int32_t root;
    bool ok = jvalue(p, 0, &root);
    if (ok) {
        jskip_ws(p);
        if (p->pos != p->n) ok = jfail(p, "trailing bytes after the JSON value");
    }
    if (!ok) return st_bad(path, NULL, "bad JSON header: ", p->err);
    return PN_OK;
}

static pn_status st_open(const char *path, bool with_data, pn_st_file **out) {
    *out = NULL;
    pn_st_file *f = calloc(1, sizeof *f);
    if (!f) return pn_error(PN_ERR_NOMEM, "out of memory");
    char *header = NULL;
    size_t n = 0;
    jparser p;
    memset(&p, 0, sizeof p);
    pn_status st;
    if (!(f->path = pn_strdup(path)))
        st = pn_error(PN_ERR_NOMEM, "out of memory");
    else if ((st = st_read_file(path, f, &header, &n)) == PN_OK &&
             (st = st_parse_header(path, header, n, &p)) == PN_OK) {
        if (!with_data) f->data = NULL; /* header only (the mapping stays until close): no reader may use it */
        f->strings = p.sbuf;
        p.sbuf = NULL;
        st = st_from_json(path, &p, f);
    }
    free(header);
    free(p.nodes);
    free(p.sbuf);
    if (st != PN_OK) {
        pn_st_close(f);
        return st;
    }
    *out = f;
    return PN_OK;
}

pn_status pn_st_open(const char *path, pn_st_file **out) { return st_open(path, true, out); }

pn_status pn_st_open_header(const char *path, pn_st_file **out) { return st_open(path, false, out); }

void pn_st_close(pn_st_file *f) {
    if (!f) return;
    free(f->path);
    free(f->entries);
    if (f->map) munmap(f->map, f->map_len);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->strings);
    free(f);
}

const pn_st_entry *pn_st_find(const pn_st_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->entries[i].name, name) == 0) return &f->entries[i];
    return NULL;
}

const char *pn_st_unprefixed(const char *name) { return strncmp(name, "module.", 7) == 0 ? name + 7 : name; }

const pn_st_entry *pn_st_find_unprefixed(const pn_st_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(pn_st_unprefixed(f->entries[i].name), name) == 0) return &f->entries[i];
    return NULL;
}

bool pn_st_has_shape(const pn_st_entry *e, int ndim, const int64_t *shape) {
    if (e->ndim != ndim) return false;
    for (int i = 0; i < ndim; i++)
        if (e->shape[i] != shape[i]) return false;
    return true;
}

const char *pn_shape_text(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

const char *pn_st_meta(const pn_st_file *f, const char *key) {
    for (int i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

int64_t pn_st_numel(const pn_st_entry *e) {
    int64_t n = 1;
    for (int d = 0; d < e->ndim; d++) n *= e->shape[d]; /* validated against overflow at open */
    return n;
}

const void *pn_st_raw(const pn_st_file *f, const pn_st_entry *e) { return f->data + e->begin; }

/* True on a little-endian host, where F32 and I64 data can be copied as they are. */
static bool st_host_le(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else { /* subnormal: normalise the mantissa */
            int ex = 1;
            while (!(m & 0x400u)) m <<= 1, ex--;
            bits = sign | (uint32_t)(ex + 112) << 23 | (m & 0x3ffu) << 13;
        }
    } else if (e == 31) {
        bits = sign | 0x7f800000u | m << 13; /* inf, or nan keeping its payload */
    } else {
        bits = sign | (e + 112) << 23 | m << 13;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

static pn_status st_check_count(const pn_st_file *f, const pn_st_entry *e, int64_t count) {
    char q[200];
    if (!f->data && e->end > e->begin)
        return pn_error(PN_ERR_ARG, "%s: opened for its header only; tensor %s has no data here", f->path,
                        st_quote(e->name, q, sizeof q));
    if (count != pn_st_numel(e))
        return pn_error(PN_ERR_FORMAT, "%s: tensor %s: has %lld elements, caller expected %lld", f->path,
                        st_quote(e->name, q, sizeof q), (long long)pn_st_numel(e), (long long)count);
    return PN_OK;
}

pn_status pn_st_read_f32(const pn_st_file *f, const pn_st_entry *e, float *dst, int64_t count) {
    char q[200];
    if (e->dtype != PN_ST_F32 && e->dtype != PN_ST_F16 && e->dtype != PN_ST_BF16 && e->dtype != PN_ST_F64)
        return pn_error(PN_ERR_FORMAT, "%s: tensor %s: dtype %s, expected F32, F16, BF16 or F64", f->path,
                        st_quote(e->name, q, sizeof q), e->dtype_name);
    PN_TRY(st_check_count(f, e, count));
    const uint8_t *b = f->data + e->begin;
    if (e->dtype == PN_ST_F32 && st_host_le()) {
        memcpy(dst, b, (size_t)count * 4);
        st_release_pages(f, e);
        return PN_OK;
    }
    for (int64_t i = 0; i < count; i++) {
        switch (e->dtype) {
        case PN_ST_F32: {
            const uint8_t *s = b + 4 * i;
            uint32_t u = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
            memcpy(&dst[i], &u, 4);
            break;
        }
        case PN_ST_F16: dst[i] = st_f16_to_f32((uint16_t)(b[2 * i] | b[2 * i + 1] << 8)); break;
        case PN_ST_BF16: {
            uint32_t u = ((uint32_t)b[2 * i] | (uint32_t)b[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &u, 4);
            break;
        }
        default: { /* F64 */
            uint64_t u = st_le64(b + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            dst[i] = (float)d;
            break;
        }
        }
    }
    return PN_OK;
}

pn_status pn_st_read_i64(const pn_st_file *f, const pn_st_entry *e, int64_t *dst, int64_t count) {
    char q[200];
    if (e->dtype != PN_ST_I64 && e->dtype != PN_ST_I32)
        return pn_error(PN_ERR_FORMAT, "%s: tensor %s: dtype %s, expected I64 or I32", f->path,
                        st_quote(e->name, q, sizeof q), e->dtype_name);
    PN_TRY(st_check_count(f, e, count));
    const uint8_t *b = f->data + e->begin;
    if (e->dtype == PN_ST_I64 && st_host_le()) {
        memcpy(dst, b, (size_t)count * 8);
        return PN_OK;
    }
    for (int64_t i = 0; i < count; i++) {
        if (e->dtype == PN_ST_I64) {
            dst[i] = (int64_t)st_le64(b + 8 * i);
        } else {
            const uint8_t *s = b + 4 * i;
            uint32_t u = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
            dst[i] = (int32_t)u;
        }
    }
    return PN_OK;
}

/* ------------------------------------------------------------------------------------------------ */
/* Writer                                                                                           */
/* ------------------------------------------------------------------------------------------------ */

typedef struct st_wtensor {
    char *name;
    pn_st_dtype dtype;
    int ndim;
    int64_t shape[PN_ST_MAX_DIMS];
    size_t bytes;
    const void *data;
    pn_st_fill_fn fill; /* data comes from fill(ctx, scratch) at save time when set */
    void *ctx;
} st_wtensor;

struct pn_st_writer {
    st_wtensor *t;
    int count, cap;
    char **keys, **values;
    int meta_count, meta_cap;
};

/* A growable byte string for the header. */
typedef struct st_buf {
    char *b;
    size_t len, cap;
    bool oom;
} st_buf;

static void sb_put(st_buf *s, const char *x, size_t k) {
    if (s->oom) return;
    if (s->len + k + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->len + k + 1) cap *= 2;
        char *nb = realloc(s->b, cap);
        if (!nb) {
            s->oom = true;
            return;
        }
        s->b = nb;
        s->cap = cap;
    }
    memcpy(s->b + s->len, x, k);
    s->len += k;
    s->b[s->len] = '\0';
}

static void sb_str(st_buf *s, const char *x) { sb_put(s, x, strlen(x)); }

/* Appends `x` as a JSON string literal. */
static void sb_json(st_buf *s, const char *x) {
    sb_put(s, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)x; *c; c++) {
        char esc[8];
        switch (*c) {
        case '"': sb_str(s, "\\\""); break;
        case '\\': sb_str(s, "\\\\"); break;
        case '\n': sb_str(s, "\\n"); break;
        case '\r': sb_str(s, "\\r"); break;
        case '\t': sb_str(s, "\\t"); break;
        case '\b': sb_str(s, "\\b"); break;
        case '\f': sb_str(s, "\\f"); break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *c);
                sb_str(s, esc);
            } else {
                sb_put(s, (const char *)c, 1);
            }
        }
    }
    sb_put(s, "\"", 1);
}

pn_st_writer *pn_st_writer_new(void) {
    pn_st_writer *w = calloc(1, sizeof *w);
    if (!w) pn_error(PN_ERR_NOMEM, "out of memory");
    return w;
}

void pn_st_writer_free(pn_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->count; i++) free(w->t[i].name);
    for (int i = 0; i < w->meta_count; i++) free(w->keys[i]), free(w->values[i]);
    free(w->t);
    free(w->keys);
    free(w->values);
    free(w);
}

static pn_status st_writer_add(pn_st_writer *w, const char *name, pn_st_dtype dtype, int ndim, const int64_t *shape,
                               const void *data, pn_st_fill_fn fill, void *ctx);

pn_status pn_st_writer_add(pn_st_writer *w, const char *name, pn_st_dtype dtype, int ndim, const int64_t *shape,
                           const void *data) {
    return st_writer_add(w, name, dtype, ndim, shape, data, NULL, NULL);
}

pn_status pn_st_writer_add_fill(pn_st_writer *w, const char *name, pn_st_dtype dtype, int ndim, const int64_t *shape,
                                pn_st_fill_fn fill, void *ctx) {
    if (!fill) return pn_error(PN_ERR_ARG, "safetensors writer: tensor %s has no fill function", name);
    return st_writer_add(w, name, dtype, ndim, shape, NULL, fill, ctx);
}

static pn_status st_writer_add(pn_st_writer *w, const char *name, pn_st_dtype dtype, int ndim, const int64_t *shape,
                               const void *data, pn_st_fill_fn fill, void *ctx) {
    char q[200];
    if (dtype != PN_ST_F32 && dtype != PN_ST_I64)
        return pn_error(PN_ERR_ARG, "safetensors writer: tensor %s: only F32 and I64 can be written",
                        st_quote(name, q, sizeof q));
    if (!utf8_valid(name) || strcmp(name, "__metadata__") == 0)
        return pn_error(PN_ERR_ARG, "safetensors writer: tensor name %s is not valid UTF-8 or is reserved",
                        st_quote(name, q, sizeof q));
    if (ndim < 0 || ndim > PN_ST_MAX_DIMS)
        return pn_error(PN_ERR_ARG, "safetensors writer: tensor %s: %d dimensions (0..%d allowed)",
                        st_quote(name, q, sizeof q), ndim, PN_ST_MAX_DIMS);
    for (int i = 0; i < w->count; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return pn_error(PN_ERR_ARG, "safetensors writer: tensor %s added twice", st_quote(name, q, sizeof q));
    st_wtensor t = {.dtype = dtype, .ndim = ndim, .data = data, .fill = fill, .ctx = ctx};
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || !pn_mul_size(numel, (size_t)shape[d], &numel))
            return pn_error(PN_ERR_ARG, "safetensors writer: tensor %s: bad shape", st_quote(name, q, sizeof q));
        t.shape[d] = shape[d];
    }
    if (!pn_mul_size(numel, dtype == PN_ST_F32 ? 4 : 8, &t.bytes) || (t.bytes && !data && !fill))
        return pn_error(PN_ERR_ARG, "safetensors writer: tensor %s: size overflows or data is NULL",
                        st_quote(name, q, sizeof q));
    if (w->count == w->cap) {
        int cap = w->cap ? w->cap * 2 : 16;
        st_wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) return pn_error(PN_ERR_NOMEM, "out of memory");
        w->t = nt;
        w->cap = cap;
    }
    if (!(t.name = pn_strdup(name))) return pn_error(PN_ERR_NOMEM, "out of memory");
    w->t[w->count++] = t;
    return PN_OK;
}

pn_status pn_st_writer_meta(pn_st_writer *w, const char *key, const char *value) {
    char q[200];
    if (!utf8_valid(key) || !utf8_valid(value))
        return pn_error(PN_ERR_ARG, "safetensors writer: metadata %s is not valid UTF-8", st_quote(key, q, sizeof q));
    char *v = pn_strdup(value);
    if (!v) return pn_error(PN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < w->meta_count; i++) {
        if (strcmp(w->keys[i], key) == 0) {
            free(w->values[i]);
            w->values[i] = v;
            return PN_OK;
        }
    }
    if (w->meta_count == w->meta_cap) {
        int cap = w->meta_cap ? w->meta_cap * 2 : 8;
        char **nk = realloc(w->keys, (size_t)cap * sizeof *nk);
        if (nk) w->keys = nk;
        char **nv = nk ? realloc(w->values, (size_t)cap * sizeof *nv) : NULL;
        if (nv) w->values = nv;
        if (!nk || !nv) {
            free(v);
            return pn_error(PN_ERR_NOMEM, "out of memory");
        }
        w->meta_cap = cap;
    }
    char *k = pn_strdup(key);
    if (!k) {
        free(v);
        return pn_error(PN_ERR_NOMEM, "out of memory");
    }
    w->keys[w->meta_count] = k;
    w->values[w->meta_count++] = v;
    return PN_OK;
}

/* The compact JSON header, padded with spaces to a multiple of 8 bytes. */
static bool st_build_header(const pn_st_writer *w, st_buf *s) {
    char num[48];
    size_t off = 0;
    sb_put(s, "{", 1);
    if (w->meta_count) {
        sb_str(s, "\"__metadata__\":{");
        for (int i = 0; i < w->meta_count; i++) {
            if (i) sb_put(s, ",", 1);
            sb_json(s, w->keys[i]);
            sb_put(s, ":", 1);
            sb_json(s, w->values[i]);
        }
        sb_put(s, "}", 1);
    }
    for (int i = 0; i < w->count; i++) {
        const st_wtensor *t = &w->t[i];
        if (i || w->meta_count) sb_put(s, ",", 1);
        sb_json(s, t->name);
        sb_str(s, t->dtype == PN_ST_F32 ? ":{\"dtype\":\"F32\",\"shape\":[" : ":{\"dtype\":\"I64\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t->shape[d]);
            sb_str(s, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + t->bytes);
        sb_str(s, num);
        off += t->bytes;
    }
    sb_put(s, "}", 1);
    while (!s->oom && s->len % 8) sb_put(s, " ", 1);
    return !s->oom;
}

/* Writes a tensor's elements little-endian: as they are on a little-endian host (one large write),
 * else byte-swapped through a small buffer. */
static bool st_write_data(FILE *fp, const st_wtensor *t) {
    if (t->bytes == 0) return true;
    if (st_host_le()) return fwrite(t->data, 1, t->bytes, fp) == t->bytes;
    uint8_t buf[8192];
    const uint8_t *src = t->data;
    size_t esize = t->dtype == PN_ST_F32 ? 4 : 8, n = t->bytes / esize, per = sizeof buf / esize;
    for (size_t i = 0; i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        for (size_t j = 0; j < k; j++) {
            uint64_t v = 0;
            if (esize == 4) {
                uint32_t u;
                memcpy(&u, src + (i + j) * 4, 4);
                v = u;
            } else {
                memcpy(&v, src + (i + j) * 8, 8);
            }
            for (size_t b = 0; b < esize; b++) buf[j * esize + b] = (uint8_t)(v >> (8 * b));
        }
        if (fwrite(buf, esize, k, fp) != k) return false;
    }
    return true;
}

pn_status pn_st_writer_save(pn_st_writer *w, const char *path) {
    st_buf s = {0};
    if (!st_build_header(w, &s)) {
        free(s.b);
        return pn_error(PN_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    pn_atomic_file af;
    pn_status st = pn_atomic_open(&af, path);
    if (st != PN_OK) {
        free(s.b);
        return st;
    }
    size_t scratch_bytes = 0;
    for (int i = 0; i < w->count; i++)
        if (w->t[i].fill && w->t[i].bytes > scratch_bytes) scratch_bytes = w->t[i].bytes;
    void *scratch = scratch_bytes ? malloc(scratch_bytes) : NULL;
    uint8_t len8[8];
    for (int b = 0; b < 8; b++) len8[b] = (uint8_t)((uint64_t)s.len >> (8 * b));
    bool ok = (scratch || !scratch_bytes) && fwrite(len8, 1, 8, af.f) == 8 && fwrite(s.b, 1, s.len, af.f) == s.len;
    int saved = errno;
    pn_status fill_st = PN_OK;
    for (int i = 0; ok && i < w->count; i++) {
        st_wtensor t = w->t[i];
        if (t.fill) {
            fill_st = t.bytes ? t.fill(t.ctx, scratch) : PN_OK;
            if (fill_st != PN_OK) break;
            t.data = scratch;
        }
        ok = st_write_data(af.f, &t);
        saved = errno;
    }
    free(s.b);
    free(scratch);
    if (fill_st != PN_OK) {
        pn_atomic_abort(&af);
        return fill_st;
    }
    if (!ok) {
        pn_atomic_abort(&af);
        if (scratch_bytes && !scratch) return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
        return pn_error(PN_ERR_IO, "%s: write failed (%s)", path, strerror(saved));
    }
    return pn_atomic_commit(&af);
}
