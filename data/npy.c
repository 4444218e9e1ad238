/* npy: NumPy .npy files (format 1.0/2.0/3.0) of little-endian float32 in C order, read and written. */
#define _POSIX_C_SOURCE 200809L
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/atomic_file.h"

#define NPY_MAX_HEADER 65536

/* Finds the value text after 'key': in a Python dict literal; NULL if absent. */
static const char *dict_value(const char *header, const char *key) {
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s'", key);
    const char *at = strstr(header, quoted);
    if (!at) return NULL;
    at += strlen(quoted);
    while (*at == ' ') at++;
    if (*at != ':') return NULL;
    at++;
    while (*at == ' ') at++;
    return at;
}

static pn_status parse_shape(const char *path, const char *v, int min_rank, int max_rank, pn_npy *out) {
    if (!v || *v != '(') return pn_error(PN_ERR_FORMAT, "%s: .npy header has no shape tuple", path);
    v++;
    out->ndim = 0;
    for (;;) {
        while (*v == ' ' || *v == ',') v++;
        if (*v == ')') break;
        if (*v < '0' || *v > '9') return pn_error(PN_ERR_FORMAT, "%s: .npy shape is malformed", path);
        if (out->ndim == 8) return pn_error(PN_ERR_FORMAT, "%s: .npy rank above 8", path);
        char *end;
        long long d = strtoll(v, &end, 10);
        if (d < 0 || d > ((int64_t)1 << 40))
            return pn_error(PN_ERR_FORMAT, "%s: .npy dimension %lld out of range", path, d);
        out->shape[out->ndim++] = d;
        v = end;
    }
    if (out->ndim < min_rank || out->ndim > max_rank) {
        if (min_rank == max_rank)
            return pn_error(PN_ERR_FORMAT, "%s: expected a %d-d array, got rank %d", path, min_rank, out->ndim);
        return pn_error(PN_ERR_FORMAT, "%s: expected rank %d..%d, got rank %d", path, min_rank, max_rank, out->ndim);
    }
    return PN_OK;
}

static pn_status parse_header(const char *path, const char *header, int min_rank, int max_rank, pn_npy *out) {
    const char *descr = dict_value(header, "descr");
    if (!descr) return pn_error(PN_ERR_FORMAT, "%s: .npy header has no 'descr'", path);
    if (strncmp(descr, "'<f4'", 5) != 0) {
        char got[16] = "";
        sscanf(descr, "'%15[^']", got);
        return pn_error(PN_ERR_FORMAT, "%s: dtype '%s' is not supported; save the array as float32 ('<f4')", path, got);
    }
    const char *fortran = dict_value(header, "fortran_order");
    if (!fortran) return pn_error(PN_ERR_FORMAT, "%s: .npy header has no 'fortran_order'", path);
    if (strncmp(fortran, "False", 5) != 0)
        return pn_error(PN_ERR_FORMAT, "%s: Fortran-order arrays are not supported; save with np.ascontiguousarray",
                        path);
    return parse_shape(path, dict_value(header, "shape"), min_rank, max_rank, out);
}

static pn_status read_header(FILE *f, const char *path, char **header_out) {
    unsigned char pre[10];
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return pn_error(PN_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
    uint32_t len;
    if (pre[6] == 1) {
        if (fread(pre + 8, 1, 2, f) != 2) return pn_error(PN_ERR_FORMAT, "%s: truncated .npy header", path);
        len = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        unsigned char l4[4];
        if (fread(l4, 1, 4, f) != 4) return pn_error(PN_ERR_FORMAT, "%s: truncated .npy header", path);
        len = (uint32_t)l4[0] | (uint32_t)l4[1] << 8 | (uint32_t)l4[2] << 16 | (uint32_t)l4[3] << 24;
    } else {
        return pn_error(PN_ERR_FORMAT, "%s: .npy format version %d is not supported", path, pre[6]);
    }
    if (len > NPY_MAX_HEADER) return pn_error(PN_ERR_FORMAT, "%s: .npy header of %u bytes is too long", path, len);
    char *header = malloc(len + 1);
    if (!header) return pn_error(PN_ERR_NOMEM, "out of memory");
    if (fread(header, 1, len, f) != len) {
        free(header);
        return pn_error(PN_ERR_FORMAT, "%s: truncated .npy header", path);
    }
    header[len] = 0;
    *header_out = header;
    return PN_OK;
}

pn_status pn_npy_read(const char *path, int min_rank, int max_rank, pn_npy *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return pn_error(PN_ERR_IO, "%s: cannot open", path);
    char *header = NULL;
    pn_status st = read_header(f, path, &header);
    if (st == PN_OK) st = parse_header(path, header, min_rank, max_rank, out);
    free(header);
    size_t count = 1;
    for (int i = 0; st == PN_OK && i < out->ndim; i++)
        if (!pn_mul_size(count, (size_t)out->shape[i], &count))
            st = pn_error(PN_ERR_FORMAT, "%s: shape overflows", path);
    /* The header's claim against the bytes the file holds, before any allocation. */
    struct stat sb;
    long at = st == PN_OK ? ftell(f) : -1;
    if (st == PN_OK && (at < 0 || fstat(fileno(f), &sb) != 0))
        st = pn_error(PN_ERR_IO, "%s: cannot determine the file size", path);
    if (st == PN_OK &&
        (count > (size_t)1 << 60 || (uint64_t)sb.st_size - (uint64_t)at < (uint64_t)count * sizeof(float))) {
        double claimed = (double)count * sizeof(float);
        st = pn_error(PN_ERR_FORMAT, "%s: the header claims %.4g bytes of float32 data but the file holds %lld", path,
                      claimed, (long long)((uint64_t)sb.st_size - (uint64_t)at));
    }
    if (st == PN_OK) {
        out->data = pn_alloc(count * sizeof(float));
        if (!out->data) st = PN_ERR_NOMEM;
    }
    if (st == PN_OK && fread(out->data, sizeof(float), count, f) != count)
        st = pn_error(PN_ERR_FORMAT, "%s: truncated .npy data (expected %zu float32 values)", path, count);
    fclose(f);
    if (st != PN_OK) {
        pn_free(out->data);
        out->data = NULL;
    }
    return st;
}

pn_status pn_npy_write(const char *path, int ndim, const int64_t *shape, const float *data) {
    char dict[256];
    size_t used = (size_t)snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        used +=
            (size_t)snprintf(dict + used, sizeof dict - used, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
        count *= (size_t)shape[i];
    }
    used += (size_t)snprintf(dict + used, sizeof dict - used, "), }");
    /* Pad with spaces so that magic(6) + version(2) + len(2) + header ends at a multiple of 64 with '\n'. */
    size_t total = 10 + used + 1;
    size_t padded = (total + 63) / 64 * 64;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    uint16_t hlen = (uint16_t)(padded - 10);
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    pn_atomic_file af;
    PN_TRY(pn_atomic_open(&af, path));
    fwrite(pre, 1, 10, af.f);
    fwrite(dict, 1, used, af.f);
    for (size_t i = total; i < padded; i++) fputc(' ', af.f);
    fputc('\n', af.f);
    fwrite(data, sizeof(float), count, af.f);
    return pn_atomic_commit(&af);
}
