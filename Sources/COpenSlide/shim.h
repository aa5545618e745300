// OpenSlide C API (libopenslide-dev, pkg-config `openslide`).
#include <openslide.h>
