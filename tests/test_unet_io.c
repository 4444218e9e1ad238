/* test_unet_io: model weights in safetensors (round trip, module. prefix, missing / extra / mis-shaped
 * tensors named in the error) and the model's input-shape checks. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/register.h"
#include "core/safetensors.h"
#include "core/unet.h"
#include "tests/check.h"

static char dir[512];

/* Writes the model's tensors under `prefix`+name, skipping `skip`, reshaping `reshape`, adding `extra`. */
static void write_variant(pn_unet *m, const char *path, const char *prefix, const char *skip, const char *reshape,
                          const char *extra) {
    pn_st_writer *w = pn_st_writer_new();
    char **names = calloc(1024, sizeof *names);
    float **data = calloc(1024, sizeof *data);
    int n = 0;
    for (int i = 0; i < pn_unet_num_params(m); i++) {
        pn_unet_param *p = pn_unet_param_at(m, i);
        if (skip && strcmp(p->name, skip) == 0) continue;
        int64_t numel = pn_tensor_numel(&p->value);
        data[n] = malloc((size_t)numel * sizeof(float));
        CHECK(pn_tensor_get(&p->value, data[n]) == PN_OK);
        names[n] = malloc(strlen(prefix) + strlen(p->name) + 1);
        sprintf(names[n], "%s%s", prefix, p->name);
        int64_t shape[4] = {p->value.shape[0], p->value.shape[1], p->value.shape[2], p->value.shape[3]};
        int ndim = p->value.ndim;
        if (reshape && strcmp(p->name, reshape) == 0) { /* same bytes, another shape */
            shape[0] = numel;
            ndim = 1;
        }
        CHECK(pn_st_writer_add(w, names[n], PN_ST_F32, ndim, shape, data[n]) == PN_OK);
        n++;
    }
    for (int i = 0; i < pn_unet_num_bns(m); i++) {
        pn_unet_bn *bn = pn_unet_bn_at(m, i);
        const char *suffix[3] = {"running_mean", "running_var", "num_batches_tracked"};
        for (int k = 0; k < 3; k++) {
            names[n] = malloc(strlen(prefix) + strlen(bn->prefix) + 32);
            sprintf(names[n], "%s%s.%s", prefix, bn->prefix, suffix[k]);
            if (k == 2) {
                CHECK(pn_st_writer_add(w, names[n], PN_ST_I64, 0, NULL, &bn->num_batches_tracked) == PN_OK);
            } else {
                pn_tensor *t = k ? &bn->running_var : &bn->running_mean;
                data[n] = malloc((size_t)pn_tensor_numel(t) * sizeof(float));
                CHECK(pn_tensor_get(t, data[n]) == PN_OK);
                CHECK(pn_st_writer_add(w, names[n], PN_ST_F32, 1, t->shape, data[n]) == PN_OK);
            }
            n++;
        }
    }
    float one = 1.0f;
    int64_t shape1 = 1;
    if (extra) CHECK(pn_st_writer_add(w, extra, PN_ST_F32, 1, &shape1, &one) == PN_OK);
    CHECK(pn_st_writer_save(w, path) == PN_OK);
    pn_st_writer_free(w);
    for (int i = 0; i < n; i++) free(names[i]), free(data[i]);
    free(names);
    free(data);
}

static void expect_load_error(pn_unet *m, const char *path, const char *needle1, const char *needle2) {
    pn_status st = pn_unet_load(m, path);
    const char *msg = pn_last_error();
    CHECK_MSG(st == PN_ERR_FORMAT, "loading %s should fail", path);
    CHECK_MSG(strstr(msg, needle1) != NULL, "message '%s' lacks '%s'", msg, needle1);
    if (needle2) CHECK_MSG(strstr(msg, needle2) != NULL, "message '%s' lacks '%s'", msg, needle2);
    CHECK(strchr(msg, '\n') == NULL);
}

static bool same_weights(pn_unet *a, pn_unet *b) {
    for (int i = 0; i < pn_unet_num_params(a); i++) {
        pn_tensor *x = &pn_unet_param_at(a, i)->value, *y = &pn_unet_param_at(b, i)->value;
        int64_t n = pn_tensor_numel(x);
        float *u = malloc((size_t)n * 4), *v = malloc((size_t)n * 4);
        pn_tensor_get(x, u);
        pn_tensor_get(y, v);
        bool eq = memcmp(u, v, (size_t)n * 4) == 0;
        free(u);
        free(v);
        if (!eq) return false;
    }
    return true;
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
    pn_register_builtin_backends();
    pn_backend *be;
    CHECK(pn_backend_open("ref", 1, &be) == PN_OK);
    pn_unet *a, *b;
    CHECK(pn_unet_create("resnet18", be, &a) == PN_OK);
    CHECK(pn_unet_create("resnet18", be, &b) == PN_OK);
    CHECK(pn_unet_init_weights(a, 7) == PN_OK);
    CHECK(!same_weights(a, b));
    pn_unet_bn_at(a, 3)->num_batches_tracked = 42;
    float rv[64];
    for (int i = 0; i < 64; i++) rv[i] = 1.0f + (float)i;
    CHECK(pn_tensor_set(&pn_unet_bn_at(a, 0)->running_var, rv) == PN_OK);

    char path[700];
    snprintf(path, sizeof path, "%s/unet_io_full.safetensors", dir);
    CHECK(pn_unet_save(a, path) == PN_OK);
    CHECK_MSG(pn_unet_load(b, path) == PN_OK, "%s", pn_last_error());
    CHECK(same_weights(a, b));
    CHECK(pn_unet_bn_at(b, 3)->num_batches_tracked == 42);
    float got[64];
    CHECK(pn_tensor_get(&pn_unet_bn_at(b, 0)->running_var, got) == PN_OK && memcmp(got, rv, sizeof rv) == 0);

    /* A DataParallel checkpoint: every name has a "module." prefix. */
    pn_unet *c;
    CHECK(pn_unet_create("resnet18", be, &c) == PN_OK);
    snprintf(path, sizeof path, "%s/unet_io_module.safetensors", dir);
    write_variant(a, path, "module.", NULL, NULL, NULL);
    CHECK_MSG(pn_unet_load(c, path) == PN_OK, "%s", pn_last_error());
    CHECK(same_weights(a, c) && pn_unet_bn_at(c, 3)->num_batches_tracked == 42);
    pn_unet_free(c);

    snprintf(path, sizeof path, "%s/unet_io_missing.safetensors", dir);
    write_variant(a, path, "", "decoder.blocks.2.conv1.0.weight", NULL, NULL);
    expect_load_error(b, path, "missing tensor 'decoder.blocks.2.conv1.0.weight'", NULL);

    snprintf(path, sizeof path, "%s/unet_io_shape.safetensors", dir);
    write_variant(a, path, "", NULL, "encoder.layer1.0.conv1.weight", NULL);
    expect_load_error(b, path, "encoder.layer1.0.conv1.weight", "[36864]");
    CHECK(strstr(pn_last_error(), "[64, 64, 3, 3]") != NULL);

    snprintf(path, sizeof path, "%s/unet_io_extra.safetensors", dir);
    write_variant(a, path, "", NULL, NULL, "decoder.blocks.9.conv1.0.weight");
    expect_load_error(b, path, "decoder.blocks.9.conv1.0.weight", "unexpected");

    snprintf(path, sizeof path, "%s/unet_io_none.safetensors", dir);
    CHECK(pn_unet_load(b, path) == PN_ERR_IO);

    /* The resnet34 model is the documented size; input shapes that are not multiples of 32 are refused. */
    pn_unet *r34;
    CHECK(pn_unet_create("resnet34", be, &r34) == PN_OK);
    CHECK(pn_unet_param_count(r34) == 24436369);
    CHECK(pn_unet_plan(r34, 1, 100, 96, PN_UNET_EVAL) == PN_ERR_ARG);
    CHECK(strstr(pn_last_error(), "multiples of 32") != NULL);
    CHECK(pn_unet_plan(r34, 1, 64, 96, PN_UNET_EVAL) == PN_OK);
    CHECK(pn_unet_create("vgg11", be, &c) == PN_ERR_UNSUPPORTED);
    pn_unet_free(r34);

    /* A file without pneumoseg's metadata (as PyTorch writes it) is recognised from its tensor names and shapes;
     * one that fits no architecture names the closest and its first misfit. */
    const char *const kinds[][3] = {{"se_resnext50_32x4d", "unet", ""},
                                    {"resnet18", "unet", "scse"},
                                    {"resnet34", "albunet", ""},
                                    {"resnet50", "unet", ""}};
    for (int k = 0; k < 4; k++) {
        pn_arch want, got;
        pn_unet *m;
        pn_st_file *f;
        CHECK(pn_arch_make(kinds[k][0], kinds[k][1], kinds[k][2], &want) == PN_OK);
        CHECK(pn_unet_create_arch(&want, be, &m) == PN_OK);
        snprintf(path, sizeof path, "%s/unet_io_arch%d.safetensors", dir, k);
        write_variant(m, path, "module.", NULL, NULL, NULL);
        CHECK(pn_st_open(path, &f) == PN_OK);
        CHECK(pn_arch_from_file(f, &got) == PN_OK);
        CHECK_MSG(memcmp(&want, &got, sizeof want) == 0, "%s %s %s recognised as %s %s %s", want.encoder, want.decoder,
                  want.attention, got.encoder, got.decoder, got.attention);
        pn_st_close(f);
        if (k == 0) {
            write_variant(m, path, "", "encoder.layer3.1.se_module.fc2.bias", NULL, NULL);
            CHECK(pn_st_open(path, &f) == PN_OK);
            CHECK(pn_arch_from_file(f, &got) == PN_ERR_FORMAT);
            CHECK_MSG(strstr(pn_last_error(), "closest: se_resnext50_32x4d unet") &&
                          strstr(pn_last_error(), "encoder.layer3.1.se_module.fc2.bias"),
                      "%s", pn_last_error());
            pn_st_close(f);
        }
        pn_unet_free(m);
    }
    pn_unet_free(a);
    pn_unet_free(b);
    pn_backend_close(be);
    return check_report("test_unet_io");
}
