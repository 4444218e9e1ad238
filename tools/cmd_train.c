/* cmd_train: trains the U-Net on one fold split: ComboLoss, Adam, LR schedules, positive-share sampler,
 * per-epoch validation, metrics CSV + curves PNG, atomic checkpoints (last, best, top-k) and --resume. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bg_sync.h"
#include "checks.h"
#include "cli.h"
#include "backend_setup.h"
#include "model_load.h"
#include "run_settings.h"
#include "fold_split.h"
#include "triplet_grid.h"
#include "validate.h"
#include "train_state.h"
#include "files.h"
#include "core/atomic_file.h"
#include "core/sched.h"
#include "curves.h"
#include "data/image_limit.h"
#include "param_groups.h"
#include "weights.h"
#include "train_dist.h"

/* history columns */
enum { H_EPOCH, H_LR, H_TRAIN, H_VAL, H_SCORE, H_DICE, H_TOP, H_AREA, H_BOTTOM, H_SECONDS, H_COLS };
static const char *H_NAMES[H_COLS] = {"epoch",    "lr",       "train_loss",         "val_loss",    "kaggle",
                                      "pos_dice", "best_top", "best_min_area_1024", "best_bottom", "seconds"};

typedef struct train_args {
    const char *data, *folds, *out, *init, *aug, *border, *norm, *loss, *sched, *milestones, *pos_share, *tops, *areas,
        *bottoms;
    pn_compute_opts compute;
    pn_arch_opts arch;
    int fold, epochs, batch, accum, size, loader_threads, steps_per_epoch, top_k, early_stop, seed, patience, period,
        cosine_start, freeze_encoder;
    double lr, wd, clip, gamma, factor, min_lr, threshold, encoder_lr_scale, max_image_mb;
    bool resume, force, tta, quiet, sync_bn;
} train_args;

typedef struct trainer {
    const train_args *a;
    const char *conv_algo; /* --conv-algo, else auto (one process) or direct (ranks would each measure their own) */
    double w[3];
    pn_sched sched;
    double shares[16];
    int n_shares;
    pn_split split;
    pn_aug_pipeline *aug;
    pn_norm_mode norm;
    char norm_name[16];     /* --norm, else the --init weights' recorded normalisation, else imagenet */
    pn_param_groups groups; /* the encoder's own optimizer group, when groups_on */
    bool groups_on;
    pn_backend *be;
    pn_unet *m;
    pn_train_state state;
    pn_train_dist *dist; /* NULL: one process */
    char path[4096];
} trainer;

static const char *run_file(trainer *t, const char *name) {
    snprintf(t->path, sizeof t->path, "%s/%s", t->a->out, name);
    return t->path;
}

static pn_status parse_loss(const char *text, double w[3]) {
    w[0] = w[1] = w[2] = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        char *end = NULL;
        double v = eq ? strtod(eq + 1, &end) : 0;
        if (!eq || *end || end == eq + 1 || v < 0)
            return pn_error(PN_ERR_ARG, "--loss: '%s' is not name=weight (names bce, dice, focal)", item);
        *eq = 0;
        if (!strcmp(item, "bce"))
            w[0] = v;
        else if (!strcmp(item, "dice"))
            w[1] = v;
        else if (!strcmp(item, "focal"))
            w[2] = v;
        else
            return pn_error(PN_ERR_ARG, "--loss: unknown term '%s' (expected bce, dice or focal)", item);
    }
    if (w[0] + w[1] + w[2] <= 0) return pn_error(PN_ERR_ARG, "--loss: all weights are zero");
    return PN_OK;
}

/* The positive share of epoch e: the list splits the epochs into equal consecutive parts. */
static double share_of(const trainer *t, int e) {
    if (t->n_shares == 0) return 0;
    int part = (int)((int64_t)e * t->n_shares / (t->a->epochs > 0 ? t->a->epochs : 1));
    return t->shares[part < t->n_shares ? part : t->n_shares - 1];
}

static pn_loader_config loader_cfg(const trainer *t, bool train, double share, int epoch_seed_unused) {
    (void)epoch_seed_unused;
    const train_args *a = t->a;
    static char img_dir[4096], mask_dir[4096];
    snprintf(img_dir, sizeof img_dir, "%s/train", a->data);
    snprintf(mask_dir, sizeof mask_dir, "%s/mask", a->data);
    pn_loader_config c = {
        .image_dir = img_dir,
        .mask_dir = mask_dir,
        .ids = (const char *const *)(train ? t->split.train_ids : t->split.val_ids),
        .has_mask = train ? t->split.train_pos : t->split.val_pos,
        .n_ids = train ? t->split.n_train : t->split.n_val,
        .batch_size = train ? a->batch / pn_train_dist_size(t->dist) : a->batch, /* a rank's share (train) */
        .shard = train ? pn_train_dist_rank(t->dist) : 0,
        .shards = train ? pn_train_dist_size(t->dist) : 0,
        .size = a->size,
        .aug = train ? t->aug : NULL,
        .norm = t->norm,
        .sampler = share > 0 ? PN_SAMPLER_POS_SHARE : PN_SAMPLER_SEQUENTIAL,
        .pos_share = share > 0 ? share : 1.0,
        .seed = (uint64_t)a->seed,
        .threads = a->loader_threads,
        .shuffle = train,
        .drop_last = train,
    };
    return c;
}

/* ---- run.json and the --resume check ---- */

/* How a setting may differ when a run is resumed. */
typedef enum { SET_SAME, SET_FREE, SET_WARN } set_rule;
typedef struct setting {
    const char *key, *option; /* run.json key, command-line option */
    set_rule rule;
    char value[1100]; /* the JSON value text, as run.json holds it */
} setting;
enum { MAX_SETTINGS = 48 };

static void json_quote(char *out, size_t cap, const char *v) {
    if (!v) {
        snprintf(out, cap, "null");
        return;
    }
    size_t n = 0;
    out[n++] = '"';
    for (const char *p = v; *p && n + 3 < cap; p++) {
        if (*p == '"' || *p == '\\') out[n++] = '\\';
        if ((unsigned char)*p >= 0x20) out[n++] = *p;
    }
    out[n++] = '"';
    out[n] = 0;
}

static setting *add_setting(setting *s, int *n, const char *key, const char *option, set_rule rule) {
    PN_ASSERT(*n < MAX_SETTINGS);
    setting *x = &s[(*n)++];
    x->key = key;
    x->option = option;
    x->rule = rule;
    x->value[0] = 0;
    return x;
}
#define SET_STR(key, opt, rule, v) json_quote(add_setting(set, &n, key, opt, rule)->value, sizeof set[0].value, v)
#define SET_FMT(key, opt, rule, ...)                                                                                   \
    snprintf(add_setting(set, &n, key, opt, rule)->value, sizeof set[0].value, __VA_ARGS__)

/* Every setting of the run in run.json order, with what --resume allows to change: the number of
 * epochs (unless the sampler's parts or the cosine phase hang on it), threads and backend (a warning:
 * reduction order changes the last bits), and what only decides which files are kept. */
static int collect_settings(const trainer *t, setting *set) {
    const train_args *a = t->a;
    int n = 0;
    char aug[1024] = "none";
    if (t->aug) pn_aug_describe(t->aug, aug, sizeof aug);
    SET_STR("data", "--data", SET_SAME, a->data);
    SET_STR("folds", "--folds", SET_SAME, a->folds);
    SET_FMT("fold", "--fold", SET_SAME, "%d", a->fold);
    SET_FMT("epochs", "--epochs", t->n_shares > 1 ? SET_SAME : SET_FREE, "%d", a->epochs);
    SET_FMT("batch", "--batch", SET_SAME, "%d", a->batch);
    SET_FMT("accum", "--accum", SET_SAME, "%d", a->accum);
    SET_FMT("size", "--size", SET_SAME, "%d", a->size);
    const pn_arch *arch = pn_unet_arch(t->m);
    SET_STR("encoder", "--encoder", SET_SAME, arch->encoder);
    SET_STR("decoder", "--decoder", SET_SAME, arch->decoder);
    SET_STR("attention", "--attention", SET_SAME, arch->attention[0] ? arch->attention : "none");
    SET_STR("init", "--init", SET_FREE, a->init); /* the state's weights replace it */
    SET_FMT("lr", "--lr", SET_SAME, "%.9g", a->lr);
    SET_FMT("weight_decay", "--wd", SET_SAME, "%.9g", a->wd);
    SET_FMT("clip_grad_norm", "--clip", SET_SAME, "%.9g", a->clip);
    SET_FMT("freeze_encoder", "--freeze-encoder", SET_SAME, "%d", a->freeze_encoder);
    SET_FMT("encoder_lr_scale", "--encoder-lr-scale", SET_SAME, "%.9g", a->encoder_lr_scale);
    SET_FMT("loss", "--loss", SET_SAME, "{\"bce\": %.9g, \"dice\": %.9g, \"focal\": %.9g}", t->w[0], t->w[1], t->w[2]);
    SET_STR("sched", "--sched", SET_SAME, a->sched);
    SET_STR("milestones", "--milestones", SET_SAME, a->milestones);
    SET_FMT("gamma", "--gamma", SET_SAME, "%.9g", a->gamma);
    SET_FMT("plateau_factor", "--plateau-factor", SET_SAME, "%.9g", a->factor);
    SET_FMT("plateau_patience", "--plateau-patience", SET_SAME, "%d", a->patience);
    SET_FMT("plateau_threshold", "--plateau-threshold", SET_SAME, "%.9g", a->threshold);
    SET_FMT("min_lr", "--min-lr", SET_SAME, "%.9g", a->min_lr);
    SET_FMT("cosine_period", "--cosine-period", SET_SAME, "%d", a->period);
    SET_FMT("cosine_start", "--cosine-start", SET_SAME, "%d", t->sched.cosine_start);
    SET_STR("aug", "--aug", SET_SAME, aug);
    SET_STR("border", "--border", SET_SAME, a->border);
    SET_STR("norm", "--norm", SET_SAME, t->norm_name);
    SET_STR("pos_share", "--pos-share", SET_SAME, a->pos_share);
    SET_FMT("steps_per_epoch", "--steps-per-epoch", SET_SAME, "%d", a->steps_per_epoch);
    SET_FMT("top_k", "--top-k", SET_FREE, "%d", a->top_k);
    SET_FMT("early_stop", "--early-stop", SET_FREE, "%d", a->early_stop);
    SET_FMT("seed", "--seed", SET_SAME, "%d", a->seed);
    SET_STR("tops", "--tops", SET_SAME, a->tops);
    SET_STR("areas", "--areas", SET_SAME, a->areas);
    SET_STR("bottoms", "--bottoms", SET_SAME, a->bottoms);
    SET_FMT("val_tta", "--tta", SET_SAME, "%s", a->tta ? "true" : "false");
    SET_STR("backend", "--backend", SET_WARN, t->be->name);
    SET_STR("precision", "--precision", SET_SAME, a->compute.precision);
    SET_FMT("deterministic", "--deterministic", SET_WARN, "%s", a->compute.deterministic ? "true" : "false");
    SET_FMT("threads", "--threads", SET_WARN, "%d", a->compute.threads);
    SET_STR("conv_algo", "--conv-algo", SET_WARN, t->conv_algo);
    SET_FMT("loader_threads", "--loader-threads", SET_FREE, "%d", a->loader_threads);
    /* ranks: with --sync-bn N ranks compute what one process does (up to the order of float sums) */
    SET_FMT("ranks", "ranks (mpirun -np)", a->sync_bn ? SET_WARN : SET_SAME, "%d", pn_train_dist_size(t->dist));
    SET_FMT("sync_bn", "--sync-bn", SET_SAME, "%s", a->sync_bn ? "true" : "false");
    SET_FMT("train_images", "--folds (training images)", SET_SAME, "%d", t->split.n_train);
    SET_FMT("val_images", "--folds (validation images)", SET_SAME, "%d", t->split.n_val);
    return n;
}
#undef SET_STR
#undef SET_FMT

static pn_status write_run_json(trainer *t, int argc, char **argv) {
    setting set[MAX_SETTINGS];
    int n = collect_settings(t, set);
    pn_atomic_file af;
    PN_TRY(pn_atomic_open(&af, run_file(t, "run.json")));
    FILE *f = af.f;
    fputs("{\n", f);
    for (int i = 0; i < n; i++) fprintf(f, "  \"%s\": %s,\n", set[i].key, set[i].value);
    fputs("  \"command\": [", f);
    for (int i = 0; i < argc; i++) {
        char q[4096];
        json_quote(q, sizeof q, argv[i]);
        fprintf(f, "%s%s", i ? ", " : "", q);
    }
    fputs("]\n}\n", f);
    return pn_atomic_commit(&af);
}

/* The value text of `"key": value,` in run.json (one setting per line, as write_run_json writes it). */
static bool recorded_value(const char *json, const char *key, char *out, size_t cap) {
    char pat[96];
    snprintf(pat, sizeof pat, "\n  \"%s\": ", key);
    const char *p = strstr(json, pat);
    if (!p) return false;
    p += strlen(pat);
    size_t len = strcspn(p, "\n");
    if (len > 0 && p[len - 1] == ',') len--;
    if (len >= cap) len = cap - 1;
    memcpy(out, p, len);
    out[len] = 0;
    return true;
}

/* --resume: every setting that changes the result must equal run.json's; one line names each that
 * differs with both values. Backend and thread changes are allowed with a warning. */
static pn_status check_resume_settings(trainer *t) {
    const char *path = run_file(t, "run.json");
    FILE *f = fopen(path, "rb");
    if (!f) return pn_error(PN_ERR_IO, "--resume: cannot read %s (%s)", path, strerror(errno));
    static char json[65536];
    size_t len = fread(json, 1, sizeof json - 1, f);
    fclose(f);
    json[len] = 0;
    setting set[MAX_SETTINGS];
    int n = collect_settings(t, set);
    char diff[4096] = "", was[1100];
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        if (set[i].rule == SET_FREE) continue;
        if (!recorded_value(json, set[i].key, was, sizeof was)) {
            pn_log_warn("--resume: %s does not record %s; not checked", path, set[i].option);
            continue;
        }
        if (!strcmp(was, set[i].value)) continue;
        if (set[i].rule == SET_WARN) {
            pn_log_warn("--resume: %s was %s, now %s: the results may differ in the last bits", set[i].option, was,
                        set[i].value);
            continue;
        }
        used += (size_t)snprintf(diff + used, used < sizeof diff ? sizeof diff - used : 0, "%s%s %s in the run, %s now",
                                 used ? "; " : "", set[i].option, was, set[i].value);
        if (used >= sizeof diff) used = sizeof diff - 1;
    }
    if (used) return pn_error(PN_ERR_ARG, "--resume: settings differ from %s: %s", path, diff);
    return PN_OK;
}

/* ---- metrics.csv and curves ---- */

static pn_status write_metrics(trainer *t) {
    pn_atomic_file af;
    PN_TRY(pn_atomic_open(&af, run_file(t, "metrics.csv")));
    for (int c = 0; c < H_COLS; c++) fprintf(af.f, c ? ",%s" : "%s", H_NAMES[c]);
    fputc('\n', af.f);
    for (int r = 0; r < t->state.hist_rows; r++) {
        const float *h = t->state.history + (size_t)r * H_COLS;
        fprintf(af.f, "%d,%.6g,%.6f,%.6f,%.6f,%.6f,%.3g,%d,%.3g,%.1f\n", (int)h[H_EPOCH], h[H_LR], h[H_TRAIN], h[H_VAL],
                h[H_SCORE], h[H_DICE], h[H_TOP], (int)h[H_AREA], h[H_BOTTOM], h[H_SECONDS]);
    }
    PN_TRY(pn_atomic_commit(&af));
    return pn_curves_png(run_file(t, "curves.png"), t->state.history, t->state.hist_rows, H_COLS, H_TRAIN, H_VAL,
                         H_SCORE, H_DICE);
}

/* ---- checkpoints ---- */

/* RUN/name with the contents of the last.safetensors just written: a hard link (no second write of the
 * same bytes), or a full write where the file system has no hard links. Atomic either way. */
static pn_status copy_of_last(trainer *t, const char *name) {
    char last[4096];
    snprintf(last, sizeof last, "%s", run_file(t, "last.safetensors"));
    if (pn_atomic_link(last, run_file(t, name)) == PN_OK) return PN_OK;
    pn_log_debug("%s: no hard link (%s); writing it in full", name, pn_last_error());
    return pn_unet_save(t->m, run_file(t, name));
}

/* Keeps the top_k epochs by score as epoch-NNN.safetensors, removing the ones that fall out. */
static pn_status update_topk(trainer *t, int epoch) {
    int k = t->a->top_k;
    if (k <= 0) return PN_OK;
    int rows = t->state.hist_rows;
    /* rank of this epoch among all epochs so far (higher score first, earlier epoch wins ties) */
    int better = 0;
    double mine = t->state.history[(size_t)(rows - 1) * H_COLS + H_SCORE];
    for (int r = 0; r < rows - 1; r++)
        if (t->state.history[(size_t)r * H_COLS + H_SCORE] >= mine) better++;
    char name[64];
    if (better < k) {
        snprintf(name, sizeof name, "epoch-%03d.safetensors", epoch + 1);
        PN_TRY(copy_of_last(t, name));
    }
    /* remove every epoch file outside the top k */
    for (int r = 0; r < rows; r++) {
        double s = t->state.history[(size_t)r * H_COLS + H_SCORE];
        int rank = 0;
        for (int q = 0; q < rows; q++) {
            double o = t->state.history[(size_t)q * H_COLS + H_SCORE];
            if (o > s || (o == s && q < r)) rank++;
        }
        if (rank >= k) {
            snprintf(name, sizeof name, "epoch-%03d.safetensors", (int)t->state.history[(size_t)r * H_COLS + H_EPOCH]);
            unlink(run_file(t, name));
        }
    }
    return PN_OK;
}

/* --conv-algo auto: the run's algorithm choices, so that --resume runs the ones the run ran (the run folder's file
 * first: loading keeps the choices already known), and the cache of this machine's choices. */
#define RUN_ALGO_FILE "conv-algo.txt"
static pn_status load_run_algos(trainer *t) {
    if (!t->a->resume || strcmp(t->conv_algo, "auto") != 0) return PN_OK;
    return pn_tool_conv_algo_load_run(t->be, run_file(t, RUN_ALGO_FILE));
}

static pn_status save_run_algos(trainer *t) {
    if (strcmp(t->conv_algo, "auto") != 0) return PN_OK;
    return pn_tool_conv_algo_save_run(t->be, run_file(t, RUN_ALGO_FILE));
}

static pn_status save_checkpoints(trainer *t, int epoch, bool is_best) {
    PN_TRY(save_run_algos(t));
    t->state.sched_lr = t->sched.lr;
    t->state.sched_best = t->sched.best;
    t->state.sched_bad = t->sched.bad;
    /* The state file is what --resume reads: written first, atomically. */
    PN_TRY(pn_state_save(t->m, &t->state, run_file(t, "last.state.safetensors")));
    PN_TRY(pn_unet_save(t->m, run_file(t, "last.safetensors")));
    if (is_best) PN_TRY(copy_of_last(t, "best.safetensors"));
    return update_topk(t, epoch);
}

/* Removes temporaries a killed run left behind (atomic_file writes "<name>.tmp.<pid>"). */
static void remove_stale_temporaries(trainer *t) {
    char **files = NULL;
    int n = 0;
    if (pn_list_files(t->a->out, "", false, &files, &n) != PN_OK) return;
    for (int i = 0; i < n; i++)
        if (strstr(files[i], ".tmp.")) {
            pn_log_info("removing a temporary left by an interrupted run: %s", files[i]);
            unlink(files[i]);
        }
    pn_free_list(files, n);
}

/* The run folder before any work: never one of the inputs; a folder holding a run is only continued (--resume) or
 * started over (--force); any other folder with files in it needs --force; and it must be writable. */
static pn_status check_run_folder(trainer *t) {
    const train_args *a = t->a;
    bool has_state = pn_file_exists(run_file(t, "last.state.safetensors"));
    bool has_run = has_state || pn_file_exists(run_file(t, "run.json"));
    if (a->resume && !has_state)
        return pn_error(PN_ERR_IO, "--resume: %s has no last.state.safetensors (no epoch finished yet)", a->out);
    if (!a->resume && !a->force && has_run)
        return pn_error(PN_ERR_IO, "%s already holds a run: --resume to continue it or --force to start over", a->out);
    const pn_named_path inputs[] = {{"--data", a->data}, {"--folds", a->folds}, {"--init", a->init}};
    return pn_check_out_dir("--out", a->out, a->force || has_run, inputs, 3);
}

/* --force: the files of the run that was there go, so that two runs never mix (best, epoch files, metrics). Other
 * files in the folder stay. */
static void clear_old_run(trainer *t) {
    static const char *const names[] = {"run.json",         "metrics.csv",      "curves.png",
                                        "last.safetensors", "best.safetensors", "last.state.safetensors",
                                        RUN_ALGO_FILE};
    int removed = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) removed += unlink(run_file(t, names[i])) == 0;
    char **files = NULL;
    int n = 0;
    if (pn_list_files(t->a->out, ".safetensors", false, &files, &n) == PN_OK) {
        for (int i = 0; i < n; i++) {
            const char *base = strrchr(files[i], '/');
            base = base ? base + 1 : files[i];
            int epoch;
            char tail;
            if (sscanf(base, "epoch-%d.safetensor%c", &epoch, &tail) == 2 && tail == 's')
                removed += unlink(files[i]) == 0;
        }
        pn_free_list(files, n);
    }
    if (removed) pn_log_info("--force: removed %d files of the run that was in %s", removed, t->a->out);
}

/* ---- one epoch ---- */

static pn_status check_finite(double v, const char *what, int64_t step, int epoch, int batch) {
    if (isfinite(v)) return PN_OK;
    char kept[96] = "no epoch had finished, so there is no checkpoint";
    if (epoch > 0) snprintf(kept, sizeof kept, "the last good checkpoint (epoch %d) is kept", epoch);
    return pn_error(PN_ERR_NUMERIC, "non-finite %s (%s) at step %lld (epoch %d, batch %d); stopping, %s", what,
                    isnan(v) ? "NaN" : "Inf", (long long)step + 1, epoch + 1, batch + 1, kept);
}

/* SIGINT / SIGTERM: the first one asks the run to stop at the next batch (validate.h's pn_tool_stop), so that no
 * checkpoint is left half-written and the run stays resumable; a second one ends the process at once. */
static void on_stop_signal(int sig) {
    pn_tool_stop = sig;
    static const char msg[] = "\npneumoseg train: stopping after this batch (interrupt again to stop at once)\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
}

static pn_status stopped(const trainer *t, int epoch) {
    char keeps[160] = "no epoch had finished, so there is nothing to resume (train --force starts it again)";
    if (t->state.epoch > 0)
        snprintf(keeps, sizeof keeps, "%s keeps the checkpoint of epoch %d; train --resume continues from it",
                 t->a->out, t->state.epoch);
    return pn_error(PN_ERR_IO, "interrupted by %s in epoch %d: %s", pn_tool_stop == SIGTERM ? "SIGTERM" : "SIGINT",
                    epoch + 1, keeps);
}

/* fp16 dynamic loss scaling, as torch.cuda.amp.GradScaler's defaults: start at 2^16, halve on a step with
 * non-finite gradients (which is skipped), double after 2000 good steps in a row. Off (scale 0) otherwise. */
#define LOSS_SCALE_INIT 65536.0
#define LOSS_SCALE_GROWTH_INTERVAL 2000

static void loss_scale_update(pn_train_state *s, bool finite) {
    if (!finite) {
        s->loss_scale *= 0.5;
        s->scale_good = 0;
        s->skipped_steps++;
        return;
    }
    if (++s->scale_good >= LOSS_SCALE_GROWTH_INTERVAL) {
        s->loss_scale *= 2.0;
        s->scale_good = 0;
    }
}

/* Under loss scaling: the gradients are unscaled (true) or, when not finite, dropped (false, step skipped). */
static pn_status unscale_grads(trainer *t, bool *finite) {
    *finite = true;
    if (t->state.loss_scale <= 0) return PN_OK;
    double norm;
    PN_TRY(pn_unet_grad_norm(t->m, &norm));
    *finite = isfinite(norm);
    if (*finite) return pn_unet_scale_grad(t->m, 1.0 / t->state.loss_scale);
    pn_log_debug("step %lld: non-finite gradients at loss scale %g; step skipped", (long long)t->state.step + 1,
                 t->state.loss_scale);
    return pn_unet_zero_grad(t->m);
}

/* --freeze-encoder N / --encoder-lr-scale F: the encoder is a param group of its own, as in PyTorch: frozen in
 * epochs < N (no update, no moments, no part in the gradient norm), then at lr * F with its own step count. */
static bool encoder_frozen(const trainer *t, int epoch) { return t->groups_on && epoch < t->a->freeze_encoder; }

static pn_status optimizer_step(trainer *t, int epoch, const pn_adam_params *ap) {
    if (!t->groups_on) return pn_unet_adam_step(t->m, ap);
    bool frozen = encoder_frozen(t, epoch);
    t->state.frozen_steps += frozen;
    return pn_groups_adam_step(t->m, &t->groups, ap, t->a->encoder_lr_scale, ap->step - t->state.frozen_steps, frozen);
}

static pn_status train_epoch(trainer *t, int epoch, double lr, double *mean_loss) {
    const train_args *a = t->a;
    double share = share_of(t, epoch);
    pn_loader_config cfg = loader_cfg(t, true, share, epoch);
    pn_loader_t *ld = NULL;
    PN_TRY(pn_unet_plan(t->m, cfg.batch_size, a->size, a->size, PN_UNET_TRAIN));
    PN_TRY(pn_loader_create(&cfg, &ld));
    int64_t batches = pn_loader_epoch_batches(ld);
    if (a->steps_per_epoch > 0 && batches > (int64_t)a->steps_per_epoch * a->accum)
        batches = (int64_t)a->steps_per_epoch * a->accum;
    pn_status st = batches > 0 ? pn_loader_start_epoch(ld, (uint32_t)epoch)
                               : pn_error(PN_ERR_ARG, "fewer training images than one batch of %d", a->batch);
    pn_progress bar;
    char label[48], extra[96];
    snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, a->epochs);
    bool bars = !a->quiet && pn_train_dist_root(t->dist);
    if (bars) pn_progress_begin(&bar, label, batches * a->batch);
    if (st == PN_OK) st = pn_unet_zero_grad(t->m);
    double sum = 0;
    int64_t done = 0;
    pn_adam_params ap = {(float)lr, 0.9f, 0.999f, 1e-8f, (float)a->wd, 0};
    for (int64_t b = 0; st == PN_OK && b < batches; b++) {
        pn_batch batch;
        bool end;
        if (pn_tool_stop) {
            st = stopped(t, epoch);
            break;
        }
        st = pn_loader_next(ld, &batch, &end);
        if (st != PN_OK || end) break;
        float loss;
        st = pn_tensor_set(pn_unet_input(t->m), batch.image);
        if (st == PN_OK) st = pn_tensor_set(pn_unet_target(t->m), batch.target);
        if (st == PN_OK) st = pn_unet_forward(t->m);
        if (st == PN_OK) st = pn_unet_loss(t->m, (float)t->w[0], (float)t->w[1], (float)t->w[2], &loss);
        if (st == PN_OK) st = check_finite(loss, "loss", t->state.step, epoch, (int)b);
        float grad_scale = 1.0f / (float)a->accum;
        if (t->state.loss_scale > 0) grad_scale *= (float)t->state.loss_scale;
        if (st == PN_OK) st = pn_unet_backward(t->m, grad_scale);
        if (st != PN_OK) break;
        sum += loss;
        done++;
        if ((b + 1) % a->accum == 0 || b + 1 == batches) {
            double norm;
            bool finite = false;
            st = pn_train_dist_grads(t->dist, t->m);
            if (st == PN_OK) st = unscale_grads(t, &finite);
            if (st == PN_OK && t->state.loss_scale > 0) loss_scale_update(&t->state, finite);
            if (st == PN_OK && finite && encoder_frozen(t, epoch)) st = pn_groups_zero_encoder_grad(t->m, &t->groups);
            if (st == PN_OK && finite) {
                st = a->clip > 0 ? pn_unet_clip_grad_norm(t->m, a->clip, &norm) : pn_unet_grad_norm(t->m, &norm);
                if (st == PN_OK) st = check_finite(norm, "gradient norm", t->state.step, epoch, (int)b);
                ap.step = ++t->state.step;
                if (st == PN_OK) st = optimizer_step(t, epoch, &ap);
                if (st == PN_OK) st = pn_unet_zero_grad(t->m);
            }
        }
        snprintf(extra, sizeof extra, "loss %.4f lr %.2e", sum / (double)done, lr);
        if (bars) pn_progress_step(&bar, batch.n * pn_train_dist_size(t->dist), extra);
    }
    if (st == PN_OK) st = pn_backend_synchronize(t->be);
    if (bars) pn_progress_end(&bar);
    pn_loader_destroy(ld);
    double count = (double)done;
    if (st == PN_OK) st = pn_train_dist_epoch_end(t->dist, t->m, &sum, &count); /* every rank's */
    *mean_loss = count > 0 ? sum / count : NAN;
    return st;
}

static pn_status append_history(trainer *t, const float *row) {
    float *h = realloc(t->state.history, (size_t)(t->state.hist_rows + 1) * H_COLS * sizeof *h);
    if (!h) return pn_error(PN_ERR_NOMEM, "out of memory");
    memcpy(h + (size_t)t->state.hist_rows * H_COLS, row, H_COLS * sizeof *h);
    t->state.history = h;
    t->state.hist_rows++;
    t->state.hist_cols = H_COLS;
    return PN_OK;
}

/* The epoch line's loss-scaling part (empty in fp32/bf16): steps skipped this epoch and the current scale. */
static const char *scaling_note(const trainer *t, int64_t skipped_before, char *buf, size_t n) {
    buf[0] = 0;
    if (t->state.loss_scale > 0)
        snprintf(buf, n, "  skipped %lld (loss scale %g)", (long long)(t->state.skipped_steps - skipped_before),
                 t->state.loss_scale);
    return buf;
}

/* What this epoch's checkpoints say about how to use them: the training size and normalisation, and the epoch's best
 * triplet (1024-pixels) with its validation score. eval and predict default to them. */
static void fill_card(trainer *t, const pn_val_result *v) {
    pn_model_card *c = pn_unet_card(t->m);
    c->train_size = t->a->size;
    snprintf(c->normalize, sizeof c->normalize, "%s", pn_tool_norm_name(t->norm));
    c->has_triplet = true;
    c->top = v->best_1024.top;
    c->min_area = (int)v->best_1024.min_area;
    c->bottom = v->best_1024.bottom;
    c->score = v->score;
}

/* Checkpoints, metrics.csv and curves of the epoch just finished (rank 0 alone in a data-parallel run). */
static pn_status write_epoch_files(trainer *t, int epoch, bool is_best, pn_bg_sync *sync) {
    PN_TRY(save_checkpoints(t, epoch, is_best));
    PN_TRY(write_metrics(t));
    return pn_bg_sync_start(sync);
}

static pn_status epochs_loop(trainer *t, pn_bg_sync *sync) {
    const train_args *a = t->a;
    for (int e = t->state.epoch; e < a->epochs; e++) {
        double t0 = pn_now(), lr = pn_sched_lr(&t->sched, e), train_loss;
        int64_t skipped_before = t->state.skipped_steps;
        char note[64];
        PN_TRY(train_epoch(t, e, lr, &train_loss));
        pn_run_grid grid;
        PN_TRY(pn_tool_grid(a->tops, a->areas, a->bottoms, a->size, &grid));
        pn_val_result v;
        pn_loader_config vc = loader_cfg(t, false, 0, 0);
        pn_status vs = pn_train_dist_validate(t->dist, t->m, &vc, a->tta, t->w, !a->quiet, &grid, &v);
        PN_TRY(pn_tool_stop ? stopped(t, e) : vs);
        PN_TRY(check_finite(v.loss, "validation loss", t->state.step - 1, e, 0));
        pn_sched_observe(&t->sched, e, v.score);
        double secs = pn_now() - t0;
        float row[H_COLS] = {(float)(e + 1),     (float)lr,         (float)train_loss, (float)v.loss,
                             (float)v.score,     (float)v.pos_dice, v.best_1024.top,   (float)v.best_1024.min_area,
                             v.best_1024.bottom, (float)secs};
        PN_TRY(append_history(t, row));
        bool is_best = t->state.best_epoch == 0 || v.score > t->state.best_score;
        if (is_best) {
            t->state.best_score = v.score;
            t->state.best_epoch = e + 1;
        }
        t->state.epoch = e + 1;
        double c0 = pn_now();
        fill_card(t, &v);
        if (pn_train_dist_root(t->dist)) PN_TRY(write_epoch_files(t, e, is_best, sync)); /* other ranks do not log */
        char trip[64];
        pn_log_info("epoch %d/%d  lr %.2e  train loss %.4f  val loss %.4f  kaggle %.4f  dice+ %.4f  empty acc %.3f  "
                    "triplet %s (1024-px areas)  %.1f s + checkpoints %.2f s%s%s",
                    e + 1, a->epochs, lr, train_loss, v.loss, v.score, v.pos_dice, v.empty_acc,
                    pn_triplet_text(&v.best_1024, trip, sizeof trip), secs, pn_now() - c0,
                    scaling_note(t, skipped_before, note, sizeof note), is_best ? "  best" : "");
        if (pn_tool_stop) return stopped(t, e);
        if (a->early_stop > 0 && e + 1 - t->state.best_epoch >= a->early_stop) {
            pn_log_info("early stopping: no better validation score for %d epochs (best %.4f at epoch %d)",
                        a->early_stop, t->state.best_score, t->state.best_epoch);
            break;
        }
    }
    return PN_OK;
}

/* The epochs. Checkpoints are renamed into place at once (atomic for readers and for a killed run) and made
 * durable by a sync on a background thread while the next epoch trains, not by an fsync per file on the
 * training thread (about 0.8 s an epoch); the run ends with a synchronous sync. */
static pn_status run_epochs(trainer *t) {
    pn_bg_sync sync;
    PN_TRY(pn_bg_sync_open(&sync, t->a->out));
    pn_atomic_set_fsync(false);
    pn_status st = epochs_loop(t, &sync);
    pn_status synced = pn_bg_sync_finish(&sync);
    pn_bg_sync_close(&sync);
    pn_atomic_set_fsync(true);
    if (st == PN_OK) st = synced;
    if (st == PN_OK)
        pn_log_info("done: best kaggle %.4f at epoch %d; weights %s/best.safetensors", t->state.best_score,
                    t->state.best_epoch, t->a->out);
    return st;
}

static pn_status setup(trainer *t, int argc, char **argv) {
    const train_args *a = t->a;
    if (a->size % 32) return pn_error(PN_ERR_USAGE, "--size %d: expected a multiple of 32", a->size);
    PN_TRY(pn_check_model_flags(a->arch.encoder, a->arch.decoder, a->arch.attention, a->compute.conv_algo));
    PN_TRY(pn_check_precision(a->compute.precision));
    PN_TRY(pn_as_usage(parse_loss(a->loss, t->w)));
    pn_sched_kind kind;
    PN_TRY(pn_as_usage(pn_sched_parse(a->sched, &kind)));
    pn_sched_defaults(&t->sched, kind, a->lr);
    t->sched.gamma = a->gamma;
    t->sched.factor = a->factor;
    t->sched.patience = a->patience;
    t->sched.min_lr = a->min_lr;
    t->sched.eta_min = a->min_lr;
    t->sched.period = a->period;
    t->sched.threshold = a->threshold;
    t->sched.cosine_start = kind == PN_SCHED_PLATEAU_COSINE ? a->cosine_start : 0;
    if (a->milestones) {
        double ms[PN_SCHED_MAX_MILESTONES];
        PN_TRY(pn_parse_doubles(a->milestones, "--milestones", ms, PN_SCHED_MAX_MILESTONES, &t->sched.n_milestones));
        for (int i = 0; i < t->sched.n_milestones; i++) {
            if (!(ms[i] >= 1 && ms[i] <= 1e6 && ms[i] == floor(ms[i])))
                return pn_error(PN_ERR_USAGE, "--milestones: %g is not an epoch number >= 1", ms[i]);
            t->sched.milestones[i] = (int)ms[i];
        }
    }
    if (a->pos_share && *a->pos_share) {
        PN_TRY(pn_parse_doubles(a->pos_share, "--pos-share", t->shares, 16, &t->n_shares));
        for (int i = 0; i < t->n_shares; i++)
            if (!(t->shares[i] > 0 && t->shares[i] <= 1))
                return pn_error(PN_ERR_USAGE, "--pos-share values must be in (0, 1]");
    }
    if (kind == PN_SCHED_PLATEAU_COSINE && a->cosine_start < 0) {
        /* default: the cosine phase starts with the sampler's second part (the winner's part1), else halfway */
        int parts = t->n_shares > 1 ? t->n_shares : 2;
        t->sched.cosine_start = (a->epochs + parts - 1) / parts;
    }
    pn_border border = PN_BORDER_CONSTANT;
    if (!strcmp(a->border, "reflect101"))
        border = PN_BORDER_REFLECT101;
    else if (strcmp(a->border, "constant"))
        return pn_error(PN_ERR_USAGE, "--border must be constant or reflect101");
    PN_TRY(pn_as_usage(pn_aug_parse(a->aug, border, &t->aug)));
    if (a->norm) PN_TRY(pn_as_usage(pn_norm_parse(a->norm, &t->norm))); /* applied once the model is made */
    pn_run_grid g;
    PN_TRY(pn_tool_grid(a->tops, a->areas, a->bottoms, a->size, &g));
    if (a->resume && a->force) return pn_error(PN_ERR_USAGE, "--resume continues a run, --force starts over: give one");
    int ranks = pn_train_dist_size(t->dist);
    bool root = pn_train_dist_root(t->dist); /* rank 0 alone checks and writes the run folder */
    if (a->batch % ranks)
        return pn_error(PN_ERR_USAGE, "--batch %d (the global batch) must be a multiple of the %d ranks", a->batch,
                        ranks);
    if (root) PN_TRY(check_run_folder(t));
    if (a->init && !pn_file_exists(a->init)) return pn_error(PN_ERR_IO, "--init %s: no such file", a->init);
    PN_TRY(pn_split_read(a->folds, a->fold, &t->split));
    pn_log_info("fold %d: %d training images, %d validation images", a->fold, t->split.n_train, t->split.n_val);
    PN_TRY(pn_split_check_files(&t->split, a->data, true));
    if (t->split.n_train < a->batch)
        return pn_error(PN_ERR_IO, "%s: %d training images, fewer than one batch of %d", a->folds, t->split.n_train,
                        a->batch);
    PN_TRY(pn_mkdirs(a->out));
    if (root) remove_stale_temporaries(t);
    PN_TRY(pn_tool_open_backend(a->compute.backend, pn_train_dist_threads(t->dist, a->compute.threads), &t->be));
    PN_TRY(pn_train_dist_wrap(t->dist, a->sync_bn, &t->be));
    t->conv_algo = a->compute.conv_algo ? a->compute.conv_algo : ranks > 1 ? "direct" : "auto";
    PN_TRY(load_run_algos(t));
    pn_compute_opts compute = a->compute;
    compute.conv_algo = t->conv_algo;
    PN_TRY(pn_tool_apply_compute(t->be, &compute));
    pn_arch arch;
    if (a->init)
        PN_TRY(pn_tool_arch_of_weights(&a->arch, a->init, &arch));
    else
        PN_TRY(pn_tool_arch(&a->arch, &arch));
    PN_TRY(pn_unet_create_arch(&arch, t->be, &t->m));
    PN_TRY(pn_unet_init_weights(t->m, (uint64_t)a->seed)); /* what an --init file lacks (an encoder-only one) */
    pn_load_result init;
    if (a->init) PN_TRY(pn_tool_load_weights(t->m, a->init, PN_LOAD_INIT, NULL, &init));
    const char *norm, *how;
    PN_TRY(pn_tool_resolve_norm(a->norm, pn_unet_card(t->m)->normalize, a->init ? a->init : "the seeded model", &norm,
                                &how));
    snprintf(t->norm_name, sizeof t->norm_name, "%s", norm);
    PN_TRY(pn_norm_parse(t->norm_name, &t->norm));
    snprintf(pn_unet_card(t->m)->normalize, sizeof pn_unet_card(t->m)->normalize, "%s", t->norm_name);
    pn_log_info("input normalisation: %s (%s)", t->norm_name, how);
    PN_TRY(pn_unet_plan(t->m, a->batch / ranks, a->size, a->size, PN_UNET_TRAIN));
    PN_TRY(pn_unet_zero_grad(t->m));
    t->groups_on = a->freeze_encoder > 0 || a->encoder_lr_scale != 1.0;
    if (t->groups_on) {
        PN_TRY(pn_groups_build(t->m, &t->groups));
        pn_log_info("encoder (%lld parameters): frozen for %d epoch(s), then lr x %g",
                    (long long)t->groups.encoder_scalars, a->freeze_encoder, a->encoder_lr_scale);
    }
    if (a->force && root) clear_old_run(t);
    t->state.seed = (uint64_t)a->seed;
    t->state.hist_cols = H_COLS;
    bool fp16 = strcmp(a->compute.precision, "fp16") == 0;
    t->state.loss_scale = fp16 ? LOSS_SCALE_INIT : 0;
    if (a->resume) {
        if (root) PN_TRY(check_resume_settings(t));
        PN_TRY(pn_state_load(t->m, run_file(t, "last.state.safetensors"), &t->state));
        if (t->state.seed != (uint64_t)a->seed)
            return pn_error(PN_ERR_ARG, "--resume: the run used --seed %llu, not %d", (unsigned long long)t->state.seed,
                            a->seed);
        t->sched.lr = t->state.sched_lr;
        t->sched.best = t->state.sched_best;
        t->sched.bad = t->state.sched_bad;
        if (fp16 && t->state.loss_scale <= 0) t->state.loss_scale = LOSS_SCALE_INIT; /* the run was not fp16 */
        if (!fp16) t->state.loss_scale = 0;
        pn_log_info("resuming %s after epoch %d (step %lld, best kaggle %.4f at epoch %d)", a->out, t->state.epoch,
                    (long long)t->state.step, t->state.best_score, t->state.best_epoch);
        return PN_OK;
    }
    return root ? write_run_json(t, argc, argv) : PN_OK;
}

int pn_cmd_train(int argc, char **argv) {
    train_args a = {.fold = 0,
                    .epochs = 10,
                    .batch = 8,
                    .accum = 1,
                    .size = 256,
                    .loader_threads = 2,
                    .top_k = 3,
                    .seed = 0,
                    .patience = 2,
                    .period = 8,
                    .cosine_start = -1,
                    .lr = 1e-4,
                    .gamma = 0.75,
                    .factor = 0.1,
                    .threshold = 1e-4,
                    .min_lr = 1e-7,
                    .compute = {.backend = "auto", .precision = "fp32", .conv_algo = NULL},
                    .aug = "blog",
                    .border = "constant",
                    .norm = NULL,
                    .loss = "bce=3,dice=1,focal=4",
                    .sched = "multistep",
                    .encoder_lr_scale = 1.0,
                    .max_image_mb = PN_IMAGE_LIMIT_DEFAULT_MB};
    const pn_opt opts[] = {
        {"data", PN_OPT_STR, &a.data, "DIR", "prepared data (DIR/train, DIR/mask of <ImageId>.png)", true},
        {"folds", PN_OPT_STR, &a.folds, "CSV", "folds.csv from pneumoseg folds", true},
        {"fold", PN_OPT_INT, &a.fold, "K", "validation fold (default 0)", false},
        {"out", PN_OPT_STR, &a.out, "RUN", "run folder: checkpoints, metrics.csv, curves.png, run.json", true},
        {"epochs", PN_OPT_INT, &a.epochs, "N", "epochs (default 10)", false},
        {"batch", PN_OPT_INT, &a.batch, "N",
         "batch size (default 8); under mpirun the global batch, split over the "
         "ranks",
         false},
        {"accum", PN_OPT_INT, &a.accum, "N", "batches per optimizer step (gradient accumulation, default 1)", false},
        {"size", PN_OPT_INT, &a.size, "S", "training side, a multiple of 32 (default 256)", false},
        {"steps-per-epoch", PN_OPT_INT, &a.steps_per_epoch, "N", "cap optimizer steps per epoch (0 = all)", false},
        {"lr", PN_OPT_FLOAT, &a.lr, "LR", "Adam learning rate (default 1e-4)", false},
        {"wd", PN_OPT_FLOAT, &a.wd, "WD", "coupled weight decay, g += wd * p (default 0; winner 5e-6)", false},
        {"clip", PN_OPT_FLOAT, &a.clip, "NORM", "clip the global gradient norm (0 = off; winner 0.1)", false},
        {"loss", PN_OPT_STR, &a.loss, "SPEC", "ComboLoss weights (default bce=3,dice=1,focal=4)", false},
        {"sched", PN_OPT_STR, &a.sched, "NAME", "multistep | plateau | cosine | plateau-cosine (default multistep)",
         false},
        {"milestones", PN_OPT_STR, &a.milestones, "LIST", "multistep epochs (default 3,5,6,7,8,9,10,11,13,15)", false},
        {"gamma", PN_OPT_FLOAT, &a.gamma, "G", "multistep factor (default 0.75)", false},
        {"plateau-factor", PN_OPT_FLOAT, &a.factor, "F", "plateau factor (default 0.1)", false},
        {"plateau-patience", PN_OPT_INT, &a.patience, "N", "plateau patience in epochs (default 2)", false},
        {"plateau-threshold", PN_OPT_FLOAT, &a.threshold, "T",
         "plateau: relative gain that counts (default 1e-4; "
         "winner 1e-7)",
         false},
        {"cosine-period", PN_OPT_INT, &a.period, "N", "cosine T_max in epochs (default 8)", false},
        {"cosine-start", PN_OPT_INT, &a.cosine_start, "E",
         "plateau-cosine: epochs of plateau before the cosine "
         "(default: the first --pos-share part, else half)",
         false},
        {"min-lr", PN_OPT_FLOAT, &a.min_lr, "LR", "plateau floor and cosine eta_min (default 1e-7)", false},
        {"aug", PN_OPT_STR, &a.aug, "SPEC", "augmentation: none | blog | winner | a spec (default blog)", false},
        {"border", PN_OPT_STR, &a.border, "B", "warp border: constant | reflect101 (default constant)", false},
        {"norm", PN_OPT_STR, &a.norm, "MODE",
         "input scaling: imagenet | unit | none (default: what the --init weights "
         "record, else imagenet)",
         false},
        {"pos-share", PN_OPT_STR, &a.pos_share, "LIST",
         "positive-share sampler, e.g. 0.8,0.6,0.4 over equal parts of "
         "the epochs (default: every image once, shuffled)",
         false},
        {"tops", PN_OPT_STR, &a.tops, "LIST", "triplet grid tops (default 0.6,0.75)", false},
        {"areas", PN_OPT_STR, &a.areas, "LIST", "triplet grid min areas in 1024-pixels (default 1000,2000,3000)",
         false},
        {"bottoms", PN_OPT_STR, &a.bottoms, "LIST", "triplet grid bottoms (default 0.3,0.4)", false},
        {"tta", PN_OPT_FLAG, &a.tta, NULL, "validate with horizontal-flip TTA", false},
        {"top-k", PN_OPT_INT, &a.top_k, "K", "keep the K best epochs as epoch-NNN.safetensors (default 3)", false},
        {"early-stop", PN_OPT_INT, &a.early_stop, "N", "stop after N epochs without a better score (0 = off)", false},
        PN_ARCH_OPTIONS(&a.arch, "resnet34, or the --init file's", "unet, or the --init file's",
                        "none, or the --init file's"),
        {"init", PN_OPT_STR, &a.init, "W",
         "start from these weights (.safetensors or .pth; an encoder alone keeps the "
         "seeded decoder) instead of the seeded initialisation",
         false},
        {"freeze-encoder", PN_OPT_INT, &a.freeze_encoder, "N",
         "epochs with the encoder frozen, then trained (default 0; "
         "BatchNorm statistics still update, as in PyTorch)",
         false},
        {"encoder-lr-scale", PN_OPT_FLOAT, &a.encoder_lr_scale, "F", "encoder learning rate = F x --lr (default 1)",
         false},
        {"seed", PN_OPT_INT, &a.seed, "N", "seed of weights, sampler and augmentation (default 0)", false},
        PN_COMPUTE_OPTIONS(&a.compute, "auto (under mpirun: direct); a run keeps auto's choices in RUN/" RUN_ALGO_FILE
                                       " for --resume"),
        {"loader-threads", PN_OPT_INT, &a.loader_threads, "N", "data loader threads (default 2)", false},
        {"resume", PN_OPT_FLAG, &a.resume, NULL, "continue the run in --out from its last checkpoint", false},
        {"force", PN_OPT_FLAG, &a.force, NULL,
         "start over in an --out that holds a run (its files are removed) or "
         "other files",
         false},
        {"quiet", PN_OPT_FLAG, &a.quiet, NULL, "no progress bars (epoch lines only)", false},
        {"sync-bn", PN_OPT_FLAG, &a.sync_bn, NULL,
         "under mpirun: BatchNorm statistics and the loss's batch sums over "
         "the global batch (as one process)",
         false},
        {"max-image-mb", PN_OPT_FLOAT, &a.max_image_mb, "MB", "largest decoded image accepted (default 256)", false},
        {NULL, 0, NULL, NULL, NULL, false},
    };
    const pn_opt_range ranges[] = {
        PN_AT_LEAST("fold", 0),
        PN_AT_LEAST("epochs", 1),
        PN_AT_LEAST("batch", 1),
        PN_AT_LEAST("accum", 1),
        PN_AT_LEAST("size", 32),
        PN_AT_LEAST("steps-per-epoch", 0),
        PN_ABOVE("lr", 0),
        PN_AT_LEAST("wd", 0),
        PN_AT_LEAST("clip", 0),
        PN_ABOVE("gamma", 0),
        PN_BETWEEN("plateau-factor", 0, 1),
        PN_AT_LEAST("plateau-patience", 0),
        PN_AT_LEAST("plateau-threshold", 0),
        PN_AT_LEAST("cosine-period", 1),
        PN_AT_LEAST("cosine-start", 0),
        PN_AT_LEAST("min-lr", 0),
        PN_AT_LEAST("top-k", 0),
        PN_AT_LEAST("early-stop", 0),
        PN_AT_LEAST("seed", 0),
        PN_AT_LEAST("threads", 0),
        PN_AT_LEAST("loader-threads", 1),
        PN_AT_LEAST("max-image-mb", 1),
        PN_AT_LEAST("freeze-encoder", 0),
        PN_AT_LEAST("encoder-lr-scale", 0),
        {NULL, 0, 0, false, false},
    };
    const pn_command_help help = {
        "pneumoseg train --data D --folds F [--fold K] --out RUN [options]",
        "Trains smp's Unet on the images of every fold but K and validates on fold K after each epoch: ComboLoss,\n"
        "Adam (optional coupled weight decay and gradient clipping), a per-epoch LR schedule, augmentation and the\n"
        "positive-share sampler. Each epoch adds a row to RUN/metrics.csv (lr, losses, Kaggle score at the best\n"
        "triplet, dice on positives), redraws RUN/curves.png (left: train loss red, val loss blue; right: Kaggle\n"
        "score green, dice on positives orange) and writes, atomically, RUN/last.state.safetensors (model, Adam\n"
        "moments, step, schedule; what --resume reads), RUN/last.safetensors, RUN/best.safetensors (best Kaggle\n"
        "score; smp names, loadable by PyTorch) and the top-k epochs. A NaN or Inf loss or gradient stops the run\n"
        "with a message naming the step; the last good checkpoint stays. RUN/run.json records every setting;\n"
        "--resume refuses, in one line naming each with both values, any setting that changes the result; --epochs\n"
        "may change (unless --pos-share has several parts or sets --cosine-start), --top-k, --early-stop and\n"
        "--loader-threads too, --backend and --threads with a warning (reduction order changes the last bits).\n"
        "plateau-cosine: ReduceLROnPlateau for --cosine-start epochs, then CosineAnnealingLR from the lr it left.\n"
        "Under mpirun -np N (built with MPI) each rank trains on its share of every global batch and the gradients\n"
        "are all-reduced; --sync-bn makes the N ranks compute what one process does with the whole batch (else each\n"
        "rank normalises its own share, as PyTorch's DDP). Rank 0 alone writes the run folder.\n"
        "Ctrl-C (SIGINT) or SIGTERM stops at the next batch, leaving a run that --resume continues; --force starts\n"
        "over, removing the old run's checkpoints, epoch files and metrics. Each checkpoint records the training "
        "size,\n"
        "normalisation and the epoch's best triplet (min area in 1024-pixels), which eval and predict default to."};
    int rc = pn_cli_parse_ranged(argc, argv, opts, ranges, &help);
    if (rc) return rc < 0 ? 0 : rc;
    pn_image_set_limit_mb(a.max_image_mb);
    a.loader_threads = pn_cap_threads("--loader-threads", a.loader_threads);
    trainer t;
    memset(&t, 0, sizeof t);
    t.a = &a;
    struct sigaction stop = {.sa_handler = on_stop_signal, .sa_flags = SA_RESETHAND}, old_int, old_term;
    sigemptyset(&stop.sa_mask);
    sigaction(SIGINT, &stop, &old_int);
    sigaction(SIGTERM, &stop, &old_term);
    pn_status st = pn_train_dist_open(&t.dist);
    if (st != PN_OK) return pn_train_dist_open_failed(st, "train");
    st = setup(&t, argc, argv);
    /* a usage error follows from argv alone, so every rank has it: each exits 2 and rank 0 says why */
    bool usage = st == PN_ERR_USAGE, quiet = usage && !pn_train_dist_root(t.dist);
    if (st == PN_OK) st = pn_train_dist_start(t.dist);
    if (st == PN_OK) st = run_epochs(&t);
    if (st != PN_OK && !usage && t.dist) pn_train_dist_fail(t.dist, "train"); /* stops every rank */
    if (st == PN_OK && pn_train_dist_root(t.dist)) pn_tool_report_memory();
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    pn_unet_free(t.m);
    pn_train_dist_close(t.dist);
    if (t.be) pn_backend_close(t.be);
    pn_aug_free(t.aug);
    pn_split_free(&t.split);
    free(t.state.history);
    if (quiet) return 2;
    if (st != PN_OK && pn_tool_stop) {
        pn_cli_fail("train");
        return 128 + (int)pn_tool_stop; /* as a shell reports a process ended by that signal */
    }
    return pn_cli_exit("train", st);
}
