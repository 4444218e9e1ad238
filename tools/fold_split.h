/* fold_split: the training and validation ids of one fold, read from `pneumoseg folds` output. */
#ifndef PN_TOOLS_FOLD_SPLIT_H
#define PN_TOOLS_FOLD_SPLIT_H

#include <stdbool.h>

#include "core/base.h"

/* The ids of one fold split read from `pneumoseg folds` output (ImageId,has_mask,kfold). */
typedef struct pn_split {
    char **train_ids, **val_ids;
    bool *train_pos, *val_pos;
    int n_train, n_val;
    char *storage;
} pn_split;
/* Reads folds.csv; validation = rows with kfold == fold, training = the rest. Every ImageId must be a plain file
 * name (no path) and appear in one row only; a fold with no image is a usage error. */
pn_status pn_split_read(const char *path, int fold, pn_split *out);
/* Checks that every image of the split (validation only unless train_too) is in DATA/train and every positive one
 * has its DATA/mask; one error lists the missing ids (the first ten and the count). */
pn_status pn_split_check_files(const pn_split *s, const char *data, bool train_too);
void pn_split_free(pn_split *s);

#endif
