/* test_synth: synthetic renders are reproducible and SIIM-shaped; written DICOMs and CSVs read back exactly
 * through our reader, dcmtk's own tools (dcmdump, dcmj2pnm) and the RLE decoder. Arg 1: a scratch folder. */
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/dicom.h"
#include "data/rle.h"
#include "data/synth.h"
#include "tests/check.h"

#define S 64

static void render(uint64_t seed, bool test, uint32_t i, int size, uint8_t *buf, pn_synth_sample *s) {
    size_t n = (size_t)size * size;
    pn_synth_sample t = {buf, buf + n, {buf + 2 * n, buf + 3 * n, buf + 4 * n}, 0};
    pn_synth_render(seed, test, i, size, 0.22, &PN_SYNTH_LOOK_DEFAULT, &t);
    *s = t;
}

static void test_render(void) {
    static uint8_t a[5 * 128 * 128], b[5 * 128 * 128];
    size_t n = 128 * 128;
    pn_synth_sample sa, sb;
    render(3, false, 17, 128, a, &sa);
    render(3, false, 17, 128, b, &sb);
    CHECK(memcmp(a, b, sizeof a) == 0 && sa.n_regions == sb.n_regions);
    render(3, false, 18, 128, b, &sb);
    CHECK(memcmp(a, b, n) != 0);
    render(3, true, 17, 128, b, &sb);
    CHECK(memcmp(a, b, n) != 0);
    /* About 22% positive, some with several regions; regions are disjoint and their union is the mask;
     * the finding is darker than the lung just outside it (what a model has to see). */
    int pos = 0, multi = 0, darker = 0, total = 600;
    for (uint32_t i = 0; i < (uint32_t)total; i++) {
        render(11, false, i, 128, b, &sb);
        if (!sb.n_regions) continue;
        pos++, multi += sb.n_regions > 1;
        int overlap = 0, mismatch = 0;
        for (size_t p = 0; p < n; p++) {
            int c = 0;
            for (int k = 0; k < sb.n_regions; k++) c += sb.regions[k][p] != 0;
            overlap += c > 1, mismatch += (c > 0) != (sb.mask[p] != 0);
        }
        CHECK_MSG(overlap == 0 && mismatch == 0, "image %u: %d overlapping, %d union mismatches", i, overlap, mismatch);
    }
    double share = (double)pos / total;
    printf("synth: %d of %d positive (%.3f), %d with several regions\n", pos, total, share, multi);
    CHECK(share > 0.17 && share < 0.28);
    CHECK(multi > pos / 10 && multi < pos / 2);
    /* The finding is darker than the same image rendered without it (pos_rate 0 keeps everything else). */
    static uint8_t c[5 * 128 * 128];
    for (uint32_t i = 0; i < 200; i++) {
        pn_synth_sample sc;
        render(11, false, i, 128, b, &sb);
        if (!sb.n_regions) continue;
        size_t nn = n;
        pn_synth_sample t = {c, c + nn, {c + 2 * nn, c + 3 * nn, c + 4 * nn}, 0};
        pn_synth_render(11, false, i, 128, 0.0, &PN_SYNTH_LOOK_DEFAULT, &t);
        sc = t;
        CHECK(sc.n_regions == 0);
        double diff = 0, outside = 0;
        int cnt = 0, cnt_out = 0;
        for (size_t p = 0; p < n; p++) {
            if (sb.mask[p])
                diff += (double)b[p] - c[p], cnt++;
            else
                outside += abs((int)b[p] - (int)c[p]), cnt_out++;
        }
        darker += cnt > 0 && diff / cnt < -3;
        CHECK(outside / cnt_out < 0.5);
    }
    CHECK_MSG(darker > 20, "%d findings darker than their background", darker);
}

/* The findings' look: contrast K makes a finding K times as much darker than the same image without it,
 * depth K makes the masks larger; the rest of the image does not change; bad values are refused. */
static void test_look(void) {
    enum { N = 128 * 128 };
    static uint8_t base[5 * N], look[5 * N], none[5 * N];
    double dark1 = 0, dark2 = 0;
    long area1 = 0, area2 = 0, outside_changed = 0;
    for (uint32_t i = 0; i < 120; i++) {
        pn_synth_sample sb = {base, base + N, {0}, 0}, sl = {look, look + N, {0}, 0}, sn = {none, none + N, {0}, 0};
        pn_synth_render(11, false, i, 128, 0.22, &PN_SYNTH_LOOK_DEFAULT, &sb);
        pn_synth_render(11, false, i, 128, 0.0, &PN_SYNTH_LOOK_DEFAULT, &sn);
        pn_synth_render(11, false, i, 128, 0.22, &(pn_synth_look){2.0f, 1.0f}, &sl);
        CHECK(memcmp(base + N, look + N, N) == 0); /* contrast alone keeps the masks */
        for (size_t p = 0; p < N; p++) {
            if (base[N + p])
                dark1 += (double)none[p] - base[p], dark2 += (double)none[p] - look[p];
            else
                outside_changed += abs((int)look[p] - (int)base[p]) > 1;
        }
        pn_synth_render(11, false, i, 128, 0.22, &(pn_synth_look){1.0f, 2.0f}, &sl);
        for (size_t p = 0; p < N; p++) area1 += base[N + p] != 0, area2 += look[N + p] != 0;
    }
    printf("synth look: mean darkening x%.2f at contrast 2, mask area x%.2f at depth 2\n", dark2 / dark1,
           (double)area2 / (double)area1);
    CHECK(dark1 > 0 && dark2 / dark1 > 1.6 && dark2 / dark1 < 2.4);
    CHECK(area1 > 0 && (double)area2 / (double)area1 > 1.5);
    CHECK(outside_changed < 120 * 128); /* only the finding's rim (the pleural line) may change outside it */
    pn_synth_opts o = {.out_dir = "unused", .n_train = 1, .size = 64, .pos_rate = 0.2, .look = {0.0f, 1.0f}};
    CHECK(pn_synth_write(&o, NULL) == PN_ERR_ARG && strstr(pn_last_error(), "contrast"));
    o.look = (pn_synth_look){1.0f, -1.0f};
    CHECK(pn_synth_write(&o, NULL) == PN_ERR_ARG && strstr(pn_last_error(), "depth"));
}

static int read_pgm(const char *path, int *w, int *h, uint8_t **px) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int maxv;
    if (fscanf(f, "P5 %d %d %d", w, h, &maxv) != 3 || maxv != 255) {
        fclose(f);
        return -1;
    }
    fgetc(f);
    *px = malloc((size_t)*w * *h);
    size_t got = fread(*px, 1, (size_t)*w * *h, f);
    fclose(f);
    return got == (size_t)*w * *h ? 0 : -1;
}

static bool have_tool(const char *name) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

/* The study/series folders of image i (as pn_synth_write lays them out). */
static void dicom_path(const char *dir, bool test, uint32_t i, char *out, size_t cap) {
    char id[96];
    pn_synth_id(0, test, i, id, sizeof id);
    snprintf(out, cap, "%s/%s/1.2.276.0.7230010.3.1.2.0.%d.%u/1.2.276.0.7230010.3.1.3.0.%d.%u/%s.dcm", dir,
             test ? "dicom-images-test" : "dicom-images-train", test ? 2 : 1, i, test ? 2 : 1, i, id);
}

static const char *python, *pydicom_script;

/* dcmj2pnm (dcmtk) and pydicom read `path` as our reader did (`ours`); exactly `rendered` when uncompressed. */
static void check_decoders(const char *dir, const char *path, const char *id, uint32_t i, int quality,
                           const uint8_t *rendered, const uint8_t *ours) {
    char cmd[4400], pgm[2100];
    size_t n = S * S;
    const char *tool = have_tool("dcmj2pnm") ? "dcmj2pnm" : have_tool("dcm2pnm") ? "dcm2pnm" : NULL;
    if (!tool || !have_tool("dcmdump")) {
        SKIP("dcmtk tools (dcmdump, dcmj2pnm) not installed: apt-get install dcmtk");
    } else {
        snprintf(pgm, sizeof pgm, "%s/img%u.pgm", dir, i);
        snprintf(cmd, sizeof cmd, "%s '%s' '%s' 2>/dev/null", tool, path, pgm);
        CHECK(system(cmd) == 0);
        int w, h;
        uint8_t *px = NULL;
        CHECK(read_pgm(pgm, &w, &h, &px) == 0 && w == S && h == S);
        if (px) {
            CHECK_MSG(memcmp(px, ours, n) == 0, "image %u: %s pixels differ from our reader's", i, tool);
            double err = 0;
            for (size_t p = 0; p < n; p++) err += abs((int)px[p] - (int)rendered[p]);
            err /= n;
            if (quality == 0)
                CHECK_MSG(err == 0, "image %u: %s differs from the rendered pixels", i, tool);
            else
                CHECK_MSG(err < 2.5, "image %u: JPEG mean abs error %g by %s", i, err, tool);
            if (i == 0) printf("q%d: mean abs error after %s %.3f\n", quality, tool, err);
        }
        free(px);
        snprintf(cmd, sizeof cmd, "dcmdump '%s' 2>/dev/null | grep -q '%s'", path,
                 quality ? "=JPEGBaseline" : "=LittleEndianExplicit");
        CHECK(system(cmd) == 0);
        snprintf(cmd, sizeof cmd, "dcmdump '%s' 2>/dev/null | grep -F '(0008,0018)' | grep -qF '[%s]'", path, id);
        CHECK(system(cmd) == 0);
    }
}

/* pydicom decodes the first `count` train images of dir exactly as our reader did (ours[i]). */
static void check_pydicom(const char *dir, int count, uint8_t *const *ours) {
    if (!python || access(python, X_OK) != 0) {
        SKIP("pydicom check: no python3 given");
        return;
    }
    static char cmd[16384];
    int len = snprintf(cmd, sizeof cmd, "'%s' '%s'", python, pydicom_script);
    for (int i = 0; i < count; i++) {
        char path[2048];
        dicom_path(dir, false, (uint32_t)i, path, sizeof path);
        len += snprintf(cmd + len, sizeof cmd - len, " '%s' '%s/pyd%d.pgm'", path, dir, i);
    }
    snprintf(cmd + len, sizeof cmd - len, " >/dev/null 2>&1");
    int rc = system(cmd);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
        SKIP("pydicom check: python3-pydicom (or a JPEG handler) is not installed");
        return;
    }
    CHECK_MSG(rc == 0, "pydicom could not read the files of %s", dir);
    for (int i = 0; i < count; i++) {
        char pgm[2048];
        snprintf(pgm, sizeof pgm, "%s/pyd%d.pgm", dir, i);
        int w, h;
        uint8_t *px = NULL;
        CHECK(read_pgm(pgm, &w, &h, &px) == 0 && w == S && h == S);
        if (px && ours[i]) {
            int maxd = 0;
            for (size_t p = 0; p < (size_t)S * S; p++)
                maxd = abs((int)px[p] - (int)ours[i][p]) > maxd ? abs((int)px[p] - (int)ours[i][p]) : maxd;
            CHECK_MSG(maxd == 0, "image %d: pydicom differs from our reader by up to %d grey levels", i, maxd);
        }
        free(px);
    }
}

static void test_write(const char *scratch, int quality) {
    char dir[1024], path[2048], cmd[4200];
    snprintf(dir, sizeof dir, "%s/synth_q%d", scratch, quality);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    pn_synth_opts o = {.out_dir = dir,
                       .n_train = 24,
                       .n_test = 4,
                       .size = S,
                       .seed = 0,
                       .pos_rate = 0.5,
                       .look = PN_SYNTH_LOOK_DEFAULT,
                       .jpeg_quality = quality,
                       .threads = 2};
    int64_t pos = -1;
    pn_status st = pn_synth_write(&o, &pos);
    if (st == PN_ERR_UNSUPPORTED) {
        SKIP("synth DICOM writing: %s", pn_last_error());
        return;
    }
    CHECK_MSG(st == PN_OK, "%s", pn_last_error());
    CHECK(pos > 0);
    /* A second run refuses the non-empty folder. */
    CHECK(pn_synth_write(&o, NULL) == PN_ERR_ARG && strstr(pn_last_error(), "not empty"));

    /* train-rle.csv: SIIM's header and quirks; the rows decode to exactly the rendered masks. */
    snprintf(path, sizeof path, "%s/train-rle.csv", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char line[1 << 16];
    CHECK(fgets(line, sizeof line, f) && strcmp(line, "ImageId, EncodedPixels\n") == 0);
    static uint8_t dec[24][S * S], buf[5 * S * S];
    uint8_t *kept[4] = {NULL, NULL, NULL, NULL};
    int rows = 0, ids_seen[24] = {0};
    memset(dec, 0, sizeof dec);
    while (fgets(line, sizeof line, f)) {
        char *comma = strchr(line, ',');
        CHECK(comma && comma[1] == ' ');
        if (!comma) break;
        *comma = 0;
        unsigned idx = 999;
        CHECK(sscanf(line, "1.2.276.0.7230010.3.1.4.0.1.%u", &idx) == 1 && idx < 24);
        if (idx >= 24) break;
        ids_seen[idx]++;
        rows++;
        CHECK(pn_rle_decode(comma + 1, S, S, PN_RLE_RELATIVE, dec[idx], "train-rle.csv") == PN_OK);
    }
    fclose(f);
    CHECK(rows > 24);
    for (uint32_t i = 0; i < 24; i++) {
        pn_synth_sample s;
        render(0, false, i, S, buf, &s);
        /* render() uses pos_rate 0.22; re-render with the file's 0.5 */
        size_t n = S * S;
        pn_synth_sample t = {buf, buf + n, {buf + 2 * n, buf + 3 * n, buf + 4 * n}, 0};
        pn_synth_render(0, false, i, S, 0.5, &PN_SYNTH_LOOK_DEFAULT, &t);
        CHECK_MSG(memcmp(dec[i], t.mask, n) == 0, "image %u: decoded RLE differs from the rendered mask", i);
        CHECK(ids_seen[i] == (t.n_regions ? t.n_regions : 1));

        /* Our reader gets the pixels back: exactly when uncompressed, within JPEG error otherwise. */
        dicom_path(dir, false, i, path, sizeof path);
        pn_dicom_image im;
        pn_dicom_info info;
        st = pn_dicom_read(path, 8, &im, &info);
        if (st == PN_ERR_UNSUPPORTED) {
            SKIP("reading DICOM: %s", pn_last_error());
            continue;
        }
        CHECK_MSG(st == PN_OK, "%s", pn_last_error());
        if (st != PN_OK) continue;
        CHECK(im.width == S && im.height == S);
        char id[96];
        pn_synth_id(0, false, i, id, sizeof id);
        CHECK(strcmp(info.sop_instance_uid, id) == 0 && strcmp(info.photometric, "MONOCHROME2") == 0);
        CHECK(strcmp(info.transfer_syntax, quality ? "1.2.840.10008.1.2.4.50" : "1.2.840.10008.1.2.1") == 0);

        /* dcmtk's own tools and pydicom decode the same pixels. */
        if (i < 4) {
            check_decoders(dir, path, id, i, quality, t.image, (uint8_t *)im.pixels);
            kept[i] = im.pixels;
        } else {
            pn_dicom_image_free(&im);
        }
    }
    check_pydicom(dir, 4, kept);
    for (int i = 0; i < 4; i++) pn_free(kept[i]);
    /* sample_submission.csv lists the test ids with -1. */
    snprintf(path, sizeof path, "%s/sample_submission.csv", dir);
    f = fopen(path, "r");
    CHECK(f && fgets(line, sizeof line, f) && strcmp(line, "ImageId,EncodedPixels\n") == 0);
    int sub = 0;
    while (f && fgets(line, sizeof line, f)) sub += strstr(line, ",-1\n") != NULL;
    if (f) fclose(f);
    CHECK(sub == 4);
    dicom_path(dir, true, 3, path, sizeof path);
    struct stat sst;
    CHECK(stat(path, &sst) == 0);
}

int main(int argc, char **argv) {
    test_render();
    test_look();
    const char *scratch = argc > 1 ? argv[1] : ".";
    python = argc > 2 ? argv[2] : NULL;
    pydicom_script = argc > 3 ? argv[3] : "ref/synth_pydicom_pixels.py";
    mkdir(scratch, 0777);
    test_write(scratch, 0);
    test_write(scratch, 95);
    return check_report("test_synth");
}
