// oneDNN's bf16 matmul on the shapes of `gigapatch-bench gemm`, one thread: the other candidate for #21's kernels.
// Two timings per shape: the bf16 matmul alone (operands already bfloat16, float32 output), and with the float32 ->
// bfloat16 reorders of both operands first (what Gigapatch's kernel does while packing). One JSON line per shape.
// Build and run: benchmarks/onednn.sh (needs libdnnl-dev).
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(x) do { dnnl_status_t s = (x); if (s != dnnl_success) { fprintf(stderr, "%s failed: %d\n", #x, s); exit(1); } } while (0)

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static dnnl_primitive_t reorder(dnnl_engine_t engine, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL));
    CHECK(dnnl_primitive_create(&p, pd));
    dnnl_primitive_desc_destroy(pd);
    return p;
}

int main(void) {
    // what, m, n, k, transA, transB (as gigapatch-bench gemm)
    struct { const char *what; long m, n, k; int ta, tb; } shapes[] = {
        {"layer1 3x3 forward", 64, 1024, 576, 0, 0},
        {"layer1 3x3 input gradient", 576, 1024, 64, 1, 0},
        {"layer1 3x3 weight gradient", 64, 576, 1024, 0, 1},
        {"layer3 3x3 forward, batch", 256, 1024, 2304, 0, 0},
        {"layer4 3x3 forward, batch", 512, 256, 4608, 0, 0},
        {"layer4 3x3 input gradient, batch", 4608, 256, 512, 1, 0},
        {"layer4 3x3 weight gradient, batch", 512, 4608, 256, 0, 1},
        {"winograd product, 64 channels", 64, 128, 64, 0, 0},
        {"winograd product, 256 channels", 256, 128, 256, 0, 0},
    };
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        long m = shapes[s].m, n = shapes[s].n, k = shapes[s].k;
        dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n};
        dnnl_memory_desc_t a32, b32, a16, b16, c32;
        CHECK(dnnl_memory_desc_init_by_tag(&a32, 2, ad, dnnl_f32, shapes[s].ta ? dnnl_ba : dnnl_ab));
        CHECK(dnnl_memory_desc_init_by_tag(&b32, 2, bd, dnnl_f32, shapes[s].tb ? dnnl_ba : dnnl_ab));
        CHECK(dnnl_memory_desc_init_by_tag(&a16, 2, ad, dnnl_bf16, shapes[s].ta ? dnnl_ba : dnnl_ab));
        CHECK(dnnl_memory_desc_init_by_tag(&b16, 2, bd, dnnl_bf16, shapes[s].tb ? dnnl_ba : dnnl_ab));
        CHECK(dnnl_memory_desc_init_by_tag(&c32, 2, cd, dnnl_f32, dnnl_ab));
        dnnl_matmul_desc_t md;
        CHECK(dnnl_matmul_desc_init(&md, &a16, &b16, NULL, &c32));
        dnnl_primitive_desc_t pd;
        CHECK(dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL));
        const char *impl = "";
        CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
        dnnl_primitive_t matmul;
        CHECK(dnnl_primitive_create(&matmul, pd));
        dnnl_primitive_t ra = reorder(engine, &a32, &a16), rb = reorder(engine, &b32, &b16);
        dnnl_memory_t ma32, mb32, ma16, mb16, mc;
        CHECK(dnnl_memory_create(&ma32, &a32, engine, DNNL_MEMORY_ALLOCATE));
        CHECK(dnnl_memory_create(&mb32, &b32, engine, DNNL_MEMORY_ALLOCATE));
        CHECK(dnnl_memory_create(&ma16, &a16, engine, DNNL_MEMORY_ALLOCATE));
        CHECK(dnnl_memory_create(&mb16, &b16, engine, DNNL_MEMORY_ALLOCATE));
        CHECK(dnnl_memory_create(&mc, &c32, engine, DNNL_MEMORY_ALLOCATE));
        float *pa, *pb;
        CHECK(dnnl_memory_get_data_handle(ma32, (void **)&pa));
        CHECK(dnnl_memory_get_data_handle(mb32, (void **)&pb));
        for (long i = 0; i < m * k; i++) pa[i] = rand() / (float)RAND_MAX - 0.5f;
        for (long i = 0; i < k * n; i++) pb[i] = rand() / (float)RAND_MAX - 0.5f;
        dnnl_exec_arg_t rargsA[] = {{DNNL_ARG_FROM, ma32}, {DNNL_ARG_TO, ma16}}, rargsB[] = {{DNNL_ARG_FROM, mb32}, {DNNL_ARG_TO, mb16}};
        dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, ma16}, {DNNL_ARG_WEIGHTS, mb16}, {DNNL_ARG_DST, mc}};
        long repetitions = (long)(2e10 / (2.0 * m * n * k));
        if (repetitions < 3) repetitions = 3;
        double flops = 2.0 * m * n * k * repetitions, times[2];
        for (int withReorder = 0; withReorder < 2; withReorder++) {
            for (long r = -1; r < repetitions; r++) {   // r = -1: warm-up
                if (r == 0) times[withReorder] = now();
                if (withReorder) {
                    CHECK(dnnl_primitive_execute(ra, stream, 2, rargsA));
                    CHECK(dnnl_primitive_execute(rb, stream, 2, rargsB));
                }
                CHECK(dnnl_primitive_execute(matmul, stream, 3, args));
                CHECK(dnnl_stream_wait(stream));
            }
            times[withReorder] = now() - times[withReorder];
        }
        printf("{\"bench\": \"onednn_matmul\", \"shape\": \"%s\", \"m\": %ld, \"n\": %ld, \"k\": %ld, \"impl\": \"%s\", "
               "\"bf16_gflops\": %.1f, \"bf16_with_reorders_gflops\": %.1f, \"onednn\": \"%d.%d.%d\"}\n",
               shapes[s].what, m, n, k, impl, flops / times[0] / 1e9, flops / times[1] / 1e9,
               dnnl_version()->major, dnnl_version()->minor, dnnl_version()->patch);
        dnnl_memory_destroy(ma32); dnnl_memory_destroy(mb32); dnnl_memory_destroy(ma16); dnnl_memory_destroy(mb16);
        dnnl_memory_destroy(mc);
        dnnl_primitive_destroy(ra); dnnl_primitive_destroy(rb); dnnl_primitive_destroy(matmul);
        dnnl_primitive_desc_destroy(pd);
    }
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return 0;
}
