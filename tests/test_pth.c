/* test_pth: PyTorch checkpoints written by torch.save (zip, legacy, a big-endian zip) read bit for bit against
 * sidecars from the safetensors package; hostile files (code-running pickles, bad opcodes, lying sizes, views
 * past their storage) each refused with one line and nothing run; legacy and zip files cut every 97 bytes and
 * randomly damaged files refused cleanly. Usage: test_pth FIXTURE_DIR SCRATCH_DIR */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/rng.h"
#include "core/safetensors.h"
#include "data/pth.h"
#include "tests/check.h"

static char g_fix[2048], g_scratch[2048];

static const char *fixture(const char *name) {
    static char buf[4][2400];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_fix, name);
    return buf[k];
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    *n = b && fread(b, 1, (size_t)len, f) == (size_t)len ? (size_t)len : 0;
    fclose(f);
    return b;
}

static void write_all(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (fwrite(b, 1, n, f) != n) fprintf(stderr, "short write %s\n", path);
    fclose(f);
}

/* The safetensors dtype name of a torch dtype. */
static const char *st_name(pn_torch_dtype t) {
    static const char *names[PN_TD_COUNT] = {"F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"};
    return t < PN_TD_COUNT ? names[t] : "?";
}

static const pn_pth_tensor *find(const pn_pth_file *f, const char *key) {
    for (int i = 0; i < f->count; i++) {
        char full[1200];
        const pn_pth_tensor *t = &f->tensors[i];
        snprintf(full, sizeof full, "%s%s%s", t->path, t->path[0] ? "/" : "", t->name);
        if (!strcmp(full, key)) return t;
    }
    return NULL;
}

/* Every sidecar tensor is in the checkpoint with its dtype and shape, its bytes equal bit for bit, and its float
 * or int64 conversion equals the sidecar's; nothing else is in the checkpoint. */
static void compare_with_sidecar(const char *pth, const char *sidecar) {
    pn_pth_file *f = NULL;
    pn_st_file *s = NULL;
    pn_status st = pn_pth_open(fixture(pth), &f);
    CHECK_MSG(st == PN_OK, "%s: %s", pth, pn_last_error());
    CHECK_MSG(pn_st_open(fixture(sidecar), &s) == PN_OK, "%s: %s", sidecar, pn_last_error());
    if (!f || !s) {
        pn_pth_close(f);
        pn_st_close(s);
        return;
    }
    CHECK_MSG(f->count == s->count, "%s: %d tensors, the sidecar %d", pth, f->count, s->count);
    int same_bits = 0;
    for (int i = 0; i < s->count; i++) {
        const pn_st_entry *e = &s->entries[i];
        const pn_pth_tensor *t = find(f, e->name);
        CHECK_MSG(t != NULL, "%s: no tensor '%s'", pth, e->name);
        if (!t) continue;
        CHECK_MSG(!strcmp(st_name(t->dtype), e->dtype_name), "%s: '%s' is %s, the sidecar %s", pth, e->name,
                  st_name(t->dtype), e->dtype_name);
        bool shape = t->ndim == e->ndim;
        for (int d = 0; shape && d < t->ndim; d++) shape = t->shape[d] == e->shape[d];
        CHECK_MSG(shape, "%s: '%s' has another shape", pth, e->name);
        int64_t n = pn_pth_numel(t);
        size_t bytes = (size_t)n * pn_torch_dtype_size(t->dtype);
        if (!shape || bytes != e->end - e->begin) continue;
        uint8_t *raw = malloc(bytes + 1);
        CHECK(pn_pth_read_raw(f, t, raw) == PN_OK);
        bool equal = memcmp(raw, pn_st_raw(s, e), bytes) == 0;
        CHECK_MSG(equal, "%s: the bytes of '%s' differ from the sidecar's", pth, e->name);
        same_bits += equal;
        free(raw);
        if (e->dtype == PN_ST_F32 || e->dtype == PN_ST_F16 || e->dtype == PN_ST_BF16 || e->dtype == PN_ST_F64) {
            float *a = malloc((size_t)n * 4 + 4), *b = malloc((size_t)n * 4 + 4);
            CHECK(pn_pth_read_f32(f, t, a, n) == PN_OK && pn_st_read_f32(s, e, b, n) == PN_OK);
            CHECK_MSG(memcmp(a, b, (size_t)n * 4) == 0, "%s: '%s' converts to other floats", pth, e->name);
            free(a);
            free(b);
        } else if (e->dtype == PN_ST_I64 || e->dtype == PN_ST_I32) {
            int64_t *a = malloc((size_t)n * 8 + 8), *b = malloc((size_t)n * 8 + 8);
            CHECK(pn_pth_read_i64(f, t, a, n) == PN_OK && pn_st_read_i64(s, e, b, n) == PN_OK);
            CHECK_MSG(memcmp(a, b, (size_t)n * 8) == 0, "%s: '%s' converts to other int64s", pth, e->name);
            free(a);
            free(b);
        }
    }
    printf("  %s (%s%s): %d tensors, %d equal bit for bit\n", pth, f->format, f->big_endian ? ", big-endian" : "",
           f->count, same_bits);
    pn_pth_close(f);
    pn_st_close(s);
}

/* The fixture really holds views and shared storages (so the checks above covered them). */
static void check_views(const char *pth) {
    pn_pth_file *f = NULL;
    if (pn_pth_open(fixture(pth), &f) != PN_OK) {
        CHECK_MSG(0, "%s: %s", pth, pn_last_error());
        return;
    }
    const pn_pth_tensor *v = find(f, "view"), *tr = find(f, "transposed"), *a = find(f, "shared_a"),
                        *b = find(f, "shared_b"), *sc = find(f, "scalar");
    CHECK(v && v->offset == 12 && v->ndim == 2 && v->stride[0] == 10 && v->stride[1] == 3 && v->shape[0] == 4 &&
          v->shape[1] == 3);
    CHECK(tr && tr->stride[0] == 1 && tr->stride[1] == 3);
    CHECK(a && b && a->storage == b->storage && b->offset == 5);
    CHECK(sc && sc->ndim == 0 && pn_pth_numel(sc) == 1);
    int64_t x = 0;
    CHECK(sc && pn_pth_read_i64(f, sc, &x, 1) == PN_OK && x == ((int64_t)1 << 40) + 3);
    float fl;
    CHECK(v && pn_pth_read_i64(f, v, (int64_t *)&fl, 1) != PN_OK); /* a float tensor is not read as int */
    pn_pth_close(f);
}

static void check_wrapped(const char *pth) {
    pn_pth_file *f = NULL;
    if (pn_pth_open(fixture(pth), &f) != PN_OK) {
        CHECK_MSG(0, "%s: %s", pth, pn_last_error());
        return;
    }
    const pn_pth_tensor *w = find(f, "state_dict/module.conv.weight");
    CHECK(w && !strcmp(w->path, "state_dict") && !strcmp(w->name, "module.conv.weight"));
    CHECK(find(f, "state_dict/module.bn.num_batches_tracked") != NULL);
    CHECK(find(f, "optimizer/state/0/exp_avg") != NULL);
    pn_pth_close(f);
}

/* Python 2 / PyTorch 0.3: byte-string keys, OrderedDict pairs as lists, _rebuild_tensor with four arguments. */
static void check_py2(void) {
    pn_pth_file *f = NULL;
    if (pn_pth_open(fixture("py2_style.legacy.pth"), &f) != PN_OK) {
        CHECK_MSG(0, "py2_style.legacy.pth: %s", pn_last_error());
        return;
    }
    const pn_pth_tensor *a = find(f, "a"), *b = find(f, "b");
    float av[6] = {0};
    int64_t bv[2] = {0};
    CHECK(a && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && pn_pth_read_f32(f, a, av, 6) == PN_OK);
    CHECK(av[0] == 0.0f && av[1] == 0.5f && av[5] == 2.5f);
    CHECK(b && b->dtype == PN_TD_I64 && pn_pth_read_i64(f, b, bv, 2) == PN_OK && bv[0] == 7 && bv[1] == -1);
    pn_pth_close(f);
}

/* ---- hostile files ---- */

typedef struct hostile {
    const char *file, *expect;
    bool zip;
} hostile;

static const hostile HOSTILE[] = {
    {"hostile/os_system.pth", "refused global 'os.system'", true},
    {"hostile/builtins_eval.legacy.pth", "refused global 'builtins.eval'", false},
    {"hostile/subprocess_popen.pth", "refused global 'subprocess.Popen'", true},
    {"hostile/nested_call.pth", "refused global 'os.system'", true},
    {"hostile/whole_module.pth", "torch.nn.modules.conv.Conv2d", true},
    {"hostile/unknown_opcode.pth", "unknown pickle opcode 0xff", true},
    {"hostile/truncated_pickle.pth", "truncated", true},
    {"hostile/tensor_past_storage.pth", "past the end of its storage", true},
    {"hostile/short_record.pth", "holds 16 bytes", true},
    {"hostile/offset_past_storage.pth", "past the end of its storage", true},
    {"hostile/negative_shape.pth", "negative size", true},
    {"hostile/absurd_shape.pth", "overflows", true},
    {"hostile/negative_numel.legacy.pth", "negative", false},
    {"hostile/missing_record.pth", "'archive/data/1' is missing", true},
    {"hostile/size_lie_stored.pth", "more than the file", true},
    {"hostile/size_lie_deflate.pth", "more than deflate can expand", true},
    {"hostile/overlapping_records.pth", "zip records overlap", true},
    {"hostile/deep_nesting.pth", "deeper than 32", true},
};

static bool one_line(const char *msg) { return msg[0] && !strchr(msg, '\n'); }

static void check_hostile(void) {
    for (size_t i = 0; i < sizeof HOSTILE / sizeof HOSTILE[0]; i++) {
        const hostile *h = &HOSTILE[i];
        pn_pth_file *f = NULL;
        pn_status st = pn_pth_open(fixture(h->file), &f);
        const char *msg = pn_last_error();
        CHECK_MSG(st != PN_OK && !f, "%s was accepted", h->file);
        if (h->zip && !pn_pth_have_zip()) {
            CHECK_MSG(strstr(msg, "no libzip") != NULL, "%s: %s", h->file, msg);
            continue;
        }
        CHECK_MSG(strstr(msg, h->expect) && strstr(msg, h->file) && one_line(msg),
                  "%s: wanted one line with '%s', got: %s", h->file, h->expect, msg);
        printf("  %-36s %s\n", h->file, strstr(msg, h->file) ? strstr(msg, h->file) + strlen(h->file) + 2 : msg);
        pn_pth_close(f);
    }
    /* the calls were refused, not run: the files they would have made are absent from the working folder */
    const char *marks[] = {"pn_pwned_system", "pn_pwned_eval", "pn_pwned_popen"};
    for (int i = 0; i < 3; i++) CHECK_MSG(access(marks[i], F_OK) != 0, "%s exists: a command ran", marks[i]);
}

/* Every cut of a checkpoint at a multiple of 97 bytes is refused (never a crash); so are damaged bytes. */
static void check_damage(const char *pth, bool zip) {
    if (zip && !pn_pth_have_zip()) {
        SKIP("%s: no libzip in this build", pth);
        return;
    }
    size_t n;
    uint8_t *b = read_all(fixture(pth), &n);
    CHECK(b && n > 0);
    if (!b) return;
    char path[2400];
    snprintf(path, sizeof path, "%s/damaged.pth", g_scratch);
    int cuts = 0, refused = 0;
    for (size_t cut = 97; cut < n; cut += 97) {
        write_all(path, b, cut);
        pn_pth_file *f = NULL;
        pn_status st = pn_pth_open(path, &f);
        cuts++;
        refused += st != PN_OK && one_line(pn_last_error()) && strstr(pn_last_error(), "damaged.pth");
        if (st == PN_OK) fprintf(stderr, "cut at %zu accepted\n", cut);
        pn_pth_close(f);
    }
    CHECK_MSG(refused == cuts, "%s: %d of %d cuts refused with one line", pth, refused, cuts);
    /* random damage: any outcome but a crash (ASan watches); a load that succeeds reads every tensor */
    pn_rng r = pn_rng_make(97, 0, 0, 0);
    int ok = 0;
    uint8_t *d = malloc(n);
    for (int trial = 0; trial < 300; trial++) {
        memcpy(d, b, n);
        int flips = 1 + (int)pn_rng_below(&r, 4);
        for (int k = 0; k < flips; k++) d[pn_rng_below(&r, (uint32_t)n)] ^= (uint8_t)(1 + pn_rng_below(&r, 255));
        write_all(path, d, n);
        pn_pth_file *f = NULL;
        if (pn_pth_open(path, &f) == PN_OK) {
            ok++;
            for (int i = 0; i < f->count; i++) {
                int64_t cnt = pn_pth_numel(&f->tensors[i]);
                float *v = malloc((size_t)cnt * 4 + 4);
                CHECK(pn_pth_read_f32(f, &f->tensors[i], v, cnt) == PN_OK);
                free(v);
            }
        } else {
            CHECK_MSG(one_line(pn_last_error()), "damaged %s: %s", pth, pn_last_error());
        }
        pn_pth_close(f);
    }
    printf("  %s: %d cuts refused; %d of 300 damaged copies still load (flips in data bytes)\n", pth, cuts, ok);
    free(d);
    free(b);
    unlink(path);
}

static void check_not_pth(void) {
    char path[2400];
    snprintf(path, sizeof path, "%s/not_a.pth", g_scratch);
    write_all(path, (const uint8_t *)"hello world, not a checkpoint", 29);
    pn_pth_file *f = NULL;
    CHECK(pn_pth_open(path, &f) != PN_OK && strstr(pn_last_error(), "not a PyTorch checkpoint"));
    CHECK(!pn_pth_sniff(path));
    CHECK(pn_pth_sniff(fixture("dtypes.legacy.pth")));
    CHECK(pn_pth_open(fixture("no_such_file.pth"), &f) == PN_ERR_IO);
    unlink(path);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_pth FIXTURE_DIR SCRATCH_DIR\n");
        return 2;
    }
    snprintf(g_fix, sizeof g_fix, "%s", argv[1]);
    snprintf(g_scratch, sizeof g_scratch, "%s", argv[2]);
    mkdir(g_scratch, 0777);
    if (chdir(g_scratch) != 0) return 2; /* a command a hostile pickle ran would leave its file here */
    snprintf(g_scratch, sizeof g_scratch, ".");
    for (int i = 0; i < 3; i++) unlink(i == 0 ? "pn_pwned_system" : i == 1 ? "pn_pwned_eval" : "pn_pwned_popen");
    printf("libzip: %s\n", pn_pth_have_zip() ? "yes" : "no (zip checkpoints are refused with one line)");
    compare_with_sidecar("dtypes.legacy.pth", "dtypes.expect.safetensors");
    compare_with_sidecar("wrapped.legacy.pth", "wrapped.expect.safetensors");
    check_views("dtypes.legacy.pth");
    check_wrapped("wrapped.legacy.pth");
    check_py2();
    if (pn_pth_have_zip()) {
        compare_with_sidecar("dtypes.zip.pth", "dtypes.expect.safetensors");
        compare_with_sidecar("dtypes.be.pth", "dtypes.expect.safetensors");
        compare_with_sidecar("dtypes.p4.pth", "dtypes.expect.safetensors");
        compare_with_sidecar("wrapped.zip.pth", "wrapped.expect.safetensors");
        check_views("dtypes.zip.pth");
        check_views("dtypes.be.pth");
        check_wrapped("wrapped.zip.pth");
    } else {
        pn_pth_file *f = NULL;
        CHECK(pn_pth_open(fixture("dtypes.zip.pth"), &f) == PN_ERR_UNSUPPORTED && strstr(pn_last_error(), "no libzip"));
        SKIP("zip-format fixtures: this build has no libzip");
    }
    check_hostile();
    check_damage("dtypes.legacy.pth", false);
    check_damage("wrapped.legacy.pth", false);
    check_damage("dtypes.zip.pth", true);
    check_not_pth();
    return check_report("test_pth");
}
