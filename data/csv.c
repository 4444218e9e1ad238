/* csv: RFC 4180 parsing with whitespace trimming, for train-rle.csv, folds and submissions. */
#define _POSIX_C_SOURCE 200809L
#include "csv.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char **v;
    int *lines;
    size_t n, cap;
} field_list;

static bool list_push(field_list *l, char *s, int line) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        int *ln = realloc(l->lines, cap * sizeof *ln);
        if (!ln) return false;
        l->lines = ln;
        l->cap = cap;
    }
    l->v[l->n] = s;
    l->lines[l->n] = line;
    l->n++;
    return true;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* Makes room for one more byte plus the terminator; frees *buf and sets the error on failure. */
static bool grow(char **buf, size_t n, size_t *cap, const char *name) {
    if (n + 2 <= *cap) return true;
    char *b = realloc(*buf, *cap * 2);
    if (!b) {
        free(*buf);
        pn_error(PN_ERR_NOMEM, "%s: out of memory", name);
        return false;
    }
    *buf = b;
    *cap *= 2;
    return true;
}

/* Parses one field starting at text[*pos]; stops after its delimiter (',' or end of line).
 * Sets *end_of_row when the field ended the row and *field to a malloc'ed trimmed string (on PN_OK). */
static pn_status parse_field(const char *text, size_t len, size_t *pos, int *line, bool *end_of_row, const char *name,
                             char **field) {
    size_t i = *pos;
    while (i < len && is_blank(text[i])) i++;
    size_t n = 0, cap = 32;
    char *out = malloc(cap);
    if (!out) return pn_error(PN_ERR_NOMEM, "%s: out of memory", name);
    bool quoted = i < len && text[i] == '"';
    if (quoted) {
        int start_line = *line;
        i++;
        for (;;) {
            if (i >= len) {
                free(out);
                return pn_error(PN_ERR_FORMAT, "%s line %d: a quoted field is not closed", name, start_line);
            }
            if (text[i] == '"') {
                if (i + 1 < len && text[i + 1] == '"') {
                    if (!grow(&out, n, &cap, name)) return PN_ERR_NOMEM;
                    out[n++] = '"';
                    i += 2;
                    continue;
                }
                i++;
                break;
            }
            if (text[i] == '\n') (*line)++;
            if (!grow(&out, n, &cap, name)) return PN_ERR_NOMEM;
            out[n++] = text[i++];
        }
        while (i < len && is_blank(text[i])) i++;
        if (i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
            free(out);
            return pn_error(PN_ERR_FORMAT, "%s line %d: unexpected '%c' after a closing quote", name, *line, text[i]);
        }
    } else {
        while (i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
            if (text[i] == '"') {
                free(out);
                return pn_error(PN_ERR_FORMAT, "%s line %d: a quote inside an unquoted field", name, *line);
            }
            if (!grow(&out, n, &cap, name)) return PN_ERR_NOMEM;
            out[n++] = text[i++];
        }
        while (n > 0 && is_blank(out[n - 1])) n--;
    }
    out[n] = 0;
    *end_of_row = true;
    if (i < len && text[i] == ',') {
        *end_of_row = false;
        i++;
    } else if (i < len && text[i] == '\r') {
        i++;
        if (i < len && text[i] == '\n') i++;
        (*line)++;
    } else if (i < len && text[i] == '\n') {
        i++;
        (*line)++;
    }
    *pos = i;
    *field = out;
    return PN_OK;
}

/* True when the line starting at `pos` holds only blanks before its end. */
static bool line_is_blank(const char *text, size_t len, size_t pos, size_t *next) {
    size_t i = pos;
    while (i < len && is_blank(text[i])) i++;
    if (i < len && text[i] != '\n' && text[i] != '\r') return false;
    if (i < len && text[i] == '\r') i++;
    if (i < len && text[i] == '\n') i++;
    *next = i;
    return true;
}

static void free_list(field_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    free(l->lines);
}

pn_status pn_csv_parse(const char *text, size_t len, const char *name, pn_csv *out) {
    memset(out, 0, sizeof *out);
    if (memchr(text, 0, len)) return pn_error(PN_ERR_FORMAT, "%s: contains a NUL byte; not a text CSV file", name);
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) pos = 3;
    field_list l = {0};
    int line = 1, ncols = -1, nrows = 0;
    pn_status st = PN_OK;
    while (pos < len) {
        size_t next;
        if (line_is_blank(text, len, pos, &next)) {
            if (next == pos) break;
            pos = next;
            line++;
            continue;
        }
        int row_line = line, count = 0;
        bool end = false;
        while (!end) {
            char *f = NULL;
            st = parse_field(text, len, &pos, &line, &end, name, &f);
            if (st != PN_OK) goto fail;
            if (!list_push(&l, f, row_line)) {
                free(f);
                st = pn_error(PN_ERR_NOMEM, "%s: out of memory", name);
                goto fail;
            }
            count++;
        }
        if (ncols < 0)
            ncols = count;
        else if (count != ncols) {
            st = pn_error(PN_ERR_FORMAT, "%s line %d: %d fields, expected %d as in the header", name, row_line, count,
                          ncols);
            goto fail;
        } else
            nrows++;
    }
    if (ncols < 0) {
        st = pn_error(PN_ERR_FORMAT, "%s: empty file, expected a header row", name);
        goto fail;
    }
    out->name = pn_strdup(name);
    out->lines = malloc(((size_t)nrows + 1) * sizeof *out->lines);
    if (!out->name || !out->lines) {
        free(out->name);
        free(out->lines);
        st = pn_error(PN_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    for (int r = 0; r < nrows; r++) out->lines[r] = l.lines[(size_t)(r + 1) * (size_t)ncols];
    free(l.lines);
    out->ncols = ncols;
    out->nrows = nrows;
    out->header = l.v;
    out->cells = l.v + ncols;
    return PN_OK;
fail:
    free_list(&l);
    memset(out, 0, sizeof *out);
    return st;
}

pn_status pn_csv_read(const char *path, pn_csv *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return pn_error(PN_ERR_IO, "%s: cannot open for reading", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf && n == cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) free(buf);
            buf = b;
            cap *= 2;
        }
        if (!buf) {
            fclose(f);
            return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return pn_error(PN_ERR_IO, "%s: read error", path);
    }
    pn_status st = pn_csv_parse(buf, n, path, out);
    free(buf);
    return st;
}

int pn_csv_column(const pn_csv *csv, const char *name) {
    for (int c = 0; c < csv->ncols; c++)
        if (strcmp(csv->header[c], name) == 0) return c;
    return -1;
}

const char *pn_csv_get(const pn_csv *csv, int row, int col) {
    PN_ASSERT(row >= 0 && row < csv->nrows && col >= 0 && col < csv->ncols);
    return csv->cells[(size_t)row * (size_t)csv->ncols + (size_t)col];
}

void pn_csv_free(pn_csv *csv) {
    if (csv->header) {
        size_t total = (size_t)(csv->nrows + 1) * (size_t)csv->ncols;
        for (size_t i = 0; i < total; i++) free(csv->header[i]);
        free(csv->header);
    }
    free(csv->lines);
    free(csv->name);
    memset(csv, 0, sizeof *csv);
}

void pn_csv_write_field(FILE *f, const char *field) {
    size_t n = strlen(field);
    bool quote = n > 0 && (is_blank(field[0]) || is_blank(field[n - 1]));
    for (size_t i = 0; i < n && !quote; i++)
        if (field[i] == ',' || field[i] == '"' || field[i] == '\n' || field[i] == '\r') quote = true;
    if (!quote) {
        fputs(field, f);
        return;
    }
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (field[i] == '"') fputc('"', f);
        fputc(field[i], f);
    }
    fputc('"', f);
}
