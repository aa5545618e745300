// oneDNN's direct bfloat16 convolutions (the primitives PyTorch's CPU autocast runs), loaded at run time with dlopen
// so that neither building nor running Gigapatch needs oneDNN: without libdnnl.so.2 (Debian: libdnnl2, headers in
// libdnnl-dev) or without its headers at build time, gp_dnnl_open fails with the reason and callers keep their own
// kernels. One convolution shape is one gp_dnnl_conv: its primitives are made once and reused. Tensors cross this
// interface as float32 in PyTorch's layouts (x and y NCHW, weights OIHW); inside, inputs and weights are rounded to
// bfloat16 (round to nearest even) in the layouts oneDNN picks, and products are summed in float32. Every call
// returns 0, or -1 with `error` filled.
#ifndef GIGAPATCH_CDNNL_H
#define GIGAPATCH_CDNNL_H

/// Loads libdnnl.so.2 and resolves the calls (once; later calls return the first answer).
int gp_dnnl_open(char *error, int error_length);

/// oneDNN's version as "major.minor.patch" (after a successful gp_dnnl_open).
const char *gp_dnnl_version(void);

typedef struct gp_dnnl_conv gp_dnnl_conv;

/// The convolution of x (n, c, h, w) with weights (o, c, k, k): stride, zero padding and dilation on both axes, one
/// group, no bias. `input_gradient` 0: backward computes only the weight gradient. oneDNN divides the work for
/// `threads` OpenMP threads, which the calls should use too. NULL on failure.
gp_dnnl_conv *gp_dnnl_conv_create(long n, long c, long h, long w, long o, long k, long stride, long padding, long dilation,
                                  int input_gradient, int threads, char *error, int error_length);
void gp_dnnl_conv_destroy(gp_dnnl_conv *conv);

/// The implementation oneDNN chose for the forward pass (e.g. "jit_bf16:avx512_core_bf16").
const char *gp_dnnl_conv_implementation(const gp_dnnl_conv *conv);

/// Bytes of caller-provided scratch (any alignment is fine; 64-byte aligned is best) a forward or backward call needs.
long gp_dnnl_conv_forward_scratch(const gp_dnnl_conv *conv);
long gp_dnnl_conv_backward_scratch(const gp_dnnl_conv *conv);

/// 1 when both passes read x as bfloat16 aBcd16b (nChw16c; gp_bf16_to_blocked16 makes it), so the caller may give x
/// converted once (`x_blocked`) instead of each pass converting it; 0 when they need it in their own layouts.
int gp_dnnl_conv_blocked_input(const gp_dnnl_conv *conv);

/// 1 when the backward pass reads dy as bfloat16 aBcd16b (one copy for both gradients), so it may be given converted.
int gp_dnnl_conv_blocked_output_gradient(const gp_dnnl_conv *conv);

/// y (n, o, ho, wo) = the convolution; `threads` OpenMP threads (oneDNN's runtime) for this call. `x_blocked`: NULL,
/// or x already converted (only where gp_dnnl_conv_blocked_input says so), which the call reads instead of converting x.
int gp_dnnl_conv_forward(gp_dnnl_conv *conv, int threads, const float *x, const void *x_blocked, const float *weights, float *y,
                         void *scratch, char *error, int error_length);

/// dx (n, c, h, w) = the input gradient (overwritten; skipped when dx is NULL or the convolution was made without
/// input gradient) and dw (o, c, k, k) += the weight gradient, for the output gradient dy (n, o, ho, wo). `x_blocked`
/// and `dy_blocked`: NULL, or x and dy already converted, as for gp_dnnl_conv_forward.
int gp_dnnl_conv_backward(gp_dnnl_conv *conv, int threads, const float *x, const void *x_blocked, const float *dy,
                          const void *dy_blocked, const float *weights, float *dx, float *dw, void *scratch, char *error,
                          int error_length);

#endif
