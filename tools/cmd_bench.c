/* cmd_bench: times U-Net inference and training steps (median, min, max after warm-up; peak RSS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_loader.h"
#include "checks.h"
#include "cli.h"
#include "backend_setup.h"
#include "model_load.h"
#include "int8_file.h"
#include "tools/conv_layers.h"
#include "core/rng.h"
#include "train_dist.h"

typedef struct bench_args {
    const char *weights;
    pn_compute_opts compute;
    pn_arch_opts arch;
    int size, batch, runs, warmup;
} bench_args;

#define BENCH_SEED 1234 /* the weights bench times unless --weights is given: smp's initialisation, this seed */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fill_random(float *v, int64_t n, uint32_t stream, bool binary) {
    pn_rng r = pn_rng_make(0, PN_RNG_TEST, stream, 0);
    for (int64_t i = 0; i < n; i++) v[i] = binary ? (float)(pn_rng_uniform(&r) < 0.2f) : pn_rng_normal(&r);
}

/* One timed unit of work: a forward pass, or forward + loss + backward + Adam. */
static pn_status bench_once(pn_unet *m, bool train, int64_t step) {
    if (!train) {
        PN_TRY(pn_unet_forward(m));
        return pn_backend_synchronize(pn_unet_backend(m));
    }
    float loss;
    pn_adam_params ap = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, step};
    PN_TRY(pn_unet_zero_grad(m));
    PN_TRY(pn_unet_forward(m));
    PN_TRY(pn_unet_loss(m, 3.0f, 1.0f, 4.0f, &loss));
    PN_TRY(pn_unet_backward(m, 1.0f));
    PN_TRY(pn_unet_adam_step(m, &ap));
    return pn_backend_synchronize(pn_unet_backend(m));
}

static pn_status setup_model(const bench_args *a, bool train, pn_backend **be, pn_unet **m, bool *int8) {
    PN_TRY(pn_tool_setup_backend(&a->compute, be));
    *int8 = false;
    if (a->weights) {
        PN_TRY(pn_int8_apply(*be, a->weights, int8));
        PN_TRY(pn_tool_load_model(&a->arch, a->weights, *be, m));
    } else { /* real weights: all-zero ones run measurably faster than trained or initialised ones */
        pn_arch arch;
        PN_TRY(pn_tool_arch(&a->arch, &arch));
        PN_TRY(pn_unet_create_arch(&arch, *be, m));
        PN_TRY(pn_unet_init_weights(*m, BENCH_SEED));
    }
    PN_TRY(pn_unet_plan(*m, a->batch, a->size, a->size, train ? PN_UNET_TRAIN : PN_UNET_EVAL));
    int64_t n = (int64_t)a->batch * a->size * a->size;
    float *v = malloc((size_t)(3 * n) * sizeof *v);
    if (!v) return pn_error(PN_ERR_NOMEM, "out of memory");
    fill_random(v, 3 * n, 1, false);
    pn_status st = pn_tensor_set(pn_unet_input(*m), v);
    if (st == PN_OK && train) {
        fill_random(v, n, 2, true);
        st = pn_tensor_set(pn_unet_target(*m), v);
    }
    free(v);
    return st;
}

static pn_status run_bench(const bench_args *a, bool train) {
    pn_backend *be = NULL;
    pn_unet *m = NULL;
    double *times = calloc((size_t)a->runs, sizeof *times);
    bool int8 = false;
    pn_status st = times ? setup_model(a, train, &be, &m, &int8) : pn_error(PN_ERR_NOMEM, "out of memory");
    for (int i = 0; st == PN_OK && i < a->warmup; i++) st = bench_once(m, train, i + 1);
    for (int i = 0; st == PN_OK && i < a->runs; i++) {
        double t0 = pn_now();
        st = bench_once(m, train, a->warmup + i + 1);
        times[i] = pn_now() - t0;
    }
    if (st == PN_OK) {
        qsort(times, (size_t)a->runs, sizeof *times, cmp_double);
        double median = a->runs % 2 ? times[a->runs / 2] : 0.5 * (times[a->runs / 2 - 1] + times[a->runs / 2]);
        printf("bench %s backend=%s encoder=%s decoder=%s%s%s batch=%d size=%d threads=%d precision=%s conv-algo=%s "
               "runs=%d warmup=%d\n",
               train ? "train" : "infer", be->name, pn_unet_card(m)->encoder, pn_unet_card(m)->decoder,
               pn_unet_card(m)->attention[0] ? "+" : "", pn_unet_card(m)->attention, a->batch, a->size,
               a->compute.threads, int8 ? "int8" : a->compute.precision, a->compute.conv_algo, a->runs, a->warmup);
        if (a->weights)
            printf("weights %s\n", a->weights);
        else
            printf("weights: initialised (smp's initialisation, seed %d), not zero\n", BENCH_SEED);
        printf("median %.4f s  min %.4f s  max %.4f s  (%.2f images/s)\n", median, times[0], times[a->runs - 1],
               a->batch / median);
        printf("arena %.1f MB (peak live %.1f MB)  peak RSS %.1f MB\n", (double)pn_unet_arena_bytes(m) / 1e6,
               (double)pn_unet_peak_live_bytes(m) / 1e6, (double)pn_peak_rss_bytes() / 1e6);
    }
    free(times);
    pn_tool_conv_algo_done(be);
    pn_unet_free(m);
    pn_backend_close(be);
    return st;
}

static int bench_model(int argc, char **argv, bool train) {
    bench_args a = {.compute = {.backend = "auto", .precision = "fp32", .conv_algo = "auto"},
                    .size = train ? 256 : 512,
                    .batch = train ? 4 : 1,
                    .runs = 5,
                    .warmup = 1};
    const pn_opt opts[] = {
        {"size", PN_OPT_INT, &a.size, "S", "image side, a multiple of 32 (infer 512, train 256)", false},
        {"batch", PN_OPT_INT, &a.batch, "N", "batch size (infer 1, train 4)", false},
        {"runs", PN_OPT_INT, &a.runs, "N", "timed runs (default 5)", false},
        {"warmup", PN_OPT_INT, &a.warmup, "N", "untimed runs first (default 1)", false},
        {"weights", PN_OPT_STR, &a.weights, "W",
         "weights to load, float32 or int8 (default: smp's initialisation, "
         "seed 1234)",
         false},
        PN_ARCH_OPTIONS(&a.arch, "resnet34, or the --weights file's", "unet, or the --weights file's",
                        "none, or the --weights file's"),
        PN_COMPUTE_OPTIONS(&a.compute, "auto, as infer and train run"),
        {0},
    };
    const pn_command_help help = {train ? "pneumoseg bench train [--size 256] [--batch 4] [--runs 5]"
                                        : "pneumoseg bench infer [--size 512] [--batch 1] [--runs 5]",
                                  train ? "Times a training step: forward, ComboLoss, backward and Adam."
                                        : "Times a forward pass of the U-Net in eval mode."};
    const pn_opt_range ranges[] = {PN_AT_LEAST("size", 32),  PN_AT_LEAST("batch", 1),   PN_AT_LEAST("runs", 1),
                                   PN_AT_LEAST("warmup", 0), PN_AT_LEAST("threads", 0), {NULL, 0, 0, false, false}};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    if (a.size % 32) {
        fprintf(stderr, "pneumoseg bench: --size %d: expected a multiple of 32 (see --help)\n", a.size);
        return 2;
    }
    pn_status flags = pn_check_model_flags(a.arch.encoder, a.arch.decoder, a.arch.attention, a.compute.conv_algo);
    if (flags == PN_OK) flags = pn_check_precision(a.compute.precision);
    return pn_cli_exit("bench", flags != PN_OK ? flags : run_bench(&a, train));
}

static int bench_infer(int argc, char **argv) { return bench_model(argc, argv, false); }
static int bench_train(int argc, char **argv) { return bench_model(argc, argv, true); }

static int bench_ops(int argc, char **argv) {
    bench_args a = {.compute = {.backend = "auto", .precision = "fp32", .conv_algo = "direct"},
                    .size = 512,
                    .batch = 1,
                    .runs = 5,
                    .warmup = 2};
    bool backward = false, algos = false;
    const pn_opt opts[] = {
        {"size", PN_OPT_INT, &a.size, "S", "image side the layer shapes come from (default 512)", false},
        {"batch", PN_OPT_INT, &a.batch, "N", "batch size (default 1)", false},
        {"runs", PN_OPT_INT, &a.runs, "N", "timed runs per layer (default 5)", false},
        {"warmup", PN_OPT_INT, &a.warmup, "N", "untimed runs first (default 2)", false},
        {"backward", PN_OPT_FLAG, &backward, NULL, "also time bwd_data and bwd_weights", false},
        PN_ARCH_OPTIONS(&a.arch, "resnet34", "unet", "none"),
        {"algos", PN_OPT_FLAG, &algos, NULL,
         "cpu: time direct against Winograd on every 3x3 stride-1 layer, alternating", false},
        PN_COMPUTE_OPTIONS(&a.compute, "direct (the algorithm of the timed layers; --algos times both)"),
        {0},
    };
    const pn_command_help help = {"pneumoseg bench ops [--size 512] [--batch 1] [--backward] [--encoder E]",
                                  "Times every distinct convolution of the model (default Unet-resnet34) on its own "
                                  "(random data) and "
                                  "prints median, min and max milliseconds and GFLOP/s per layer."};
    const pn_opt_range ranges[] = {PN_AT_LEAST("size", 32),  PN_AT_LEAST("batch", 1),   PN_AT_LEAST("runs", 1),
                                   PN_AT_LEAST("warmup", 0), PN_AT_LEAST("threads", 0), {NULL, 0, 0, false, false}};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    if (a.size % 32) {
        fprintf(stderr,
                "pneumoseg bench ops: need --runs >= 1, --warmup >= 0, --batch >= 1 and --size a multiple of 32\n");
        return 2;
    }
    pn_backend *be = NULL;
    pn_arch arch;
    char text[96];
    pn_status st = pn_check_model_flags(a.arch.encoder, a.arch.decoder, a.arch.attention, a.compute.conv_algo);
    if (st == PN_OK) st = pn_tool_arch(&a.arch, &arch);
    if (st == PN_OK) st = pn_tool_setup_backend(&a.compute, &be);
    if (st == PN_OK) {
        printf("bench ops backend=%s model=%s batch=%d size=%d threads=%d runs=%d warmup=%d\n", be->name,
               pn_arch_text(&arch, text, sizeof text), a.batch, a.size, a.compute.threads, a.runs, a.warmup);
        if (algos)
            st = pn_bench_conv_algos(be, &arch, a.size, a.batch, a.warmup, a.runs, backward, stdout);
        else
            st = pn_bench_conv_layers(be, &arch, a.size, a.batch, a.warmup, a.runs, backward, stdout);
    }
    if (st == PN_OK) printf("peak RSS %.1f MB\n", (double)pn_peak_rss_bytes() / 1e6);
    pn_backend_close(be);
    return pn_cli_exit("bench", st);
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} benches[] = {
    {"ops", bench_ops, "GFLOP/s of every convolution of the U-Net, one layer at a time"},
    {"infer", bench_infer, "U-Net forward pass (eval mode)"},
    {"train", bench_train, "U-Net training step (forward, loss, backward, Adam)"},
    {"loader", pn_bench_loader, "images/s of the threaded PNG -> augmentation -> batch loader"},
    {"dist", pn_bench_dist, "data-parallel training step and gradient all-reduce (under mpirun)"},
};

int pn_cmd_bench(int argc, char **argv) {
    size_t count = sizeof benches / sizeof benches[0];
    if (argc >= 2)
        for (size_t i = 0; i < count; i++)
            if (strcmp(argv[1], benches[i].name) == 0) return benches[i].fn(argc - 1, argv + 1);
    FILE *to = argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr;
    fprintf(to, "usage: pneumoseg bench <what> [options]   (pneumoseg bench <what> --help)\n\n");
    for (size_t i = 0; i < count; i++) fprintf(to, "  %-8s %s\n", benches[i].name, benches[i].summary);
    return to == stdout ? 0 : 2;
}
