/* keymap: source state_dict names -> smp names, as a table of renames per naming (see keymap.h). */
#define _DEFAULT_SOURCE
#include "keymap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *FROM_NAMES[] = {"auto", "smp", "torchvision", "timm", "cadene", "albunet"};

pn_status pn_keymap_from_parse(const char *s, pn_keymap_from *out) {
    for (int i = 0; i < (int)(sizeof FROM_NAMES / sizeof FROM_NAMES[0]); i++)
        if (!strcmp(s, FROM_NAMES[i])) {
            *out = (pn_keymap_from)i;
            return PN_OK;
        }
    return pn_error(PN_ERR_ARG, "--from must be auto, smp, torchvision, timm, cadene or albunet, got '%s'", s);
}

const char *pn_keymap_from_name(pn_keymap_from f) { return f <= PN_FROM_ALBUNET ? FROM_NAMES[f] : "?"; }

const char *pn_keymap_normalize(pn_keymap_from f) {
    switch (f) {
    case PN_FROM_TORCHVISION:
    case PN_FROM_TIMM:
    case PN_FROM_CADENE: return "imagenet";
    case PN_FROM_ALBUNET: return "unit";
    default: return NULL;
    }
}

static bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

pn_keymap_from pn_keymap_detect(const char *const *keys, int n) {
    bool albu = false, smp = false, layer0 = false, se_timm = false, conv1 = false, layer1 = false;
    for (int i = 0; i < n; i++) {
        const char *k = keys[i];
        albu |= starts(k, "center.block.") || starts(k, "dec0.") || starts(k, "dec5.block.");
        smp |= starts(k, "encoder.") || starts(k, "decoder.") || starts(k, "segmentation_head.");
        layer0 |= starts(k, "layer0.");
        se_timm |= strstr(k, ".se.fc1.") != NULL;
        conv1 |= !strcmp(k, "conv1.weight");
        layer1 |= starts(k, "layer1.");
    }
    if (albu) return PN_FROM_ALBUNET;
    if (smp) return PN_FROM_SMP;
    if (layer0) return PN_FROM_CADENE;
    if (conv1 && se_timm) return PN_FROM_TIMM;
    if (conv1 && layer1) return PN_FROM_TORCHVISION;
    return PN_FROM_AUTO;
}

/* ---------------------------------------------------------------- renames */

typedef struct key_rename {
    const char *from, *to; /* a prefix (ending in '.') or an infix (starting with '.') and its replacement */
} key_rename;

/* timm's SE-ResNeXt into Cadene's (smp's) names. */
static const key_rename TIMM_SE[] = {
    {"conv1.", "layer0.conv1."},
    {"bn1.", "layer0.bn1."},
    {".se.fc1.", ".se_module.fc1."},
    {".se.fc2.", ".se_module.fc2."},
};

/* The winner's AlbuNet holds its encoder twice: these aliases of encoder modules are dropped. */
static const key_rename ALBU_ALIASES[] = {
    {"conv1.0.", "alias of encoder.conv1"}, {"conv1.1.", "alias of encoder.bn1"},
    {"conv2.", "alias of encoder.layer1"},  {"conv3.", "alias of encoder.layer2"},
    {"conv4.", "alias of encoder.layer3"},  {"conv5.", "alias of encoder.layer4"},
};

static bool apply(const key_rename *table, int n, const char *key, char *buf, size_t cap) {
    for (int i = 0; i < n; i++) {
        const key_rename *r = &table[i];
        if (r->from[0] == '.') {
            const char *at = strstr(key, r->from);
            if (!at) continue;
            snprintf(buf, cap, "%.*s%s%s", (int)(at - key), key, r->to, at + strlen(r->from));
            return true;
        }
        if (starts(key, r->from)) {
            snprintf(buf, cap, "%s%s", r->to, key + strlen(r->from));
            return true;
        }
    }
    return false;
}

static bool is_se(const char *encoder) { return encoder && starts(encoder, "se_"); }

bool pn_keymap_key(pn_keymap_from from, const char *encoder, const char *decoder, const char *key, char *out,
                   size_t cap, const char **why) {
    (void)decoder;
    char buf[256];
    *why = NULL;
    out[0] = 0;
    switch (from) {
    case PN_FROM_SMP: snprintf(out, cap, "%s", key); return true;
    case PN_FROM_ALBUNET:
        for (int i = 0; i < (int)(sizeof ALBU_ALIASES / sizeof ALBU_ALIASES[0]); i++)
            if (starts(key, ALBU_ALIASES[i].from)) {
                *why = ALBU_ALIASES[i].to;
                return false;
            }
        if (starts(key, "encoder.fc.")) {
            *why = "classifier";
            return false;
        }
        snprintf(out, cap, "%s", key);
        return true;
    case PN_FROM_TORCHVISION:
    case PN_FROM_TIMM:
        if (starts(key, "fc.")) {
            *why = "classifier";
            return false;
        }
        if (from == PN_FROM_TIMM && is_se(encoder)) {
            /* conv1/bn1 of the stem, then the SE modules (both may apply: one key holds at most one of them) */
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", key);
            if (apply(TIMM_SE, 2, tmp, buf, sizeof buf)) snprintf(tmp, sizeof tmp, "%s", buf);
            if (apply(TIMM_SE + 2, 2, tmp, buf, sizeof buf)) snprintf(tmp, sizeof tmp, "%s", buf);
            snprintf(out, cap, "encoder.%s", tmp);
            return true;
        }
        snprintf(out, cap, "encoder.%s", key);
        return true;
    case PN_FROM_CADENE:
        if (starts(key, "last_linear.")) {
            *why = "classifier";
            return false;
        }
        snprintf(out, cap, "encoder.%s", key);
        return true;
    default: *why = "unknown naming"; return false;
    }
}

/* ---------------------------------------------------------------- a whole checkpoint */

static const char *WRAPPERS[] = {"state_dict", "model_state_dict", "model",  "net",
                                 "network",    "weights",          "params", "module"};
static const char *SHARED_PREFIXES[] = {"module.", "model.", "net.", "network."};

static bool path_is(const char *path, const char *wrapper) {
    size_t lp = strlen(path), lw = strlen(wrapper);
    return lp >= lw && !strcmp(path + lp - lw, wrapper) && (lp == lw || path[lp - lw - 1] == '/');
}

/* The path whose tensors are the model's: the only one, else a known wrapper's (state_dict, model, ...), else the
 * top level, else the first tensor's. */
static void choose_group(const char *const *paths, int n, char *group, size_t cap) {
    bool all_same = true;
    for (int i = 1; i < n; i++) all_same &= !strcmp(paths[i], paths[0]);
    if (n == 0 || all_same) {
        snprintf(group, cap, "%s", n ? paths[0] : "");
        return;
    }
    for (size_t w = 0; w < sizeof WRAPPERS / sizeof WRAPPERS[0]; w++)
        for (int i = 0; i < n; i++)
            if (path_is(paths[i], WRAPPERS[w])) {
                snprintf(group, cap, "%s", paths[i]);
                return;
            }
    for (int i = 0; i < n; i++)
        if (!paths[i][0]) {
            group[0] = 0;
            return;
        }
    snprintf(group, cap, "%s", paths[0]); /* else the first tensor's */
}

pn_status pn_keymap_make(const char *const *paths, const char *const *names, int n, pn_keymap_from from,
                         const char *encoder, const char *decoder, pn_keymap *out) {
    memset(out, 0, sizeof *out);
    out->items = calloc((size_t)n + 1, sizeof *out->items);
    const char **keys = calloc((size_t)n + 1, sizeof *keys);
    if (!out->items || !keys) {
        free(keys);
        pn_keymap_free(out);
        return pn_error(PN_ERR_NOMEM, "out of memory");
    }
    out->n = n;
    choose_group(paths, n, out->group, sizeof out->group);
    int in_group = 0;
    for (int i = 0; i < n; i++) {
        pn_keymap_item *it = &out->items[i];
        it->key = names[i];
        if (strcmp(paths[i], out->group)) {
            it->why = "outside the state dict used";
            continue;
        }
        while (starts(it->key, "module.")) it->key += 7; /* DataParallel, possibly twice */
        keys[in_group++] = it->key;
    }
    /* a prefix every key of the state dict shares (a Lightning module's attribute, say) */
    for (bool again = true; again && in_group > 0;) {
        again = false;
        for (size_t p = 0; p < sizeof SHARED_PREFIXES / sizeof SHARED_PREFIXES[0]; p++) {
            bool all = true;
            for (int i = 0; i < in_group && all; i++) all = starts(keys[i], SHARED_PREFIXES[p]);
            if (!all) continue;
            size_t len = strlen(SHARED_PREFIXES[p]);
            for (int i = 0; i < in_group; i++) keys[i] += len;
            for (int i = 0; i < n; i++)
                if (!out->items[i].why) out->items[i].key += len;
            snprintf(out->stripped + strlen(out->stripped), sizeof out->stripped - strlen(out->stripped), "%s",
                     SHARED_PREFIXES[p]);
            again = true;
        }
    }
    out->from = from;
    if (from == PN_FROM_AUTO) {
        out->from = pn_keymap_detect(keys, in_group);
        out->detected = true;
    }
    pn_status st = PN_OK;
    if (out->from == PN_FROM_AUTO)
        st = pn_error(PN_ERR_FORMAT,
                      "cannot tell whose names these are (%d tensors%s%s, e.g. '%s', '%s'); pass --from "
                      "smp, torchvision, timm, cadene or albunet",
                      in_group, out->group[0] ? " under " : "", out->group, in_group > 0 ? keys[0] : "",
                      in_group > 1 ? keys[1] : "");
    for (int i = 0; st == PN_OK && i < n; i++) {
        pn_keymap_item *it = &out->items[i];
        if (it->why) continue;
        pn_keymap_key(out->from, encoder, decoder, it->key, it->target, sizeof it->target, &it->why);
    }
    free(keys);
    if (st != PN_OK) pn_keymap_free(out);
    return st;
}

void pn_keymap_free(pn_keymap *m) {
    free(m->items);
    m->items = NULL;
    m->n = 0;
}

/* ---------------------------------------------------------------- guesses */

static int find(const char *const *names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}

/* Blocks in encoder stage `layer` (1..4): one more than the highest block index. */
static int blocks(const char *const *names, int n, int layer) {
    int most = -1;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "encoder.layer%d.", layer);
    for (int i = 0; i < n; i++)
        if (starts(names[i], prefix)) {
            int b = atoi(names[i] + strlen(prefix));
            if (b > most) most = b;
        }
    return most + 1;
}

const char *pn_keymap_guess_encoder(const char *const *names, const int64_t *const *shapes, const int *ndims, int n) {
    bool se = find(names, n, "encoder.layer0.conv1.weight") >= 0;
    bool bottleneck = find(names, n, "encoder.layer1.0.conv3.weight") >= 0;
    int l1 = blocks(names, n, 1), l3 = blocks(names, n, 3);
    int c2 = find(names, n, "encoder.layer1.0.conv2.weight");
    /* ResNeXt's 3x3 convolutions are grouped: fewer input channels per filter than filters */
    bool grouped = c2 >= 0 && ndims[c2] == 4 && shapes[c2][1] < shapes[c2][0];
    if (se) {
        if (l3 == 6) return grouped ? "se_resnext50_32x4d" : "se_resnet50";
        if (l3 == 23 && grouped) return "se_resnext101_32x4d";
        return NULL;
    }
    if (!bottleneck) return l1 == 2 && l3 == 2 ? "resnet18" : l1 == 3 && l3 == 6 ? "resnet34" : NULL;
    if (l3 == 6) return grouped ? "resnext50_32x4d" : "resnet50";
    if (l3 == 23 && !grouped) return "resnet101";
    return NULL;
}

const char *pn_keymap_guess_decoder(const char *const *names, int n, bool *scse) {
    bool albu = false;
    *scse = false;
    for (int i = 0; i < n; i++) {
        albu |= starts(names[i], "center.") || starts(names[i], "dec0.");
        *scse |= starts(names[i], "decoder.") && strstr(names[i], ".attention1.attention.") != NULL;
    }
    return albu ? "albunet" : "unet";
}
