/* int8_file: what makes a weights file an int8 model: the calibrated input range of each quantized convolution,
 * kept in the safetensors metadata next to the float32 weights; and applying it to a backend. */
#ifndef PN_TOOLS_INT8_FILE_H
#define PN_TOOLS_INT8_FILE_H

#include <stdbool.h>

#include "core/backend.h"
#include "core/safetensors.h"

#define PN_INT8_META_KEY "pneumoseg.int8"

/* Adds the ranges (conv labels = weight names without ".weight") and a line on how they were measured. */
pn_status pn_int8_meta_write(pn_st_writer *w, int n, const char *const *labels, const float *lo, const float *hi,
                             const char *calibration);
/* If `weights` is an int8 model, tells the backend which convolutions run in int8 (*is_int8 = true); a backend
 * without int8 convolutions is an error that says so. A float32 file (safetensors or a PyTorch .pth) clears an
 * earlier model's list. Call before the model using these weights is planned. */
pn_status pn_int8_apply(pn_backend *be, const char *weights, bool *is_int8);

#endif
