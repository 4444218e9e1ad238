/* run_settings: the size, normalisation and triplet eval and predict run weights with: the options, else the
 * weights' card, else the defaults. */
#ifndef PN_TOOLS_RUN_SETTINGS_H
#define PN_TOOLS_RUN_SETTINGS_H

#include <stdbool.h>

#include "core/metrics.h"
#include "core/unet.h"
#include "data/augment.h"

/* How eval and predict run a weights file: what the user gave, else what the file's card records (pneumoseg
 * train writes it), else the defaults of a file without one (e.g. written by PyTorch): 256, imagenet, 0.75,2000,0.3.
 * min_area in 1024-pixels. The architecture is not here: pn_tool_load_model_arch takes it from the file. */
typedef enum pn_setting_source { PN_FROM_DEFAULT, PN_FROM_FILE, PN_FROM_OPTION } pn_setting_source;
typedef struct pn_run_settings {
    int size;
    char norm[16];
    pn_setting_source norm_from;
    pn_triplet triplet;
    double score; /* the file's validation score at its triplet (NaN if none) */
} pn_run_settings;
/* The options as given (NULL / 0: not given; triplet NULL: the command has none or it was not given). Reads the
 * cards of every safetensors weights file; logs which values came from the first file, warns for each option that
 * overrides its value and for later files that record another size or triplet. Later files that record another
 * normalisation, with no --norm, are an error. Bad option values are usage errors. */
pn_status pn_tool_settings(const char *const *weights, int n_weights, int size, const char *norm, const char *triplet,
                           bool uses_triplet, pn_run_settings *out);
/* After loading `weights` into `m`: the normalisation a PyTorch checkpoint implies (known only once its names are
 * mapped) when nothing else chose one; an error when it contradicts the one the other files chose. */
pn_status pn_tool_settings_from_model(pn_run_settings *rs, pn_unet *m, const char *weights);
/* The canonical name of a normalisation ("imagenet", "unit", "none"), as cards record it. */
const char *pn_tool_norm_name(pn_norm_mode mode);

#endif
