/* png: PNG writing (libdeflate when found, else libpng's fastest zlib setting, as cv2.imwrite) and libpng reading. */
#define _POSIX_C_SOURCE 200809L
#include "png.h"

#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <unistd.h>

#include "data/image_limit.h"

void pn_image_free(pn_image *img) {
    pn_free(img->pixels);
    memset(img, 0, sizeof *img);
}

pn_status pn_png_read_grey(const char *path, uint8_t **px, int *w, int *h) {
    pn_image im;
    PN_TRY(pn_png_read(path, &im));
    *w = im.width, *h = im.height;
    if (im.channels == 1 && im.bit_depth == 8) { /* the common case: take the buffer as it is */
        *px = im.pixels;
        return PN_OK;
    }
    size_t n = (size_t)im.width * im.height;
    uint8_t *out = pn_alloc(n ? n : 1);
    if (!out) {
        pn_image_free(&im);
        return pn_error(PN_ERR_NOMEM, "%s: no memory for a %dx%d image", path, im.width, im.height);
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = i * im.channels;
        out[i] =
            im.bit_depth == 16 ? (uint8_t)(((const uint16_t *)im.pixels)[j] >> 8) : ((const uint8_t *)im.pixels)[j];
    }
    *px = out;
    pn_image_free(&im);
    return PN_OK;
}

#ifdef PN_HAVE_PNG
#include <png.h>
#include <setjmp.h>

static void on_write_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

#ifndef PN_HAVE_LIBDEFLATE
typedef struct {
    char msg[200];
} write_err;

static void on_write_error(png_structp png, png_const_charp msg) {
    write_err *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
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
    /* What cv2.imwrite does by default: zlib level 1 with the Z_RLE strategy (fast, files a bit larger). */
    png_set_compression_level(png, 1);
    png_set_compression_strategy(png, 3 /* Z_RLE */);
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

#endif

#ifdef PN_HAVE_LIBDEFLATE
#include <libdeflate.h>

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Appends one chunk (length, type, data, CRC of type+data) at out[*at]. */
static void put_chunk(uint8_t *out, size_t *at, const char *type, const uint8_t *data, size_t n) {
    put_u32(out + *at, (uint32_t)n);
    memcpy(out + *at + 4, type, 4);
    if (n) memmove(out + *at + 8, data, n);
    uint32_t crc = libdeflate_crc32(0, out + *at + 4, n + 4);
    put_u32(out + *at + 8 + n, crc);
    *at += n + 12;
}

/* The same PNG as libpng would write (SUB filter on every row), compressed with libdeflate level 1,
 * which is about twice as fast as zlib's fastest setting and compresses a little better. */
static pn_status encode_png(const char *path, int width, int height, int channels, int bit_depth, const void *pixels,
                            uint8_t **png, size_t *png_size) {
    size_t bpp = (size_t)channels * (size_t)(bit_depth / 8), stride = (size_t)width * bpp,
           raw = (stride + 1) * (size_t)height;
    uint8_t *filtered = malloc(raw);
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(1);
    size_t bound = c ? libdeflate_zlib_compress_bound(c, raw) : 0;
    uint8_t *out = malloc(bound + 64);
    if (!filtered || !c || !out) {
        free(filtered), free(out);
        if (c) libdeflate_free_compressor(c);
        return pn_error(PN_ERR_NOMEM, "%s: out of memory encoding the PNG", path);
    }
    const uint8_t *src = pixels;
    bool swap = false;
    if (bit_depth == 16) {
        uint16_t probe = 1;
        swap = *(uint8_t *)&probe == 1; /* PNG samples are big-endian */
    }
    for (int y = 0; y < height; y++) {
        const uint8_t *row = src + (size_t)y * stride;
        uint8_t *f = filtered + (size_t)y * (stride + 1) + 1;
        f[-1] = 1; /* SUB: each byte minus the byte one pixel to the left */
        if (swap) {
            for (size_t i = 0; i < stride; i++) f[i] = (uint8_t)(row[i ^ 1] - (i >= bpp ? row[(i - bpp) ^ 1] : 0));
        } else {
            memcpy(f, row, bpp < stride ? bpp : stride);
            for (size_t i = bpp; i < stride; i++) f[i] = (uint8_t)(row[i] - row[i - bpp]); /* vectorizes */
        }
    }
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(out, signature, 8);
    size_t at = 8;
    uint8_t ihdr[13];
    put_u32(ihdr, (uint32_t)width);
    put_u32(ihdr + 4, (uint32_t)height);
    ihdr[8] = (uint8_t)bit_depth, ihdr[9] = channels == 1 ? 0 : 2, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0;
    put_chunk(out, &at, "IHDR", ihdr, 13);
    /* IDAT: compress straight into place after its length and type. */
    size_t z = libdeflate_zlib_compress(c, filtered, raw, out + at + 8, bound);
    libdeflate_free_compressor(c);
    free(filtered);
    if (z == 0) {
        free(out);
        return pn_error(PN_ERR_IO, "%s: PNG compression failed", path);
    }
    put_chunk(out, &at, "IDAT", out + at + 8, z);
    put_chunk(out, &at, "IEND", NULL, 0);
    *png = out;
    *png_size = at;
    return PN_OK;
}
#endif

pn_status pn_png_write(const char *path, int width, int height, int channels, int bit_depth, const void *pixels) {
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3) || (bit_depth != 8 && bit_depth != 16))
        return pn_error(PN_ERR_ARG, "%s: cannot write a %dx%d PNG with %d channels at %d bits", path, width, height,
                        channels, bit_depth);
    /* A temporary name per thread, then rename: readers never see half a file. No fsync: data sets are
     * thousands of files, and fsync would be most of the time. */
    size_t n = strlen(path) + 64;
    char *tmp = malloc(n);
    if (!tmp) return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
    static _Atomic unsigned long counter;
    snprintf(tmp, n, "%s.tmp.%ld.%lu", path, (long)getpid(), ++counter);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        pn_status st = pn_error(PN_ERR_IO, "%s: cannot write there (%s)", path, strerror(errno));
        free(tmp);
        return st;
    }
#ifdef PN_HAVE_LIBDEFLATE
    uint8_t *png = NULL;
    size_t png_size = 0;
    pn_status st = encode_png(path, width, height, channels, bit_depth, pixels, &png, &png_size);
    if (st == PN_OK && fwrite(png, 1, png_size, f) != png_size)
        st = pn_error(PN_ERR_IO, "%s: write failed (%s)", path, strerror(errno));
    free(png);
#else
    pn_status st = write_rows(f, path, width, height, channels, bit_depth, pixels);
#endif
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        if (st == PN_OK) st = pn_error(PN_ERR_IO, "%s: write failed (%s)", path, strerror(errno));
    }
    if (st == PN_OK && rename(tmp, path) != 0)
        st = pn_error(PN_ERR_IO, "%s: cannot rename into place (%s)", path, strerror(errno));
    if (st != PN_OK) remove(tmp);
    free(tmp);
    return st;
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
    /* Ancillary chunks (text, ICC profiles) stay small even when compressed ones would inflate to much more. */
    png_set_chunk_malloc_max(png, 8u << 20);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int ct = png_get_color_type(png, info);
    /* The decoded size, from the header, before any pixel is decoded: grey or RGB after the transforms below. */
    if (pn_image_check_size(name, w, h, (ct & PNG_COLOR_MASK_COLOR) ? 3 : 1, png_get_bit_depth(png, info) == 16 ? 2 : 1,
                            1) != PN_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return PN_ERR_UNSUPPORTED;
    }
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
    if (n < 0) {
        fclose(f);
        return pn_error(PN_ERR_IO, "%s: cannot determine the file size", path);
    }
    /* A PNG is never much larger than its decoded pixels: a file above the image limit (plus room for ancillary
     * chunks) cannot hold an image within it. */
    if ((size_t)n > pn_image_limit_bytes() + (16u << 20)) {
        fclose(f);
        return pn_error(PN_ERR_UNSUPPORTED,
                        "%s: a %.0f MB PNG file is above the image limit of %.0f MB (--max-image-mb)", path,
                        (double)n / 1e6, (double)pn_image_limit_bytes() / 1e6);
    }
    uint8_t *buf = pn_alloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return pn_error(PN_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    pn_status st =
        got == (size_t)n ? pn_png_read_memory(buf, (size_t)n, path, out) : pn_error(PN_ERR_IO, "%s: read error", path);
    pn_free(buf);
    return st;
}

#else

pn_status pn_png_write(const char *path, int width, int height, int channels, int bit_depth, const void *pixels) {
    (void)width, (void)height, (void)channels, (void)bit_depth, (void)pixels;
    return pn_error(PN_ERR_UNSUPPORTED, "%s: cannot write PNG: built without libpng", path);
}

pn_status pn_png_read_memory(const void *data, size_t size, const char *name, pn_image *out) {
    (void)data, (void)size;
    memset(out, 0, sizeof *out);
    return pn_error(PN_ERR_UNSUPPORTED, "%s: cannot read PNG: built without libpng", name);
}

pn_status pn_png_read(const char *path, pn_image *out) {
    memset(out, 0, sizeof *out);
    return pn_error(PN_ERR_UNSUPPORTED, "%s: cannot read PNG: built without libpng", path);
}

#endif
