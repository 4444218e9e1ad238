/* cmd_infer: runs the U-Net on a float32 NCHW .npy tensor and saves logits and/or probabilities. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "cli.h"
#include "backend_setup.h"
#include "model_load.h"
#include "int8_file.h"
#include "startup.h"
#include "data/npy.h"

typedef struct infer_args {
    const char *weights, *input, *save_logits, *save_probs, *mode;
    pn_compute_opts compute;
    pn_arch_opts arch;
    bool force, verbose;
} infer_args;

/* The outputs before any work: not an input, not each other, nothing overwritten without --force. */
static pn_status check_outputs(const infer_args *a) {
    const pn_named_path inputs[] = {{"--input", a->input}, {"--weights", a->weights}};
    const pn_named_path outputs[] = {{"--save-logits", a->save_logits}, {"--save-probs", a->save_probs}};
    PN_TRY(pn_check_distinct_outputs(outputs, 2));
    PN_TRY(pn_check_out_file("--save-logits", a->save_logits, a->force, inputs, 2));
    return pn_check_out_file("--save-probs", a->save_probs, a->force, inputs, 2);
}

static pn_status run_infer(const infer_args *a) {
    bool train = strcmp(a->mode, "train") == 0;
    if (!train && strcmp(a->mode, "eval") != 0)
        return pn_error(PN_ERR_USAGE, "--mode must be eval or train, got '%s'", a->mode);
    PN_TRY(pn_check_model_flags(a->arch.encoder, a->arch.decoder, a->arch.attention, a->compute.conv_algo));
    PN_TRY(pn_check_precision(a->compute.precision));
    PN_TRY(check_outputs(a));
    pn_startup clock;
    pn_startup_begin(&clock, a->verbose);
    pn_npy x;
    PN_TRY(pn_npy_read(a->input, 4, 4, &x));
    pn_startup_lap(&clock, "input read");
    pn_backend *be = NULL;
    pn_unet *m = NULL;
    pn_status st = PN_OK;
    if (x.shape[1] != 3)
        st = pn_error(PN_ERR_FORMAT, "%s: expected 3 channels (N,3,H,W), got shape (%lld,%lld,%lld,%lld)", a->input,
                      (long long)x.shape[0], (long long)x.shape[1], (long long)x.shape[2], (long long)x.shape[3]);
    if (st == PN_OK) st = pn_tool_setup_backend(&a->compute, &be);
    bool int8 = false;
    if (st == PN_OK) st = pn_int8_apply(be, a->weights, &int8);
    pn_startup_lap(&clock, "backend");
    if (st == PN_OK) st = pn_startup_load_model(&clock, &a->arch, a->weights, be, &m);
    if (st == PN_OK && pn_unet_card(m)->normalize[0]) /* infer takes its input already scaled */
        pn_log_info("the weights expect '%s' input normalisation (infer uses the input as given)",
                    pn_unet_card(m)->normalize);
    if (st == PN_OK)
        st = pn_unet_plan(m, (int)x.shape[0], (int)x.shape[2], (int)x.shape[3], train ? PN_UNET_TRAIN : PN_UNET_EVAL);
    pn_startup_plan(&clock, be);
    if (st == PN_OK) {
        pn_log_info("activation arena %.1f MB (%.1f MB without reuse)", (double)pn_unet_arena_bytes(m) / 1e6,
                    (double)pn_unet_unshared_bytes(m) / 1e6);
        st = pn_tensor_set(pn_unet_input(m), x.data);
    }
    double t0 = pn_now();
    if (st == PN_OK) st = pn_unet_forward(m);
    if (st == PN_OK) st = pn_backend_synchronize(be);
    int64_t n = x.shape[0] * x.shape[2] * x.shape[3];
    float *out = st == PN_OK ? malloc((size_t)n * sizeof *out) : NULL;
    if (st == PN_OK && !out) st = pn_error(PN_ERR_NOMEM, "out of memory");
    if (st == PN_OK) st = pn_tensor_get(pn_unet_logits(m), out);
    if (st == PN_OK) pn_log_info("forward %.3f s", pn_now() - t0);
    pn_startup_forward(&clock, be);
    int64_t shape[4] = {x.shape[0], 1, x.shape[2], x.shape[3]};
    if (st == PN_OK && a->save_logits) st = pn_npy_write(a->save_logits, 4, shape, out);
    if (st == PN_OK && a->save_probs) {
        for (int64_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-out[i]));
        st = pn_npy_write(a->save_probs, 4, shape, out);
    }
    pn_startup_lap(&clock, "output write");
    free(out);
    pn_free(x.data);
    pn_tool_conv_algo_done(be);
    pn_unet_free(m);
    pn_backend_close(be);
    pn_startup_lap(&clock, "release");
    if (st == PN_OK) pn_startup_end(&clock);
    return st;
}

int pn_cmd_infer(int argc, char **argv) {
    infer_args a = {.mode = "eval", .compute = {.backend = "auto", .precision = "fp32", .conv_algo = "auto"}};
    const pn_opt opts[] = {
        {"weights", PN_OPT_STR, &a.weights, "W.safetensors",
         "model weights (smp state_dict names; safetensors or .pth)", true},
        {"input", PN_OPT_STR, &a.input, "X.npy", "float32 array of shape (N, 3, H, W), H and W multiples of 32", true},
        {"save-logits", PN_OPT_STR, &a.save_logits, "Y.npy", "write the logits (N, 1, H, W)", false},
        {"save-probs", PN_OPT_STR, &a.save_probs, "P.npy", "write sigmoid(logits)", false},
        {"mode", PN_OPT_STR, &a.mode, "eval|train", "BatchNorm with running (eval, default) or batch statistics",
         false},
        PN_ARCH_OPTIONS_OF_WEIGHTS(&a.arch),
        PN_COMPUTE_OPTIONS(&a.compute, "auto"),
        {"force", PN_OPT_FLAG, &a.force, NULL, "overwrite existing --save-logits / --save-probs files", false},
        {"verbose", PN_OPT_FLAG, &a.verbose, NULL, "print where the start-up time goes (weights, planning, ...)",
         false},
        {0},
    };
    const pn_opt_range ranges[] = {PN_AT_LEAST("threads", 0), {NULL, 0, 0, false, false}};
    const pn_command_help help = {
        "pneumoseg infer --weights W.safetensors --input X.npy [--save-logits Y.npy] [--save-probs P.npy]",
        "Runs the U-Net on a raw float32 NCHW tensor (already normalised) and writes the result as .npy. "
        "Prints the activation arena size and the peak resident memory."};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    pn_status st = run_infer(&a);
    if (st != PN_OK) return pn_cli_exit("infer", st);
    pn_tool_report_memory();
    return 0;
}
