/* model_load: the architecture of a run (--encoder/--decoder/--attention, or what a weights file records or
 * shows) and creating the model from a weights file and loading it. */
#ifndef PN_TOOLS_MODEL_LOAD_H
#define PN_TOOLS_MODEL_LOAD_H

#include "core/backend.h"
#include "core/unet.h"

/* Creates the model and loads `weights` into it: our safetensors (the architecture it records, else recognised
 * from its tensor names and shapes) or a whole model's PyTorch .pth (smp or AlbuNet names, any wrapper; see
 * weights.h; the architecture from the flags). `encoder` (NULL = none given) must agree with the file. */
pn_status pn_tool_load_model(const char *encoder, const char *weights, pn_backend *be, pn_unet **out);
/* The same with --decoder and --attention too (each NULL when not given). */
pn_status pn_tool_load_model_arch(const char *encoder, const char *decoder, const char *attention, const char *weights,
                                  pn_backend *be, pn_unet **out);
/* The two halves of pn_tool_load_model_arch: the model the file holds (created, not loaded), then its weights. */
pn_status pn_tool_create_model_arch(const char *encoder, const char *decoder, const char *attention,
                                    const char *weights, pn_backend *be, pn_unet **out);
pn_status pn_tool_load_into(pn_unet *m, const char *weights);
/* The architecture of a weights file for training from it (--init): what our safetensors record or show; the flags'
 * for a .pth or an encoder alone. Flags given must agree with the file. */
pn_status pn_tool_arch_of_weights(const char *encoder, const char *decoder, const char *attention, const char *weights,
                                  pn_arch *out);
/* The architecture named by --encoder/--decoder/--attention (NULL = resnet34 / unet / none). */
pn_status pn_tool_arch(const char *encoder, const char *decoder, const char *attention, pn_arch *out);

#endif
