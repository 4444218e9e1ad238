/* cmd_show: `pneumoseg show`: overlay PNGs of an image with its masks, and grids of augmented samples. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "data/csv.h"
#include "data/dicom.h"
#include "data/png.h"
#include "data/image_limit.h"
#include "data/rle.h"
#include "tools/checks.h"
#include "tools/cli.h"

/* An 8-bit grey raster. */
typedef struct grey {
    int w, h;
    uint8_t *px; /* pn_alloc'ed */
} grey;

static bool ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

/* Reads a PNG (first channel, 16-bit -> high byte) or a DICOM (rendered to 8 bits). */
static pn_status read_grey(const char *path, grey *g) {
    if (ends_with(path, ".dcm") || ends_with(path, ".DCM")) {
        pn_dicom_image im;
        pn_dicom_info info;
        PN_TRY(pn_dicom_read(path, 8, &im, &info));
        g->w = im.width, g->h = im.height, g->px = im.pixels;
        return PN_OK;
    }
    pn_image im;
    PN_TRY(pn_png_read(path, &im));
    size_t n = (size_t)im.width * im.height;
    g->w = im.width, g->h = im.height, g->px = pn_alloc(n ? n : 1);
    if (!g->px) {
        pn_image_free(&im);
        return pn_error(PN_ERR_NOMEM, "%s: no memory", path);
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = i * im.channels;
        g->px[i] = im.bit_depth == 16 ? (uint8_t)(((uint16_t *)im.pixels)[j] >> 8) : ((uint8_t *)im.pixels)[j];
    }
    pn_image_free(&im);
    return PN_OK;
}

/* Resizes g to w x h in place (nearest for masks, bilinear for images). */
static pn_status fit(grey *g, int w, int h, bool nearest) {
    if (g->w == w && g->h == h) return PN_OK;
    uint8_t *out = pn_alloc((size_t)w * h);
    if (!out) return pn_error(PN_ERR_NOMEM, "show: no memory");
    pn_aug_resize_u8(g->px, g->w, g->h, out, w, h, nearest);
    pn_free(g->px);
    g->px = out, g->w = w, g->h = h;
    return PN_OK;
}

static bool on(const uint8_t *m, int w, int h, int x, int y, int thr) {
    return x >= 0 && y >= 0 && x < w && y < h && m[(size_t)y * w + x] >= thr;
}

/* Tints the mask area of an RGB tile by `alpha` towards `rgb` and draws its outline (thickness t). */
static void overlay(uint8_t *rgb, int stride, const uint8_t *m, int w, int h, int thr, const uint8_t col[3],
                    float alpha, int t) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (!on(m, w, h, x, y, thr)) continue;
            bool edge = false;
            for (int d = 1; d <= t && !edge; d++)
                edge = !on(m, w, h, x - d, y, thr) || !on(m, w, h, x + d, y, thr) || !on(m, w, h, x, y - d, thr) ||
                       !on(m, w, h, x, y + d, thr);
            uint8_t *p = rgb + (size_t)y * stride + 3 * (size_t)x;
            for (int c = 0; c < 3; c++) p[c] = edge ? col[c] : (uint8_t)(p[c] * (1 - alpha) + col[c] * alpha + 0.5f);
        }
}

static const uint8_t GT_COLOUR[3] = {0, 230, 64}, PRED_COLOUR[3] = {255, 40, 40};

static void grey_to_rgb(const uint8_t *g, int w, int h, uint8_t *rgb, int stride) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + (size_t)y * stride + 3 * (size_t)x;
            p[0] = p[1] = p[2] = g[(size_t)y * w + x];
        }
}

/* The image id of a path: its file name without the extension. */
static void image_id(const char *path, char *id, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(id, cap, "%s", base);
    char *dot = strrchr(id, '.');
    if (dot && (!strcmp(dot, ".dcm") || !strcmp(dot, ".png") || !strcmp(dot, ".DCM"))) *dot = 0;
}

/* The union of the EncodedPixels rows of `id` in a train-rle.csv, as a w x h mask (none: empty). */
static pn_status mask_from_rle(const char *csv_path, const char *id, int w, int h, grey *m) {
    pn_csv csv;
    PN_TRY(pn_csv_read(csv_path, &csv));
    int ci = pn_csv_column(&csv, "ImageId"), ce = pn_csv_column(&csv, "EncodedPixels");
    pn_status st = ci < 0 || ce < 0
                       ? pn_error(PN_ERR_FORMAT, "%s: expected the columns ImageId and EncodedPixels", csv_path)
                       : PN_OK;
    m->w = w, m->h = h, m->px = st == PN_OK ? pn_alloc((size_t)w * h) : NULL;
    if (st == PN_OK && !m->px) st = pn_error(PN_ERR_NOMEM, "show: no memory");
    int rows = 0;
    for (int r = 0; st == PN_OK && r < csv.nrows; r++) {
        if (strcmp(pn_csv_get(&csv, r, ci), id)) continue;
        char what[600];
        snprintf(what, sizeof what, "%s line %d", csv_path, csv.lines[r]);
        st = pn_rle_decode(pn_csv_get(&csv, r, ce), w, h, PN_RLE_AUTO, m->px, what);
        rows++;
    }
    if (st == PN_OK && rows == 0) st = pn_error(PN_ERR_ARG, "%s: no row for ImageId %s", csv_path, id);
    pn_csv_free(&csv);
    return st;
}

static int show_overlay(const char *image, const char *mask, const char *rle, const char *pred, double threshold,
                        const char *out, bool force) {
    grey img = {0}, gt = {0}, pr = {0};
    const pn_named_path inputs[] = {{"--image", image}, {"--mask", mask}, {"--rle", rle}, {"--pred", pred}};
    pn_status st = pn_check_out_file("--out", out, force, inputs, 4);
    if (st == PN_OK) st = read_grey(image, &img);
    if (st == PN_OK && mask) st = read_grey(mask, &gt);
    if (st == PN_OK && rle && !mask) {
        char id[512];
        image_id(image, id, sizeof id);
        st = mask_from_rle(rle, id, img.w, img.h, &gt);
    }
    if (st == PN_OK && gt.px) st = fit(&gt, img.w, img.h, true);
    if (st == PN_OK && pred) st = read_grey(pred, &pr);
    if (st == PN_OK && pr.px) st = fit(&pr, img.w, img.h, false);
    uint8_t *rgb = st == PN_OK ? pn_alloc((size_t)img.w * img.h * 3) : NULL;
    if (st == PN_OK && !rgb) st = pn_error(PN_ERR_NOMEM, "show: no memory");
    if (st == PN_OK) {
        int t = img.w >= 512 ? 2 : 1, thr = (int)(threshold * 255 + 0.5);
        grey_to_rgb(img.px, img.w, img.h, rgb, 3 * img.w);
        if (gt.px) overlay(rgb, 3 * img.w, gt.px, img.w, img.h, 128, GT_COLOUR, 0.3f, t);
        if (pr.px) overlay(rgb, 3 * img.w, pr.px, img.w, img.h, thr < 1 ? 1 : thr, PRED_COLOUR, 0.25f, t);
        st = pn_png_write(out, img.w, img.h, 3, 8, rgb);
    }
    pn_free(rgb), pn_free(img.px), pn_free(gt.px), pn_free(pr.px);
    if (st != PN_OK) return pn_cli_exit("show", st);
    printf("show: wrote %s (%dx%d; image%s%s)\n", out, img.w, img.h, mask || rle ? ", ground truth green" : "",
           pred ? ", prediction red" : "");
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Lists the sorted *.png names of dir (malloc'ed strings). */
static int list_pngs(const char *dir, char ***out) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!ends_with(e->d_name, ".png")) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **g = realloc(v, sizeof(char *) * cap);
            if (!g) break;
            v = g;
        }
        size_t len = strlen(e->d_name) + 1;
        v[n] = malloc(len);
        if (!v[n]) break;
        memcpy(v[n++], e->d_name, len);
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof(char *), cmp_str);
    *out = v;
    return n;
}

/* torchvision.utils.make_grid layout: nrow tiles per row, `pad` pixels of pad value 0 around each. */
static int show_grid(const char *data, int count, const char *aug_spec, const char *border_s, int size, int seed,
                     int epoch, int nrow, const char *out, bool force) {
    pn_border border = !strcmp(border_s, "reflect101") ? PN_BORDER_REFLECT101 : PN_BORDER_CONSTANT;
    if (strcmp(border_s, "reflect101") && strcmp(border_s, "constant")) {
        fprintf(stderr, "pneumoseg show: --border '%s' (expected constant or reflect101)\n", border_s);
        return 2;
    }
    pn_aug_pipeline *aug;
    if (pn_aug_parse(aug_spec, border, &aug) != PN_OK) return pn_cli_exit("show", PN_ERR_USAGE);
    const pn_named_path inputs[] = {{"--data", data}};
    pn_status checked = pn_check_out_file("--out", out, force, inputs, 1);
    if (checked != PN_OK) {
        pn_aug_free(aug);
        return pn_cli_exit("show", checked);
    }
    char img_dir[4200], mask_dir[4200];
    snprintf(img_dir, sizeof img_dir, "%s/train", data);
    snprintf(mask_dir, sizeof mask_dir, "%s/mask", data);
    char **names = NULL;
    int n = list_pngs(img_dir, &names);
    if (n <= 0) {
        pn_aug_free(aug);
        fprintf(stderr, "pneumoseg show: %s has no .png images (expected a folder written by prepare)\n", img_dir);
        return 1;
    }
    if (count > n) count = n;
    const int pad = 2;
    int cols = count < nrow ? count : nrow, rows = (count + nrow - 1) / nrow;
    int gw = cols * (size + pad) + pad, gh = rows * (size + pad) + pad;
    /* --grid, --size and --nrow multiply: the picture they ask for is held to the image limit too */
    if (pn_image_check_size("--grid x --size", gw, gh, 3, 1, 1) != PN_OK) {
        for (int i = 0; i < n; i++) free(names[i]);
        free(names);
        pn_aug_free(aug);
        return pn_cli_exit("show", PN_ERR_USAGE);
    }
    uint8_t *grid = pn_alloc((size_t)gw * gh * 3);
    pn_status st = grid ? PN_OK : pn_error(PN_ERR_NOMEM, "show: no memory for a %dx%d grid", gw, gh);
    for (int i = 0; i < count && st == PN_OK; i++) {
        char path[4400];
        grey img = {0}, m = {0};
        snprintf(path, sizeof path, "%s/%s", img_dir, names[i]);
        st = read_grey(path, &img);
        snprintf(path, sizeof path, "%s/%s", mask_dir, names[i]);
        if (st == PN_OK && read_grey(path, &m) != PN_OK) { /* no mask: an empty one */
            m.w = img.w, m.h = img.h, m.px = pn_alloc((size_t)img.w * img.h);
            if (!m.px) st = pn_error(PN_ERR_NOMEM, "show: no memory");
        }
        if (st == PN_OK) st = fit(&m, img.w, img.h, true);
        if (st == PN_OK)
            st = pn_aug_apply(aug, img.px, m.px, img.w, img.h, (uint64_t)seed, (uint32_t)epoch, (uint32_t)i);
        if (st == PN_OK) st = fit(&img, size, size, false);
        if (st == PN_OK) st = fit(&m, size, size, true);
        if (st == PN_OK) {
            int gx = pad + (i % nrow) * (size + pad), gy = pad + (i / nrow) * (size + pad);
            uint8_t *tile = grid + ((size_t)gy * gw + gx) * 3;
            grey_to_rgb(img.px, size, size, tile, 3 * gw);
            overlay(tile, 3 * gw, m.px, size, size, 128, GT_COLOUR, 0.3f, 1);
        }
        pn_free(img.px), pn_free(m.px);
    }
    if (st == PN_OK) st = pn_png_write(out, gw, gh, 3, 8, grid);
    pn_free(grid);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    char desc[512];
    pn_aug_describe(aug, desc, sizeof desc);
    pn_aug_free(aug);
    if (st != PN_OK) return pn_cli_fail("show");
    printf("show: wrote %s: %d samples of %s at %dx%d, augmentation %s (seed %d, epoch %d)\n", out, count, data, size,
           size, desc, seed, epoch);
    return 0;
}

int pn_cmd_show(int argc, char **argv) {
    const char *image = NULL, *mask = NULL, *rle = NULL, *pred = NULL, *out = NULL, *data = NULL, *aug = "blog",
               *border = "constant";
    int grid = 0, size = 256, seed = 0, epoch = 0, nrow = 8;
    double threshold = 0.5, max_image_mb = PN_IMAGE_LIMIT_DEFAULT_MB;
    bool force = false;
    const pn_opt opts[] = {
        {"image", PN_OPT_STR, &image, "FILE", "an image: PNG or DICOM", false},
        {"mask", PN_OPT_STR, &mask, "PNG", "its ground-truth mask (green: tint and outline)", false},
        {"rle", PN_OPT_STR, &rle, "CSV", "instead of --mask: the ground truth from train-rle.csv (id = file name)",
         false},
        {"pred", PN_OPT_STR, &pred, "PNG", "a predicted mask or probability map (red outline)", false},
        {"threshold", PN_OPT_FLOAT, &threshold, "T", "--pred pixels >= T*255 are foreground (default 0.5)", false},
        {"grid", PN_OPT_INT, &grid, "N", "instead: a grid of the first N augmented samples of --data", false},
        {"data", PN_OPT_STR, &data, "DIR", "with --grid: a prepared folder (DIR/train, DIR/mask)", false},
        {"aug", PN_OPT_STR, &aug, "SPEC", "with --grid: none, blog, winner or a spec (default blog)", false},
        {"border", PN_OPT_STR, &border, "MODE", "with --grid: constant (default) or reflect101", false},
        {"size", PN_OPT_INT, &size, "S", "with --grid: tile side (default 256)", false},
        {"nrow", PN_OPT_INT, &nrow, "N", "with --grid: tiles per row (default 8, as make_grid)", false},
        {"seed", PN_OPT_INT, &seed, "N", "with --grid: augmentation seed (default 0)", false},
        {"epoch", PN_OPT_INT, &epoch, "N", "with --grid: epoch, as the trainer keys augmentation (default 0)", false},
        {"out", PN_OPT_STR, &out, "PNG", "output RGB PNG (never one of the inputs)", true},
        {"force", PN_OPT_FLAG, &force, NULL, "overwrite an existing --out", false},
        {"max-image-mb", PN_OPT_FLOAT, &max_image_mb, "MB", "largest decoded image accepted (default 256)", false},
        {NULL, 0, NULL, NULL, NULL, false},
    };
    const pn_opt_range ranges[] = {
        PN_BETWEEN("threshold", 0, 1),  PN_BETWEEN("grid", 0, 1024), PN_BETWEEN("size", 8, 2048),
        PN_AT_LEAST("nrow", 1),         PN_AT_LEAST("seed", 0),      PN_AT_LEAST("epoch", 0),
        PN_AT_LEAST("max-image-mb", 1), {NULL, 0, 0, false, false},
    };
    const pn_command_help help = {
        "pneumoseg show --image X [--mask M | --rle CSV] [--pred P] --out O.png | --grid N --data DIR [--aug blog] "
        "--out O.png",
        "Writes an RGB PNG to look at: the image in grey with its ground truth (green tint and outline) and/or a\n"
        "prediction (red outline; a probability map is cut at --threshold). --rle takes the ground truth of a DICOM\n"
        "or PNG straight from train-rle.csv. With --grid N it takes the first N images (by name) of a prepared\n"
        "folder, augments image i with the key (--seed, --epoch, i) as the loader does for the i-th sample of an\n"
        "epoch, and tiles them with their masks like torchvision's make_grid (2 px black padding, --nrow per row)."};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    pn_image_set_limit_mb(max_image_mb);
    /* --aug and --border shape the grid alone, but a bad value is a usage error in either mode */
    if (strcmp(border, "constant") && strcmp(border, "reflect101")) {
        fprintf(stderr, "pneumoseg show: --border '%s' (expected constant or reflect101)\n", border);
        return 2;
    }
    pn_aug_pipeline *checked = NULL;
    if (pn_aug_parse(aug, PN_BORDER_CONSTANT, &checked) != PN_OK) return pn_cli_exit("show", PN_ERR_USAGE);
    pn_aug_free(checked);
    if (grid > 0) {
        if (!data) {
            fprintf(stderr, "pneumoseg show: --grid needs --data DIR\n");
            return 2;
        }
        if (grid > 1024 || size < 8 || size > 2048 || nrow < 1 || seed < 0 || epoch < 0) {
            fprintf(stderr,
                    "pneumoseg show: --grid 1..1024, --size 8..2048, --nrow >= 1, --seed/--epoch >= 0 expected\n");
            return 2;
        }
        return show_grid(data, grid, aug, border, size, seed, epoch, nrow, out, force);
    }
    if (!image) {
        fprintf(stderr, "pneumoseg show: give --image (with --mask and/or --pred) or --grid N --data DIR\n");
        return 2;
    }
    if (!(threshold >= 0 && threshold <= 1)) {
        fprintf(stderr, "pneumoseg show: --threshold %g is outside [0, 1]\n", threshold);
        return 2;
    }
    return show_overlay(image, mask, rle, pred, threshold, out, force);
}
