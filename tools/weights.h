/* weights: loads the checkpoints people have (our safetensors, smp-hub or timm safetensors, PyTorch .pth in either
 * format) into the model by its smp names: the key map, shape checks, what was dropped and what is missing, the
 * input normalisation the weights expect, and the choice of --norm that follows from it. */
#ifndef PN_TOOLS_WEIGHTS_H
#define PN_TOOLS_WEIGHTS_H

#include <stdbool.h>

#include "core/unet.h"

typedef enum pn_load_mode {
    PN_LOAD_WHOLE,   /* every tensor of the model comes from the file (--weights) */
    PN_LOAD_ENCODER, /* the encoder's tensors, all of them; the rest of the file is not used (init --encoder-weights) */
    PN_LOAD_INIT,    /* the encoder's tensors, all of them; the decoder and head all or none (train --init): what the
                      * file lacks keeps the model's values */
} pn_load_mode;

typedef struct pn_load_result {
    char from[16];      /* the naming the file used ("smp", "torchvision", ...) */
    char normalize[16]; /* the normalisation the weights expect, as a --norm value; "" when unknown */
    int loaded, dropped, missing;
    bool encoder_only; /* the file held the encoder and nothing else of the model */
} pn_load_result;

/* Loads `path` into m. `from` forces the naming (NULL or "auto": detected). One info line says what was loaded,
 * dropped (and why) and missing; a missing tensor the mode needs, a tensor of the file that the model lacks, a
 * shape mismatch (naming the key and both shapes) or a file recorded for another architecture is an error. The
 * model card's normalisation becomes the file's when the file tells it. */
pn_status pn_tool_load_weights(pn_unet *m, const char *path, pn_load_mode mode, const char *from, pn_load_result *r);

/* The input normalisation to use (a --norm value): `option` when given (a warning when the weights recorded
 * another), else what the weights recorded, else "imagenet". *how says which ("--norm", "the weights' metadata",
 * "the default"). An unknown value is PN_ERR_ARG. */
pn_status pn_tool_resolve_norm(const char *option, const char *recorded, const char *what, const char **norm,
                               const char **how);

#endif
