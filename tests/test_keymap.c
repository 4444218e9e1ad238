/* test_keymap: the key mapping on the state_dict keys of real models (torchvision, timm, Cadene, smp, AlbuNet; made
 * by tests/ref/make_pth_fixtures.py with the expected smp names taken from smp itself): detection, every key's
 * smp name or drop, the encoder and decoder guesses; wrappers, 'module.' and shared prefixes; forced namings.
 * Usage: test_keymap KEYMAPS_TXT */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/keymap.h"
#include "tests/check.h"

#define MAX_KEYS 1200

typedef struct kcase {
    char from[32], encoder[32], decoder[32], label[96];
    int n;
    char *keys[MAX_KEYS], *want[MAX_KEYS];
    int64_t shape[MAX_KEYS][8];
    int ndim[MAX_KEYS];
} kcase;

static void free_case(kcase *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->keys[i]);
        free(c->want[i]);
    }
    c->n = 0;
}

static void run_case(kcase *c) {
    pn_keymap_from want_from;
    CHECK(pn_keymap_from_parse(c->from, &want_from) == PN_OK);
    const char *paths[MAX_KEYS];
    for (int i = 0; i < c->n; i++) paths[i] = "";
    pn_keymap m;
    pn_status st = pn_keymap_make((const char *const *)paths, (const char *const *)c->keys, c->n, PN_FROM_AUTO,
                                  c->encoder, c->decoder, &m);
    CHECK_MSG(st == PN_OK, "%s: %s", c->label, pn_last_error());
    if (st != PN_OK) return;
    CHECK_MSG(m.from == want_from, "%s: detected %s, expected %s", c->label, pn_keymap_from_name(m.from), c->from);
    int mapped = 0, dropped = 0, wrong = 0;
    const char *names[MAX_KEYS];
    const int64_t *shapes[MAX_KEYS];
    int n_mapped = 0;
    for (int i = 0; i < c->n; i++) {
        const pn_keymap_item *it = &m.items[i];
        bool drop = !strcmp(c->want[i], "-");
        bool ok = drop ? it->target[0] == 0 && it->why : !strcmp(it->target, c->want[i]);
        if (!ok && wrong++ < 5)
            fprintf(stderr, "%s: '%s' -> '%s' (%s), expected '%s'\n", c->label, c->keys[i], it->target,
                    it->why ? it->why : "", c->want[i]);
        mapped += !drop;
        dropped += drop;
        if (it->target[0]) {
            names[n_mapped] = it->target;
            shapes[n_mapped] = c->shape[i];
            n_mapped++;
        }
    }
    CHECK_MSG(wrong == 0, "%s: %d keys mapped wrongly", c->label, wrong);
    int ndims[MAX_KEYS];
    for (int i = 0, k = 0; i < c->n; i++)
        if (m.items[i].target[0]) ndims[k++] = c->ndim[i];
    const char *enc = pn_keymap_guess_encoder(names, shapes, ndims, n_mapped);
    CHECK_MSG(enc && !strcmp(enc, c->encoder), "%s: guessed encoder %s", c->label, enc ? enc : "(none)");
    bool scse;
    const char *dec = pn_keymap_guess_decoder(names, n_mapped, &scse);
    CHECK_MSG(!strcmp(dec, c->decoder), "%s: guessed decoder %s", c->label, dec);
    CHECK(scse == (strstr(c->label, "scse") != NULL));
    printf("  %-34s %-11s %4d keys: %4d mapped, %3d dropped; encoder %s, decoder %s%s\n", c->label, c->from, c->n,
           mapped, dropped, enc ? enc : "?", dec, scse ? " (scse)" : "");
    pn_keymap_free(&m);
}

static int parse_shape(const char *s, int64_t *shape) {
    if (!strcmp(s, "0d")) return 0;
    int n = 0;
    for (const char *p = s; *p && n < 8;) {
        shape[n++] = strtoll(p, (char **)&p, 10);
        if (*p == ',') p++;
    }
    return n;
}

static void real_models(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    static kcase c;
    char line[1024];
    int cases = 0;
    bool in_case = false;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || !line[0]) continue;
        if (!strncmp(line, "case ", 5)) {
            if (in_case) run_case(&c), cases++;
            free_case(&c);
            int used = 0;
            sscanf(line + 5, "%31s %31s %31s %n", c.from, c.encoder, c.decoder, &used);
            snprintf(c.label, sizeof c.label, "%s", line + 5 + used);
            in_case = true;
            continue;
        }
        char key[512], shape[128], want[512];
        if (sscanf(line, "%511s %127s %511s", key, shape, want) != 3 || c.n == MAX_KEYS) {
            CHECK_MSG(0, "bad line: %s", line);
            continue;
        }
        c.keys[c.n] = strdup(key);
        c.want[c.n] = strdup(want);
        c.ndim[c.n] = parse_shape(shape, c.shape[c.n]);
        c.n++;
    }
    if (in_case) run_case(&c), cases++;
    free_case(&c);
    fclose(f);
    CHECK_MSG(cases >= 10, "only %d cases in %s", cases, path);
}

/* Wrappers: the state dict under 'state_dict' is used (the optimizer's tensors are not), 'module.' goes. */
static void wrappers(void) {
    const char *paths[] = {"state_dict", "state_dict", "state_dict", "optimizer/state/0"};
    const char *names[] = {"module.conv1.weight", "module.layer1.0.conv1.weight", "module.fc.bias", "exp_avg"};
    pn_keymap m;
    CHECK(pn_keymap_make(paths, names, 4, PN_FROM_AUTO, "resnet34", "unet", &m) == PN_OK);
    CHECK(m.from == PN_FROM_TORCHVISION && m.detected && !strcmp(m.group, "state_dict"));
    CHECK(!strcmp(m.items[0].target, "encoder.conv1.weight") &&
          !strcmp(m.items[1].target, "encoder.layer1.0.conv1.weight"));
    CHECK(!m.items[2].target[0] && !strcmp(m.items[2].why, "classifier"));
    CHECK(!m.items[3].target[0] && m.items[3].why && strstr(m.items[3].why, "outside"));
    pn_keymap_free(&m);
    /* {'model': {...}} next to {'ema': {...}}: the model; a prefix every key shares (Lightning's 'model.') goes */
    const char *p2[] = {"ema", "model", "model"};
    const char *n2[] = {"encoder.conv1.weight", "model.encoder.conv1.weight", "model.segmentation_head.0.bias"};
    CHECK(pn_keymap_make(p2, n2, 3, PN_FROM_AUTO, "resnet34", "unet", &m) == PN_OK);
    CHECK(m.from == PN_FROM_SMP && !strcmp(m.group, "model") && !strcmp(m.stripped, "model."));
    CHECK(!strcmp(m.items[1].target, "encoder.conv1.weight") && !strcmp(m.items[2].target, "segmentation_head.0.bias"));
    CHECK(!m.items[0].target[0]);
    pn_keymap_free(&m);
    /* names nobody writes: one line that names --from */
    const char *p3[] = {"", ""};
    const char *n3[] = {"features.0.weight", "classifier.1.bias"};
    CHECK(pn_keymap_make(p3, n3, 2, PN_FROM_AUTO, "resnet34", "unet", &m) == PN_ERR_FORMAT);
    CHECK(strstr(pn_last_error(), "--from") && strstr(pn_last_error(), "features.0.weight") &&
          !strchr(pn_last_error(), '\n'));
    /* ... which --from then forces */
    CHECK(pn_keymap_make(p3, n3, 2, PN_FROM_CADENE, "resnet34", "unet", &m) == PN_OK);
    CHECK(!m.detected && !strcmp(m.items[0].target, "encoder.features.0.weight"));
    pn_keymap_free(&m);
}

static void single_keys(void) {
    char out[160];
    const char *why;
    CHECK(pn_keymap_key(PN_FROM_TIMM, "se_resnext50_32x4d", "unet", "layer2.3.se.fc2.bias", out, sizeof out, &why) &&
          !strcmp(out, "encoder.layer2.3.se_module.fc2.bias"));
    CHECK(pn_keymap_key(PN_FROM_TIMM, "se_resnext50_32x4d", "unet", "bn1.running_var", out, sizeof out, &why) &&
          !strcmp(out, "encoder.layer0.bn1.running_var"));
    CHECK(pn_keymap_key(PN_FROM_TIMM, "resnet50", "unet", "bn1.running_var", out, sizeof out, &why) &&
          !strcmp(out, "encoder.bn1.running_var"));
    CHECK(!pn_keymap_key(PN_FROM_ALBUNET, "resnet34", "albunet", "conv3.1.bn2.weight", out, sizeof out, &why) &&
          !strcmp(why, "alias of encoder.layer2"));
    CHECK(!pn_keymap_key(PN_FROM_CADENE, "se_resnet50", "unet", "last_linear.weight", out, sizeof out, &why));
    pn_keymap_from f;
    CHECK(pn_keymap_from_parse("keras", &f) == PN_ERR_ARG && strstr(pn_last_error(), "keras"));
    CHECK(pn_keymap_normalize(PN_FROM_TORCHVISION) && !strcmp(pn_keymap_normalize(PN_FROM_TORCHVISION), "imagenet"));
    CHECK(pn_keymap_normalize(PN_FROM_ALBUNET) && !strcmp(pn_keymap_normalize(PN_FROM_ALBUNET), "unit"));
    CHECK(pn_keymap_normalize(PN_FROM_SMP) == NULL);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_keymap KEYMAPS_TXT\n");
        return 2;
    }
    real_models(argv[1]);
    wrappers();
    single_keys();
    return check_report("test_keymap");
}
