/* test_csv: data/csv on SIIM's header quirks, RFC 4180 quoting, \r\n, trimming, and clear errors. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "data/csv.h"
#include "tests/check.h"

static pn_status parse(const char *text, pn_csv *c) { return pn_csv_parse(text, strlen(text), "t.csv", c); }

static void check_siim_header(void) {
    pn_csv c;
    /* The real file: "ImageId, EncodedPixels", values with a leading space, \r\n or \n. */
    const char *t = "ImageId, EncodedPixels\r\n1.2.3, -1\r\n1.2.4, 5 10 3 2\r\n1.2.4,  7 1\n\n";
    CHECK(parse(t, &c) == PN_OK);
    CHECK(c.ncols == 2 && c.nrows == 3);
    CHECK(pn_csv_column(&c, "EncodedPixels") == 1 && pn_csv_column(&c, "ImageId") == 0);
    CHECK(strcmp(pn_csv_get(&c, 0, 1), "-1") == 0);
    CHECK(strcmp(pn_csv_get(&c, 1, 1), "5 10 3 2") == 0);
    CHECK(strcmp(pn_csv_get(&c, 2, 1), "7 1") == 0);
    CHECK(c.lines[0] == 2 && c.lines[2] == 4);
    pn_csv_free(&c);
}

static void check_quotes(void) {
    pn_csv c;
    const char *t =
        "\xEF\xBB\xBF a , \"b\"\n\"x, y\",\"he said \"\"hi\"\"\"\n  \" padded \" ,\"two\nlines\"\nlast,\"\"";
    CHECK(parse(t, &c) == PN_OK);
    CHECK(c.ncols == 2 && c.nrows == 3);
    CHECK(strcmp(c.header[0], "a") == 0 && strcmp(c.header[1], "b") == 0);
    CHECK(strcmp(pn_csv_get(&c, 0, 0), "x, y") == 0);
    CHECK(strcmp(pn_csv_get(&c, 0, 1), "he said \"hi\"") == 0);
    CHECK(strcmp(pn_csv_get(&c, 1, 0), " padded ") == 0);
    CHECK(strcmp(pn_csv_get(&c, 1, 1), "two\nlines") == 0);
    CHECK(strcmp(pn_csv_get(&c, 2, 1), "") == 0);
    CHECK(c.lines[2] == 5);
    pn_csv_free(&c);
}

static void check_errors(void) {
    pn_csv c;
    CHECK(parse("a,b\n1,2,3\n", &c) == PN_ERR_FORMAT);
    CHECK(strstr(pn_last_error(), "t.csv line 2") != NULL);
    CHECK(parse("a,b\n\"1,2\n", &c) == PN_ERR_FORMAT);
    CHECK(strstr(pn_last_error(), "not closed") != NULL);
    CHECK(parse("a,b\n1\"x,2\n", &c) == PN_ERR_FORMAT);
    CHECK(parse("a,b\n\"1\"x,2\n", &c) == PN_ERR_FORMAT);
    CHECK(parse("", &c) == PN_ERR_FORMAT);
    CHECK(pn_csv_parse("a\0b\n", 4, "t.csv", &c) == PN_ERR_FORMAT);
    CHECK(pn_csv_read("no-such.csv", &c) == PN_ERR_IO && strstr(pn_last_error(), "no-such.csv") != NULL);
}

static void check_writer(void) {
    const char *fields[] = {"plain", "a,b", "say \"x\"", " edge", "multi\nline", ""};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fputs("h1,h2,h3,h4,h5,h6\n", f);
    for (int i = 0; i < 6; i++) {
        if (i) fputc(',', f);
        pn_csv_write_field(f, fields[i]);
    }
    fputc('\n', f);
    fclose(f);
    pn_csv c;
    CHECK(pn_csv_parse(buf, len, "mem", &c) == PN_OK);
    CHECK(c.nrows == 1);
    for (int i = 0; i < 6 && c.nrows == 1; i++) CHECK_MSG(strcmp(pn_csv_get(&c, 0, i), fields[i]) == 0, "field %d", i);
    pn_csv_free(&c);
    free(buf);
}

int main(void) {
    check_siim_header();
    check_quotes();
    check_errors();
    check_writer();
    return check_report("test_csv");
}
