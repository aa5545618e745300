// bfloat16 matrix products for mixed-precision (autocast) training on CPUs with AVX512_BF16 (vdpbf16ps), and with
// AMX-BF16 tiles (TDPBF16PS) where present: float32 operands are rounded to bfloat16 (round to nearest even) while
// they are packed, products are summed in float32. Own kernels because Debian's OpenBLAS is built without sbgemm.
#ifndef GIGAPATCH_CBF16_H
#define GIGAPATCH_CBF16_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU and the operating system run AVX512_BF16 (AVX-512 F/DQ/BW/VL, vdpbf16ps, zmm state enabled).
int gp_bf16_supported(void);

/// 1 when the CPU reports AMX-BF16 tiles (cpuid only; gp_amx_usable says whether they can be used).
int gp_amx_bf16_supported(void);

/// 1 when AMX-BF16 can be used here: the CPU has AMX-TILE and AMX-BF16, the OS enables tile state, and Linux granted
/// this process tile data (asked for once, on the first call).
int gp_amx_usable(void);

/// The kernel gp_bf16_gemm and the packed products use, chosen once per process: 2 AMX (when gp_amx_usable and the
/// environment variable GIGAPATCH_BF16_KERNEL is not "avx512"), 1 AVX512_BF16, 0 none (no bf16 on this CPU).
int gp_bf16_kernel(void);

/// C (m x n) = alpha * op(A) * op(B) + beta * C, row-major, as cblas_sgemm; op(A) and op(B) are rounded to bfloat16
/// and their products summed in float32, with the kernel gp_bf16_kernel() names. Requires gp_bf16_supported().
/// Thread-safe (per-thread packing buffers; AMX tile configuration is loaded and released by each call).
void gp_bf16_gemm(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                  const float *b, long ldb, float beta, float *c, long ldc);

/// gp_bf16_gemm on the AVX512_BF16 kernel, whatever gp_bf16_kernel() chose. Requires gp_bf16_supported().
void gp_bf16_gemm_avx512(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                         const float *b, long ldb, float beta, float *c, long ldc);

/// gp_bf16_gemm on the AMX kernel, whatever gp_bf16_kernel() chose. Requires gp_amx_usable() (aborts otherwise).
void gp_bf16_gemm_amx(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                      const float *b, long ldb, float beta, float *c, long ldc);

/// Words (uint32) that gp_bf16_pack_a needs for an m x k op(A).
long gp_bf16_packed_a_words(long m, long k);

/// Blocks of k that a packed op(A) is made of (each packed independently, so threads can share the work).
long gp_bf16_packed_a_blocks(long k);

/// Packs k blocks firstBlock ..< endBlock of op(A) (m x k), rounded to bfloat16, in the layout the chosen kernel
/// (gp_bf16_kernel) reads, for an operand used in many products such as a layer's weights. Requires gp_bf16_supported().
void gp_bf16_pack_a(int transA, long m, long k, const float *a, long lda, uint32_t *out, long firstBlock, long endBlock);

/// gp_bf16_gemm with rows i0 ..< i0 + m of a packed op(A) (packedRows x k, from gp_bf16_pack_a; i0 a multiple of 16):
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

/// x (n, c, p) float32 (NCHW, p = h * w, c a multiple of 16) to y (n, c / 16, p, 16) bfloat16 (oneDNN's aBcd16b,
/// nChw16c), rounded as gp_bf16_round rounds: the (image, block of 16 channels) pairs first ..< end of the n * c / 16,
/// so threads can share the work. Requires gp_bf16_supported() (any CPU runs the reference).
void gp_bf16_to_blocked16(const float *x, uint16_t *y, long p, long first, long end);

/// The same conversion one value at a time: the reference gp_bf16_to_blocked16 is tested against.
void gp_bf16_to_blocked16_reference(const float *x, uint16_t *y, long p, long first, long end);

#ifdef __cplusplus
}
#endif

#endif
