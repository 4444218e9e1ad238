/* model_load: the architecture of a run (--encoder/--decoder/--attention, or what a weights file records or
 * shows) and creating the model from a weights file and loading it. */
#ifndef PN_TOOLS_MODEL_LOAD_H
#define PN_TOOLS_MODEL_LOAD_H

#include "core/backend.h"
#include "core/unet.h"
#include "tools/cli.h"

/* --encoder, --decoder and --attention as given (NULL = not given). */
typedef struct pn_arch_opts {
    const char *encoder, *decoder, *attention;
} pn_arch_opts;

/* The pn_opt entries of those options over `a` (a pn_arch_opts *), for a command's option table; each default is a
 * string literal (what a new model gets, or where a weights file's comes from: PN_ARCH_OPTIONS_OF_WEIGHTS). */
/* One option per line, as the tables write them: */
/* clang-format off */
#define PN_ARCH_OPTIONS(a, encoder_default, decoder_default, attention_default)                                        \
    {"encoder", PN_OPT_STR, &(a)->encoder, "NAME",                                                                     \
     "encoder, one of those `pneumoseg models` lists (default: " encoder_default ")", false},                          \
    {"decoder", PN_OPT_STR, &(a)->decoder, "NAME",                                                                     \
     "unet or albunet (albunet: resnet34 only; default: " decoder_default ")", false},                                 \
    {"attention", PN_OPT_STR, &(a)->attention, "TYPE",                                                                 \
     "Unet decoder attention: none or scse (default: " attention_default ")", false}
/* clang-format on */
#define PN_ARCH_OPTIONS_OF_WEIGHTS(a)                                                                                  \
    PN_ARCH_OPTIONS(a, "what the weights file records or its tensors show", "from the weights file",                   \
                    "from the weights file")

/* The architecture named by the options (NULL = resnet34 / unet / none). */
pn_status pn_tool_arch(const pn_arch_opts *o, pn_arch *out);
/* The architecture of a weights file for training from it (--init): what our safetensors record or show; the
 * options' for a .pth or an encoder alone. Options given must agree with the file. */
pn_status pn_tool_arch_of_weights(const pn_arch_opts *o, const char *weights, pn_arch *out);
/* Creates the model and loads `weights` into it: our safetensors (the architecture it records, else recognised
 * from its tensor names and shapes) or a whole model's PyTorch .pth (smp or AlbuNet names, any wrapper; see
 * weights.h; the architecture from the options). Options given must agree with the file. */
pn_status pn_tool_load_model(const pn_arch_opts *o, const char *weights, pn_backend *be, pn_unet **out);
/* The two halves of pn_tool_load_model: the model the file holds (created, not loaded), then its weights. */
pn_status pn_tool_create_model(const pn_arch_opts *o, const char *weights, pn_backend *be, pn_unet **out);
pn_status pn_tool_load_into(pn_unet *m, const char *weights);

#endif
