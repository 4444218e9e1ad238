/* cmd_models: lists every architecture pneumoseg builds with its parameter count, multiply-adds and PyTorch call. */
#include <stdio.h>

#include "cli.h"
#include "core/unet.h"

int pn_cmd_models(int argc, char **argv) {
    int size = 512;
    const pn_opt opts[] = {
        {"size", PN_OPT_INT, &size, "PX", "input size for the multiply-add count (default 512)", false},
        {0},
    };
    const pn_command_help help = {"pneumoseg models [--size 512]",
                                  "Lists every architecture (--encoder, --decoder, --attention of init/train), its "
                                  "trainable parameters, the forward multiply-adds of its convolutions at 1 x 3 x "
                                  "size x size, and the PyTorch constructor it matches."};
    int rc = pn_cli_parse(argc, argv, opts, &help);
    if (rc) return rc < 0 ? 0 : rc;
    if (size < 64 || size % 64 || size > 8192) {
        fprintf(stderr, "pneumoseg models: --size must be a multiple of 64 between 64 and 8192, got %d\n", size);
        return 2;
    }
    printf("%-20s %-13s %12s %10s  %s\n", "encoder", "decoder", "parameters", "GMAC", "PyTorch");
    pn_arch a;
    for (int i = 0; pn_arch_at(i, &a); i++) {
        int64_t params;
        double macs;
        if (pn_arch_count(&a, size, size, &params, &macs) != PN_OK) return pn_cli_fail("models");
        char dec[32], call[160];
        snprintf(dec, sizeof dec, "%s%s%s", a.decoder, a.attention[0] ? "+" : "", a.attention);
        printf("%-20s %-13s %12lld %10.3f  %s\n", a.encoder, dec, (long long)params, macs / 1e9,
               pn_arch_pytorch_call(&a, call, sizeof call));
    }
    return 0;
}
