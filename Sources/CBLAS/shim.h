// OpenBLAS CBLAS interface (libopenblas-dev, pkg-config `openblas`).
#include <cblas.h>
