/* sched: per-epoch learning-rate schedules (MultiStepLR, ReduceLROnPlateau max, CosineAnnealingLR and
 * plateau-then-cosine). */
#include "sched.h"

#include <math.h>
#include <string.h>

pn_status pn_sched_parse(const char *name, pn_sched_kind *out) {
    if (!strcmp(name, "multistep"))
        *out = PN_SCHED_MULTISTEP;
    else if (!strcmp(name, "plateau"))
        *out = PN_SCHED_PLATEAU;
    else if (!strcmp(name, "cosine"))
        *out = PN_SCHED_COSINE;
    else if (!strcmp(name, "plateau-cosine"))
        *out = PN_SCHED_PLATEAU_COSINE;
    else
        return pn_error(PN_ERR_ARG, "unknown schedule '%s' (expected multistep, plateau, cosine or plateau-cosine)",
                        name);
    return PN_OK;
}

void pn_sched_defaults(pn_sched *s, pn_sched_kind kind, double base_lr) {
    static const int ms[] = {3, 5, 6, 7, 8, 9, 10, 11, 13, 15};
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->base_lr = base_lr;
    s->n_milestones = (int)(sizeof ms / sizeof ms[0]);
    memcpy(s->milestones, ms, sizeof ms);
    s->gamma = 0.75;
    s->factor = 0.1;
    s->patience = 2;
    s->min_lr = 1e-7;
    s->threshold = 1e-4;
    s->best = -INFINITY;
    s->lr = base_lr;
    s->period = 8;
    s->eta_min = 1e-7;
}

/* CosineAnnealingLR's closed form from `start_lr` after t epochs. */
static double cosine_at(const pn_sched *s, double start_lr, int t) {
    int p = s->period > 0 ? s->period : 1;
    return s->eta_min + (start_lr - s->eta_min) * (1.0 + cos(3.14159265358979323846 * (double)t / p)) / 2.0;
}

double pn_sched_lr(const pn_sched *s, int epoch) {
    switch (s->kind) {
    case PN_SCHED_MULTISTEP: {
        double lr = s->base_lr;
        for (int i = 0; i < s->n_milestones; i++)
            if (s->milestones[i] <= epoch) lr *= s->gamma;
        return lr;
    }
    case PN_SCHED_COSINE: return cosine_at(s, s->base_lr, epoch);
    case PN_SCHED_PLATEAU_COSINE: return epoch < s->cosine_start ? s->lr : cosine_at(s, s->lr, epoch - s->cosine_start);
    case PN_SCHED_PLATEAU:
    default: return s->lr;
    }
}

void pn_sched_observe(pn_sched *s, int epoch, double score) {
    if (s->kind != PN_SCHED_PLATEAU && !(s->kind == PN_SCHED_PLATEAU_COSINE && epoch < s->cosine_start)) return;
    if (score > s->best * (1.0 + s->threshold) || s->best == -INFINITY) {
        s->best = score;
        s->bad = 0;
        return;
    }
    if (++s->bad > s->patience) {
        double lr = fmax(s->lr * s->factor, s->min_lr);
        if (s->lr - lr > 1e-8) s->lr = lr;
        s->bad = 0;
    }
}
