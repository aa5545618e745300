// libtiff (libtiff-dev, pkg-config `libtiff-4`), with typed wrappers for its variadic calls.
//
// Swift cannot call C variadic functions, so every TIFFSetField/TIFFGetField use goes through
// one of these `static inline` shims, each with the argument type libtiff reads for that tag.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <tiffio.h>

/// Sets a tag whose value libtiff reads as a promoted `uint16_t` (an `int` in varargs).
static inline int gp_tiff_set_u16(TIFF *tif, uint32_t tag, uint16_t value) {
    return TIFFSetField(tif, tag, (int)value);
}

/// Sets a tag whose value libtiff reads as `uint32_t`.
static inline int gp_tiff_set_u32(TIFF *tif, uint32_t tag, uint32_t value) {
    return TIFFSetField(tif, tag, value);
}

/// Sets a tag whose value libtiff reads as a promoted `float` (a `double` in varargs), e.g. X/YResolution.
static inline int gp_tiff_set_double(TIFF *tif, uint32_t tag, double value) {
    return TIFFSetField(tif, tag, value);
}

/// Sets an ASCII tag such as ImageDescription or Software.
static inline int gp_tiff_set_string(TIFF *tif, uint32_t tag, const char *value) {
    return TIFFSetField(tif, tag, value);
}

/// Sets the two-valued YCbCrSubsampling tag.
static inline int gp_tiff_set_ycbcr_subsampling(TIFF *tif, uint16_t horizontal, uint16_t vertical) {
    return TIFFSetField(tif, TIFFTAG_YCBCRSUBSAMPLING, (int)horizontal, (int)vertical);
}

/// Reads a `uint32_t` tag (ImageWidth, TileWidth, ...); returns 0 when absent.
static inline int gp_tiff_get_u32(TIFF *tif, uint32_t tag, uint32_t *value) {
    return TIFFGetField(tif, tag, value);
}

/// Reads a `uint16_t` tag, using the TIFF default when absent (SamplesPerPixel, Compression, ...).
static inline int gp_tiff_get_u16_defaulted(TIFF *tif, uint32_t tag, uint16_t *value) {
    return TIFFGetFieldDefaulted(tif, tag, value);
}

/// Reads a `float` tag (XResolution, YResolution); returns 0 when absent.
static inline int gp_tiff_get_float(TIFF *tif, uint32_t tag, float *value) {
    return TIFFGetField(tif, tag, value);
}

/// Per-handle buffer that receives libtiff's error and warning text instead of stderr.
typedef struct gp_tiff_messages {
    char error[1024];
} gp_tiff_messages;

static inline int gp_tiff_error_handler(TIFF *tif, void *user_data, const char *module, const char *fmt, va_list ap) {
    (void)tif;
    gp_tiff_messages *messages = (gp_tiff_messages *)user_data;
    if (messages == NULL) return 0;
    char text[900];
    vsnprintf(text, sizeof text, fmt, ap);
    snprintf(messages->error, sizeof messages->error, "%s: %s", module ? module : "libtiff", text);
    return 1; // handled: libtiff does not also print it
}

static inline int gp_tiff_warning_handler(TIFF *tif, void *user_data, const char *module, const char *fmt, va_list ap) {
    (void)tif; (void)user_data; (void)module; (void)fmt; (void)ap;
    return 1; // warnings (unknown tags and the like) are not errors; keep them off stderr
}

/// Opens a TIFF whose errors land in `messages` rather than on stderr.
static inline TIFF *gp_tiff_open(const char *path, const char *mode, gp_tiff_messages *messages) {
    TIFFOpenOptions *options = TIFFOpenOptionsAlloc();
    if (options == NULL) return NULL;
    TIFFOpenOptionsSetErrorHandlerExtR(options, gp_tiff_error_handler, messages);
    TIFFOpenOptionsSetWarningHandlerExtR(options, gp_tiff_warning_handler, messages);
    TIFF *tif = TIFFOpenExt(path, mode, options);
    TIFFOpenOptionsFree(options);
    return tif;
}
