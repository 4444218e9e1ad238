/* mpi_comm_none: the MPI interface of a build without MPI (PN_MPI=OFF or no MPI found): nothing can join a job. */
#include <stdio.h>
#include <stdlib.h>

#include "mpi_comm.h"

bool pn_mpi_built_in(char *desc, size_t n) {
    snprintf(desc, n, "not built in (install libopenmpi-dev and openmpi-bin, then configure with -DPN_MPI=ON)");
    return false;
}

pn_status pn_mpi_init(pn_comm *comm, int *local_rank, int *local_size) {
    (void)comm, (void)local_rank, (void)local_size;
    return pn_error(PN_ERR_UNSUPPORTED, "this pneumoseg was built without MPI");
}

pn_status pn_mpi_sum_f32(float *x, int64_t n) {
    (void)x, (void)n;
    return pn_error(PN_ERR_UNSUPPORTED, "this pneumoseg was built without MPI");
}

pn_status pn_mpi_broadcast(void *data, size_t n) {
    (void)data, (void)n;
    return pn_error(PN_ERR_UNSUPPORTED, "this pneumoseg was built without MPI");
}

void pn_mpi_abort(int code) { exit(code); }

void pn_mpi_finalize(void) {}
