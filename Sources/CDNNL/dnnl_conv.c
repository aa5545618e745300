// See CDNNL.h. Only this file knows oneDNN's C API (2.x); the Swift layer (NN's OneDNN) knows nothing of primitives.
#include "CDNNL.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fail(char *error, int length, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(error, (size_t)length, format, args);
    va_end(args);
}

#if !__has_include(<oneapi/dnnl/dnnl.h>)

int gp_dnnl_open(char *error, int error_length) {
    fail(error, error_length, "this build has no oneDNN support (its headers were missing: install libdnnl-dev and rebuild)");
    return -1;
}
const char *gp_dnnl_version(void) { return ""; }
gp_dnnl_conv *gp_dnnl_conv_create(long n, long c, long h, long w, long o, long k, long stride, long padding, long dilation,
                                  int input_gradient, int threads, char *error, int error_length) {
    (void)threads; (void)n; (void)c; (void)h; (void)w; (void)o; (void)k; (void)stride; (void)padding; (void)dilation; (void)input_gradient;
    gp_dnnl_open(error, error_length);
    return NULL;
}
void gp_dnnl_conv_destroy(gp_dnnl_conv *conv) { (void)conv; }
const char *gp_dnnl_conv_implementation(const gp_dnnl_conv *conv) { (void)conv; return ""; }
long gp_dnnl_conv_forward_scratch(const gp_dnnl_conv *conv) { (void)conv; return 0; }
long gp_dnnl_conv_backward_scratch(const gp_dnnl_conv *conv) { (void)conv; return 0; }
int gp_dnnl_conv_blocked_input(const gp_dnnl_conv *conv) { (void)conv; return 0; }
int gp_dnnl_conv_blocked_output_gradient(const gp_dnnl_conv *conv) { (void)conv; return 0; }
int gp_dnnl_conv_forward(gp_dnnl_conv *conv, int threads, const float *x, const void *x_blocked, const float *weights, float *y,
                         void *scratch, char *error, int error_length) {
    (void)conv; (void)threads; (void)x; (void)x_blocked; (void)weights; (void)y; (void)scratch;
    return gp_dnnl_open(error, error_length);
}
int gp_dnnl_conv_backward(gp_dnnl_conv *conv, int threads, const float *x, const void *x_blocked, const float *dy,
                          const void *dy_blocked, const float *weights, float *dx, float *dw, void *scratch, char *error,
                          int error_length) {
    (void)conv; (void)threads; (void)x; (void)x_blocked; (void)dy; (void)dy_blocked; (void)weights; (void)dx; (void)dw; (void)scratch;
    return gp_dnnl_open(error, error_length);
}

#else

#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>

// The oneDNN calls this file makes, resolved from libdnnl.so.2 with their header's exact types.
#define CALLS(X)                                                                                                       \
    X(dnnl_engine_create) X(dnnl_stream_create) X(dnnl_stream_destroy) X(dnnl_stream_wait)                           \
    X(dnnl_memory_desc_init_by_tag) X(dnnl_memory_desc_equal) X(dnnl_memory_desc_get_size)                           \
    X(dnnl_memory_create) X(dnnl_memory_destroy) X(dnnl_memory_set_data_handle)                                      \
    X(dnnl_primitive_desc_create) X(dnnl_primitive_desc_destroy) X(dnnl_primitive_desc_query)                       \
    X(dnnl_primitive_desc_query_md) X(dnnl_primitive_create) X(dnnl_primitive_destroy) X(dnnl_primitive_execute)     \
    X(dnnl_reorder_primitive_desc_create) X(dnnl_dilated_convolution_forward_desc_init)                              \
    X(dnnl_dilated_convolution_backward_data_desc_init) X(dnnl_dilated_convolution_backward_weights_desc_init)       \
    X(dnnl_version)
#define DECLARE(name) static __typeof__(name) *p_##name;
CALLS(DECLARE)
static void (*p_omp_set_num_threads)(int);
static dnnl_engine_t engine;
static char open_error[512], version[32];
static int open_status = 1;  // 1: not tried yet
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void open_library(void) {
    // OpenMP threads that wait by spinning between oneDNN's calls would take the cores from Gigapatch's own workers
    // (BatchNorm, activations, the other kernels) that run in between: they sleep instead, unless the user said
    // otherwise (measured: tiny's bf16 training step 1.1x faster at 2 threads). libgomp reads this when it is loaded,
    // with libdnnl, just below.
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    void *lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fail(open_error, sizeof open_error, "oneDNN is not installed (%s); install libdnnl2 (Debian) for its convolutions", dlerror());
        open_status = -1;
        return;
    }
#define RESOLVE(name)                                                                                                  \
    *(void **)(&p_##name) = dlsym(lib, #name);                                                                          \
    if (!p_##name) {                                                                                                   \
        fail(open_error, sizeof open_error, "libdnnl.so.2 has no symbol %s (not oneDNN 2.x?)", #name);               \
        open_status = -1;                                                                                              \
        return;                                                                                                        \
    }
    CALLS(RESOLVE)
    // oneDNN's Debian build runs on OpenMP (libgomp, loaded with it): its thread count is set per calling thread.
    *(void **)(&p_omp_set_num_threads) = dlsym(lib, "omp_set_num_threads");
    const dnnl_version_t *v = p_dnnl_version();
    snprintf(version, sizeof version, "%d.%d.%d", v->major, v->minor, v->patch);
    if (v->major != 2) {
        fail(open_error, sizeof open_error, "libdnnl.so.2 is oneDNN %s; Gigapatch speaks oneDNN 2.x's API", version);
        open_status = -1;
        return;
    }
    dnnl_status_t s = p_dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (s != dnnl_success) {
        fail(open_error, sizeof open_error, "oneDNN could not make its CPU engine (status %d)", (int)s);
        open_status = -1;
        return;
    }
    open_status = 0;
}

int gp_dnnl_open(char *error, int error_length) {
    pthread_once(&once, open_library);
    if (open_status != 0) fail(error, error_length, "%s", open_error);
    return open_status;
}

const char *gp_dnnl_version(void) { return version; }

// A step of a pass: a primitive and its arguments. Memory objects hold no data of their own; their handles are set
// to the caller's tensors or to slices of the caller's scratch before each call.
typedef struct {
    dnnl_primitive_t primitive;
    int count;
    dnnl_exec_arg_t args[4];
} Step;

// A tensor inside a pass: its layout, and where in the scratch it lives (-1: the caller's float32 tensor itself).
typedef struct {
    dnnl_memory_desc_t md;
    dnnl_memory_t memory;
    long offset;
} Buffer;

enum { X_USER, W_USER, Y_USER, DY_USER, DX_USER, DW_USER,                    // the caller's float32 tensors
       X_FWD, W_FWD, Y_FWD, DY_BD, W_BD, DX_BD, X_BW, DY_BW, DW_BW, DW_PLAIN,  // oneDNN's layouts, in scratch
       BUFFERS };

struct gp_dnnl_conv {
    Buffer buffers[BUFFERS];
    Step forward[4], backward[8];
    int forwardSteps, backwardSteps;
    // The backward steps: [0, inputSteps) the input gradient (its first step converts dy), then the weight gradient,
    // which reads that converted dy when `sharedDY`.
    int inputSteps, sharedDY;
    // The backward steps that convert x and dy to bfloat16, skipped when the caller gives them converted (in forward,
    // x's conversion is step 0).
    int xBackwardStep, dyStep;
    // Whether x (both passes read one layout) and dy (one layout) may be given as bfloat16 aBcd16b (nChw16c).
    int blockedInput, blockedOutputGradient;
    // The buffers each pass uses (bit b: buffer b).
    unsigned forwardBuffers, backwardBuffers;
    long forwardScratch, backwardScratch, weights;
    int inputGradient;
    dnnl_stream_t stream;
    const char *implementation;
    dnnl_primitive_desc_t pds[3];
};

#define CHECK(call, what)                                                                                              \
    do {                                                                                                               \
        dnnl_status_t status_ = (call);                                                                                \
        if (status_ != dnnl_success) {                                                                                 \
            fail(error, error_length, "oneDNN: %s failed (status %d)", what, (int)status_);                           \
            return -1;                                                                                                 \
        }                                                                                                              \
    } while (0)

// Gives buffer `b` the layout `md` (the caller's when user), and a place in the scratch at *offset otherwise.
static int place(gp_dnnl_conv *conv, int b, const dnnl_memory_desc_t *md, long *offset, char *error, int error_length) {
    Buffer *buffer = &conv->buffers[b];
    buffer->md = *md;
    if (offset) {
        buffer->offset = *offset;
        *offset += ((long)p_dnnl_memory_desc_get_size(md) + 63) / 64 * 64;
    } else {
        buffer->offset = -1;
    }
    CHECK(p_dnnl_memory_create(&buffer->memory, md, engine, DNNL_MEMORY_NONE), "memory_create");
    return 0;
}

// Appends to `steps` a reorder from buffer `from` to buffer `to`.
static int add_reorder(gp_dnnl_conv *conv, Step *steps, int *count, int from, int to, char *error, int error_length) {
    dnnl_primitive_desc_t pd;
    CHECK(p_dnnl_reorder_primitive_desc_create(&pd, &conv->buffers[from].md, engine, &conv->buffers[to].md, engine, NULL),
          "reorder_primitive_desc_create");
    Step *step = &steps[(*count)++];
    dnnl_status_t s = p_dnnl_primitive_create(&step->primitive, pd);
    p_dnnl_primitive_desc_destroy(pd);
    CHECK(s, "primitive_create (reorder)");
    step->count = 2;
    step->args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, conv->buffers[from].memory};
    step->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, conv->buffers[to].memory};
    return 0;
}

static int add_primitive(gp_dnnl_conv *conv, Step *steps, int *count, dnnl_primitive_desc_t pd, int n, const int *kinds,
                         const int *bs, char *error, int error_length) {
    Step *step = &steps[(*count)++];
    CHECK(p_dnnl_primitive_create(&step->primitive, pd), "primitive_create (convolution)");
    step->count = n;
    for (int i = 0; i < n; i++) step->args[i] = (dnnl_exec_arg_t){kinds[i], conv->buffers[bs[i]].memory};
    return 0;
}

static int equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b) { return p_dnnl_memory_desc_equal(a, b); }

static int build(gp_dnnl_conv *conv, long n, long c, long h, long w, long o, long k, long stride, long padding, long dilation,
                 char *error, int error_length) {
    long ho = (h + 2 * padding - dilation * (k - 1) - 1) / stride + 1, wo = (w + 2 * padding - dilation * (k - 1) - 1) / stride + 1;
    dnnl_dims_t xd = {n, c, h, w}, wd = {o, c, k, k}, yd = {n, o, ho, wo};
    dnnl_dims_t strides = {stride, stride}, dilates = {dilation - 1, dilation - 1}, pads = {padding, padding};
    dnnl_memory_desc_t xu, wu, yu, xa, wa, ya, wfa;
    CHECK(p_dnnl_memory_desc_init_by_tag(&xu, 4, xd, dnnl_f32, dnnl_nchw), "memory_desc_init");
    CHECK(p_dnnl_memory_desc_init_by_tag(&wu, 4, wd, dnnl_f32, dnnl_oihw), "memory_desc_init");
    CHECK(p_dnnl_memory_desc_init_by_tag(&yu, 4, yd, dnnl_f32, dnnl_nchw), "memory_desc_init");
    CHECK(p_dnnl_memory_desc_init_by_tag(&xa, 4, xd, dnnl_bf16, dnnl_format_tag_any), "memory_desc_init");
    CHECK(p_dnnl_memory_desc_init_by_tag(&wa, 4, wd, dnnl_bf16, dnnl_format_tag_any), "memory_desc_init");
    CHECK(p_dnnl_memory_desc_init_by_tag(&ya, 4, yd, dnnl_f32, dnnl_format_tag_any), "memory_desc_init");
    CHECK(p_dnnl_memory_desc_init_by_tag(&wfa, 4, wd, dnnl_f32, dnnl_format_tag_any), "memory_desc_init");
    dnnl_memory_desc_t ybf;  // the output gradient enters the backward passes as bfloat16
    CHECK(p_dnnl_memory_desc_init_by_tag(&ybf, 4, yd, dnnl_bf16, dnnl_format_tag_any), "memory_desc_init");

    dnnl_convolution_desc_t fd, bd, wgd;
    CHECK(p_dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &xa, &wa, NULL, &ya,
                                                       strides, dilates, pads, pads), "convolution_forward_desc_init");
    CHECK(p_dnnl_primitive_desc_create(&conv->pds[0], &fd, NULL, engine, NULL), "primitive_desc_create (forward)");
    CHECK(p_dnnl_dilated_convolution_backward_weights_desc_init(&wgd, dnnl_convolution_direct, &xa, &wfa, NULL, &ybf, strides,
                                                                dilates, pads, pads), "backward_weights_desc_init");
    CHECK(p_dnnl_primitive_desc_create(&conv->pds[2], &wgd, NULL, engine, conv->pds[0]), "primitive_desc_create (weight gradient)");
    if (conv->inputGradient) {
        dnnl_memory_desc_t xfa;
        CHECK(p_dnnl_memory_desc_init_by_tag(&xfa, 4, xd, dnnl_f32, dnnl_format_tag_any), "memory_desc_init");
        CHECK(p_dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &xfa, &wa, &ybf, strides, dilates,
                                                                 pads, pads), "backward_data_desc_init");
        CHECK(p_dnnl_primitive_desc_create(&conv->pds[1], &bd, NULL, engine, conv->pds[0]), "primitive_desc_create (input gradient)");
    }
    CHECK(p_dnnl_primitive_desc_query(conv->pds[0], dnnl_query_impl_info_str, 0, &conv->implementation), "query");

    // Forward: x and weights to bfloat16 in oneDNN's layouts, the convolution, its float32 output back to NCHW.
    long offset = 0;
    if (place(conv, X_USER, &xu, NULL, error, error_length) || place(conv, W_USER, &wu, NULL, error, error_length) ||
        place(conv, Y_USER, &yu, NULL, error, error_length) || place(conv, DY_USER, &yu, NULL, error, error_length) ||
        place(conv, DX_USER, &xu, NULL, error, error_length) || place(conv, DW_USER, &wu, NULL, error, error_length))
        return -1;
    const dnnl_memory_desc_t *fsrc = p_dnnl_primitive_desc_query_md(conv->pds[0], dnnl_query_src_md, 0),
                             *fw = p_dnnl_primitive_desc_query_md(conv->pds[0], dnnl_query_weights_md, 0),
                             *fdst = p_dnnl_primitive_desc_query_md(conv->pds[0], dnnl_query_dst_md, 0);
    if (place(conv, X_FWD, fsrc, &offset, error, error_length) || place(conv, W_FWD, fw, &offset, error, error_length)) return -1;
    int directY = equal(fdst, &yu);
    if (!directY && place(conv, Y_FWD, fdst, &offset, error, error_length)) return -1;
    conv->forwardScratch = offset;
    int *fs = &conv->forwardSteps;
    if (add_reorder(conv, conv->forward, fs, X_USER, X_FWD, error, error_length) ||
        add_reorder(conv, conv->forward, fs, W_USER, W_FWD, error, error_length))
        return -1;
    {
        const int kinds[] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST}, bs[] = {X_FWD, W_FWD, directY ? Y_USER : Y_FWD};
        if (add_primitive(conv, conv->forward, fs, conv->pds[0], 3, kinds, bs, error, error_length)) return -1;
    }
    if (!directY && add_reorder(conv, conv->forward, fs, Y_FWD, Y_USER, error, error_length)) return -1;

    // Backward: the input gradient (dy and weights to bfloat16, the convolution's adjoint, back to NCHW), then the
    // weight gradient (x and dy to bfloat16, reusing dy's copy when the layouts agree) added into dw.
    offset = 0;
    int *bsn = &conv->backwardSteps, dyForWeights = DY_BW;
    const dnnl_memory_desc_t *wsrc = p_dnnl_primitive_desc_query_md(conv->pds[2], dnnl_query_src_md, 0),
                             *wdy = p_dnnl_primitive_desc_query_md(conv->pds[2], dnnl_query_diff_dst_md, 0),
                             *wdw = p_dnnl_primitive_desc_query_md(conv->pds[2], dnnl_query_diff_weights_md, 0);
    if (conv->inputGradient) {
        const dnnl_memory_desc_t *bdy = p_dnnl_primitive_desc_query_md(conv->pds[1], dnnl_query_diff_dst_md, 0),
                                 *bw = p_dnnl_primitive_desc_query_md(conv->pds[1], dnnl_query_weights_md, 0),
                                 *bdx = p_dnnl_primitive_desc_query_md(conv->pds[1], dnnl_query_diff_src_md, 0);
        if (place(conv, DY_BD, bdy, &offset, error, error_length) || place(conv, W_BD, bw, &offset, error, error_length)) return -1;
        int directDX = equal(bdx, &xu);
        if (!directDX && place(conv, DX_BD, bdx, &offset, error, error_length)) return -1;
        conv->dyStep = *bsn;
        if (add_reorder(conv, conv->backward, bsn, DY_USER, DY_BD, error, error_length) ||
            add_reorder(conv, conv->backward, bsn, W_USER, W_BD, error, error_length))
            return -1;
        const int kinds[] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC}, bs[] = {DY_BD, W_BD, directDX ? DX_USER : DX_BD};
        if (add_primitive(conv, conv->backward, bsn, conv->pds[1], 3, kinds, bs, error, error_length)) return -1;
        if (!directDX && add_reorder(conv, conv->backward, bsn, DX_BD, DX_USER, error, error_length)) return -1;
        if (equal(bdy, wdy)) dyForWeights = DY_BD;
    }
    conv->inputSteps = *bsn;
    conv->sharedDY = dyForWeights == DY_BD;
    if (place(conv, X_BW, wsrc, &offset, error, error_length)) return -1;
    if (dyForWeights == DY_BW && place(conv, DY_BW, wdy, &offset, error, error_length)) return -1;
    if (place(conv, DW_BW, wdw, &offset, error, error_length) || place(conv, DW_PLAIN, &wu, &offset, error, error_length)) return -1;
    conv->backwardScratch = offset;
    conv->xBackwardStep = *bsn;
    if (add_reorder(conv, conv->backward, bsn, X_USER, X_BW, error, error_length)) return -1;
    if (dyForWeights == DY_BW) {
        conv->dyStep = *bsn;
        if (add_reorder(conv, conv->backward, bsn, DY_USER, DY_BW, error, error_length)) return -1;
    }
    {
        const int kinds[] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS}, bs[] = {X_BW, dyForWeights, DW_BW};
        if (add_primitive(conv, conv->backward, bsn, conv->pds[2], 3, kinds, bs, error, error_length)) return -1;
    }
    if (add_reorder(conv, conv->backward, bsn, DW_BW, DW_PLAIN, error, error_length)) return -1;
    conv->weights = o * c * k * k;
    dnnl_memory_desc_t xb, yb;
    CHECK(p_dnnl_memory_desc_init_by_tag(&xb, 4, xd, dnnl_bf16, dnnl_aBcd16b), "memory_desc_init");
    CHECK(p_dnnl_memory_desc_init_by_tag(&yb, 4, yd, dnnl_bf16, dnnl_aBcd16b), "memory_desc_init");
    conv->blockedInput = c % 16 == 0 && equal(fsrc, &xb) && equal(wsrc, &xb);
    conv->blockedOutputGradient = o % 16 == 0 && equal(&conv->buffers[dyForWeights].md, &yb) &&
                                  (!conv->inputGradient || dyForWeights == DY_BD);
    conv->forwardBuffers = 1u << X_USER | 1u << W_USER | 1u << Y_USER | 1u << X_FWD | 1u << W_FWD | 1u << Y_FWD;
    conv->backwardBuffers = ~conv->forwardBuffers | 1u << X_USER | 1u << W_USER;
    CHECK(p_dnnl_stream_create(&conv->stream, engine, dnnl_stream_default_flags), "stream_create");
    return 0;
}

gp_dnnl_conv *gp_dnnl_conv_create(long n, long c, long h, long w, long o, long k, long stride, long padding, long dilation,
                                  int input_gradient, int threads, char *error, int error_length) {
    if (gp_dnnl_open(error, error_length) != 0) return NULL;
    // oneDNN cuts the work for the thread count of the creating thread: the same as the calls will use.
    if (p_omp_set_num_threads && threads > 0) p_omp_set_num_threads(threads);
    gp_dnnl_conv *conv = calloc(1, sizeof *conv);
    if (!conv) {
        fail(error, error_length, "out of memory");
        return NULL;
    }
    conv->inputGradient = input_gradient;
    if (build(conv, n, c, h, w, o, k, stride, padding, dilation, error, error_length) != 0) {
        gp_dnnl_conv_destroy(conv);
        return NULL;
    }
    return conv;
}

void gp_dnnl_conv_destroy(gp_dnnl_conv *conv) {
    if (!conv) return;
    for (int i = 0; i < conv->forwardSteps; i++) p_dnnl_primitive_destroy(conv->forward[i].primitive);
    for (int i = 0; i < conv->backwardSteps; i++) p_dnnl_primitive_destroy(conv->backward[i].primitive);
    for (int i = 0; i < BUFFERS; i++) if (conv->buffers[i].memory) p_dnnl_memory_destroy(conv->buffers[i].memory);
    for (int i = 0; i < 3; i++) if (conv->pds[i]) p_dnnl_primitive_desc_destroy(conv->pds[i]);
    if (conv->stream) p_dnnl_stream_destroy(conv->stream);
    free(conv);
}

const char *gp_dnnl_conv_implementation(const gp_dnnl_conv *conv) { return conv->implementation ? conv->implementation : ""; }
long gp_dnnl_conv_forward_scratch(const gp_dnnl_conv *conv) { return conv->forwardScratch; }
long gp_dnnl_conv_backward_scratch(const gp_dnnl_conv *conv) { return conv->backwardScratch; }
int gp_dnnl_conv_blocked_input(const gp_dnnl_conv *conv) { return conv->blockedInput; }
int gp_dnnl_conv_blocked_output_gradient(const gp_dnnl_conv *conv) { return conv->blockedOutputGradient; }

// Points the pass's scratch buffers at their slices of `scratch` (only the pass's: oneDNN may write the padding of a
// blocked layout when its handle is set), its user buffers at the caller's tensors, and the converted copies the
// caller gave (`given`, indexed by buffer; NULL entries live in the scratch) at those.
static int bind(gp_dnnl_conv *conv, unsigned buffers, void *scratch, void *const user[6], void *const given[BUFFERS], char *error,
                int error_length) {
    for (int b = 0; b < BUFFERS; b++) {
        Buffer *buffer = &conv->buffers[b];
        if (!buffer->memory || !(buffers & 1u << b)) continue;
        void *handle = b < X_FWD ? user[b] : given[b] ? given[b] : (char *)scratch + buffer->offset;
        if (!handle) continue;
        CHECK(p_dnnl_memory_set_data_handle(buffer->memory, handle), "memory_set_data_handle");
    }
    return 0;
}

// Runs steps from ..< to, except `skip` (-1: none) and `skip2`.
static int run(gp_dnnl_conv *conv, Step *steps, int from, int to, int skip, int skip2, char *error, int error_length) {
    for (int i = from; i < to; i++)
        if (i != skip && i != skip2) CHECK(p_dnnl_primitive_execute(steps[i].primitive, conv->stream, steps[i].count, steps[i].args), "execute");
    CHECK(p_dnnl_stream_wait(conv->stream), "stream_wait");
    return 0;
}

int gp_dnnl_conv_forward(gp_dnnl_conv *conv, int threads, const float *x, const void *x_blocked, const float *weights, float *y,
                         void *scratch, char *error, int error_length) {
    if (x_blocked && !conv->blockedInput) {
        fail(error, error_length, "gp_dnnl_conv_forward: x given converted, but this convolution reads another layout");
        return -1;
    }
    if (p_omp_set_num_threads && threads > 0) p_omp_set_num_threads(threads);
    void *const user[6] = {(void *)x, (void *)weights, y, NULL, NULL, NULL};
    void *given[BUFFERS] = {0};
    given[X_FWD] = (void *)x_blocked;
    if (bind(conv, conv->forwardBuffers, scratch, user, given, error, error_length)) return -1;
    return run(conv, conv->forward, 0, conv->forwardSteps, x_blocked ? 0 : -1, -1, error, error_length);
}

int gp_dnnl_conv_backward(gp_dnnl_conv *conv, int threads, const float *x, const void *x_blocked, const float *dy,
                          const void *dy_blocked, const float *weights, float *dx, float *dw, void *scratch, char *error,
                          int error_length) {
    if ((x_blocked && !conv->blockedInput) || (dy_blocked && !conv->blockedOutputGradient)) {
        fail(error, error_length, "gp_dnnl_conv_backward: x or dy given converted, but this convolution reads another layout");
        return -1;
    }
    if (p_omp_set_num_threads && threads > 0) p_omp_set_num_threads(threads);
    void *const user[6] = {(void *)x, (void *)weights, NULL, (void *)dy, dx, dw};
    void *given[BUFFERS] = {0};
    given[X_BW] = (void *)x_blocked;
    given[conv->sharedDY ? DY_BD : DY_BW] = (void *)dy_blocked;
    if (bind(conv, conv->backwardBuffers, scratch, user, given, error, error_length)) return -1;
    int skipX = x_blocked ? conv->xBackwardStep : -1, skipDY = dy_blocked ? conv->dyStep : -1;
    if (dx || !conv->inputGradient) {
        if (run(conv, conv->backward, 0, conv->backwardSteps, skipX, skipDY, error, error_length)) return -1;
    } else {
        // No input gradient this time: only the conversion of dy that the weight gradient shares.
        if (conv->sharedDY && run(conv, conv->backward, 0, 1, skipDY, -1, error, error_length)) return -1;
        if (run(conv, conv->backward, conv->inputSteps, conv->backwardSteps, skipX, skipDY, error, error_length)) return -1;
    }
    const float *plain = (const float *)((char *)scratch + conv->buffers[DW_PLAIN].offset);
    for (long i = 0; i < conv->weights; i++) dw[i] += plain[i];
    return 0;
}

#endif
