/* cmd_init: writes smp-style initialised U-Net weights to a safetensors file, optionally with a pretrained encoder. */
#include <stdio.h>

#include "checks.h"
#include "cli.h"
#include "data/keymap.h"
#include "model_load.h"
#include "weights.h"

int pn_cmd_init(int argc, char **argv) {
    const char *out = NULL, *encoder_weights = NULL, *from = NULL;
    pn_arch_opts names = {0};
    int seed = 0;
    bool force = false;
    const pn_opt opts[] = {
        PN_ARCH_OPTIONS(&names, "resnet34", "unet, smp's Unet; albunet is the 1st place's", "none"),
        {"encoder-weights", PN_OPT_STR, &encoder_weights, "FILE",
         "take the encoder from this checkpoint (.pth or "
         ".safetensors: torchvision, timm, Cadene, smp)",
         false},
        {"from", PN_OPT_STR, &from, "NAMING",
         "names in --encoder-weights: auto (default) | smp | torchvision | timm | "
         "cadene | albunet",
         false},
        {"seed", PN_OPT_INT, &seed, "N", "seed of the counter-based generator (default 0)", false},
        {"out", PN_OPT_STR, &out, "W.safetensors", "where to write the weights", true},
        {"force", PN_OPT_FLAG, &force, NULL, "overwrite an existing file", false},
        {0},
    };
    const pn_command_help help = {
        "pneumoseg init --out W.safetensors [--encoder resnet34] [--decoder unet|albunet] "
        "[--attention scse] [--seed N] [--encoder-weights FILE [--from NAMING]] [--force]",
        "Writes weights initialised as segmentation_models_pytorch does for "
        "Unet(encoder, encoder_weights=None, classes=1): kaiming-normal encoder convs, "
        "kaiming-uniform decoder convs, xavier-uniform head, BatchNorm 1/0, biases 0 (AlbuNet "
        "the same way). The architecture is recorded in the file's metadata. The same seed "
        "gives the same weights on every machine. With --encoder-weights the encoder comes "
        "from a pretrained checkpoint (an ImageNet .pth from torchvision or Cadene, a timm or "
        "smp-hub safetensors, any whole smp or AlbuNet model) and the decoder and head from "
        "the seed; the input normalisation the encoder expects is recorded in the file."};
    const pn_opt_range ranges[] = {PN_AT_LEAST("seed", 0), {NULL, 0, 0, false, false}};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    pn_backend *be = NULL;
    pn_unet *m = NULL;
    pn_arch arch;
    pn_load_result r;
    char text[96];
    pn_status st = pn_tool_arch(&names, &arch);
    if (st != PN_OK) {
        fprintf(stderr, "pneumoseg init: %s\n", pn_last_error());
        return 2;
    }
    pn_keymap_from naming;
    if (from && !encoder_weights)
        st = pn_error(PN_ERR_USAGE, "--from names the naming of --encoder-weights: give both");
    if (st == PN_OK && from) st = pn_as_usage(pn_keymap_from_parse(from, &naming));
    if (st != PN_OK) return pn_cli_exit("init", st);
    const pn_named_path inputs[] = {{"--encoder-weights", encoder_weights}};
    st = pn_check_out_file("--out", out, force, inputs, 1);
    if (st == PN_OK) st = pn_backend_open("ref", 1, &be);
    if (st == PN_OK) st = pn_unet_create_arch(&arch, be, &m);
    if (st == PN_OK) st = pn_unet_init_weights(m, (uint64_t)seed);
    if (st == PN_OK && encoder_weights) st = pn_tool_load_weights(m, encoder_weights, PN_LOAD_ENCODER, from, &r);
    if (st == PN_OK) st = pn_unet_save(m, out);
    if (st == PN_OK)
        pn_log_info("wrote %s (%s, %lld parameters, %s%s, seed %d%s%s)", out, pn_arch_text(&arch, text, sizeof text),
                    (long long)pn_unet_param_count(m), encoder_weights ? "encoder from " : "",
                    encoder_weights ? encoder_weights : "seeded", seed,
                    pn_unet_card(m)->normalize[0] ? ", input normalisation " : "", pn_unet_card(m)->normalize);
    pn_unet_free(m);
    pn_backend_close(be);
    return pn_cli_exit("init", st);
}
