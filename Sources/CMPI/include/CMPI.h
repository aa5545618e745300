// Open MPI, loaded at run time (dlopen) only when the process was started by mpirun or srun, so that one process
// needs neither the MPI library nor its runtime. The declarations below are the handful of MPI calls Gigapatch
// makes, with Open MPI's ABI (libmpi.so.40: Open MPI 3.0 to 5.x): handles are pointers, MPI_Status starts with
// three ints. Every call returns 0 or an MPI error code (gp_mpi_error_string turns it into text).
#ifndef GIGAPATCH_CMPI_H
#define GIGAPATCH_CMPI_H

#include <stddef.h>

/// Loads `library` (a file name or path) and resolves the calls; 0 on success, else -1 with `error` filled.
int gp_mpi_open(const char *library, char *error, int error_length);
/// MPI_Init_thread (serialized: any thread may call, one at a time) and errors returned rather than fatal.
int gp_mpi_init(int *rank, int *size);
/// MPI_Finalize once, if gp_mpi_init succeeded (safe to call from atexit).
int gp_mpi_finalize(void);
/// Ends every rank of the job (MPI_Abort on the world communicator).
void gp_mpi_abort(int code);
void gp_mpi_error_string(int code, char *out, int length);

/// In-place sums over all ranks.
int gp_mpi_allreduce_sum_float(float *buffer, long count);
int gp_mpi_allreduce_sum_double(double *buffer, long count);
int gp_mpi_bcast(void *buffer, long bytes, int root);
int gp_mpi_barrier(void);

/// Point to point, in bytes. `source` -1 is any source.
int gp_mpi_send(const void *bytes, long count, int destination, int tag);
/// Waits for a message; reports its source, tag and size in bytes.
int gp_mpi_probe(int source, int tag, int *source_out, int *tag_out, long *count_out);
/// As gp_mpi_probe without waiting: `flag` is 0 when nothing is there.
int gp_mpi_iprobe(int source, int tag, int *flag, int *source_out, int *tag_out, long *count_out);
int gp_mpi_recv(void *bytes, long count, int source, int tag);

#endif
