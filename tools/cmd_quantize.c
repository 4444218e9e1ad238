/* cmd_quantize: makes an int8 model: runs float32 inference on calibration images, records the input range of every
 * convolution, and writes the weights with those ranges (infer, eval and predict then run its convolutions in int8). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/options.h"
#include "checks.h"
#include "cli.h"
#include "backend_setup.h"
#include "model_load.h"
#include "files.h"
#include "data/augment.h"
#include "data/prepare.h"
#include "int8_file.h"

#define DEFAULT_PERCENTILE 99.99
#define DEFAULT_PERCENTILE_TEXT "99.99"

typedef struct quantize_args {
    const char *weights, *calib, *out, *norm, *keep;
    pn_arch_opts arch;
    int n, size, threads;
    double percentile;
    bool force;
    char heads[1024]; /* the default --keep-fp32: the model's convolutions with one output channel */
} quantize_args;

/* Whether conv `label` (its weight's name) stays float32: named in the comma list `keep`, with or without
 * ".weight". */
static bool kept(const char *keep, const char *label) {
    size_t n = strlen(label);
    if (n > 7 && strcmp(label + n - 7, ".weight") == 0) n -= 7;
    for (const char *p = keep; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if ((len == n || len == n + 7) && strncmp(p, label, len) == 0) return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* Every name in --keep-fp32 must be a convolution of the model: a typo would quantize what it meant to keep. */
static pn_status check_keep(const quantize_args *a, pn_unet *m) {
    for (const char *p = a->keep; p && *p;) {
        const char *end = strchr(p, ',');
        char one[256];
        snprintf(one, sizeof one, "%.*s", (int)(end ? (size_t)(end - p) : strlen(p)), p);
        bool found = one[0] == 0;
        for (int i = 0; !found && i < pn_unet_num_params(m); i++) {
            const pn_unet_param *q = pn_unet_param_at(m, i);
            found = q->value.ndim == 4 && kept(one, q->name);
        }
        if (!found)
            return pn_error(PN_ERR_USAGE, "--keep-fp32: '%s' is not a convolution of this %s %s model", one,
                            pn_unet_card(m)->encoder, pn_unet_card(m)->decoder);
        p = end ? end + 1 : NULL;
    }
    return PN_OK;
}

/* Without --keep-fp32: every convolution with one output channel (the logits head, segmentation_head.0 or final, and
 * any spatial attention gate) stays float32; the rest, the stem on the signed normalised image included, go int8. */
static pn_status default_keep(quantize_args *a, pn_unet *m) {
    if (a->keep) return PN_OK;
    size_t used = 0;
    for (int i = 0; i < pn_unet_num_params(m); i++) {
        const pn_unet_param *q = pn_unet_param_at(m, i);
        if (q->value.ndim != 4 || q->value.shape[0] != 1) continue;
        size_t n = strlen(q->name);
        if (n > 7 && strcmp(q->name + n - 7, ".weight") == 0) n -= 7;
        if (used + n + 2 > sizeof a->heads)
            return pn_error(PN_ERR_ARG,
                            "too many one-channel convolutions to keep in float32; name them in --keep-fp32");
        used += (size_t)snprintf(a->heads + used, sizeof a->heads - used, "%s%.*s", used ? "," : "", (int)n, q->name);
    }
    a->keep = a->heads;
    return PN_OK;
}

/* Runs the model on the chosen images with calibration on. */
static pn_status calibrate(const quantize_args *a, pn_backend *be, pn_unet *m, char **files, int n_files, int use,
                           pn_norm_mode norm) {
    int s = a->size;
    uint8_t *grey = malloc((size_t)s * s);
    float *x = malloc((size_t)3 * s * s * sizeof *x);
    pn_status st = grey && x ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    if (st == PN_OK) st = pn_unet_plan(m, 1, s, s, PN_UNET_EVAL);
    if (st == PN_OK) st = pn_backend_calibrate(be, true);
    pn_progress bar;
    pn_progress_begin(&bar, "calibrating", use);
    for (int i = 0; i < use && st == PN_OK; i++) {
        const char *path = files[(int64_t)i * n_files / use]; /* spread over the sorted list */
        st = pn_prepare_read_png(path, s, grey);
        if (st == PN_OK) {
            pn_aug_normalize(grey, s, s, norm, x);
            st = pn_tensor_set(pn_unet_input(m), x);
        }
        if (st == PN_OK) st = pn_unet_forward(m);
        if (st == PN_OK) st = pn_backend_synchronize(be);
        pn_progress_step(&bar, 1, NULL);
    }
    pn_progress_end(&bar);
    if (st == PN_OK) st = pn_backend_calibrate(be, false);
    free(grey);
    free(x);
    return st;
}

/* Writes the weights with the ranges of every calibrated convolution not kept in float32. */
static pn_status write_int8(const quantize_args *a, pn_backend *be, pn_unet *m, int used) {
    const char *const *labels;
    const float *lo, *hi;
    int n = pn_backend_calibration(be, &labels, &lo, &hi);
    const char **ql = malloc((size_t)(n > 0 ? n : 1) * sizeof *ql);
    float *qlo = malloc((size_t)(n > 0 ? n : 1) * sizeof *qlo), *qhi = malloc((size_t)(n > 0 ? n : 1) * sizeof *qhi);
    pn_st_writer *w = pn_st_writer_new();
    pn_status st = ql && qlo && qhi && w ? PN_OK : pn_error(PN_ERR_NOMEM, "out of memory");
    int q = 0;
    for (int i = 0; i < n && st == PN_OK; i++) {
        if (kept(a->keep, labels[i])) continue;
        float l, h;
        pn_backend_calibration_range(be, i, a->percentile, &l, &h);
        if (!(h > 0) || !(h >= l)) { /* an input that never left zero: nothing to scale, keep float32 */
            pn_log_warn("%s: input range [%g, %g] on the calibration images; kept in float32", labels[i], lo[i], hi[i]);
            continue;
        }
        ql[q] = labels[i], qlo[q] = l, qhi[q] = h;
        q++;
    }
    char how[4200];
    snprintf(how, sizeof how,
             "%d images from %s at %dx%d, input ranges = the %g-th percentile of |x| over them "
             "(100 = min/max); float32: %s",
             used, a->calib, a->size, a->size, a->percentile, a->keep && a->keep[0] ? a->keep : "none");
    if (st == PN_OK) st = pn_unet_add_weights(m, w, "");
    if (st == PN_OK) st = pn_st_writer_meta(w, "format", "pt");
    if (st == PN_OK) st = pn_st_writer_meta(w, "producer", "pneumoseg");
    if (st == PN_OK) st = pn_model_card_write(pn_unet_card(m), w);
    if (st == PN_OK) st = pn_int8_meta_write(w, q, ql, qlo, qhi, how);
    if (st == PN_OK) st = pn_st_writer_save(w, a->out);
    if (st == PN_OK)
        pn_log_info("wrote %s: %d of %d convolutions in int8 (input ranges from %d images), the rest float32", a->out,
                    q, n, used);
    pn_st_writer_free(w);
    free(ql);
    free(qlo);
    free(qhi);
    return st;
}

static pn_status run_quantize(quantize_args *a) {
    if (a->size && a->size % 32) return pn_error(PN_ERR_USAGE, "--size must be a multiple of 32, got %d", a->size);
    PN_TRY(pn_check_model_flags(a->arch.encoder, a->arch.decoder, a->arch.attention, NULL));
    if (a->norm) {
        pn_norm_mode mode;
        PN_TRY(pn_as_usage(pn_norm_parse(a->norm, &mode)));
    }
    const pn_named_path inputs[] = {{"--weights", a->weights}, {"--calib", a->calib}};
    PN_TRY(pn_check_out_file("--out", a->out, a->force, inputs, 2));
    char **files = NULL;
    int n_files = 0;
    PN_TRY(pn_list_files(a->calib, ".png", false, &files, &n_files));
    pn_backend *be = NULL;
    pn_unet *m = NULL;
    pn_status st = PN_OK;
    if (n_files == 0)
        st = pn_error(PN_ERR_ARG,
                      "%s: no images (.png) to calibrate with; give a folder of prepared images such as "
                      "DATA/train",
                      a->calib);
    if (st == PN_OK) st = pn_tool_open_backend("cpu", a->threads, &be);
    if (st == PN_OK && !pn_backend_has_int8(be))
        st = pn_error(PN_ERR_UNSUPPORTED, "int8 models run on oneDNN's int8 convolutions and this build has no oneDNN");
    if (st == PN_OK) st = pn_tool_set_conv_algo(be, "direct"); /* measure the float32 ranges, not the arithmetic */
    if (st == PN_OK) st = pn_tool_load_model(&a->arch, a->weights, be, &m);
    if (st == PN_OK) st = default_keep(a, m);
    if (st == PN_OK) st = check_keep(a, m);
    pn_norm_mode norm = PN_NORM_IMAGENET;
    if (st == PN_OK) {
        const pn_model_card *card = pn_unet_card(m);
        if (a->size == 0) a->size = card->train_size > 0 ? card->train_size : 512;
        if (!a->norm) a->norm = card->normalize[0] ? card->normalize : "imagenet";
        st = pn_norm_parse(a->norm, &norm);
    }
    if (st == PN_OK && a->size % 32)
        st = pn_error(PN_ERR_FORMAT, "%s records training size %d, not a multiple of 32", a->weights, a->size);
    int use = n_files < a->n ? n_files : a->n;
    if (st == PN_OK) {
        pn_log_info("calibrating on %d of the %d images in %s at %dx%d (%s normalisation)", use, n_files, a->calib,
                    a->size, a->size, a->norm);
        st = calibrate(a, be, m, files, n_files, use, norm);
    }
    if (st == PN_OK) st = write_int8(a, be, m, use);
    pn_unet_free(m);
    pn_backend_close(be);
    pn_free_list(files, n_files);
    return st;
}

int pn_cmd_quantize(int argc, char **argv) {
    quantize_args a = {.n = 64, .percentile = DEFAULT_PERCENTILE};
    const pn_opt opts[] = {
        {"weights", PN_OPT_STR, &a.weights, "W", "float32 weights to quantize (safetensors, smp names)", true},
        {"calib", PN_OPT_STR, &a.calib, "DIR", "calibration images: a folder of PNGs, e.g. prepared DATA/train", true},
        {"out", PN_OPT_STR, &a.out, "Wq", "where to write the int8 model", true},
        {"n", PN_OPT_INT, &a.n, "N", "images to calibrate on, spread over the sorted folder (default 64)", false},
        {"size", PN_OPT_INT, &a.size, "S", "calibration side (default: the size the model was trained at, else 512)",
         false},
        {"norm", PN_OPT_STR, &a.norm, "MODE", "input scaling (default: the model's, else imagenet)", false},
        {"percentile", PN_OPT_FLOAT, &a.percentile, "P",
         "input range: the P-th percentile of |x| on the calibration "
         "images, values beyond it saturate (100: the largest; default " DEFAULT_PERCENTILE_TEXT ")",
         false},
        {"keep-fp32", PN_OPT_STR, &a.keep, "LIST",
         "convolutions left in float32, comma-separated (default: those with one output channel, i.e. the logits "
         "head; the stem runs in int8 on the normalised image as an s8 input)",
         false},
        PN_ARCH_OPTIONS_OF_WEIGHTS(&a.arch),
        {"threads", PN_OPT_INT, &a.threads, "N", "threads (default 0 = all cores)", false},
        {"force", PN_OPT_FLAG, &a.force, NULL, "overwrite --out if it exists", false},
        {NULL, 0, NULL, NULL, NULL, false},
    };
    const pn_command_help help = {
        "pneumoseg quantize --weights W --calib DIR [--n 64] --out Wq",
        "Makes an int8 model for CPU inference: runs W in float32 on --n calibration images and records the input "
        "range of every convolution. Wq holds W's float32 weights and those ranges; infer, eval and predict (cpu "
        "backend) then run each listed convolution with an 8-bit input (one scale from its range), 8-bit weights "
        "(one symmetric scale per output channel, BatchNorm folded in first) and a float32 output."};
    const pn_opt_range ranges[] = {PN_AT_LEAST("n", 1),
                                   PN_AT_LEAST("size", 0),
                                   PN_BETWEEN("percentile", 50, 100),
                                   PN_AT_LEAST("threads", 0),
                                   {NULL, 0, 0, false, false}};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    a.threads = pn_cap_threads("--threads", a.threads);
    return pn_cli_exit("quantize", run_quantize(&a));
}
