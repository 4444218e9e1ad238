/* hostile_files: writes small files built to hurt a reader, for test_cli: a DICOM nested tens of thousands of
 * sequences deep, a PNG and DICOMs claiming huge dimensions, an .npy claiming terabytes, a DICOM in a transfer
 * syntax nobody decodes here. Usage: hostile_files DIR */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef PN_TEST_HAVE_JPEG
#include <jpeglib.h>
#endif

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) exit(1);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}
static void u16le(buf *b, unsigned v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}
static void u32le(buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void u32be(buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static int save(const char *dir, const char *name, const buf *b) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, b->n, f) != b->n || fclose(f) != 0) {
        fprintf(stderr, "hostile_files: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

/* Explicit VR little endian element with a short (2-byte) length. */
static void elem(buf *b, unsigned g, unsigned e, const char *vr, const void *v, size_t n) {
    u16le(b, g), u16le(b, e), put(b, vr, 2), u16le(b, (unsigned)n), put(b, v, n);
}
static void elem_u16(buf *b, unsigned g, unsigned e, unsigned v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    elem(b, g, e, "US", x, 2);
}
static void elem_str(buf *b, unsigned g, unsigned e, const char *vr, const char *s) {
    size_t n = strlen(s);
    char tmp[96];
    snprintf(tmp, sizeof tmp, "%s%s", s, n % 2 ? (vr[0] == 'U' && vr[1] == 'I' ? "\0" : " ") : "");
    elem(b, g, e, vr, tmp, n + n % 2);
}

/* Preamble, "DICM" and a file meta group naming `syntax`. */
static void dicom_head(buf *b, const char *syntax) {
    uint8_t zeros[128] = {0};
    put(b, zeros, 128), put(b, "DICM", 4);
    buf meta = {0};
    uint8_t version[2] = {0, 1};
    u16le(&meta, 2), u16le(&meta, 1), put(&meta, "OB", 2), u16le(&meta, 0), u32le(&meta, 2), put(&meta, version, 2);
    elem_str(&meta, 2, 0x10, "UI", syntax);
    uint8_t len[4] = {(uint8_t)meta.n, (uint8_t)(meta.n >> 8), 0, 0};
    elem(b, 2, 0, "UL", len, 4);
    put(b, meta.p, meta.n);
    free(meta.p);
}

/* The image module of a grey image. */
static void image_tags(buf *b, unsigned rows, unsigned cols, unsigned bits) {
    elem_u16(b, 0x28, 0x02, 1);
    elem_str(b, 0x28, 0x04, "CS", "MONOCHROME2");
    elem_u16(b, 0x28, 0x10, rows);
    elem_u16(b, 0x28, 0x11, cols);
    elem_u16(b, 0x28, 0x100, bits);
    elem_u16(b, 0x28, 0x101, bits);
    elem_u16(b, 0x28, 0x102, bits - 1);
    elem_u16(b, 0x28, 0x103, 0);
}

/* Pixel data as an encapsulated sequence: an empty offset table and one fragment. */
static void encapsulated(buf *b, const uint8_t *frag, size_t n) {
    u16le(b, 0x7fe0), u16le(b, 0x10), put(b, "OB", 2), u16le(b, 0), u32le(b, 0xffffffffu);
    u16le(b, 0xfffe), u16le(b, 0xe000), u32le(b, 0);
    u16le(b, 0xfffe), u16le(b, 0xe000), u32le(b, (uint32_t)(n + n % 2)), put(b, frag, n);
    if (n % 2) put(b, "", 1);
    u16le(b, 0xfffe), u16le(b, 0xe0dd), u32le(b, 0);
}

/* `depth` sequences, each in an item of the one before, all of undefined length, then closed. */
static int deep_dicom(const char *dir, int depth) {
    buf b = {0};
    dicom_head(&b, "1.2.840.10008.1.2.1");
    for (int i = 0; i < depth; i++) {
        u16le(&b, 0x0008), u16le(&b, 0x1115), put(&b, "SQ", 2), u16le(&b, 0), u32le(&b, 0xffffffffu);
        u16le(&b, 0xfffe), u16le(&b, 0xe000), u32le(&b, 0xffffffffu);
    }
    for (int i = 0; i < depth; i++) {
        u16le(&b, 0xfffe), u16le(&b, 0xe00d), u32le(&b, 0);
        u16le(&b, 0xfffe), u16le(&b, 0xe0dd), u32le(&b, 0);
    }
    image_tags(&b, 8, 8, 8);
    uint8_t px[64] = {0};
    u16le(&b, 0x7fe0), u16le(&b, 0x10), put(&b, "OB", 2), u16le(&b, 0), u32le(&b, 64), put(&b, px, 64);
    int rc = save(dir, "deep.dcm", &b);
    free(b.p);
    return rc;
}

/* Native 16-bit pixels claimed at 16000 x 16000 (512 MB), with one row of data. */
static int huge_native_dicom(const char *dir) {
    buf b = {0};
    dicom_head(&b, "1.2.840.10008.1.2.1");
    image_tags(&b, 16000, 16000, 16);
    uint8_t *row = calloc(32000, 1);
    u16le(&b, 0x7fe0), u16le(&b, 0x10), put(&b, "OW", 2), u16le(&b, 0), u32le(&b, 32000), put(&b, row, 32000);
    free(row);
    int rc = save(dir, "huge_native.dcm", &b);
    free(b.p);
    return rc;
}

/* A DICOM in a transfer syntax this build cannot decode. */
static int syntax_dicom(const char *dir, const char *name, const char *syntax) {
    buf b = {0};
    dicom_head(&b, syntax);
    image_tags(&b, 8, 8, 8);
    uint8_t frag[16] = {0xff, 0x4f, 0xff, 0x51};
    encapsulated(&b, frag, sizeof frag);
    int rc = save(dir, name, &b);
    free(b.p);
    return rc;
}

#ifdef PN_TEST_HAVE_JPEG
/* A real 16 x 16 grey JPEG whose frame header is then patched to claim `side` x `side`. */
static void tiny_jpeg(buf *out, unsigned side) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &mem, &size);
    c.image_width = 16, c.image_height = 16, c.input_components = 1, c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_start_compress(&c, TRUE);
    uint8_t row[16] = {0};
    while (c.next_scanline < 16) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    for (unsigned long i = 0; i + 9 < size; i++)
        if (mem[i] == 0xff && mem[i + 1] == 0xc0) { /* SOF0: length(2) precision(1) height(2) width(2) */
            mem[i + 5] = (uint8_t)(side >> 8), mem[i + 6] = (uint8_t)side;
            mem[i + 7] = (uint8_t)(side >> 8), mem[i + 8] = (uint8_t)side;
            break;
        }
    put(out, mem, size);
    free(mem);
}

/* JPEG baseline pixel data in a 16 x 16 image whose JPEG frame claims 20000 x 20000 (400 MB decoded). */
static int huge_jpeg_dicom(const char *dir) {
    buf jpeg = {0}, b = {0};
    tiny_jpeg(&jpeg, 20000);
    dicom_head(&b, "1.2.840.10008.1.2.4.50");
    image_tags(&b, 16, 16, 8);
    encapsulated(&b, jpeg.p, jpeg.n);
    int rc = save(dir, "huge_jpeg.dcm", &b);
    free(jpeg.p), free(b.p);
    return rc;
}
#endif

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void png_chunk(buf *b, const char *type, const uint8_t *data, size_t n) {
    u32be(b, (uint32_t)n);
    size_t at = b->n;
    put(b, type, 4);
    if (n) put(b, data, n);
    u32be(b, crc32_of(b->p + at, n + 4));
}

/* A valid PNG header claiming 20000 x 20000 grey pixels (400 MB decoded) over an empty zlib stream. */
static int huge_png(const char *dir) {
    buf b = {0};
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    put(&b, sig, 8);
    uint8_t ihdr[13] = {0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20, 8, 0, 0, 0, 0};
    png_chunk(&b, "IHDR", ihdr, 13);
    static const uint8_t idat[] = {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01};
    png_chunk(&b, "IDAT", idat, sizeof idat);
    png_chunk(&b, "IEND", NULL, 0);
    int rc = save(dir, "huge.png", &b);
    free(b.p);
    return rc;
}

/* A float32 .npy of shape (1000, 3, 32768, 32768), 12.9 TB, that holds 64 bytes of data. */
static int terabyte_npy(const char *dir) {
    buf b = {0};
    char header[128];
    int n =
        snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 3, 32768, 32768), }");
    int total = 10 + n + 1, padded = (total + 63) / 64 * 64;
    put(&b, "\x93NUMPY\x01\x00", 8);
    u16le(&b, (unsigned)(padded - 10));
    put(&b, header, (size_t)n);
    for (int i = total; i < padded; i++) put(&b, " ", 1);
    put(&b, "\n", 1);
    uint8_t data[64] = {0};
    put(&b, data, 64);
    int rc = save(dir, "terabyte.npy", &b);
    free(b.p);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: hostile_files DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int rc = deep_dicom(dir, 50000) | huge_native_dicom(dir) | huge_png(dir) | terabyte_npy(dir);
    rc |= syntax_dicom(dir, "rle.dcm", "1.2.840.10008.1.2.5");
    rc |= syntax_dicom(dir, "j2k.dcm", "1.2.840.10008.1.2.4.90");
    rc |= syntax_dicom(dir, "htj2k.dcm", "1.2.840.10008.1.2.4.201");
#ifdef PN_TEST_HAVE_JPEG
    rc |= huge_jpeg_dicom(dir);
#endif
    return rc;
}
