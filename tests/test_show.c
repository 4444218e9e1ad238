/* test_show: `show` overlays keep the grey image outside the masks, outline and tint inside, and lay out
 * --grid tiles like torchvision's make_grid. Arg 1: a scratch folder. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/png.h"
#include "data/rle.h"
#include "tests/check.h"
#include "tools/commands.h"

#define W 40
#define H 30

static int run(int argc, char **argv) { return pn_cmd_show(argc, argv); }

int main(int argc, char **argv) {
    const char *scratch = argc > 1 ? argv[1] : "scratch_show";
    char dir[1024], img[1200], mask[1200], out[1200], train[1200], mdir[1200];
    snprintf(dir, sizeof dir, "%s", scratch);
    mkdir(dir, 0777);
    snprintf(img, sizeof img, "%s/img.png", dir);
    snprintf(mask, sizeof mask, "%s/mask.png", dir);
    snprintf(out, sizeof out, "%s/overlay.png", dir);
    uint8_t g[W * H], m[W * H];
    for (int i = 0; i < W * H; i++) {
        int x = i % W, y = i / W;
        g[i] = (uint8_t)(50 + x + y);
        m[i] = x >= 10 && x < 20 && y >= 5 && y < 15 ? 255 : 0;
    }
    if (pn_png_write(img, W, H, 1, 8, g) != PN_OK || pn_png_write(mask, W, H, 1, 8, m) != PN_OK) {
        SKIP("cannot write PNGs: %s", pn_last_error());
        return check_report("test_show");
    }
    unlink(out); /* a run before this one left them: show refuses to overwrite without --force */
    char *a1[] = {"show", "--image", img, "--mask", mask, "--out", out, NULL};
    CHECK(run(7, a1) == 0);
    pn_image o;
    CHECK(pn_png_read(out, &o) == PN_OK && o.width == W && o.height == H && o.channels == 3);
    const uint8_t *p = o.pixels;
    int grey_ok = 0, edge_green = 0, tinted = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *q = p + 3 * (y * W + x);
            uint8_t v = g[y * W + x];
            bool in = m[y * W + x] != 0, edge = in && (x == 10 || x == 19 || y == 5 || y == 14);
            if (!in)
                grey_ok += q[0] == v && q[1] == v && q[2] == v;
            else if (edge)
                edge_green += q[1] > 200 && q[0] < 30;
            else
                tinted += q[1] > v && q[0] < v;
        }
    CHECK(grey_ok == W * H - 100);
    CHECK(edge_green == 36);
    CHECK(tinted == 64);
    /* The same ground truth from a train-rle.csv row (SIIM quirks: a space after the comma). */
    char csv[1200], out2[1200], *rle = NULL;
    snprintf(csv, sizeof csv, "%s/train-rle.csv", dir);
    snprintf(out2, sizeof out2, "%s/overlay_rle.png", dir);
    CHECK(pn_rle_encode(m, W, H, &rle) == PN_OK);
    FILE *f = fopen(csv, "w");
    if (f && rle) fprintf(f, "ImageId, EncodedPixels\nother, -1\nimg, %s\n", rle), fclose(f);
    free(rle);
    unlink(out2);
    char *a4[] = {"show", "--image", img, "--rle", csv, "--out", out2, NULL};
    CHECK(run(7, a4) == 0);
    pn_image o2;
    CHECK(pn_png_read(out2, &o2) == PN_OK && o2.width == W && memcmp(o2.pixels, o.pixels, (size_t)W * H * 3) == 0);
    pn_image_free(&o2);
    pn_image_free(&o);
    /* An existing --out needs --force; an input is never written over, --force or not. */
    char *again[] = {"show", "--image", img, "--mask", mask, "--out", out, NULL};
    CHECK(run(7, again) == 1);
    char *onto_image[] = {"show", "--image", img, "--mask", mask, "--out", img, "--force", NULL};
    CHECK(run(8, onto_image) == 1);
    char *onto_mask[] = {"show", "--image", img, "--mask", mask, "--out", mask, NULL};
    CHECK(run(7, onto_mask) == 1);
    pn_image im;
    CHECK(pn_png_read(img, &im) == PN_OK && im.channels == 1 && memcmp(im.pixels, g, sizeof g) == 0);
    pn_image_free(&im);
    /* Prediction only: a red outline. */
    char *a2[] = {"show", "--image", img, "--pred", mask, "--threshold", "0.9", "--out", out, "--force", NULL};
    CHECK(run(10, a2) == 0);
    CHECK(pn_png_read(out, &o) == PN_OK);
    p = o.pixels;
    CHECK(p[3 * (5 * W + 10)] > 200 && p[3 * (5 * W + 10) + 1] < 60);
    pn_image_free(&o);

    /* --grid: 5 tiles of 16 px, 2 per row, 2 px padding of 0: (2*18+2) x (3*18+2). */
    snprintf(train, sizeof train, "%s/set/train", dir);
    snprintf(mdir, sizeof mdir, "%s/set/mask", dir);
    char setdir[1200];
    snprintf(setdir, sizeof setdir, "%s/set", dir);
    mkdir(setdir, 0777), mkdir(train, 0777), mkdir(mdir, 0777);
    for (int k = 0; k < 6; k++) {
        char path[1300];
        snprintf(path, sizeof path, "%s/s%d.png", train, k);
        CHECK(pn_png_write(path, W, H, 1, 8, g) == PN_OK);
        snprintf(path, sizeof path, "%s/s%d.png", mdir, k);
        CHECK(pn_png_write(path, W, H, 1, 8, m) == PN_OK);
    }
    char *a3[] = {"show", "--grid", "5", "--data", setdir, "--aug",   "none", "--size",
                  "16",   "--nrow", "2", "--out",  out,    "--force", NULL};
    CHECK(run(14, a3) == 0);
    CHECK(pn_png_read(out, &o) == PN_OK && o.width == 38 && o.height == 56);
    p = o.pixels;
    int pad_nonzero = 0;
    for (int x = 0; x < o.width; x++) pad_nonzero += p[3 * x] + p[3 * (18 * o.width + x)];
    CHECK(pad_nonzero == 0);
    /* The last row holds one tile; the empty slot stays black. */
    CHECK(p[3 * (45 * o.width + 28)] == 0);
    CHECK(p[3 * (46 * o.width + 10)] >= 50);
    pn_image_free(&o);
    char *bad[] = {"show", "--grid", "3", "--data", setdir, "--aug", "spin:1", "--out", out, NULL};
    CHECK(run(9, bad) == 2);
    char *bad2[] = {"show", "--image", "missing.png", "--out", out, "--force", NULL};
    CHECK(run(6, bad2) == 1);
    char *bad3[] = {"show", "--image", img, "--threshold", "1.5", "--out", out, NULL};
    CHECK(run(7, bad3) == 2);
    return check_report("test_show");
}
