/* cmd_import: converts a checkpoint (PyTorch .pth or safetensors; a pretrained encoder or a whole smp/AlbuNet model)
 * into smp-named safetensors with the architecture and input normalisation in its metadata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "cli.h"
#include "run_settings.h"
#include "core/safetensors.h"
#include "data/checkpoint.h"
#include "data/keymap.h"
#include "weights.h"

typedef struct import_args {
    const char *in, *out, *encoder, *decoder, *from;
    bool force;
} import_args;

/* The encoder and decoder the checkpoint's names and shapes describe (for --encoder/--decoder left out). */
static pn_status guess_architecture(const import_args *a, const char **encoder, const char **decoder,
                                    const char **attention) {
    pn_ckpt *ck;
    PN_TRY(pn_ckpt_open(a->in, &ck));
    int n = ck->count;
    const char **paths = calloc((size_t)n + 1, sizeof *paths), **names = calloc((size_t)n + 1, sizeof *names);
    const int64_t **shapes = calloc((size_t)n + 1, sizeof *shapes);
    int *ndims = calloc((size_t)n + 1, sizeof *ndims);
    pn_status st = paths && names && shapes && ndims ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    bool timm_se = false;
    for (int i = 0; st == PN_OK && i < n; i++) {
        paths[i] = ck->tensors[i].path;
        names[i] = ck->tensors[i].name;
        timm_se |= strstr(names[i], ".se.fc1.") != NULL;
    }
    pn_keymap_from from = PN_FROM_AUTO;
    if (st == PN_OK && a->from) st = pn_keymap_from_parse(a->from, &from);
    pn_keymap map = {0};
    /* timm's SE stem is renamed only for an SE encoder: map as one to see the layer0 names */
    if (st == PN_OK)
        st = pn_keymap_make(paths, names, n, from, timm_se ? "se_resnext50_32x4d" : "resnet34", "unet", &map);
    if (st != PN_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", pn_last_error());
        st = pn_error(st, "%s: %s", a->in, msg);
    }
    int k = 0;
    for (int i = 0; st == PN_OK && i < n; i++)
        if (map.items[i].target[0]) {
            names[k] = map.items[i].target;
            shapes[k] = ck->tensors[i].shape;
            ndims[k] = ck->tensors[i].ndim;
            k++;
        }
    if (st == PN_OK && !*encoder) {
        *encoder = pn_keymap_guess_encoder(names, shapes, ndims, k);
        if (!*encoder)
            st = pn_error(PN_ERR_ARG, "%s: cannot tell the encoder from its names and shapes; pass --encoder", a->in);
    }
    bool scse = false;
    if (st == PN_OK && !*decoder) *decoder = pn_keymap_guess_decoder(names, k, &scse);
    if (st == PN_OK && scse) *attention = "scse";
    pn_keymap_free(&map);
    free(paths);
    free(names);
    free(shapes);
    free(ndims);
    pn_ckpt_close(ck);
    return st;
}

/* The encoder's tensors alone, with the card (architecture without a decoder, normalisation). */
static pn_status save_encoder(pn_unet *m, const char *path) {
    pn_st_writer *w = pn_st_writer_new();
    if (!w) return pn_error(PN_ERR_NOMEM, "out of memory");
    pn_status st = PN_OK;
    char key[200];
    for (int i = 0; st == PN_OK && i < pn_unet_num_params(m); i++) {
        pn_unet_param *p = pn_unet_param_at(m, i);
        if (!strncmp(p->name, "encoder.", 8)) st = pn_unet_add_tensor(w, p->name, &p->value);
    }
    for (int i = 0; st == PN_OK && i < pn_unet_num_bns(m); i++) {
        pn_unet_bn *b = pn_unet_bn_at(m, i);
        if (strncmp(b->prefix, "encoder.", 8)) continue;
        snprintf(key, sizeof key, "%s.running_mean", b->prefix);
        st = pn_unet_add_tensor(w, key, &b->running_mean);
        snprintf(key, sizeof key, "%s.running_var", b->prefix);
        if (st == PN_OK) st = pn_unet_add_tensor(w, key, &b->running_var);
        snprintf(key, sizeof key, "%s.num_batches_tracked", b->prefix);
        if (st == PN_OK) st = pn_st_writer_add(w, key, PN_ST_I64, 0, NULL, &b->num_batches_tracked);
    }
    pn_model_card card = *pn_unet_card(m);
    card.decoder[0] = card.attention[0] = 0;
    if (st == PN_OK) st = pn_st_writer_meta(w, "format", "pt");
    if (st == PN_OK) st = pn_st_writer_meta(w, "producer", "pneumoseg import");
    if (st == PN_OK) st = pn_model_card_write(&card, w);
    if (st == PN_OK) st = pn_st_writer_save(w, path);
    pn_st_writer_free(w);
    return st;
}

/* The options before the checkpoint is read: the names as usage errors, then the output (never the input, nothing
 * overwritten without --force, a folder that exists and can be written). */
static pn_status check_args(const import_args *a) {
    if (!a->in) return pn_error(PN_ERR_USAGE, "give the checkpoint to import: pneumoseg import IN --out W.safetensors");
    PN_TRY(pn_check_model_flags(a->encoder, a->decoder, NULL, NULL));
    pn_keymap_from from;
    if (a->from) PN_TRY(pn_as_usage(pn_keymap_from_parse(a->from, &from)));
    const pn_named_path inputs[] = {{"--in", a->in}};
    return pn_check_out_file("--out", a->out, a->force, inputs, 1);
}

static pn_status import(const import_args *a) {
    const char *encoder = a->encoder, *decoder = a->decoder, *attention = NULL;
    PN_TRY(check_args(a));
    if (!encoder || !decoder) PN_TRY(guess_architecture(a, &encoder, &decoder, &attention));
    pn_arch arch;
    PN_TRY(pn_arch_make(encoder, decoder, attention, &arch));
    pn_backend *be = NULL;
    pn_unet *m = NULL;
    pn_load_result r;
    pn_status st = pn_backend_open("ref", 1, &be);
    if (st == PN_OK) st = pn_unet_create_arch(&arch, be, &m);
    if (st == PN_OK) st = pn_tool_load_weights(m, a->in, PN_LOAD_INIT, a->from, &r);
    if (st == PN_OK) st = r.encoder_only ? save_encoder(m, a->out) : pn_unet_save(m, a->out);
    if (st == PN_OK)
        pn_log_info("wrote %s: %s%s%s, %d tensors from %s names, input normalisation %s", a->out, encoder,
                    r.encoder_only ? " encoder only" : " ", r.encoder_only ? "" : decoder, r.loaded, r.from,
                    r.normalize[0] ? r.normalize : "not recorded (pass --norm when you use it)");
    pn_unet_free(m);
    if (be) pn_backend_close(be);
    return st;
}

int pn_cmd_import(int argc, char **argv) {
    import_args a = {0};
    /* the checkpoint may come first, without an option name */
    if (argc > 1 && strncmp(argv[1], "--", 2) && strcmp(argv[1], "-h")) {
        a.in = argv[1];
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    const pn_opt opts[] = {
        {"in", PN_OPT_STR, &a.in, "FILE", "the checkpoint (also accepted as the first argument)", false},
        {"out", PN_OPT_STR, &a.out, "W.safetensors", "where to write the smp-named weights", true},
        {"encoder", PN_OPT_STR, &a.encoder, "NAME", "the encoder (default: told from the names and shapes)", false},
        {"decoder", PN_OPT_STR, &a.decoder, "NAME", "unet | albunet (default: told from the names)", false},
        {"from", PN_OPT_STR, &a.from, "NAMING", "auto (default) | smp | torchvision | timm | cadene | albunet", false},
        {"force", PN_OPT_FLAG, &a.force, NULL, "overwrite --out", false},
        {NULL, 0, NULL, NULL, NULL, false},
    };
    const pn_command_help help = {
        "pneumoseg import IN.pth|IN.safetensors --out W.safetensors [--encoder E] [--decoder D] [--from NAMING]",
        "Converts a checkpoint into smp-named safetensors with the architecture and the input normalisation in its\n"
        "metadata. IN may be a PyTorch .pth (zip or legacy format; read by an allowlist unpickler that runs nothing)\n"
        "or safetensors, holding a pretrained encoder (torchvision or timm ResNet/ResNeXt, Cadene SENet, an smp-hub\n"
        "encoder file: written as the encoder alone, for `init --encoder-weights` and `train --init`) or a whole\n"
        "model (smp Unet, the winner's AlbuNet; {'state_dict': ...} / {'model': ...} wrappers and 'module.'\n"
        "prefixes are undone). The naming is detected (--from overrides it); what is dropped (classifiers,\n"
        "AlbuNet's encoder aliases, optimizer state) is listed, and a missing tensor or a shape mismatch is an\n"
        "error naming the key and both shapes."};
    int rc = pn_cli_parse(argc, argv, opts, &help);
    if (rc) return rc < 0 ? 0 : rc;
    return pn_cli_exit("import", import(&a));
}
