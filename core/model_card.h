/* model_card: what a weights file says about how to use it (architecture, training size, input normalisation,
 * the chosen post-processing triplet), kept in its safetensors "__metadata__" under "pneumoseg.*" keys. */
#ifndef PN_MODEL_CARD_H
#define PN_MODEL_CARD_H

#include <stdbool.h>

#include "base.h"
#include "safetensors.h"

typedef struct pn_model_card {
    char encoder[32];   /* smp encoder name, e.g. "resnet34", "se_resnext50_32x4d"; "" = not recorded */
    char decoder[16];   /* "unet" or "albunet"; "" = not recorded */
    char attention[16]; /* Unet decoder_attention_type: "" (none) or "scse" */
    int train_size;     /* input size the model was trained at, in pixels; 0 = not recorded */
    char normalize[16]; /* input normalisation: "imagenet", "none"; "" = not recorded */
    bool has_triplet;   /* the post-processing rule chosen on validation, min area in pixels of a 1024 image */
    float top, bottom;
    int min_area;
    double score; /* validation Kaggle score at that triplet (NaN when not recorded) */
} pn_model_card;

/* An empty card (nothing recorded; score NaN). */
void pn_model_card_clear(pn_model_card *c);
/* Adds every recorded field of the card to the writer's metadata. */
pn_status pn_model_card_write(const pn_model_card *c, pn_st_writer *w);
/* Fills the card from a file's metadata (fields absent from the file stay cleared). A value that does not parse
 * is PN_ERR_FORMAT naming the file and the key. */
pn_status pn_model_card_read(const pn_st_file *f, pn_model_card *c);

#endif
