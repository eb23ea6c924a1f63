#ifndef CPERCH_HALF_H
#define CPERCH_HALF_H
// fp16 arithmetic for ARMv8.2-A FP16 ("asimdhp": Cortex-A55/A76 and later, e.g. Raspberry Pi 5):
// a GEMM whose operands are fp16 and whose multiply-adds run in fp16 vectors (8 lanes), with
// partial sums widened into fp32 every PERCH_HGEMM_KB steps so long dot products keep fp32
// accuracy. Compiled per function with a target attribute and chosen at run time
// (`perch_cpu_has_fp16_arith`); other CPUs keep fp16 weight storage with fp32 compute.
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#if defined(__aarch64__)
#include <arm_neon.h>
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#endif

enum { PERCH_HGEMM_KB = 32 };

/// 1 when this CPU has fp16 vector arithmetic (aarch64 HWCAP_ASIMDHP), else 0.
static inline int perch_cpu_has_fp16_arith(void) {
#if defined(__aarch64__) && defined(__linux__)
    return (getauxval(AT_HWCAP) & (1UL << 10)) != 0;
#else
    return 0;
#endif
}

#if defined(__aarch64__)
#define PERCH_FP16_TARGET __attribute__((target("fullfp16")))

/// dst[i] = (fp16) src[i], round to nearest even.
PERCH_FP16_TARGET static inline void perch_f32_to_f16_neon(const float *src, size_t n, uint16_t *dst) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float16x8_t h = vcombine_f16(vcvt_f16_f32(vld1q_f32(src + i)), vcvt_f16_f32(vld1q_f32(src + i + 4)));
        vst1q_u16(dst + i, vreinterpretq_u16_f16(h));
    }
    for (; i < n; i++) {
        _Float16 h = (_Float16)src[i];
        memcpy(dst + i, &h, 2);
    }
}

/// C[m][n] (+)= Σ_k A[m][k]·B[k][n] for m < M, n < N: A (M×K, row stride lda) and B (K×N, row
/// stride ldb) are fp16 bits, C fp32 (row stride ldc; `add` = 0 overwrites). Tiles of 4 rows ×
/// 16 columns accumulate PERCH_HGEMM_KB steps in fp16 (vfmaq_laneq_f16), then widen into C.
PERCH_FP16_TARGET static inline void perch_hgemm_neon(long M, long N, long K, const uint16_t *A, long lda, const uint16_t *B,
                                                      long ldb, float *C, long ldc, int add) {
    const float16_t *a = (const float16_t *)(const void *)A;
    const float16_t *b = (const float16_t *)(const void *)B;
    if (!add) for (long m = 0; m < M; m++) memset(C + m * ldc, 0, (size_t)N * sizeof(float));
    for (long k0 = 0; k0 < K; k0 += PERCH_HGEMM_KB) {
        long kb = K - k0 < PERCH_HGEMM_KB ? K - k0 : PERCH_HGEMM_KB;
        long m = 0;
        for (; m + 4 <= M; m += 4) {
            long n = 0;
            for (; n + 16 <= N; n += 16) {
                float16x8_t c00 = vdupq_n_f16(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
                const float16_t *bp = b + k0 * ldb + n;
                const float16_t *ap = a + m * lda + k0;
                long p = 0;
                for (; p + 4 <= kb; p += 4) {
                    // Four k steps of the four rows: A values as lanes of one vector per row.
                    float16x4_t r0 = vld1_f16(ap + p), r1 = vld1_f16(ap + lda + p), r2 = vld1_f16(ap + 2 * lda + p),
                                r3 = vld1_f16(ap + 3 * lda + p);
#define PERCH_HGEMM_STEP(j)                                                                                 \
    {                                                                                                       \
        float16x8_t b0 = vld1q_f16(bp + (p + j) * ldb), b1 = vld1q_f16(bp + (p + j) * ldb + 8);             \
        c00 = vfmaq_lane_f16(c00, b0, r0, j); c01 = vfmaq_lane_f16(c01, b1, r0, j);                         \
        c10 = vfmaq_lane_f16(c10, b0, r1, j); c11 = vfmaq_lane_f16(c11, b1, r1, j);                         \
        c20 = vfmaq_lane_f16(c20, b0, r2, j); c21 = vfmaq_lane_f16(c21, b1, r2, j);                         \
        c30 = vfmaq_lane_f16(c30, b0, r3, j); c31 = vfmaq_lane_f16(c31, b1, r3, j);                         \
    }
                    PERCH_HGEMM_STEP(0) PERCH_HGEMM_STEP(1) PERCH_HGEMM_STEP(2) PERCH_HGEMM_STEP(3)
#undef PERCH_HGEMM_STEP
                }
                for (; p < kb; p++) {
                    float16x8_t b0 = vld1q_f16(bp + p * ldb), b1 = vld1q_f16(bp + p * ldb + 8);
                    c00 = vfmaq_n_f16(c00, b0, ap[p]); c01 = vfmaq_n_f16(c01, b1, ap[p]);
                    c10 = vfmaq_n_f16(c10, b0, ap[lda + p]); c11 = vfmaq_n_f16(c11, b1, ap[lda + p]);
                    c20 = vfmaq_n_f16(c20, b0, ap[2 * lda + p]); c21 = vfmaq_n_f16(c21, b1, ap[2 * lda + p]);
                    c30 = vfmaq_n_f16(c30, b0, ap[3 * lda + p]); c31 = vfmaq_n_f16(c31, b1, ap[3 * lda + p]);
                }
                float16x8_t cs[8] = {c00, c01, c10, c11, c20, c21, c30, c31};
                for (int r = 0; r < 4; r++) {
                    float *cr = C + (m + r) * ldc + n;
                    for (int h = 0; h < 2; h++) {
                        float16x8_t v = cs[2 * r + h];
                        vst1q_f32(cr + 8 * h, vaddq_f32(vld1q_f32(cr + 8 * h), vcvt_f32_f16(vget_low_f16(v))));
                        vst1q_f32(cr + 8 * h + 4, vaddq_f32(vld1q_f32(cr + 8 * h + 4), vcvt_high_f32_f16(v)));
                    }
                }
            }
            for (; n < N; n++) {  // column tail
                for (int r = 0; r < 4; r++) {
                    _Float16 s = 0;
                    for (long p = 0; p < kb; p++) s += (_Float16)a[(m + r) * lda + k0 + p] * (_Float16)b[(k0 + p) * ldb + n];
                    C[(m + r) * ldc + n] += (float)s;
                }
            }
        }
        for (; m < M; m++) {  // row tail
            for (long n = 0; n < N; n++) {
                _Float16 s = 0;
                for (long p = 0; p < kb; p++) s += (_Float16)a[m * lda + k0 + p] * (_Float16)b[(k0 + p) * ldb + n];
                C[m * ldc + n] += (float)s;
            }
        }
    }
}
#endif

#endif
