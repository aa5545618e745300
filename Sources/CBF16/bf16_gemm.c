// bfloat16 GEMM on AVX512_BF16: a BLIS-style blocked product (pack a block of B, pack a block of A, an 8 x 32
// register-tile micro-kernel of vdpbf16ps), float32 in and out. Only the functions marked with the target attribute
// use AVX-512; the file itself compiles for the baseline CPU, and callers check gp_bf16_supported() first.
#include "CBF16.h"

#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------------------------
// Rounding shared by the reference and the packers (bit for bit what vcvtne2ps2bf16 does).

static inline uint16_t bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) {  // infinity or NaN: keep it, quieten NaN
        return (uint16_t)((u >> 16) | ((u & 0x007fffffu) ? 0x0040u : 0));
    }
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);  // zero or subnormal: signed zero
    u += 0x7fffu + ((u >> 16) & 1u);                                      // round to nearest, ties to even
    return (uint16_t)(u >> 16);
}

static inline float float_from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

void gp_bf16_round(const float *x, float *y, long count) {
    for (long i = 0; i < count; i++) y[i] = float_from_bf16(bf16_from_float(x[i]));
}

void gp_bf16_to_blocked16_reference(const float *x, uint16_t *y, long p, long first, long end) {
    for (long plane = first; plane < end; plane++) {
        const float *src = x + plane * 16 * p;  // (image, block) pairs are consecutive 16 planes of NCHW
        uint16_t *dst = y + plane * 16 * p;
        for (long i = 0; i < p; i++)
            for (long k = 0; k < 16; k++) dst[i * 16 + k] = bf16_from_float(src[k * p + i]);
    }
}

void gp_bf16_gemm_reference(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                            const float *b, long ldb, float beta, float *c, long ldc) {
    for (long i = 0; i < m; i++) {
        for (long j = 0; j < n; j++) {
            double s = 0;
            for (long p = 0; p < k; p++) {
                float av = transA ? a[p * lda + i] : a[i * lda + p];
                float bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                s += (double)float_from_bf16(bf16_from_float(av)) * (double)float_from_bf16(bf16_from_float(bv));
            }
            float prior = beta == 0 ? 0 : beta * c[i * ldc + j];
            c[i * ldc + j] = (float)(alpha * s) + prior;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// CPU detection.

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

int gp_bf16_supported(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;  // OSXSAVE
    // The OS saves SSE, AVX, opmask and both zmm halves (XCR0 bits 1, 2, 5, 6, 7).
    if ((xgetbv0() & 0xe6) != 0xe6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    if (!(f && dq && bw && vl)) return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1;  // AVX512_BF16
}

int gp_amx_bf16_supported(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (d >> 22) & 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Blocking. The micro-kernel keeps an MR x NR tile of C in 16 zmm accumulators; a B micro-panel (KC x NR bfloat16,
// 24 KiB) stays in L1 while the A block (MC x KC, 72 KiB) stays in L2 and the B block (KC x NC) in L2/L3.

enum { MR = 8, NR = 32, KC = 384, MC = 96, NC = 1536 };

// Packed A: per MR-row panel, per k pair p, MR 32-bit words (a[i][2p], a[i][2p+1]) for the panel's rows.
// Packed B: per NR-column panel, per k pair p, NR 32-bit words (b[2p][j], b[2p+1][j]) for the panel's columns.
// Rows past m, columns past n and the odd k's missing partner are zero.

typedef struct {
    uint32_t *a, *b;
    size_t aWords, bWords;
} Buffers;

// Each thread's packing buffers, freed when the thread exits (worker pools create and retire threads as they go).
static pthread_key_t buffersKey;
static pthread_once_t buffersOnce = PTHREAD_ONCE_INIT;

static void freeBuffers(void *p) {
    Buffers *buffers = p;
    free(buffers->a);
    free(buffers->b);
    free(buffers);
}

static void makeBuffersKey(void) { pthread_key_create(&buffersKey, freeBuffers); }

static Buffers *threadBuffers(void) {
    pthread_once(&buffersOnce, makeBuffersKey);
    Buffers *buffers = pthread_getspecific(buffersKey);
    if (!buffers) {
        buffers = calloc(1, sizeof *buffers);
        if (!buffers || pthread_setspecific(buffersKey, buffers) != 0) abort();
    }
    return buffers;
}

static uint32_t *reserve(uint32_t **p, size_t *have, size_t words) {
    if (*have < words) {
        free(*p);
        *p = aligned_alloc(64, (words * 4 + 63) / 64 * 64);
        *have = *p ? words : 0;
    }
    return *p;
}

// A block: rows i0 ..< i0 + mc, k range p0 ..< p0 + kc (kc even or the last block), into panels of MR rows.
BF16_TARGET
static void packA(int transA, const float *a, long lda, long i0, long mc, long p0, long kc, uint32_t *out);
// The index vector that interleaves two 16-element halves: (x0, y0, x1, y1, ...).
BF16_TARGET
static inline __m512i interleaveIndex(void) {
    return _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                            23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
}

BF16_TARGET
static inline __mmask16 firstLanes(long count) {
    return count >= 16 ? (__mmask16)0xffff : count <= 0 ? 0 : (__mmask16)((1u << count) - 1);
}

// One row of a C tile, up to 32 columns (masks m0, m1): row = alpha * (x0, x1) + beta * row.
BF16_TARGET
static inline void storeRow(float *row, __m512 x0, __m512 x1, float alpha, float beta, __mmask16 m0, __mmask16 m1) {
    __m512 va = _mm512_set1_ps(alpha), y0 = _mm512_mul_ps(va, x0), y1 = _mm512_mul_ps(va, x1);
    if (beta != 0) {
        __m512 vb = _mm512_set1_ps(beta);
        y0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), y0);
        y1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), y1);
    }
    _mm512_mask_storeu_ps(row, m0, y0);
    _mm512_mask_storeu_ps(row + 16, m1, y1);
}

// C = beta * C (beta 0 or not): a product with nothing to sum (k == 0 or alpha == 0).
static void scaleOnly(long m, long n, float beta, float *c, long ldc) {
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
}

BF16_TARGET
static void packA(int transA, const float *a, long lda, long i0, long mc, long p0, long kc, uint32_t *out) {
    long pairs = (kc + 1) / 2;
    const __m512i index = interleaveIndex();
    for (long ip = 0; ip < mc; ip += MR) {
        uint32_t *panel = out + (ip / MR) * pairs * MR;
        long rows = mc - ip < MR ? mc - ip : MR;
        if (!transA) {
            // A row's pairs are contiguous: round 16 pairs of each of the panel's rows, then spread them by pair.
            for (long q0 = 0; q0 < pairs; q0 += 16) {
                uint32_t words[MR][16];
                long left = kc - 2 * q0, count = pairs - q0 < 16 ? pairs - q0 : 16;
                for (long r = 0; r < MR; r++) {
                    if (r >= rows) { memset(words[r], 0, sizeof words[r]); continue; }
                    const float *src = a + (i0 + ip + r) * lda + p0 + 2 * q0;
                    __m512 lo = _mm512_maskz_loadu_ps(firstLanes(left), src);
                    __m512 hi = _mm512_maskz_loadu_ps(firstLanes(left - 16), src + 16);
                    _mm512_storeu_si512(words[r], (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
                }
                for (long t = 0; t < count; t++)
                    for (long r = 0; r < MR; r++) panel[(q0 + t) * MR + r] = words[r][t];
            }
        } else {
            // A(i, p) = a[p * lda + i]: rows 2q .. 2q + 3 of the panel's MR columns give pairs q and q + 1 at once.
            __mmask16 mask = firstLanes(rows);
            for (long q = 0; q < pairs; q += 2) {
                const float *r0 = a + (p0 + 2 * q) * lda + i0 + ip;
                long k0 = 2 * q;
                __m256 x0 = k0 < kc ? _mm256_maskz_loadu_ps((__mmask8)mask, r0) : _mm256_setzero_ps();
                __m256 x1 = k0 + 1 < kc ? _mm256_maskz_loadu_ps((__mmask8)mask, r0 + lda) : _mm256_setzero_ps();
                __m256 x2 = k0 + 2 < kc ? _mm256_maskz_loadu_ps((__mmask8)mask, r0 + 2 * lda) : _mm256_setzero_ps();
                __m256 x3 = k0 + 3 < kc ? _mm256_maskz_loadu_ps((__mmask8)mask, r0 + 3 * lda) : _mm256_setzero_ps();
                __m512 lo = _mm512_insertf32x8(_mm512_castps256_ps512(x0), x2, 1);
                __m512 hi = _mm512_insertf32x8(_mm512_castps256_ps512(x1), x3, 1);
                __m512i both = _mm512_permutexvar_epi16(index, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
                if (q + 1 < pairs) _mm512_storeu_si512(panel + q * MR, both);
                else _mm256_storeu_si256((__m256i *)(panel + q * MR), _mm512_castsi512_si256(both));
            }
        }
    }
}

// Transposes 16 x 16 32-bit words in place (r[i][j] becomes r[j][i]): four butterfly stages, each swapping one
// bit of the row index with the same bit of the column index.
BF16_TARGET
static inline void transpose16(__m512i r[16]) {
    for (int bit = 1; bit < 16; bit <<= 1) {
        int lo[16], hi[16];
        for (int j = 0; j < 16; j++) {
            lo[j] = (j & bit) ? 16 + (j - bit) : j;  // row i: its own low half, the partner's shifted
            hi[j] = (j & bit) ? 16 + j : j + bit;    // row i + bit: this row's high half shifted, the partner's own
        }
        __m512i ilo = _mm512_loadu_si512(lo), ihi = _mm512_loadu_si512(hi);
        for (int i = 0; i < 16; i++) {
            if (i & bit) continue;
            __m512i a = r[i], b = r[i + bit];
            r[i] = _mm512_permutex2var_epi32(a, ilo, b);
            r[i + bit] = _mm512_permutex2var_epi32(a, ihi, b);
        }
    }
}

// 16 channel planes to 16-channel pixels: 16 x 16 floats at a time (a load per channel, a transpose, a rounding
// of two pixels per instruction), the tail pixel by pixel with the same rounding.
BF16_TARGET
static void toBlocked16(const float *x, uint16_t *y, long p, long first, long end) {
    for (long plane = first; plane < end; plane++) {
        const float *src = x + plane * 16 * p;
        uint16_t *dst = y + plane * 16 * p;
        long i = 0;
        for (; i + 16 <= p; i += 16) {
            __m512i r[16];
            for (int k = 0; k < 16; k++) r[k] = _mm512_loadu_si512(src + k * p + i);
            transpose16(r);  // r[j]: pixel i + j's 16 channels
            for (int j = 0; j < 16; j += 2) {
                __m512bh v = _mm512_cvtne2ps_pbh(_mm512_castsi512_ps(r[j + 1]), _mm512_castsi512_ps(r[j]));
                _mm512_storeu_si512(dst + (i + j) * 16, (__m512i)v);
            }
        }
        for (; i < p; i++) {
            __m512 v = _mm512_set_ps(src[15 * p + i], src[14 * p + i], src[13 * p + i], src[12 * p + i], src[11 * p + i],
                                     src[10 * p + i], src[9 * p + i], src[8 * p + i], src[7 * p + i], src[6 * p + i],
                                     src[5 * p + i], src[4 * p + i], src[3 * p + i], src[2 * p + i], src[p + i], src[i]);
            _mm256_storeu_si256((__m256i *)(dst + i * 16), (__m256i)_mm512_cvtneps_pbh(v));
        }
    }
}

// B block: k range p0 ..< p0 + kc, columns j0 ..< j0 + nc, into panels of NR columns, each panelPairs (>= the block's
// pairs) rows long; rows past the block's pairs are zero (the AMX kernel reads whole 16-pair tiles).
BF16_TARGET
static void packB(int transB, const float *b, long ldb, long p0, long kc, long j0, long nc, long panelPairs, uint32_t *out) {
    long pairs = (kc + 1) / 2;
    if (panelPairs > pairs)
        for (long jp = 0; jp < nc; jp += NR) memset(out + (jp / NR) * panelPairs * NR + pairs * NR, 0, (size_t)(panelPairs - pairs) * NR * 4);
    if (!transB) {
        // Rows 2q and 2q + 1 are contiguous along j: round 16 columns of each, interleave them.
        const __m512i index = interleaveIndex();
        for (long jp = 0; jp < nc; jp += NR) {
            uint32_t *panel = out + (jp / NR) * panelPairs * NR;
            for (long q = 0; q < pairs; q++) {
                const float *r0 = b + (p0 + 2 * q) * ldb + j0 + jp;
                const float *r1 = r0 + ldb;
                int hasHi = 2 * q + 1 < kc;
                for (long h = 0; h < NR; h += 16) {
                    __mmask16 mask = firstLanes(nc - jp - h);
                    __m512 lo = _mm512_maskz_loadu_ps(mask, r0 + h);
                    __m512 hi = hasHi ? _mm512_maskz_loadu_ps(mask, r1 + h) : _mm512_setzero_ps();
                    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // low 16: lo, high 16: hi
                    _mm512_storeu_si512(panel + q * NR + h, _mm512_permutexvar_epi16(index, both));
                }
            }
        }
    } else {
        // B(p, j) = b[j * ldb + p]: a column's pairs are contiguous. Round 16 pairs of 16 columns, transpose the
        // 16 x 16 words in registers, store 16 pairs' rows of the panel.
        for (long jp = 0; jp < nc; jp += NR) {
            uint32_t *panel = out + (jp / NR) * panelPairs * NR;
            for (long h = 0; h < NR; h += 16) {
                long cols = nc - jp - h;
                for (long q0 = 0; q0 < pairs; q0 += 16) {
                    long left = kc - 2 * q0, count = pairs - q0 < 16 ? pairs - q0 : 16;
                    __m512i r[16];
                    for (long col = 0; col < 16; col++) {
                        if (col >= cols) { r[col] = _mm512_setzero_si512(); continue; }
                        const float *src = b + (j0 + jp + h + col) * ldb + p0 + 2 * q0;
                        r[col] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(firstLanes(left - 16), src + 16),
                                                              _mm512_maskz_loadu_ps(firstLanes(left), src));
                    }
                    transpose16(r);
                    for (long t = 0; t < count; t++) _mm512_storeu_si512(panel + (q0 + t) * NR + h, r[t]);
                }
            }
        }
    }
}

// C tile (rows x cols of at most MR x NR) = alpha * A panel * B panel + beta * C.
BF16_TARGET
static void kernel(long pairs, const uint32_t *pa, const uint32_t *pb, float *c, long ldc, long rows, long cols,
                   float alpha, float beta) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    for (long q = 0; q < pairs; q++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(pb + q * NR);
        __m512bh b1 = (__m512bh)_mm512_load_si512(pb + q * NR + 16);
        const uint32_t *aq = pa + q * MR;
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)aq[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
        }
    }
    __mmask16 m0 = firstLanes(cols), m1 = firstLanes(cols - 16);
    for (long r = 0; r < rows; r++) storeRow(c + r * ldc, acc[r][0], acc[r][1], alpha, beta, m0, m1);
}

// The blocked product. With `packed` (the whole of op(A) packed by gp_bf16_pack_a, rows i0 ..< i0 + m of it used),
// A is not packed here; otherwise each A block is packed as it is needed.
BF16_TARGET
static void drive(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                  const uint32_t *packed, long packedRows, long i0Packed, const float *b, long ldb, float beta, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0) { scaleOnly(m, n, beta, c, ldc); return; }
    long ncMax = n < NC ? (n + NR - 1) / NR * NR : NC, kcMax = k < KC ? k + (k & 1) : KC;
    long mcMax = m < MC ? (m + MR - 1) / MR * MR : MC;
    Buffers *buffers = threadBuffers();
    uint32_t *pa = packed ? NULL : reserve(&buffers->a, &buffers->aWords, (size_t)mcMax * (kcMax / 2 + 1));
    uint32_t *pb = reserve(&buffers->b, &buffers->bWords, (size_t)ncMax * (kcMax / 2 + 1));
    if ((!packed && !pa) || !pb) abort();
    long paddedRows = (packedRows + MR - 1) / MR * MR;
    for (long j0 = 0; j0 < n; j0 += NC) {
        long nc = n - j0 < NC ? n - j0 : NC;
        for (long p0 = 0; p0 < k; p0 += KC) {
            long kc = k - p0 < KC ? k - p0 : KC, pairs = (kc + 1) / 2;
            float betaHere = p0 == 0 ? beta : 1.0f;
            packB(transB, b, ldb, p0, kc, j0, nc, pairs, pb);
            // The packed A's k block starting at p0: all full blocks before it hold KC / 2 pairs per row.
            const uint32_t *block = packed ? packed + paddedRows * (p0 / 2) : NULL;
            for (long i0 = 0; i0 < m; i0 += MC) {
                long mc = m - i0 < MC ? m - i0 : MC;
                const uint32_t *panels;
                if (packed) {
                    panels = block + ((i0Packed + i0) / MR) * pairs * MR;
                } else {
                    packA(transA, a, lda, i0, mc, p0, kc, pa);
                    panels = pa;
                }
                for (long jp = 0; jp < nc; jp += NR) {
                    long cols = nc - jp < NR ? nc - jp : NR;
                    const uint32_t *bp = pb + (jp / NR) * pairs * NR;
                    for (long ip = 0; ip < mc; ip += MR) {
                        long rows = mc - ip < MR ? mc - ip : MR;
                        kernel(pairs, panels + (ip / MR) * pairs * MR, bp, c + (i0 + ip) * ldc + j0 + jp, ldc, rows, cols,
                               alpha, betaHere);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// AMX (Sapphire Rapids and later): the same blocked product with a 32 x 32 tile of C held in four 16 x 16 float32
// tile registers, fed by TDPBF16PS on 16 x 32 bfloat16 tiles of A and 16-pair x 16-column tiles of B (B packed as
// above, its panels padded to whole 16-pair tiles). A is packed row-major per block (each row's k pairs
// contiguous, rows padded to 16, pairs to 16), the layout a tile load reads with one stride.

#define AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,amx-tile,amx-bf16")))

#include <sys/syscall.h>
#include <unistd.h>

enum { AKC = 512, AMC = 128, ANC = 1536 };

static inline long round16(long x) { return (x + 15) / 16 * 16; }

static int amxUsable = 0;
static pthread_once_t amxOnce = PTHREAD_ONCE_INIT;

// AMX needs the CPU's tiles (AMX-TILE and AMX-BF16), the OS's tile state in XCR0 (bits 17, 18) and, on Linux, the
// process's permission to use tile data (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, once per process).
static void detectAMX(void) {
    unsigned a, b, c, d;
    if (!gp_bf16_supported() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    if (!((d >> 22) & 1) || !((d >> 24) & 1)) return;
    if ((xgetbv0() & (3ull << 17)) != (3ull << 17)) return;
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) != 0) return;
    amxUsable = 1;
}

int gp_amx_usable(void) {
    pthread_once(&amxOnce, detectAMX);
    return amxUsable;
}

static int kernelChoice = 0;
static pthread_once_t kernelOnce = PTHREAD_ONCE_INIT;

static void chooseKernel(void) {
    const char *forced = getenv("GIGAPATCH_BF16_KERNEL");
    int avx512 = forced && strcmp(forced, "avx512") == 0;
    kernelChoice = gp_bf16_supported() ? (!avx512 && gp_amx_usable() ? 2 : 1) : 0;
}

int gp_bf16_kernel(void) {
    pthread_once(&kernelOnce, chooseKernel);
    return kernelChoice;
}

typedef struct {
    uint8_t palette, startRow, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} TileConfig;

// Tiles 0-3: C (rows 0-15 / 16-31 x columns 0-15 / 16-31), 4-5: A (16 rows x 16 pairs), 6-7: B (16 pairs x 16
// columns); all 16 rows of 64 bytes. Tile configuration is per thread, so each product loads it.
AMX_TARGET
static void configureTiles(void) {
    TileConfig config __attribute__((aligned(64)));
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) { config.colsb[t] = 64; config.rows[t] = 16; }
    _tile_loadconfig(&config);
}

// A block for AMX: rows i0 ..< i0 + mc (padded to 16 with zeros), k range p0 ..< p0 + kc as pairs, pairsPad words per row.
AMX_TARGET
static void packAAMX(int transA, const float *a, long lda, long i0, long mc, long p0, long kc, long pairsPad, uint32_t *out) {
    long rowsPad = round16(mc);
    if (!transA) {
        for (long r = 0; r < rowsPad; r++) {
            uint32_t *dst = out + r * pairsPad;
            if (r >= mc) { memset(dst, 0, (size_t)pairsPad * 4); continue; }
            const float *src = a + (i0 + r) * lda + p0;
            for (long q0 = 0; q0 < pairsPad; q0 += 16) {
                long left = kc - 2 * q0;
                __m512 lo = _mm512_maskz_loadu_ps(firstLanes(left), src + 2 * q0);
                __m512 hi = _mm512_maskz_loadu_ps(firstLanes(left - 16), src + 2 * q0 + 16);
                _mm512_storeu_si512(dst + q0, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
            }
        }
    } else {
        // A(i, p) = a[p * lda + i]: 16 pairs of 16 rows as words (pair-major), transposed to row-major in registers.
        const __m512i index = interleaveIndex();
        for (long r0 = 0; r0 < rowsPad; r0 += 16) {
            __mmask16 mask = firstLanes(mc - r0);
            for (long q0 = 0; q0 < pairsPad; q0 += 16) {
                __m512i w[16];
                for (int t = 0; t < 16; t++) {
                    long k0 = 2 * (q0 + t);
                    const float *row = a + (p0 + k0) * lda + i0 + r0;
                    __m512 lo = k0 < kc ? _mm512_maskz_loadu_ps(mask, row) : _mm512_setzero_ps();
                    __m512 hi = k0 + 1 < kc ? _mm512_maskz_loadu_ps(mask, row + lda) : _mm512_setzero_ps();
                    w[t] = _mm512_permutexvar_epi16(index, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
                }
                transpose16(w);
                for (int i = 0; i < 16; i++) _mm512_storeu_si512(out + (r0 + i) * pairsPad + q0, w[i]);
            }
        }
    }
}

// The k loop over one packed A panel (rowTiles x 16 rows, row stride pairsPad words) and one B panel (NR columns,
// colTiles x 16 of them used), accumulating into C tiles 0-3.
__attribute__((always_inline)) AMX_TARGET
static inline void tileLoop(long pairsPad, const uint32_t *pa, const uint32_t *pb, const int rowTiles, const int colTiles) {
    long strideA = pairsPad * 4;
    for (long q0 = 0; q0 < pairsPad; q0 += 16) {
        _tile_loadd(4, pa + q0, strideA);
        _tile_loadd(6, pb + q0 * NR, NR * 4);
        if (colTiles > 1) _tile_loadd(7, pb + q0 * NR + 16, NR * 4);
        _tile_dpbf16ps(0, 4, 6);
        if (colTiles > 1) _tile_dpbf16ps(1, 4, 7);
        if (rowTiles > 1) {
            _tile_loadd(5, pa + 16 * pairsPad + q0, strideA);
            _tile_dpbf16ps(2, 5, 6);
            if (colTiles > 1) _tile_dpbf16ps(3, 5, 7);
        }
    }
}

// C tile (rows x cols of at most 32 x 32) = alpha * A panel * B panel + beta * C.
AMX_TARGET
static void kernelAMX(long pairsPad, const uint32_t *pa, const uint32_t *pb, float *c, long ldc, long rows, long cols,
                      float alpha, float beta) {
    if (rows == 32 && cols == 32 && alpha == 1 && (beta == 0 || beta == 1)) {
        // Whole tile, plain accumulation: C's rows are the accumulators' memory.
        long stride = ldc * 4;
        if (beta == 0) { _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3); }
        else {
            _tile_loadd(0, c, stride); _tile_loadd(1, c + 16, stride);
            _tile_loadd(2, c + 16 * ldc, stride); _tile_loadd(3, c + 16 * ldc + 16, stride);
        }
        tileLoop(pairsPad, pa, pb, 2, 2);
        _tile_stored(0, c, stride); _tile_stored(1, c + 16, stride);
        _tile_stored(2, c + 16 * ldc, stride); _tile_stored(3, c + 16 * ldc + 16, stride);
        return;
    }
    int rowTiles = rows > 16 ? 2 : 1, colTiles = cols > 16 ? 2 : 1;
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    if (rowTiles == 2 && colTiles == 2) tileLoop(pairsPad, pa, pb, 2, 2);
    else if (rowTiles == 2) tileLoop(pairsPad, pa, pb, 2, 1);
    else if (colTiles == 2) tileLoop(pairsPad, pa, pb, 1, 2);
    else tileLoop(pairsPad, pa, pb, 1, 1);
    float tile[32 * 32] __attribute__((aligned(64)));
    _tile_stored(0, tile, 128); _tile_stored(1, tile + 16, 128);
    _tile_stored(2, tile + 16 * 32, 128); _tile_stored(3, tile + 16 * 32 + 16, 128);
    __mmask16 m0 = firstLanes(cols), m1 = firstLanes(cols - 16);
    for (long r = 0; r < rows; r++)
        storeRow(c + r * ldc, _mm512_load_ps(tile + r * 32), _mm512_load_ps(tile + r * 32 + 16), alpha, beta, m0, m1);
}

// The AMX blocked product; `packed` as in drive, in packAAMX's layout (gp_bf16_pack_a when the AMX kernel is chosen).
AMX_TARGET
static void driveAMX(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                     const uint32_t *packed, long packedRows, long i0Packed, const float *b, long ldb, float beta, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0) { scaleOnly(m, n, beta, c, ldc); return; }
    long ncMax = n < ANC ? (n + NR - 1) / NR * NR : ANC, pairsMax = round16(((k < AKC ? k : AKC) + 1) / 2);
    long mcMax = m < AMC ? round16(m) : AMC;
    Buffers *buffers = threadBuffers();
    uint32_t *pa = packed ? NULL : reserve(&buffers->a, &buffers->aWords, (size_t)mcMax * pairsMax);
    uint32_t *pb = reserve(&buffers->b, &buffers->bWords, (size_t)ncMax * pairsMax);
    if ((!packed && !pa) || !pb) abort();
    long paddedRows = round16(packedRows);
    configureTiles();
    for (long j0 = 0; j0 < n; j0 += ANC) {
        long nc = n - j0 < ANC ? n - j0 : ANC;
        for (long p0 = 0; p0 < k; p0 += AKC) {
            long kc = k - p0 < AKC ? k - p0 : AKC, pairsPad = round16((kc + 1) / 2);
            float betaHere = p0 == 0 ? beta : 1.0f;
            packB(transB, b, ldb, p0, kc, j0, nc, pairsPad, pb);
            // Full blocks before p0 hold AKC / 2 pairs (a multiple of 16) per row.
            const uint32_t *block = packed ? packed + paddedRows * (p0 / 2) : NULL;
            for (long i0 = 0; i0 < m; i0 += AMC) {
                long mc = m - i0 < AMC ? m - i0 : AMC;
                const uint32_t *panels;
                if (packed) {
                    panels = block + (i0Packed + i0) * pairsPad;
                } else {
                    packAAMX(transA, a, lda, i0, mc, p0, kc, pairsPad, pa);
                    panels = pa;
                }
                for (long jp = 0; jp < nc; jp += NR) {
                    long cols = nc - jp < NR ? nc - jp : NR;
                    const uint32_t *bp = pb + (jp / NR) * pairsPad * NR;
                    for (long ip = 0; ip < mc; ip += 32) {
                        long rows = mc - ip < 32 ? mc - ip : 32;
                        kernelAMX(pairsPad, panels + ip * pairsPad, bp, c + (i0 + ip) * ldc + j0 + jp, ldc, rows, cols, alpha, betaHere);
                    }
                }
            }
        }
    }
    _tile_release();
}

// ---------------------------------------------------------------------------------------------------------------
// Entry points: the chosen kernel (gp_bf16_kernel), and each kernel by name for tests and benchmarks.

BF16_TARGET
void gp_bf16_gemm_avx512(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                         const float *b, long ldb, float beta, float *c, long ldc) {
    drive(transA, transB, m, n, k, alpha, a, lda, NULL, 0, 0, b, ldb, beta, c, ldc);
}

void gp_bf16_gemm_amx(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                      const float *b, long ldb, float beta, float *c, long ldc) {
    if (!gp_amx_usable()) abort();
    driveAMX(transA, transB, m, n, k, alpha, a, lda, NULL, 0, 0, b, ldb, beta, c, ldc);
}

void gp_bf16_gemm(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                  const float *b, long ldb, float beta, float *c, long ldc) {
    if (gp_bf16_kernel() == 2) driveAMX(transA, transB, m, n, k, alpha, a, lda, NULL, 0, 0, b, ldb, beta, c, ldc);
    else drive(transA, transB, m, n, k, alpha, a, lda, NULL, 0, 0, b, ldb, beta, c, ldc);
}

long gp_bf16_packed_a_words(long m, long k) {
    if (gp_bf16_kernel() == 2) {
        long blocks = (k + AKC - 1) / AKC, last = k - (blocks - 1) * AKC;
        return round16(m) * ((blocks - 1) * (AKC / 2) + round16((last + 1) / 2));
    }
    long blocks = (k + KC - 1) / KC;
    return (m + MR - 1) / MR * MR * (k / 2 + blocks);
}

long gp_bf16_packed_a_blocks(long k) {
    long kc = gp_bf16_kernel() == 2 ? AKC : KC;
    return (k + kc - 1) / kc;
}

void gp_bf16_pack_a(int transA, long m, long k, const float *a, long lda, uint32_t *out, long firstBlock, long endBlock) {
    if (gp_bf16_kernel() == 2) {
        long paddedRows = round16(m);
        for (long p0 = firstBlock * AKC; p0 < k && p0 < endBlock * AKC; p0 += AKC) {
            long kc = k - p0 < AKC ? k - p0 : AKC;
            packAAMX(transA, a, lda, 0, m, p0, kc, round16((kc + 1) / 2), out + paddedRows * (p0 / 2));
        }
        return;
    }
    long paddedRows = (m + MR - 1) / MR * MR;
    for (long p0 = firstBlock * KC; p0 < k && p0 < endBlock * KC; p0 += KC) {
        long kc = k - p0 < KC ? k - p0 : KC;
        packA(transA, a, lda, 0, m, p0, kc, out + paddedRows * (p0 / 2));
    }
}

void gp_bf16_to_blocked16(const float *x, uint16_t *y, long p, long first, long end) {
    toBlocked16(x, y, p, first, end);
}

void gp_bf16_gemm_packed(const uint32_t *packed, long packedRows, long k, long i0, long m, int transB, long n, float alpha,
                         const float *b, long ldb, float beta, float *c, long ldc) {
    if (gp_bf16_kernel() == 2) driveAMX(0, transB, m, n, k, alpha, NULL, 0, packed, packedRows, i0, b, ldb, beta, c, ldc);
    else drive(0, transB, m, n, k, alpha, NULL, 0, packed, packedRows, i0, b, ldb, beta, c, ldc);
}

#else

int gp_bf16_supported(void) { return 0; }
int gp_amx_bf16_supported(void) { return 0; }
int gp_amx_usable(void) { return 0; }
int gp_bf16_kernel(void) { return 0; }
void gp_bf16_gemm_avx512(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                         const float *b, long ldb, float beta, float *c, long ldc) {
    gp_bf16_gemm_reference(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gp_bf16_gemm_amx(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                      const float *b, long ldb, float beta, float *c, long ldc) {
    (void)transA; (void)transB; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb;
    (void)beta; (void)c; (void)ldc; abort();
}
void gp_bf16_gemm(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                  const float *b, long ldb, float beta, float *c, long ldc) {
    gp_bf16_gemm_reference(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gp_bf16_to_blocked16(const float *x, uint16_t *y, long p, long first, long end) {
    gp_bf16_to_blocked16_reference(x, y, p, first, end);
}
long gp_bf16_packed_a_words(long m, long k) { (void)m; (void)k; return 0; }
long gp_bf16_packed_a_blocks(long k) { (void)k; return 0; }
void gp_bf16_pack_a(int transA, long m, long k, const float *a, long lda, uint32_t *out, long firstBlock, long endBlock) {
    (void)transA; (void)m; (void)k; (void)a; (void)lda; (void)out; (void)firstBlock; (void)endBlock; abort();
}
void gp_bf16_gemm_packed(const uint32_t *packed, long packedRows, long k, long i0, long m, int transB, long n, float alpha,
                         const float *b, long ldb, float beta, float *c, long ldc) {
    (void)packed; (void)packedRows; (void)k; (void)i0; (void)m; (void)transB; (void)n; (void)alpha; (void)b; (void)ldb;
    (void)beta; (void)c; (void)ldc; abort();
}

#endif
