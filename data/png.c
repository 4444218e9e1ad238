/* png: libpng's classic API for writing (fast zlib level, like cv2.imwrite) and for reading. */
#include "png.h"

#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"

void pn_image_free(pn_image *img) {
    pn_free(img->pixels);
    memset(img, 0, sizeof *img);
}

#ifdef PN_HAVE_PNG
#include <png.h>
#include <setjmp.h>

typedef struct {
    char msg[200];
} write_err;

static void on_write_error(png_structp png, png_const_charp msg) {
    write_err *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_write_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

/* The body of pn_png_write; separated so no local is live across setjmp. */
static pn_status write_rows(FILE *f, const char *path, int width, int height, int channels, int bit_depth,
                            const void *pixels) {
    write_err err = {""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, on_write_error, on_write_warning);
    if (!png) return pn_error(PN_ERR_NOMEM, "%s: cannot create a PNG writer", path);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return pn_error(PN_ERR_NOMEM, "%s: cannot create a PNG writer", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return pn_error(PN_ERR_IO, "%s: PNG write failed: %s", path, err.msg);
    }
    png_init_io(png, f);
    png_set_compression_level(png, 1);
    png_set_filter(png, 0, PNG_FILTER_SUB);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (bit_depth == 16) {
        uint16_t probe = 1;
        if (*(uint8_t *)&probe == 1) png_set_swap(png);
    }
    size_t stride = (size_t)width * (size_t)channels * (size_t)(bit_depth / 8);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)pixels + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return PN_OK;
}

pn_status pn_png_write(const char *path, int width, int height, int channels, int bit_depth, const void *pixels) {
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3) || (bit_depth != 8 && bit_depth != 16))
        return pn_error(PN_ERR_ARG, "%s: cannot write a %dx%d PNG with %d channels at %d bits", path, width, height,
                        channels, bit_depth);
    pn_atomic_file af;
    PN_TRY(pn_atomic_open(&af, path));
    pn_status st = write_rows(af.f, path, width, height, channels, bit_depth, pixels);
    if (st != PN_OK) {
        pn_atomic_abort(&af);
        return st;
    }
    return pn_atomic_commit(&af);
}

/* A memory reader for the classic API. */
typedef struct {
    const uint8_t *data;
    size_t size, pos;
    char msg[200];
} mem_src;

static void on_read(png_structp png, png_bytep dst, png_size_t n) {
    mem_src *s = png_get_io_ptr(png);
    if (n > s->size - s->pos) png_error(png, "file is truncated");
    memcpy(dst, s->data + s->pos, n);
    s->pos += n;
}

static void on_read_error(png_structp png, png_const_charp msg) {
    mem_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Reads any PNG with the classic API: palette -> RGB, low bit depths -> 8, alpha stripped, no gamma change. */
static pn_status read_any(const void *data, size_t size, const char *name, pn_image *out) {
    mem_src src = {data, size, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_read_error, on_write_warning);
    if (!png) return pn_error(PN_ERR_NOMEM, "%s: cannot create a PNG reader", name);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return pn_error(PN_ERR_NOMEM, "%s: cannot create a PNG reader", name);
    }
    void *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        pn_free(px);
        png_destroy_read_struct(&png, &info, NULL);
        return pn_error(PN_ERR_FORMAT, "%s: not a readable PNG: %s", name, src.msg);
    }
    png_set_read_fn(png, &src, on_read);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int ct = png_get_color_type(png, info);
    if (ct & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (ct & PNG_COLOR_MASK_ALPHA || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    int depth = png_get_bit_depth(png, info) == 16 ? 16 : 8;
    uint16_t probe = 1;
    if (depth == 16 && *(uint8_t *)&probe == 1) png_set_swap(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = (png_get_color_type(png, info) & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    size_t stride = (size_t)w * (size_t)channels * (size_t)(depth / 8);
    if (png_get_rowbytes(png, info) != stride || (size_t)h * stride > ((size_t)1 << 31))
        png_error(png, "unexpected row layout or an image too large");
    px = pn_alloc(stride * h);
    if (!px) png_error(png, "out of memory");
    rows = malloc(h * sizeof *rows);
    if (!rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = (png_bytep)px + y * stride;
    png_read_image(png, rows);
    free(rows);
    rows = NULL;
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = (int)w;
    out->height = (int)h;
    out->channels = channels;
    out->bit_depth = depth;
    out->pixels = px;
    return PN_OK;
}

pn_status pn_png_read_memory(const void *data, size_t size, const char *name, pn_image *out) {
    memset(out, 0, sizeof *out);
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0)
        return pn_error(PN_ERR_FORMAT, "%s: not a PNG file (bad signature)", name);
    return read_any(data, size, name, out);
}

pn_status pn_png_read(const char *path, pn_image *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return pn_error(PN_ERR_IO, "%s: cannot open for reading", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (1L << 30)) {
        fclose(f);
        return pn_error(PN_ERR_IO, "%s: cannot determine the file size", path);
    }
    uint8_t *buf = pn_alloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    pn_status st = got == (size_t)n ? pn_png_read_memory(buf, (size_t)n, path, out)
                                    : pn_error(PN_ERR_IO, "%s: read error", path);
    pn_free(buf);
    return st;
}

#else

pn_status pn_png_write(const char *path, int width, int height, int channels, int bit_depth, const void *pixels) {
    (void)width, (void)height, (void)channels, (void)bit_depth, (void)pixels;
    return pn_error(PN_ERR_UNSUPPORTED, "%s: cannot write PNG: built without libpng", path);
}

pn_status pn_png_read_memory(const void *data, size_t size, const char *name, pn_image *out) {
    (void)data, (void)size, (void)out;
    return pn_error(PN_ERR_UNSUPPORTED, "%s: cannot read PNG: built without libpng", name);
}

pn_status pn_png_read(const char *path, pn_image *out) {
    (void)out;
    return pn_error(PN_ERR_UNSUPPORTED, "%s: cannot read PNG: built without libpng", path);
}

#endif
