/* csv: a small RFC 4180 reader (quotes, "" escapes, \r\n or \n, trimmed headers and fields) and field writer. */
#ifndef PN_CSV_H
#define PN_CSV_H

#include <stdio.h>

#include "core/base.h"

/* A parsed table: a header row and `nrows` rows of exactly `ncols` fields. Free with pn_csv_free. */
typedef struct pn_csv {
    int ncols, nrows;
    char **header; /* ncols names, trimmed */
    char **cells;  /* nrows*ncols fields, row-major, trimmed (quoted content kept as written) */
    int *lines;    /* the 1-based line number where each row starts, for messages */
    char *name;    /* the file name used in messages */
} pn_csv;

/* Reads and parses a CSV file. Blank lines are skipped; a UTF-8 BOM is ignored. Fails with a message
 * naming the file and line on an unterminated quote, a stray quote, a NUL byte or a row whose field
 * count differs from the header's. */
pn_status pn_csv_read(const char *path, pn_csv *out);
/* Parses `len` bytes of CSV text; `name` is used in messages. */
pn_status pn_csv_parse(const char *text, size_t len, const char *name, pn_csv *out);
/* The index of the column named `name` (after trimming), or -1. */
int pn_csv_column(const pn_csv *csv, const char *name);
/* The field at (row, col). */
const char *pn_csv_get(const pn_csv *csv, int row, int col);
void pn_csv_free(pn_csv *csv);

/* Writes one field, quoting it when it holds a comma, a quote, a newline or edge whitespace. */
void pn_csv_write_field(FILE *f, const char *field);

#endif
