/* hostile_files: writes small files built to hurt a reader, for test_cli: a DICOM nested tens of thousands of
 * sequences deep, a PNG and DICOMs claiming huge dimensions, an .npy claiming terabytes, a DICOM in a transfer
 * syntax nobody decodes here; PyTorch checkpoints claiming a 4 TB tensor, nesting 100,000 deep, a pickle whose
 * REDUCEs would copy 13 GB, a zip bomb record. Usage: hostile_files DIR */
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

/* ---- PyTorch checkpoints (data/pickle, data/pth) ---- */

static void pk_op(buf *b, uint8_t op) { put(b, &op, 1); }
static void pk_str(buf *b, const char *s) { /* BINUNICODE */
    pk_op(b, 'X'), u32le(b, (uint32_t)strlen(s)), put(b, s, strlen(s));
}
static void pk_global(buf *b, const char *module, const char *name) {
    pk_op(b, 'c'), put(b, module, strlen(module)), put(b, "\n", 1), put(b, name, strlen(name)), put(b, "\n", 1);
}
static void pk_int(buf *b, int64_t v) { /* LONG1 of 8 bytes: any int64 */
    pk_op(b, 0x8a), pk_op(b, 8);
    for (int i = 0; i < 8; i++) pk_op(b, (uint8_t)((uint64_t)v >> (8 * i)));
}
/* _rebuild_tensor_v2(storage('0', FloatStorage, numel), 0, size, stride, False, OrderedDict()) of 2 dimensions. */
static void pk_tensor(buf *b, int64_t numel, int64_t rows, int64_t cols) {
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    pk_op(b, '(');
    pk_op(b, '('), pk_str(b, "storage"), pk_global(b, "torch", "FloatStorage"), pk_str(b, "0"), pk_str(b, "cpu");
    pk_int(b, numel), pk_op(b, 't'), pk_op(b, 'Q');
    pk_int(b, 0);
    pk_int(b, rows), pk_int(b, cols), pk_op(b, 0x86);
    pk_int(b, cols), pk_int(b, 1), pk_op(b, 0x86);
    pk_op(b, 0x89), pk_global(b, "collections", "OrderedDict"), pk_op(b, ')'), pk_op(b, 'R');
    pk_op(b, 't'), pk_op(b, 'R');
}
/* The legacy format's three header pickles: magic number, protocol 1001, system info {}. */
static void legacy_head(buf *b) {
    static const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                    0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
    static const uint8_t proto[] = {0x80, 0x02, 'M', 0xe9, 0x03, '.'}, info[] = {0x80, 0x02, '}', '.'};
    put(b, magic, sizeof magic), put(b, proto, sizeof proto), put(b, info, sizeof info);
}

/* A legacy .pth whose one tensor, 2^20 x 2^20 floats (4 TB), views a storage the file says holds 2^40 floats and
 * then gives none of: refused by the size check before anything is allocated. */
static int huge_pth(const char *dir) {
    buf b = {0};
    legacy_head(&b);
    int64_t side = (int64_t)1 << 20;
    pk_op(&b, 0x80), pk_op(&b, 2), pk_op(&b, '}'), pk_str(&b, "w"), pk_tensor(&b, side * side, side, side);
    pk_op(&b, 's'), pk_op(&b, '.');
    pk_op(&b, 0x80), pk_op(&b, 2), pk_op(&b, ']'), pk_str(&b, "0"), pk_op(&b, 'a'), pk_op(&b, '.'); /* storage keys */
    uint8_t numel[8] = {0, 0, 0, 0, 0, 1, 0, 0};                                                    /* 2^40 */
    put(&b, numel, 8);
    int rc = save(dir, "huge.pth", &b);
    free(b.p);
    return rc;
}

/* A legacy .pth whose object pickle nests lists 100,000 deep (200 KB): the interpreter keeps no recursion, the walk
 * over the result stops at 32 levels. */
static int deep_pth(const char *dir) {
    buf b = {0};
    legacy_head(&b);
    pk_op(&b, 0x80), pk_op(&b, 2);
    for (int i = 0; i < 100000; i++) pk_op(&b, ']');
    for (int i = 1; i < 100000; i++) pk_op(&b, 'a');
    pk_op(&b, '.');
    int rc = save(dir, "deep.pth", &b);
    free(b.p);
    return rc;
}

/* A legacy .pth of 1.3 MB whose pickle asks for 13 GB: a memoized 64 KB string that 200,000 REDUCEs of
 * _codecs.encode each copy (5 bytes of pickle per copy). */
static int amplifying_pth(const char *dir) {
    buf b = {0};
    legacy_head(&b);
    pk_op(&b, 0x80), pk_op(&b, 2), pk_op(&b, ']');
    pk_global(&b, "_codecs", "encode"), pk_op(&b, 'q'), pk_op(&b, 0); /* memo 0: the function */
    pk_op(&b, '0');
    char *big = malloc(65536);
    if (!big) return 1;
    memset(big, 'a', 65535), big[65535] = 0;
    pk_str(&b, big), pk_op(&b, 0x85), pk_op(&b, 'q'), pk_op(&b, 1), pk_op(&b, '0'); /* memo 1: (big,) */
    free(big);
    for (int i = 0; i < 200000; i++)
        pk_op(&b, 'h'), pk_op(&b, 0), pk_op(&b, 'h'), pk_op(&b, 1), pk_op(&b, 'R'), pk_op(&b, 'a');
    pk_op(&b, '.');
    int rc = save(dir, "amplifying.pth", &b);
    free(b.p);
    return rc;
}

/* Raw deflate (fixed Huffman) of n zero bytes: a literal, then matches of 258 at distance 1, 13 bits each. */
typedef struct bits {
    buf *b;
    uint32_t acc;
    int n;
} bits;
static void bits_put(bits *w, uint32_t v, int n) { /* LSB first */
    for (int i = 0; i < n; i++) {
        w->acc |= ((v >> i) & 1u) << w->n;
        if (++w->n == 8) pk_op(w->b, (uint8_t)w->acc), w->acc = 0, w->n = 0;
    }
}
static void bits_code(bits *w, uint32_t code, int n) { /* a Huffman code: MSB first */
    for (int i = n - 1; i >= 0; i--) bits_put(w, (code >> i) & 1u, 1);
}
static void deflate_zeros(buf *out, size_t n) {
    bits w = {out, 0, 0};
    bits_put(&w, 1, 1), bits_put(&w, 1, 2); /* BFINAL, fixed Huffman */
    bits_code(&w, 0x30, 8);                 /* literal 0 */
    size_t left = n - 1;
    for (; left >= 258; left -= 258) bits_code(&w, 0xc5, 8), bits_code(&w, 0, 5); /* length 258, distance 1 */
    for (; left > 0; left--) bits_code(&w, 0x30, 8);
    bits_code(&w, 0, 7); /* end of block */
    if (w.n) pk_op(out, (uint8_t)w.acc);
}
static uint32_t crc32_of(const uint8_t *p, size_t n);
/* A zip holding `count` records (name, method 0 stored / 8 deflate, its bytes as stored, size and crc inflated). */
typedef struct zip_rec {
    const char *name;
    int method;
    const buf *data;
    uint32_t size, crc;
} zip_rec;
static void zip_write(buf *b, const zip_rec *r, int count) {
    uint32_t offsets[8];
    for (int i = 0; i < count; i++) {
        offsets[i] = (uint32_t)b->n;
        u32le(b, 0x04034b50), u16le(b, 20), u16le(b, 0), u16le(b, (unsigned)r[i].method), u16le(b, 0), u16le(b, 0);
        u32le(b, r[i].crc), u32le(b, (uint32_t)r[i].data->n), u32le(b, r[i].size);
        u16le(b, (unsigned)strlen(r[i].name)), u16le(b, 0), put(b, r[i].name, strlen(r[i].name));
        put(b, r[i].data->p, r[i].data->n);
    }
    uint32_t cd = (uint32_t)b->n;
    for (int i = 0; i < count; i++) {
        u32le(b, 0x02014b50), u16le(b, 20), u16le(b, 20), u16le(b, 0), u16le(b, (unsigned)r[i].method);
        u16le(b, 0), u16le(b, 0), u32le(b, r[i].crc), u32le(b, (uint32_t)r[i].data->n), u32le(b, r[i].size);
        u16le(b, (unsigned)strlen(r[i].name)), u16le(b, 0), u16le(b, 0), u16le(b, 0), u16le(b, 0), u32le(b, 0);
        u32le(b, offsets[i]), put(b, r[i].name, strlen(r[i].name));
    }
    uint32_t cd_size = (uint32_t)b->n - cd;
    u32le(b, 0x06054b50), u16le(b, 0), u16le(b, 0), u16le(b, (unsigned)count), u16le(b, (unsigned)count);
    u32le(b, cd_size), u32le(b, cd), u16le(b, 0);
}

/* A zip-format .pth of 640 KB whose storage record, honestly deflated, inflates to 100 MB of zeros: a real zip bomb
 * within deflate's ratio, for a storage of the size the pickle declares; refused before inflating. */
static int zip_bomb_pth(const char *dir) {
    const size_t numel = 25u << 20, bytes = numel * 4;
    buf pkl = {0}, data = {0}, out = {0};
    pk_op(&pkl, 0x80), pk_op(&pkl, 2), pk_op(&pkl, '}'), pk_str(&pkl, "w");
    pk_tensor(&pkl, (int64_t)numel, 1, (int64_t)numel);
    pk_op(&pkl, 's'), pk_op(&pkl, '.');
    deflate_zeros(&data, bytes);
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t t = i;
        for (int k = 0; k < 8; k++) t = t & 1 ? 0xedb88320u ^ (t >> 1) : t >> 1;
        table[i] = t;
    }
    uint32_t c = 0xffffffffu; /* crc32 of the inflated zeros (a zero byte leaves c ^ byte = c) */
    for (size_t i = 0; i < bytes; i++) c = table[c & 255] ^ (c >> 8);
    zip_rec r[2] = {{"archive/data.pkl", 0, &pkl, (uint32_t)pkl.n, crc32_of(pkl.p, pkl.n)},
                    {"archive/data/0", 8, &data, (uint32_t)bytes, c ^ 0xffffffffu}};
    zip_write(&out, r, 2);
    int rc = save(dir, "zip_bomb.pth", &out);
    free(pkl.p), free(data.p), free(out.p);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: hostile_files DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int rc = deep_dicom(dir, 50000) | huge_native_dicom(dir) | huge_png(dir) | terabyte_npy(dir);
    rc |= huge_pth(dir) | deep_pth(dir) | amplifying_pth(dir) | zip_bomb_pth(dir);
    rc |= syntax_dicom(dir, "rle.dcm", "1.2.840.10008.1.2.5");
    rc |= syntax_dicom(dir, "j2k.dcm", "1.2.840.10008.1.2.4.90");
    rc |= syntax_dicom(dir, "htj2k.dcm", "1.2.840.10008.1.2.4.201");
#ifdef PN_TEST_HAVE_JPEG
    rc |= huge_jpeg_dicom(dir);
#endif
    return rc;
}
