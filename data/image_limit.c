/* image_limit: the process-wide cap on decoded image size (see image_limit.h). */
#include "image_limit.h"

#include <stdatomic.h>

static _Atomic size_t limit_bytes = (size_t)PN_IMAGE_LIMIT_DEFAULT_MB * 1000000;

void pn_image_set_limit_mb(double mb) {
    if (!(mb >= 1)) mb = 1;
    if (mb > 1e12) mb = 1e12;
    atomic_store(&limit_bytes, (size_t)(mb * 1e6));
}

size_t pn_image_limit_bytes(void) { return atomic_load(&limit_bytes); }

pn_status pn_image_check_size(const char *name, int64_t w, int64_t h, int64_t channels, int64_t bytes_per_sample,
                              int64_t count) {
    /* in double: the factors come from a file and may be anything up to 2^32 each */
    double bytes =
        (double)w * (double)h * (double)channels * (double)bytes_per_sample * (double)(count > 0 ? count : 1);
    double limit = (double)pn_image_limit_bytes();
    if (w > 0 && h > 0 && bytes <= limit) return PN_OK;
    if (w <= 0 || h <= 0)
        return pn_error(PN_ERR_FORMAT, "%s: image size %lldx%lld is empty", name, (long long)w, (long long)h);
    return pn_error(PN_ERR_UNSUPPORTED,
                    "%s: a %lldx%lld image%s would take %.0f MB decoded, above the limit of %.0f MB (--max-image-mb)",
                    name, (long long)w, (long long)h, count > 1 ? " sequence" : "", bytes / 1e6, limit / 1e6);
}
