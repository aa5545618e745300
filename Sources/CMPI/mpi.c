// See CMPI.h. Only this file knows Open MPI's ABI; the Swift layer (Cluster) knows nothing of handles.
#include "CMPI.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

typedef void *Handle;  // MPI_Comm, MPI_Datatype, MPI_Op, MPI_Errhandler: pointers in Open MPI
typedef struct { int source, tag, error, cancelled; size_t ucount; } Status;  // ompi_status_public_t

#define THREAD_SERIALIZED 2
#define IN_PLACE ((void *)1)

static int (*mpi_init_thread)(int *, char ***, int, int *);
static int (*mpi_finalize)(void);
static int (*mpi_abort)(Handle, int);
static int (*mpi_comm_rank)(Handle, int *);
static int (*mpi_comm_size)(Handle, int *);
static int (*mpi_comm_set_errhandler)(Handle, Handle);
static int (*mpi_error_string)(int, char *, int *);
static int (*mpi_allreduce)(const void *, void *, int, Handle, Handle, Handle);
static int (*mpi_bcast)(void *, int, Handle, int, Handle);
static int (*mpi_barrier)(Handle);
static int (*mpi_send)(const void *, int, Handle, int, int, Handle);
static int (*mpi_recv)(void *, int, Handle, int, int, Handle, Status *);
static int (*mpi_probe)(int, int, Handle, Status *);
static int (*mpi_iprobe)(int, int, Handle, int *, Status *);
static int (*mpi_get_count)(const Status *, Handle, int *);
static Handle comm_world, type_float, type_double, type_byte, op_sum, errors_return;
static int initialised;

int gp_mpi_open(const char *library, char *error, int error_length) {
    // Global: Open MPI's own plugins, loaded later, resolve their symbols against libmpi.
    void *lib = dlopen(library, RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        snprintf(error, (size_t)error_length, "%s", dlerror());
        return -1;
    }
#define RESOLVE(target, name)                                                            \
    do {                                                                                 \
        *(void **)(&target) = dlsym(lib, name);                                          \
        if (!target) {                                                                   \
            snprintf(error, (size_t)error_length, "%s has no symbol %s (not Open MPI?)", library, name); \
            return -1;                                                                   \
        }                                                                                \
    } while (0)
    RESOLVE(mpi_init_thread, "MPI_Init_thread");
    RESOLVE(mpi_finalize, "MPI_Finalize");
    RESOLVE(mpi_abort, "MPI_Abort");
    RESOLVE(mpi_comm_rank, "MPI_Comm_rank");
    RESOLVE(mpi_comm_size, "MPI_Comm_size");
    RESOLVE(mpi_comm_set_errhandler, "MPI_Comm_set_errhandler");
    RESOLVE(mpi_error_string, "MPI_Error_string");
    RESOLVE(mpi_allreduce, "MPI_Allreduce");
    RESOLVE(mpi_bcast, "MPI_Bcast");
    RESOLVE(mpi_barrier, "MPI_Barrier");
    RESOLVE(mpi_send, "MPI_Send");
    RESOLVE(mpi_recv, "MPI_Recv");
    RESOLVE(mpi_probe, "MPI_Probe");
    RESOLVE(mpi_iprobe, "MPI_Iprobe");
    RESOLVE(mpi_get_count, "MPI_Get_count");
    // The predefined handles are the addresses of these objects.
    RESOLVE(comm_world, "ompi_mpi_comm_world");
    RESOLVE(type_float, "ompi_mpi_float");
    RESOLVE(type_double, "ompi_mpi_double");
    RESOLVE(type_byte, "ompi_mpi_byte");
    RESOLVE(op_sum, "ompi_mpi_op_sum");
    RESOLVE(errors_return, "ompi_mpi_errors_return");
#undef RESOLVE
    return 0;
}

int gp_mpi_init(int *rank, int *size) {
    int provided = 0;
    int rc = mpi_init_thread(NULL, NULL, THREAD_SERIALIZED, &provided);
    if (rc) return rc;
    initialised = 1;
    if ((rc = mpi_comm_set_errhandler(comm_world, errors_return))) return rc;
    if ((rc = mpi_comm_rank(comm_world, rank))) return rc;
    return mpi_comm_size(comm_world, size);
}

int gp_mpi_finalize(void) {
    if (!initialised) return 0;
    initialised = 0;
    return mpi_finalize();
}

void gp_mpi_abort(int code) { mpi_abort(comm_world, code); }

void gp_mpi_error_string(int code, char *out, int length) {
    char text[512];
    int n = 0;
    if (mpi_error_string && mpi_error_string(code, text, &n) == 0) {
        snprintf(out, (size_t)length, "%.*s", n, text);
    } else {
        snprintf(out, (size_t)length, "MPI error %d", code);
    }
}

// MPI counts are ints: long buffers go in pieces.
#define PIECE (INT_MAX / 8)

static int allreduce_sum(char *buffer, long count, size_t width, Handle type) {
    for (long start = 0; start < count; start += PIECE) {
        long n = count - start < PIECE ? count - start : PIECE;
        int rc = mpi_allreduce(IN_PLACE, buffer + (size_t)start * width, (int)n, type, op_sum, comm_world);
        if (rc) return rc;
    }
    return 0;
}

int gp_mpi_allreduce_sum_float(float *buffer, long count) { return allreduce_sum((char *)buffer, count, sizeof(float), type_float); }

int gp_mpi_allreduce_sum_double(double *buffer, long count) { return allreduce_sum((char *)buffer, count, sizeof(double), type_double); }

int gp_mpi_bcast(void *buffer, long bytes, int root) {
    for (long start = 0; start < bytes; start += PIECE) {
        long n = bytes - start < PIECE ? bytes - start : PIECE;
        int rc = mpi_bcast((char *)buffer + start, (int)n, type_byte, root, comm_world);
        if (rc) return rc;
    }
    return 0;
}

int gp_mpi_barrier(void) { return mpi_barrier(comm_world); }

int gp_mpi_send(const void *bytes, long count, int destination, int tag) {
    if (count > INT_MAX) return -2;
    return mpi_send(bytes, (int)count, type_byte, destination, tag, comm_world);
}

int gp_mpi_probe(int source, int tag, int *source_out, int *tag_out, long *count_out) {
    Status status;
    int rc = mpi_probe(source, tag, comm_world, &status);
    if (rc) return rc;
    int count = 0;
    if ((rc = mpi_get_count(&status, type_byte, &count))) return rc;
    *source_out = status.source;
    *tag_out = status.tag;
    *count_out = count;
    return 0;
}

int gp_mpi_iprobe(int source, int tag, int *flag, int *source_out, int *tag_out, long *count_out) {
    Status status;
    int rc = mpi_iprobe(source, tag, comm_world, flag, &status);
    if (rc || !*flag) return rc;
    int count = 0;
    if ((rc = mpi_get_count(&status, type_byte, &count))) return rc;
    *source_out = status.source;
    *tag_out = status.tag;
    *count_out = count;
    return 0;
}

int gp_mpi_recv(void *bytes, long count, int source, int tag) {
    if (count > INT_MAX) return -2;
    Status status;
    return mpi_recv(bytes, (int)count, type_byte, source, tag, comm_world, &status);
}
