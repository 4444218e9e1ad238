/* test_png: data/png reads Pillow-written PNGs (tests/ref/png), round-trips 8/16-bit grey and RGB, and is read back by
 * stb_image. */
#define _XOPEN_SOURCE 700
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/png.h"
#include "tests/check.h"

#ifdef PN_TEST_HAVE_STB
#include <stb/stb_image.h>
#endif

#define W 13
#define H 9

static int px8(const pn_image *im, int x, int y, int c) {
    return ((const uint8_t *)im->pixels)[((size_t)y * im->width + x) * im->channels + c];
}

static void check_pillow_files(void) {
    pn_image im;
    CHECK(pn_png_read("ref/png/grey8.png", &im) == PN_OK);
    CHECK(im.width == W && im.height == H && im.channels == 1 && im.bit_depth == 8);
    int bad = 0;
    for (int y = 0; y < H && im.pixels; y++)
        for (int x = 0; x < W; x++) bad += px8(&im, x, y, 0) != (x * 7 + y * 13) % 256;
    CHECK_MSG(bad == 0, "grey8: %d pixels differ", bad);
    pn_image_free(&im);

    CHECK(pn_png_read("ref/png/rgb8.png", &im) == PN_OK);
    CHECK(im.channels == 3 && im.bit_depth == 8);
    bad = 0;
    for (int y = 0; y < H && im.pixels; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) bad += px8(&im, x, y, c) != (x * 7 + y * 13 + c * 50) % 256;
    CHECK_MSG(bad == 0, "rgb8: %d values differ", bad);
    pn_image_free(&im);

    CHECK(pn_png_read("ref/png/grey16.png", &im) == PN_OK);
    CHECK(im.channels == 1 && im.bit_depth == 16);
    bad = 0;
    for (int y = 0; y < H && im.pixels; y++)
        for (int x = 0; x < W; x++) bad += ((uint16_t *)im.pixels)[y * W + x] != (x * 1031 + y * 4099) % 65536;
    CHECK_MSG(bad == 0, "grey16: %d pixels differ", bad);
    pn_image_free(&im);

    static const int pal[4][3] = {{0, 0, 0}, {255, 0, 0}, {10, 200, 30}, {250, 250, 250}};
    CHECK(pn_png_read("ref/png/palette.png", &im) == PN_OK);
    CHECK(im.channels == 3 && im.bit_depth == 8);
    bad = 0;
    for (int y = 0; y < H && im.pixels; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) bad += px8(&im, x, y, c) != pal[(x + y) % 4][c];
    CHECK_MSG(bad == 0, "palette: %d values differ", bad);
    pn_image_free(&im);

    CHECK(pn_png_read("ref/png/greya.png", &im) == PN_OK);
    CHECK(im.channels == 1 && im.bit_depth == 8);
    bad = 0;
    for (int y = 0; y < H && im.pixels; y++)
        for (int x = 0; x < W; x++) bad += px8(&im, x, y, 0) != (x * 7 + y * 13) % 256;
    CHECK_MSG(bad == 0, "grey+alpha: %d pixels differ after dropping alpha", bad);
    pn_image_free(&im);
}

static void tmp_path(char *out, size_t n, const char *name) {
    const char *dir = getenv("TMPDIR");
    snprintf(out, n, "%s/pn_test_png_%d_%s", dir && *dir ? dir : P_tmpdir, (int)getpid(), name);
}

static void check_round_trip(int channels, int depth) {
    int w = 37, h = 23;
    size_t n = (size_t)w * h * channels;
    void *src = malloc(n * (depth / 8));
    for (size_t i = 0; i < n; i++) {
        if (depth == 8)
            ((uint8_t *)src)[i] = (uint8_t)(i * 31 + 7);
        else
            ((uint16_t *)src)[i] = (uint16_t)(i * 2654435761u >> 7);
    }
    char path[512];
    tmp_path(path, sizeof path, "rt.png");
    CHECK(pn_png_write(path, w, h, channels, depth, src) == PN_OK);
    pn_image im;
    CHECK(pn_png_read(path, &im) == PN_OK);
    CHECK(im.width == w && im.height == h && im.channels == channels && im.bit_depth == depth);
    CHECK_MSG(im.pixels && memcmp(im.pixels, src, n * (depth / 8)) == 0, "round trip %d ch %d bit", channels, depth);
    pn_image_free(&im);
#ifdef PN_TEST_HAVE_STB
    /* An independent decoder reads our file. */
    int sw, sh, sc;
    if (depth == 8) {
        unsigned char *s = stbi_load(path, &sw, &sh, &sc, 0);
        CHECK(s && sw == w && sh == h && sc == channels && memcmp(s, src, n) == 0);
        stbi_image_free(s);
    } else {
        unsigned short *s = stbi_load_16(path, &sw, &sh, &sc, 0);
        CHECK(s && sw == w && sh == h && sc == channels && memcmp(s, src, n * 2) == 0);
        stbi_image_free(s);
    }
#else
    SKIP("%d-channel %d-bit file not cross-read: built without stb_image (libstb-dev)", channels, depth);
#endif
    remove(path);
    free(src);
}

static void check_errors(void) {
    pn_image im;
    CHECK(pn_png_read("no-such.png", &im) == PN_ERR_IO && strstr(pn_last_error(), "no-such.png"));
    CHECK(pn_png_read_memory("not a png at all", 16, "x.png", &im) == PN_ERR_FORMAT &&
          strstr(pn_last_error(), "x.png"));
    uint8_t px[4] = {0};
    CHECK(pn_png_write("x.png", 2, 2, 2, 8, px) == PN_ERR_ARG);
    CHECK(pn_png_write("no-such-dir/x.png", 2, 2, 1, 8, px) != PN_OK);
}

int main(void) {
#ifndef PN_TEST_HAVE_PNG
    pn_image im;
    CHECK(pn_png_read("ref/png/grey8.png", &im) == PN_ERR_UNSUPPORTED);
    SKIP("built without libpng");
    return check_report("test_png");
#endif
    check_pillow_files();
    for (int c = 1; c <= 3; c += 2) {
        check_round_trip(c, 8);
        check_round_trip(c, 16);
    }
    check_errors();
    return check_report("test_png");
}
