// zlib (zlib1g-dev, pkg-config `zlib`): gzopen/gzread read gzip-compressed and plain files alike.
#include <zlib.h>
