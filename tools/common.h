/* common: small helpers the subcommands share (opening a backend, reporting memory). */
#ifndef PN_TOOLS_COMMON_H
#define PN_TOOLS_COMMON_H

#include "core/backend.h"
#include "core/unet.h"

/* Opens the backend named by --backend (default "auto") with --threads (0 = all cores) and logs it. */
pn_status pn_tool_open_backend(const char *name, int threads, pn_backend **out);
/* Creates the model and loads `weights` into it: our safetensors (the architecture it records, else recognised
 * from its tensor names and shapes) or a whole model's PyTorch .pth (smp or AlbuNet names, any wrapper; see
 * weights.h; the architecture from the flags). `encoder` (NULL = none given) must agree with the file. */
pn_status pn_tool_load_model(const char *encoder, const char *weights, pn_backend *be, pn_unet **out);
/* The same with --decoder and --attention too (each NULL when not given). */
pn_status pn_tool_load_model_arch(const char *encoder, const char *decoder, const char *attention, const char *weights,
                                  pn_backend *be, pn_unet **out);
/* The architecture of a weights file for training from it (--init): what our safetensors record or show; the flags'
 * for a .pth or an encoder alone. Flags given must agree with the file. */
pn_status pn_tool_arch_of_weights(const char *encoder, const char *decoder, const char *attention, const char *weights,
                                  pn_arch *out);
/* The architecture named by --encoder/--decoder/--attention (NULL = resnet34 / unet / none). */
pn_status pn_tool_arch(const char *encoder, const char *decoder, const char *attention, pn_arch *out);
/* Applies --precision (fp32, bf16 or fp16; NULL = fp32) to the backend before the model is planned: through its
 * set_precision slot when it has one; else fp32 only, anything else one clear error naming the reason. */
pn_status pn_tool_set_precision(pn_backend *be, const char *precision);
/* Applies --deterministic (deterministic algorithms only) before the model is planned. */
pn_status pn_tool_set_deterministic(pn_backend *be, bool deterministic);
/* Prints "peak RSS N MB" to stderr. */
void pn_tool_report_memory(void);

#endif
