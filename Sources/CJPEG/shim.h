// libjpeg-turbo (libjpeg62-turbo-dev, pkg-config `libjpeg`), wrapped in two calls that keep libjpeg's longjmp
// error handling inside C: the message of a failure lands in `error` and the call returns 0.
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

typedef struct gp_jpeg_error {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char *message; // 200 bytes, the caller's
} gp_jpeg_error;

static inline void gp_jpeg_error_exit(j_common_ptr info) {
    gp_jpeg_error *error = (gp_jpeg_error *)info->err;
    (*info->err->format_message)(info, error->message);
    longjmp(error->jump, 1);
}

static inline void gp_jpeg_silence(j_common_ptr info, int level) { (void)info; (void)level; }

/// Encodes interleaved RGB (or gray when channels is 1) at `quality` (1-100), progressive when asked (with
/// optimised Huffman tables either way), into a malloc'ed buffer (*out, *size; the caller frees it with free).
/// Returns 1 on success, else 0 with the reason in `message` (200 bytes).
static inline int gp_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality, int progressive,
                                  unsigned char **out, unsigned long *size, char *message) {
    struct jpeg_compress_struct info;
    gp_jpeg_error error;
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = gp_jpeg_error_exit;
    error.message = message;
    *out = NULL;
    *size = 0;
    if (setjmp(error.jump)) {
        jpeg_destroy_compress(&info);
        free(*out);
        *out = NULL;
        return 0;
    }
    jpeg_create_compress(&info);
    jpeg_mem_dest(&info, out, size);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = channels;
    info.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, quality, TRUE);
    info.optimize_coding = TRUE;
    if (progressive) jpeg_simple_progression(&info);
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)info.next_scanline * (size_t)width * (size_t)channels);
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    return 1;
}

/// Decodes JPEG bytes to interleaved RGB in a malloc'ed buffer (*out, freed by the caller). Returns 1 on success,
/// else 0 with the reason in `message` (200 bytes).
static inline int gp_jpeg_decode(const unsigned char *data, unsigned long length, unsigned char **out, int *width, int *height,
                                  char *message) {
    struct jpeg_decompress_struct info;
    gp_jpeg_error error;
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = gp_jpeg_error_exit;
    error.manager.emit_message = gp_jpeg_silence;
    error.message = message;
    *out = NULL;
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&info);
        free(*out);
        *out = NULL;
        return 0;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, length);
    jpeg_read_header(&info, TRUE);
    info.out_color_space = JCS_RGB;
    jpeg_start_decompress(&info);
    *width = (int)info.output_width;
    *height = (int)info.output_height;
    size_t stride = (size_t)info.output_width * 3;
    *out = (unsigned char *)malloc(stride * info.output_height);
    if (*out == NULL) {
        strcpy(message, "out of memory");
        jpeg_destroy_decompress(&info);
        return 0;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = *out + (size_t)info.output_scanline * stride;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    return 1;
}
