#ifndef CPERCH_SGEMV_H
#define CPERCH_SGEMV_H
// One row of A times packed B (the GEMM's 16-column panels): the m = 1 case of perch_sgemm, for
// a recurrent step's H·Rᵀ and a batch-1 fully connected layer. The 6×16 micro-kernel computed
// six rows to keep one, and streamed each B panel through one accumulator chain: a 64-step
// LSTM spent 70% of its time there.
//
// Each output keeps the micro-kernel's arithmetic — start (bias or 0), then one fused
// multiply-add per p in ascending order, then `add` into C and the clamp — so a row comes out
// with the bits the 6×16 kernel gives it. Several panels run side by side to hide the
// multiply-add latency (8, 4 and 2 panels on AVX-512, AVX2 and NEON: 8 accumulators).
#include <stddef.h>
#include "CPerchSGEMM.h"

/// Stores one 16-column result: C += v (add) or C = v, then the clamp; `cols` ≤ 16 of them.
static inline void perch_sgemv_store(const float *v, float *c, long cols, int add, int clamp, float lo, float hi) {
    for (long j = 0; j < cols; j++) {
        float x = add ? v[j] + c[j] : v[j];
        c[j] = clamp ? perch_clampf(x, lo, hi) : x;
    }
}

/// The reference (the scalar micro-kernel's arithmetic): c[0..<n] from a[0..<kc] and the
/// ⌈n/16⌉ consecutive panels at b.
static inline void perch_sgemv_panels_scalar(long kc, const float *a, const float *b, long n, float *c, int add, float start,
                                             int clamp, float lo, float hi) {
    for (long j0 = 0; j0 < n; j0 += PERCH_SGEMM_NR) {
        const float *panel = b + (j0 / PERCH_SGEMM_NR) * kc * PERCH_SGEMM_NR;
        float acc[PERCH_SGEMM_NR];
        for (int j = 0; j < PERCH_SGEMM_NR; j++) acc[j] = start;
        for (long p = 0; p < kc; p++)
            for (int j = 0; j < PERCH_SGEMM_NR; j++) acc[j] += a[p] * panel[p * PERCH_SGEMM_NR + j];
        long cols = n - j0 < PERCH_SGEMM_NR ? n - j0 : PERCH_SGEMM_NR;
        perch_sgemv_store(acc, c + j0, cols, add, clamp, lo, hi);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// 8 panels from `panel` side by side (8 accumulator chains), results into out[0..<128]. Named
/// registers: an array indexed in a loop was kept on the stack.
__attribute__((target("avx512f"))) static inline void perch_sgemv_group8_avx512(long kc, const float *a, const float *panel, float start,
                                                                                float *out) {
    const long s = kc * PERCH_SGEMM_NR;
    __m512 c0 = _mm512_set1_ps(start), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    for (long p = 0; p < kc; p++) {
        const float *b = panel + p * PERCH_SGEMM_NR;
        __m512 av = _mm512_set1_ps(a[p]);
        c0 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b), c0);
        c1 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + s), c1);
        c2 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 2 * s), c2);
        c3 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 3 * s), c3);
        c4 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 4 * s), c4);
        c5 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 5 * s), c5);
        c6 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 6 * s), c6);
        c7 = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 7 * s), c7);
    }
    _mm512_storeu_ps(out, c0); _mm512_storeu_ps(out + 16, c1); _mm512_storeu_ps(out + 32, c2); _mm512_storeu_ps(out + 48, c3);
    _mm512_storeu_ps(out + 64, c4); _mm512_storeu_ps(out + 80, c5); _mm512_storeu_ps(out + 96, c6); _mm512_storeu_ps(out + 112, c7);
}

/// One panel (the last panels mod 8): one chain per output keeps the tile's order, so this runs
/// latency-bound.
__attribute__((target("avx512f"))) static inline void perch_sgemv_group1_avx512(long kc, const float *a, const float *panel, float start,
                                                                                float *out) {
    __m512 c0 = _mm512_set1_ps(start);
    for (long p = 0; p < kc; p++) c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[p]), _mm512_loadu_ps(panel + p * PERCH_SGEMM_NR), c0);
    _mm512_storeu_ps(out, c0);
}

__attribute__((target("avx512f"))) static inline void perch_sgemv_panels_avx512(long kc, const float *a, const float *b, long n, float *c,
                                                                                int add, float start, int clamp, float lo, float hi) {
    const long panels = (n + PERCH_SGEMM_NR - 1) / PERCH_SGEMM_NR, stride = kc * PERCH_SGEMM_NR;
    float out[8 * PERCH_SGEMM_NR];
    long q = 0;
    while (q < panels) {
        long g = panels - q >= 8 ? 8 : 1;
        if (g == 8) perch_sgemv_group8_avx512(kc, a, b + q * stride, start, out);
        else perch_sgemv_group1_avx512(kc, a, b + q * stride, start, out);
        long cols = n - q * PERCH_SGEMM_NR < g * PERCH_SGEMM_NR ? n - q * PERCH_SGEMM_NR : g * PERCH_SGEMM_NR;
        perch_sgemv_store(out, c + q * PERCH_SGEMM_NR, cols, add, clamp, lo, hi);
        q += g;
    }
}

/// 4 panels side by side, two 8-float halves each (8 accumulator chains), into out[0..<64].
__attribute__((target("avx2,fma"))) static inline void perch_sgemv_group4_avx2(long kc, const float *a, const float *panel, float start,
                                                                               float *out) {
    const long s = kc * PERCH_SGEMM_NR;
    __m256 c0 = _mm256_set1_ps(start), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    for (long p = 0; p < kc; p++) {
        const float *b = panel + p * PERCH_SGEMM_NR;
        __m256 av = _mm256_set1_ps(a[p]);
        c0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b), c0);
        c1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 8), c1);
        c2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + s), c2);
        c3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + s + 8), c3);
        c4 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 2 * s), c4);
        c5 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 2 * s + 8), c5);
        c6 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 3 * s), c6);
        c7 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 3 * s + 8), c7);
    }
    _mm256_storeu_ps(out, c0); _mm256_storeu_ps(out + 8, c1); _mm256_storeu_ps(out + 16, c2); _mm256_storeu_ps(out + 24, c3);
    _mm256_storeu_ps(out + 32, c4); _mm256_storeu_ps(out + 40, c5); _mm256_storeu_ps(out + 48, c6); _mm256_storeu_ps(out + 56, c7);
}

__attribute__((target("avx2,fma"))) static inline void perch_sgemv_group1_avx2(long kc, const float *a, const float *panel, float start,
                                                                               float *out) {
    __m256 c0 = _mm256_set1_ps(start), c1 = c0;
    for (long p = 0; p < kc; p++) {
        __m256 av = _mm256_set1_ps(a[p]);
        c0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(panel + p * PERCH_SGEMM_NR), c0);
        c1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(panel + p * PERCH_SGEMM_NR + 8), c1);
    }
    _mm256_storeu_ps(out, c0); _mm256_storeu_ps(out + 8, c1);
}

__attribute__((target("avx2,fma"))) static inline void perch_sgemv_panels_avx2(long kc, const float *a, const float *b, long n, float *c,
                                                                               int add, float start, int clamp, float lo, float hi) {
    const long panels = (n + PERCH_SGEMM_NR - 1) / PERCH_SGEMM_NR, stride = kc * PERCH_SGEMM_NR;
    float out[4 * PERCH_SGEMM_NR];
    long q = 0;
    while (q < panels) {
        long g = panels - q >= 4 ? 4 : 1;
        if (g == 4) perch_sgemv_group4_avx2(kc, a, b + q * stride, start, out);
        else perch_sgemv_group1_avx2(kc, a, b + q * stride, start, out);
        long cols = n - q * PERCH_SGEMM_NR < g * PERCH_SGEMM_NR ? n - q * PERCH_SGEMM_NR : g * PERCH_SGEMM_NR;
        perch_sgemv_store(out, c + q * PERCH_SGEMM_NR, cols, add, clamp, lo, hi);
        q += g;
    }
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

/// 2 panels side by side, four quads each (8 accumulator chains), into out[0..<32].
static inline void perch_sgemv_group2_neon(long kc, const float *a, const float *panel, float start, float *out) {
    const long s = kc * PERCH_SGEMM_NR;
    float32x4_t c0 = vdupq_n_f32(start), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    for (long p = 0; p < kc; p++) {
        const float *b = panel + p * PERCH_SGEMM_NR;
        float av = a[p];
        c0 = vfmaq_n_f32(c0, vld1q_f32(b), av);
        c1 = vfmaq_n_f32(c1, vld1q_f32(b + 4), av);
        c2 = vfmaq_n_f32(c2, vld1q_f32(b + 8), av);
        c3 = vfmaq_n_f32(c3, vld1q_f32(b + 12), av);
        c4 = vfmaq_n_f32(c4, vld1q_f32(b + s), av);
        c5 = vfmaq_n_f32(c5, vld1q_f32(b + s + 4), av);
        c6 = vfmaq_n_f32(c6, vld1q_f32(b + s + 8), av);
        c7 = vfmaq_n_f32(c7, vld1q_f32(b + s + 12), av);
    }
    vst1q_f32(out, c0); vst1q_f32(out + 4, c1); vst1q_f32(out + 8, c2); vst1q_f32(out + 12, c3);
    vst1q_f32(out + 16, c4); vst1q_f32(out + 20, c5); vst1q_f32(out + 24, c6); vst1q_f32(out + 28, c7);
}

static inline void perch_sgemv_group1_neon(long kc, const float *a, const float *panel, float start, float *out) {
    float32x4_t c0 = vdupq_n_f32(start), c1 = c0, c2 = c0, c3 = c0;
    for (long p = 0; p < kc; p++) {
        const float *b = panel + p * PERCH_SGEMM_NR;
        float av = a[p];
        c0 = vfmaq_n_f32(c0, vld1q_f32(b), av);
        c1 = vfmaq_n_f32(c1, vld1q_f32(b + 4), av);
        c2 = vfmaq_n_f32(c2, vld1q_f32(b + 8), av);
        c3 = vfmaq_n_f32(c3, vld1q_f32(b + 12), av);
    }
    vst1q_f32(out, c0); vst1q_f32(out + 4, c1); vst1q_f32(out + 8, c2); vst1q_f32(out + 12, c3);
}

static inline void perch_sgemv_panels_neon(long kc, const float *a, const float *b, long n, float *c, int add, float start, int clamp,
                                           float lo, float hi) {
    const long panels = (n + PERCH_SGEMM_NR - 1) / PERCH_SGEMM_NR, stride = kc * PERCH_SGEMM_NR;
    float out[2 * PERCH_SGEMM_NR];
    long q = 0;
    while (q < panels) {
        long g = panels - q >= 2 ? 2 : 1;
        if (g == 2) perch_sgemv_group2_neon(kc, a, b + q * stride, start, out);
        else perch_sgemv_group1_neon(kc, a, b + q * stride, start, out);
        long cols = n - q * PERCH_SGEMM_NR < g * PERCH_SGEMM_NR ? n - q * PERCH_SGEMM_NR : g * PERCH_SGEMM_NR;
        perch_sgemv_store(out, c + q * PERCH_SGEMM_NR, cols, add, clamp, lo, hi);
        q += g;
    }
}
#endif

/// perch_sgemv_panels_* for micro-kernel `variant` (perch_sgemm_best()'s choice).
static inline void perch_sgemv_panels(int variant, long kc, const float *a, const float *b, long n, float *c, int add, float start,
                                      int clamp, float lo, float hi) {
    switch (variant) {
#if defined(__x86_64__)
    case PERCH_SGEMM_AVX512: perch_sgemv_panels_avx512(kc, a, b, n, c, add, start, clamp, lo, hi); return;
    case PERCH_SGEMM_AVX2: perch_sgemv_panels_avx2(kc, a, b, n, c, add, start, clamp, lo, hi); return;
#elif defined(__aarch64__)
    case PERCH_SGEMM_NEON: perch_sgemv_panels_neon(kc, a, b, n, c, add, start, clamp, lo, hi); return;
#endif
    default: perch_sgemv_panels_scalar(kc, a, b, n, c, add, start, clamp, lo, hi); return;
    }
}

#endif
