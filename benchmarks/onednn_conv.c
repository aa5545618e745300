// oneDNN's bf16 convolutions (the primitives PyTorch's CPU autocast runs) on one convolution shape, one thread:
// forward, input gradient and weight gradient, each timed alone with its tensors already in the bfloat16 layout
// oneDNN picks (format "any"), so the figure is oneDNN's best case, without reorders. Weight gradients are float32.
// Compare with `gigapatch-bench conv --precision bf16 --threads 1` on the same shape (benchmarks/onednn.sh runs both).
// usage: onednn_conv IN OUT SIZE BATCH KERNEL STRIDE STEPS        One JSON line.
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(x) do { dnnl_status_t s = (x); if (s != dnnl_success) { fprintf(stderr, "%s failed: %d\n", #x, s); exit(1); } } while (0)

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

// A memory object for the layout the primitive descriptor chose for `what`, filled with small values.
static dnnl_memory_t memory_for(dnnl_engine_t engine, dnnl_primitive_desc_t pd, dnnl_query_t what) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, what, 0);
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, md, engine, DNNL_MEMORY_ALLOCATE));
    void *p;
    CHECK(dnnl_memory_get_data_handle(m, &p));
    memset(p, 0x3c, dnnl_memory_desc_get_size(md));   // 0x3c3c as bfloat16 is about 0.0115; as float32 about 0.0115 too
    return m;
}

// Milliseconds per execution of `p` (one warm-up, then `steps`).
static double time_ms(dnnl_primitive_t p, dnnl_stream_t stream, int nargs, const dnnl_exec_arg_t *args, int steps) {
    double t = 0;
    for (int r = -1; r < steps; r++) {
        if (r == 0) t = now();
        CHECK(dnnl_primitive_execute(p, stream, nargs, args));
        CHECK(dnnl_stream_wait(stream));
    }
    return (now() - t) * 1e3 / steps;
}

static const char *impl_of(dnnl_primitive_desc_t pd) {
    const char *impl = "";
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    return impl;
}

int main(int argc, char **argv) {
    if (argc != 8) { fprintf(stderr, "usage: %s IN OUT SIZE BATCH KERNEL STRIDE STEPS\n", argv[0]); return 2; }
    long c = atol(argv[1]), o = atol(argv[2]), h = atol(argv[3]), n = atol(argv[4]), k = atol(argv[5]), s = atol(argv[6]);
    int steps = atoi(argv[7]);
    long pad = (k - 1) / 2, oh = (h + 2 * pad - k) / s + 1;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    dnnl_dims_t srcd = {n, c, h, h}, wd = {o, c, k, k}, dstd = {n, o, oh, oh}, strides = {s, s}, pads = {pad, pad};
    dnnl_memory_desc_t src, w, dst, dw;
    CHECK(dnnl_memory_desc_init_by_tag(&src, 4, srcd, dnnl_bf16, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&w, 4, wd, dnnl_bf16, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&dst, 4, dstd, dnnl_bf16, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&dw, 4, wd, dnnl_f32, dnnl_format_tag_any));

    dnnl_convolution_desc_t fd, bd, bwd;
    CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &src, &w, NULL, &dst,
                                             strides, pads, pads));
    dnnl_primitive_desc_t fpd, bpd, bwpd;
    CHECK(dnnl_primitive_desc_create(&fpd, &fd, NULL, engine, NULL));
    CHECK(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &src, &w, &dst, strides, pads, pads));
    CHECK(dnnl_primitive_desc_create(&bpd, &bd, NULL, engine, fpd));
    CHECK(dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &src, &dw, NULL, &dst, strides, pads, pads));
    CHECK(dnnl_primitive_desc_create(&bwpd, &bwd, NULL, engine, fpd));

    dnnl_primitive_t fp, bp, bwp;
    CHECK(dnnl_primitive_create(&fp, fpd));
    CHECK(dnnl_primitive_create(&bp, bpd));
    CHECK(dnnl_primitive_create(&bwp, bwpd));
    dnnl_memory_t msrc = memory_for(engine, fpd, dnnl_query_src_md), mw = memory_for(engine, fpd, dnnl_query_weights_md),
                  mdst = memory_for(engine, fpd, dnnl_query_dst_md),
                  mdsrc = memory_for(engine, bpd, dnnl_query_diff_src_md), mddst = memory_for(engine, bpd, dnnl_query_diff_dst_md),
                  mbw = memory_for(engine, bpd, dnnl_query_weights_md),
                  mwsrc = memory_for(engine, bwpd, dnnl_query_src_md), mwddst = memory_for(engine, bwpd, dnnl_query_diff_dst_md),
                  mdw = memory_for(engine, bwpd, dnnl_query_diff_weights_md);
    dnnl_exec_arg_t fargs[] = {{DNNL_ARG_SRC, msrc}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, mdst}};
    dnnl_exec_arg_t bargs[] = {{DNNL_ARG_DIFF_SRC, mdsrc}, {DNNL_ARG_WEIGHTS, mbw}, {DNNL_ARG_DIFF_DST, mddst}};
    dnnl_exec_arg_t wargs[] = {{DNNL_ARG_SRC, mwsrc}, {DNNL_ARG_DIFF_DST, mwddst}, {DNNL_ARG_DIFF_WEIGHTS, mdw}};
    double f = time_ms(fp, stream, 3, fargs, steps), b = time_ms(bp, stream, 3, bargs, steps), bw = time_ms(bwp, stream, 3, wargs, steps);
    printf("{\"bench\": \"onednn_conv\", \"in\": %ld, \"out\": %ld, \"size\": %ld, \"batch\": %ld, \"kernel\": %ld, \"stride\": %ld, "
           "\"forward_ms\": %.3f, \"input_gradient_ms\": %.3f, \"weight_gradient_ms\": %.3f, \"backward_ms\": %.3f, "
           "\"forward_impl\": \"%s\", \"input_gradient_impl\": \"%s\", \"weight_gradient_impl\": \"%s\", \"onednn\": \"%d.%d.%d\"}\n",
           c, o, h, n, k, s, f, b, bw, b + bw, impl_of(fpd), impl_of(bpd), impl_of(bwpd),
           dnnl_version()->major, dnnl_version()->minor, dnnl_version()->patch);
    return 0;
}
