/* validate: the validation pass and the batch prediction with optional hflip TTA. */
#include "validate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/postprocess.h"

volatile sig_atomic_t pn_tool_stop = 0;

static void hflip_nchw(float *x, int planes, int s) {
    for (int p = 0; p < planes; p++) pn_pp_hflip_f32(x + (int64_t)p * s * s, s, s);
}

pn_status pn_tool_predict_batch(pn_unet *m, const float *input, int n, int s, bool tta, float *probs, float *logits,
                                float *scratch) {
    int64_t px = (int64_t)n * s * s;
    PN_TRY(pn_tensor_set(pn_unet_input(m), input));
    PN_TRY(pn_unet_forward(m));
    PN_TRY(pn_tensor_get(pn_unet_logits(m), probs));
    if (logits) memcpy(logits, probs, (size_t)px * sizeof *probs);
    for (int64_t i = 0; i < px; i++) probs[i] = 1.0f / (1.0f + expf(-probs[i]));
    if (!tta) return PN_OK;
    memcpy(scratch, input, (size_t)(3 * px) * sizeof *scratch);
    hflip_nchw(scratch, 3 * n, s);
    PN_TRY(pn_tensor_set(pn_unet_input(m), scratch));
    PN_TRY(pn_unet_forward(m));
    PN_TRY(pn_tensor_get(pn_unet_logits(m), scratch));
    hflip_nchw(scratch, n, s);
    for (int64_t i = 0; i < px; i++) probs[i] = 0.5f * (probs[i] + 1.0f / (1.0f + expf(-scratch[i])));
    return PN_OK;
}

pn_status pn_tool_validate(pn_unet *m, const pn_loader_config *cfg_in, bool tta, const double w[3], bool progress,
                           pn_run_grid *rg, pn_val_result *out) {
    pn_triplet_grid *grid = &rg->g;
    pn_loader_config cfg = *cfg_in;
    cfg.aug = NULL;
    cfg.sampler = PN_SAMPLER_SEQUENTIAL;
    cfg.shuffle = false;
    cfg.drop_last = false;
    int n = cfg.batch_size, s = cfg.size;
    memset(out, 0, sizeof *out);
    PN_TRY(pn_unet_plan(m, n, s, s, PN_UNET_EVAL));
    pn_loader_t *ld = NULL;
    PN_TRY(pn_loader_create(&cfg, &ld));
    int64_t px = (int64_t)n * s * s;
    float *input = calloc((size_t)(3 * px), sizeof(float)), *scratch = malloc((size_t)(3 * px) * sizeof(float));
    float *probs = malloc((size_t)px * sizeof(float)), *logits = malloc((size_t)px * sizeof(float));
    uint8_t *truth = malloc((size_t)s * s);
    pn_status st = input && scratch && probs && logits && truth ? pn_loader_start_epoch(ld, 0)
                                                                : pn_error(PN_ERR_NOMEM, "out of memory");
    pn_progress bar;
    if (progress) pn_progress_begin(&bar, "validate", pn_loader_epoch_samples(ld));
    double loss_sum = 0;
    int64_t batches = 0;
    while (st == PN_OK) {
        pn_batch b;
        bool done;
        st = pn_loader_next(ld, &b, &done);
        if (st != PN_OK || done) break;
        if (pn_tool_stop) {
            st = pn_error(PN_ERR_IO, "validation interrupted");
            break;
        }
        memset(input, 0, (size_t)(3 * px) * sizeof *input);
        memcpy(input, b.image, (size_t)(3 * (int64_t)b.n * s * s) * sizeof *input);
        st = pn_tool_predict_batch(m, input, n, s, tta, probs, logits, scratch);
        if (st != PN_OK) break;
        int64_t real = (int64_t)b.n * s * s;
        loss_sum += pn_combo_loss_host(logits, b.target, real, w[0], w[1], w[2]);
        batches++;
        for (int i = 0; i < b.n; i++) {
            const float *t = b.target + (int64_t)i * s * s;
            for (int64_t k = 0; k < (int64_t)s * s; k++) truth[k] = t[k] >= 0.5f;
            pn_grid_add(grid, probs + (int64_t)i * s * s, truth, (int64_t)s * s);
        }
        if (progress) pn_progress_step(&bar, b.n, NULL);
    }
    if (progress) pn_progress_end(&bar);
    pn_loader_destroy(ld);
    free(input);
    free(scratch);
    free(probs);
    free(logits);
    free(truth);
    if (st != PN_OK) return st;
    int best = pn_grid_best(grid);
    out->loss = batches ? loss_sum / (double)batches : 0;
    out->best = pn_grid_triplet(grid, best);
    out->best_1024 = pn_tool_grid_triplet(rg, best);
    out->best_index = best;
    pn_grid_means(grid, best, &out->score, &out->pos_dice, &out->empty_acc);
    out->images = grid->images;
    out->positives = grid->positives;
    return PN_OK;
}
