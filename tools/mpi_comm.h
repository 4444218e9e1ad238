/* mpi_comm: the MPI calls pneumoseg makes, behind one small interface: mpi_comm.c over an MPI library found at
 * configure time (PN_MPI), mpi_comm_none.c in builds without one (each call then says so). */
#ifndef PN_TOOLS_MPI_COMM_H
#define PN_TOOLS_MPI_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dist.h"

/* Whether MPI is built in; desc gets the library's version line (or why not). */
bool pn_mpi_built_in(char *desc, size_t n);
/* Joins the job (MPI_Init; only the calling thread makes MPI calls) and fills *comm with the world communicator
 * (rank, size, sum_f64). *local_rank and *local_size: this process among the ranks on its machine. */
pn_status pn_mpi_init(pn_comm *comm, int *local_rank, int *local_size);
/* Sums n host floats over the ranks, in place. */
pn_status pn_mpi_sum_f32(float *x, int64_t n);
/* Rank 0's n bytes to every rank. */
pn_status pn_mpi_broadcast(void *data, size_t n);
/* Ends every rank of the job with exit code `code` (MPI_Abort). */
PN_NORETURN void pn_mpi_abort(int code);
/* MPI_Finalize. */
void pn_mpi_finalize(void);

#endif
