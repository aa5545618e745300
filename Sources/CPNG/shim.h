// libpng (libpng-dev, pkg-config `libpng`), through its simplified API (png_image): no setjmp, errors in the
// image's `message`.
#include <png.h>
