// bfloat16 matrix products for mixed-precision (autocast) training on CPUs with AVX512_BF16 (vdpbf16ps):
// float32 operands are rounded to bfloat16 (round to nearest even) while they are packed, products are summed in
// float32. Own kernels because Debian's OpenBLAS is built without sbgemm.
#ifndef GIGAPATCH_CBF16_H
#define GIGAPATCH_CBF16_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU and the operating system run AVX512_BF16 (AVX-512 F/DQ/BW/VL, vdpbf16ps, zmm state enabled).
int gp_bf16_supported(void);

/// 1 when the CPU reports AMX-BF16 tiles (reported only: the kernels here do not use AMX).
int gp_amx_bf16_supported(void);

/// C (m x n) = alpha * op(A) * op(B) + beta * C, row-major, as cblas_sgemm; op(A) and op(B) are rounded to bfloat16
/// and their products summed in float32. Requires gp_bf16_supported(). Thread-safe (per-thread packing buffers).
void gp_bf16_gemm(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                  const float *b, long ldb, float beta, float *c, long ldc);

/// Words (uint32) that gp_bf16_pack_a needs for an m x k op(A).
long gp_bf16_packed_a_words(long m, long k);

/// Blocks of k that a packed op(A) is made of (each packed independently, so threads can share the work).
long gp_bf16_packed_a_blocks(long k);

/// Packs k blocks firstBlock ..< endBlock of op(A) (m x k), rounded to bfloat16, in the layout the kernel reads (for an
/// operand used in many products, such as a layer's weights). Requires gp_bf16_supported().
void gp_bf16_pack_a(int transA, long m, long k, const float *a, long lda, uint32_t *out, long firstBlock, long endBlock);

/// gp_bf16_gemm with rows i0 ..< i0 + m of a packed op(A) (packedRows x k, from gp_bf16_pack_a; i0 a multiple of 8):
/// C (m x n) = alpha * A[i0 ..< i0 + m] * op(B) + beta * C.
void gp_bf16_gemm_packed(const uint32_t *packed, long packedRows, long k, long i0, long m, int transB, long n, float alpha,
                         const float *b, long ldb, float beta, float *c, long ldc);

/// The same product computed plainly: operands rounded exactly as the kernel rounds them, products summed in double.
/// Runs on any CPU; the reference the kernel is tested against.
void gp_bf16_gemm_reference(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                            const float *b, long ldb, float beta, float *c, long ldc);

/// y[i] = x[i] rounded to bfloat16 and back (round to nearest even; NaN stays NaN, subnormals become signed zero,
/// as vdpbf16ps reads them).
void gp_bf16_round(const float *x, float *y, long count);

#ifdef __cplusplus
}
#endif

#endif
