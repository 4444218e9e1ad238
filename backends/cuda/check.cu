/* check: the CHECK macro family's error path: a failed CUDA/cuDNN call becomes one pn_error line. */
#include <string.h>

#include "cuda.h"

pn_status pn_cuda_fail(const char *call, const char *message, const char *file, int line) {
    /* "cudnnConvolutionForward(ctx->dnn, ...)" -> "cudnnConvolutionForward" */
    size_t len = strcspn(call, "(");
    const char *base = strrchr(file, '/');
    return pn_error(PN_ERR_BACKEND, "cuda: %.*s failed: %s (%s:%d)", (int)len, call, message, base ? base + 1 : file,
                    line);
}
