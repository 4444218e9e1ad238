/* mpi_comm: the MPI calls of data-parallel training, over the MPI-3 library found at configure time (Open MPI from
 * Debian in CI). Errors come back as pn_status (MPI_ERRORS_RETURN) so the trainer reports them in its own line. */
#include "mpi_comm.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static pn_status mpi_fail(int rc, const char *call) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, text, &len);
    return pn_error(PN_ERR_IO, "MPI: %s failed: %s", call, text);
}

#define MPI_TRY(call)                                                                                                  \
    do {                                                                                                               \
        int mpi_rc_ = (call);                                                                                          \
        if (mpi_rc_ != MPI_SUCCESS) return mpi_fail(mpi_rc_, #call);                                                   \
    } while (0)

bool pn_mpi_built_in(char *desc, size_t n) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(version, &len);
    for (int i = 0; version[i]; i++)
        if (version[i] == ',' || version[i] == '\n') version[i] = 0; /* the first clause: "Open MPI v4.1.4" */
    snprintf(desc, n, "%s (MPI %d.%d)", version, MPI_VERSION, MPI_SUBVERSION);
    return true;
}

static pn_status sum_f64(pn_comm *c, double *x, int64_t n) {
    (void)c;
    for (int64_t done = 0; done < n; done += INT_MAX) {
        int chunk = n - done < INT_MAX ? (int)(n - done) : INT_MAX;
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, x + done, chunk, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    }
    return PN_OK;
}

pn_status pn_mpi_sum_f32(float *x, int64_t n) {
    for (int64_t done = 0; done < n; done += INT_MAX) {
        int chunk = n - done < INT_MAX ? (int)(n - done) : INT_MAX;
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, x + done, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    }
    return PN_OK;
}

pn_status pn_mpi_broadcast(void *data, size_t n) {
    if (n > INT_MAX) return pn_error(PN_ERR_ARG, "MPI: broadcast of %zu bytes", n);
    MPI_TRY(MPI_Bcast(data, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD));
    return PN_OK;
}

pn_status pn_mpi_init(pn_comm *comm, int *local_rank, int *local_size) {
    int provided = 0;
    MPI_TRY(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    MPI_TRY(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &comm->rank));
    MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, &comm->size));
    comm->ctx = NULL;
    comm->sum_f64 = sum_f64;
    MPI_Comm node;
    MPI_TRY(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, comm->rank, MPI_INFO_NULL, &node));
    MPI_TRY(MPI_Comm_rank(node, local_rank));
    MPI_TRY(MPI_Comm_size(node, local_size));
    MPI_Comm_free(&node);
    return PN_OK;
}

void pn_mpi_abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code); /* MPI_Abort does not return; this keeps the compiler's view honest */
}

void pn_mpi_finalize(void) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}
