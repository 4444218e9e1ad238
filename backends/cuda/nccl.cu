/* nccl: the cuda backend's collectives (core/dist.h): NCCL all-reduce of float32 device buffers on the backend's
 * stream, for data-parallel training with one process per GPU (the id travels over MPI). libnccl.so.2 is opened on
 * first use, so the module loads and trains where NCCL is not installed; the trainer then sums over MPI instead. */
#include <dlfcn.h>
#include <nccl.h>
#include <stdio.h>
#include <string.h>

#include "core/dist.h"
#include "cuda.h"

/* The NCCL functions used, looked up in the library. */
typedef struct nccl_api {
    decltype(&ncclGetUniqueId) get_unique_id;
    decltype(&ncclCommInitRank) comm_init_rank;
    decltype(&ncclAllReduce) all_reduce;
    decltype(&ncclCommDestroy) comm_destroy;
    decltype(&ncclGetErrorString) error_string;
} nccl_api;

static nccl_api api;
static bool api_loaded;

/* Looks name up in h into *fn; false (with the error set) if it is missing. */
template <typename F> static bool resolve(void *h, const char *name, F *fn) {
    *fn = (F)dlsym(h, name);
    if (!*fn) pn_error(PN_ERR_BACKEND, "NCCL: %s lacks %s", "libnccl.so.2", name);
    return *fn != NULL;
}

/* libnccl.so.2 from the loader's path, else from the folder CMake found it in. */
static pn_status load_api(void) {
    if (api_loaded) return PN_OK;
    void *h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
#ifdef PN_NCCL_DIR
    if (!h) h = dlopen(PN_NCCL_DIR "/libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
#endif
    if (!h) return pn_error(PN_ERR_BACKEND, "NCCL is not installed (%s)", dlerror());
    if (!resolve(h, "ncclGetUniqueId", &api.get_unique_id) || !resolve(h, "ncclCommInitRank", &api.comm_init_rank) ||
        !resolve(h, "ncclAllReduce", &api.all_reduce) || !resolve(h, "ncclCommDestroy", &api.comm_destroy) ||
        !resolve(h, "ncclGetErrorString", &api.error_string))
        return PN_ERR_BACKEND;
    api_loaded = true;
    return PN_OK;
}

#define NCCL_TRY(call)                                                                                                 \
    do {                                                                                                               \
        ncclResult_t nccl_st_ = (call);                                                                                \
        if (nccl_st_ != ncclSuccess)                                                                                   \
            return pn_error(PN_ERR_BACKEND, "NCCL: %s failed: %s", #call, api.error_string(nccl_st_));                 \
    } while (0)

static cuda_ctx *ctx_of(pn_backend *be) { return (cuda_ctx *)be->ctx; }

static pn_status nccl_make_id(pn_backend *be, void *id) {
    (void)be;
    NCCL_TRY(api.get_unique_id((ncclUniqueId *)id));
    return PN_OK;
}

static pn_status nccl_open(pn_backend *be, const void *id, int rank, int size, void **comm) {
    CUDA_TRY(cudaSetDevice(ctx_of(be)->device));
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    ncclComm_t c = NULL;
    NCCL_TRY(api.comm_init_rank(&c, size, uid, rank));
    *comm = c;
    return PN_OK;
}

static pn_status nccl_sum_f32(pn_backend *be, void *comm, const pn_tensor *t) {
    cuda_ctx *ctx = ctx_of(be);
    float *p = cuda_ptr(t);
    NCCL_TRY(api.all_reduce(p, p, cuda_numel(t), ncclFloat32, ncclSum, (ncclComm_t)comm, ctx->stream));
    CUDA_TRY(cudaStreamSynchronize(ctx->stream));
    return PN_OK;
}

static void nccl_close(pn_backend *be, void *comm) {
    (void)be;
    if (comm) api.comm_destroy((ncclComm_t)comm);
}

#define NCCL_STR2(x) #x
#define NCCL_STR(x) NCCL_STR2(x)
static const pn_collectives_i nccl_collectives = {
    "NCCL " NCCL_STR(NCCL_MAJOR) "." NCCL_STR(NCCL_MINOR),
    sizeof(ncclUniqueId),
    nccl_make_id,
    nccl_open,
    nccl_sum_f32,
    nccl_close,
};

pn_status pn_cuda_collectives(pn_backend *be, const pn_collectives_i **out) {
    (void)be;
    *out = NULL;
    PN_TRY(load_api());
    *out = &nccl_collectives;
    return PN_OK;
}
