/* cmd_init: writes smp-style initialised U-Net weights to a safetensors file. */
#include <stdio.h>

#include "checks.h"
#include "cli.h"
#include "common.h"

int pn_cmd_init(int argc, char **argv) {
    const char *encoder = "resnet34", *out = NULL;
    int seed = 0;
    bool force = false;
    const pn_opt opts[] = {
        {"encoder", PN_OPT_STR, &encoder, "NAME", "encoder: resnet34 (default) or resnet18", false},
        {"seed", PN_OPT_INT, &seed, "N", "seed of the counter-based generator (default 0)", false},
        {"out", PN_OPT_STR, &out, "W.safetensors", "where to write the weights", true},
        {"force", PN_OPT_FLAG, &force, NULL, "overwrite an existing file", false},
        {0},
    };
    const pn_command_help help = {"pneumoseg init --out W.safetensors [--encoder resnet34] [--seed N]",
                                  "Writes weights initialised as segmentation_models_pytorch does for "
                                  "Unet(encoder, encoder_weights=None, classes=1): kaiming-normal encoder convs, "
                                  "kaiming-uniform decoder convs, xavier-uniform head, BatchNorm 1/0. The same seed "
                                  "gives the same weights on every machine."};
    int rc = pn_cli_parse(argc, argv, opts, &help);
    if (rc) return rc < 0 ? 0 : rc;
    pn_backend *be = NULL;
    pn_unet *m = NULL;
    pn_status st = pn_check_out_file("--out", out, force, NULL, 0);
    if (st == PN_OK) st = pn_backend_open("ref", 1, &be);
    if (st == PN_OK) st = pn_unet_create(encoder, be, &m);
    if (st == PN_OK) st = pn_unet_init_weights(m, (uint64_t)seed);
    if (st == PN_OK) st = pn_unet_save(m, out);
    if (st == PN_OK) pn_log_info("wrote %s (%s, %lld parameters, seed %d)", out, encoder, (long long)pn_unet_param_count(m), seed);
    pn_unet_free(m);
    pn_backend_close(be);
    return pn_cli_exit("init", st);
}
