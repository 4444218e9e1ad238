/* fake_backend_module: a loadable backend module for tests of the module path (dlopen, score, init,
 * API version, fallback). It wraps the ref backend found in the host binary, so it proves that a module
 * shares the host's one copy of core. PN_FAKE_SCORE=0 makes it report "no device"; PN_FAKE_API=N makes
 * it claim API version N. */
#include <stdio.h>
#include <stdlib.h>

#include "backends/ref/ref.h"
#include "core/backend.h"

int pn_backend_score(char *reason, size_t n);
pn_status pn_backend_init(int api_version, int threads, pn_backend **out);

int pn_backend_score(char *reason, size_t n) {
    const char *s = getenv("PN_FAKE_SCORE");
    if (s && atoi(s) <= 0) {
        snprintf(reason, n, "no fake device (PN_FAKE_SCORE=%s)", s);
        return 0;
    }
    return 1;
}

pn_status pn_backend_init(int api_version, int threads, pn_backend **out) {
    (void)api_version;
    PN_TRY(pn_ref_backend_create(threads, out));
    (*out)->name = "fake";
    const char *api = getenv("PN_FAKE_API");
    if (api) (*out)->api_version = atoi(api);
    return PN_OK;
}
