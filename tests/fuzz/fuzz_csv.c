/* fuzz_csv: data/csv's RFC 4180 reader on any bytes (train-rle.csv, folds.csv, submissions come through it); every
 * parsed row must have the header's field count, and a written field must read back the same. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pn_csv csv;
    if (pn_csv_parse((const char *)data, size, "fuzz.csv", &csv) != PN_OK) return 0;
    for (int c = 0; c < csv.ncols; c++)
        if (pn_csv_column(&csv, csv.header[c]) < 0) abort();
    for (int r = 0; r < csv.nrows; r++)
        for (int c = 0; c < csv.ncols; c++) {
            const char *field = pn_csv_get(&csv, r, c);
            if (!field) abort();
            /* round trip of one field through the writer */
            char *text = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&text, &len);
            if (!f) continue;
            fputs("h\n", f);
            pn_csv_write_field(f, field);
            fputc('\n', f);
            fclose(f);
            pn_csv back;
            if (pn_csv_parse(text, len, "fuzz-written.csv", &back) == PN_OK) {
                if (back.nrows == 1 && strcmp(pn_csv_get(&back, 0, 0), field) != 0) abort();
                pn_csv_free(&back);
            }
            free(text);
        }
    pn_csv_free(&csv);
    return 0;
}
