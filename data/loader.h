/* loader: worker threads read PNGs, augment and fill float NCHW batches in a ring ahead of the trainer. */
#ifndef PN_LOADER_H
#define PN_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/base.h"
#include "data/augment.h"

/* Which samples make an epoch. */
typedef enum pn_sampler_mode {
    PN_SAMPLER_SEQUENTIAL = 0, /* every id once, in the given order (or shuffled, see .shuffle) */
    PN_SAMPLER_POS_SHARE = 1,  /* the winner's PneumoSampler: all positives plus int(npos*(1-p)/p)
                                * negatives drawn with replacement, the whole list permuted per epoch */
} pn_sampler_mode;

typedef struct pn_loader_config {
    const char *image_dir;  /* <image_dir>/<id>.png, 8-bit grey (RGB is reduced to its first channel) */
    const char *mask_dir;   /* <mask_dir>/<id>.png, or NULL: targets are zero (test images); a missing
                             * file is an empty mask unless has_mask marks the id positive */
    const char *const *ids; /* n_ids ids (file names without .png); copied */
    const bool *has_mask;   /* n_ids flags: positive sample (needed by POS_SHARE); may be NULL */
    int n_ids;
    int batch_size;             /* N */
    int size;                   /* S: images of another size are resized (bilinear; masks nearest) */
    const pn_aug_pipeline *aug; /* NULL = no augmentation; the caller keeps it alive */
    pn_norm_mode norm;
    pn_sampler_mode sampler;
    double pos_share; /* POS_SHARE: the share p of positives, in (0, 1] */
    uint64_t seed;
    int threads;       /* worker threads (>= 1) */
    int prefetch;      /* batches in the ring (0 = 2 * threads + 1) */
    bool shuffle;      /* SEQUENTIAL: permute per epoch */
    bool drop_last;    /* drop a last, partial batch */
    int shard, shards; /* data-parallel ranks (shards > 1, drop_last): batch b holds part `shard` of the
                        * global batch b of batch_size * shards samples, the stream positions
                        * (b * shards + shard) * batch_size ...; 0, 0 = the whole stream */
} pn_loader_config;

/* One batch. The buffers belong to the loader and stay valid until the next pn_loader_next. */
typedef struct pn_batch {
    int n, size;    /* n <= batch_size samples of size x size */
    float *image;   /* (n, 3, size, size), normalised as configured */
    float *target;  /* (n, 1, size, size), mask / 255 in [0, 1] */
    const int *ids; /* n indices into the config's ids */
} pn_batch;

typedef struct pn_loader pn_loader_t;

/* Checks the config and creates a loader (no threads run until an epoch starts). */
pn_status pn_loader_create(const pn_loader_config *cfg, pn_loader_t **out);
/* Samples in one epoch of this loader (the sampler's length, all shards) and batches per epoch (of this shard). */
int64_t pn_loader_epoch_samples(const pn_loader_t *ld);
int64_t pn_loader_epoch_batches(const pn_loader_t *ld);
/* Starts epoch `epoch` (draws its order, starts the workers); ends any epoch in progress. */
pn_status pn_loader_start_epoch(pn_loader_t *ld, uint32_t epoch);
/* Waits for the next batch of the epoch. Returns PN_OK and sets *done = true (batch untouched)
 * at the end of the epoch; a worker's error (unreadable file, ...) comes back here. */
pn_status pn_loader_next(pn_loader_t *ld, pn_batch *batch, bool *done);
/* Stops the workers and frees everything. */
void pn_loader_destroy(pn_loader_t *ld);

/* The sample order of one epoch (what the loader will use), for tests and tools: *order is
 * malloc'ed (free()), *count its length. */
pn_status pn_loader_epoch_order(const pn_loader_config *cfg, uint32_t epoch, int **order, int64_t *count);

#endif
