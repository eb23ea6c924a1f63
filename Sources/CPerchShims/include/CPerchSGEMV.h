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
// multiply-add latency (8 on AVX-512 and AVX2, 4 on NEON).
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

/// G panels (G ≤ 8, a constant after inlining) from `panel`, results into out[0..<G·16].
__attribute__((target("avx512f"), always_inline)) static inline void perch_sgemv_group_avx512(long kc, const float *a, const float *panel,
                                                                                              int g, float start, float *out) {
    __m512 acc[8];
    for (int q = 0; q < g; q++) acc[q] = _mm512_set1_ps(start);
    const long stride = kc * PERCH_SGEMM_NR;
    for (long p = 0; p < kc; p++) {
        __m512 av = _mm512_set1_ps(a[p]);
        for (int q = 0; q < g; q++) acc[q] = _mm512_fmadd_ps(av, _mm512_loadu_ps(panel + q * stride + p * PERCH_SGEMM_NR), acc[q]);
    }
    for (int q = 0; q < g; q++) _mm512_storeu_ps(out + q * PERCH_SGEMM_NR, acc[q]);
}

__attribute__((target("avx512f"))) static inline void perch_sgemv_panels_avx512(long kc, const float *a, const float *b, long n, float *c,
                                                                                int add, float start, int clamp, float lo, float hi) {
    const long panels = (n + PERCH_SGEMM_NR - 1) / PERCH_SGEMM_NR, stride = kc * PERCH_SGEMM_NR;
    float out[8 * PERCH_SGEMM_NR];
    long q = 0;
    while (q < panels) {
        long g = panels - q >= 8 ? 8 : (panels - q >= 4 ? 4 : 1);
        if (g == 8) perch_sgemv_group_avx512(kc, a, b + q * stride, 8, start, out);
        else if (g == 4) perch_sgemv_group_avx512(kc, a, b + q * stride, 4, start, out);
        else perch_sgemv_group_avx512(kc, a, b + q * stride, 1, start, out);
        long cols = n - q * PERCH_SGEMM_NR < g * PERCH_SGEMM_NR ? n - q * PERCH_SGEMM_NR : g * PERCH_SGEMM_NR;
        perch_sgemv_store(out, c + q * PERCH_SGEMM_NR, cols, add, clamp, lo, hi);
        q += g;
    }
}

/// As the AVX-512 group with two 8-float halves per panel (G ≤ 4 panels, 8 accumulators).
__attribute__((target("avx2,fma"), always_inline)) static inline void perch_sgemv_group_avx2(long kc, const float *a, const float *panel,
                                                                                             int g, float start, float *out) {
    __m256 acc[8];
    for (int q = 0; q < 2 * g; q++) acc[q] = _mm256_set1_ps(start);
    const long stride = kc * PERCH_SGEMM_NR;
    for (long p = 0; p < kc; p++) {
        __m256 av = _mm256_set1_ps(a[p]);
        for (int q = 0; q < g; q++) {
            const float *row = panel + q * stride + p * PERCH_SGEMM_NR;
            acc[2 * q] = _mm256_fmadd_ps(av, _mm256_loadu_ps(row), acc[2 * q]);
            acc[2 * q + 1] = _mm256_fmadd_ps(av, _mm256_loadu_ps(row + 8), acc[2 * q + 1]);
        }
    }
    for (int q = 0; q < 2 * g; q++) _mm256_storeu_ps(out + q * 8, acc[q]);
}

__attribute__((target("avx2,fma"))) static inline void perch_sgemv_panels_avx2(long kc, const float *a, const float *b, long n, float *c,
                                                                               int add, float start, int clamp, float lo, float hi) {
    const long panels = (n + PERCH_SGEMM_NR - 1) / PERCH_SGEMM_NR, stride = kc * PERCH_SGEMM_NR;
    float out[4 * PERCH_SGEMM_NR];
    long q = 0;
    while (q < panels) {
        long g = panels - q >= 4 ? 4 : 1;
        if (g == 4) perch_sgemv_group_avx2(kc, a, b + q * stride, 4, start, out);
        else perch_sgemv_group_avx2(kc, a, b + q * stride, 1, start, out);
        long cols = n - q * PERCH_SGEMM_NR < g * PERCH_SGEMM_NR ? n - q * PERCH_SGEMM_NR : g * PERCH_SGEMM_NR;
        perch_sgemv_store(out, c + q * PERCH_SGEMM_NR, cols, add, clamp, lo, hi);
        q += g;
    }
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

/// G ≤ 2 panels of four quads each (8 accumulators).
__attribute__((always_inline)) static inline void perch_sgemv_group_neon(long kc, const float *a, const float *panel, int g, float start,
                                                                          float *out) {
    float32x4_t acc[8];
    for (int q = 0; q < 4 * g; q++) acc[q] = vdupq_n_f32(start);
    const long stride = kc * PERCH_SGEMM_NR;
    for (long p = 0; p < kc; p++) {
        float av = a[p];
        for (int q = 0; q < g; q++)
            for (int h = 0; h < 4; h++)
                acc[4 * q + h] = vfmaq_n_f32(acc[4 * q + h], vld1q_f32(panel + q * stride + p * PERCH_SGEMM_NR + 4 * h), av);
    }
    for (int q = 0; q < 4 * g; q++) vst1q_f32(out + 4 * q, acc[q]);
}

static inline void perch_sgemv_panels_neon(long kc, const float *a, const float *b, long n, float *c, int add, float start, int clamp,
                                           float lo, float hi) {
    const long panels = (n + PERCH_SGEMM_NR - 1) / PERCH_SGEMM_NR, stride = kc * PERCH_SGEMM_NR;
    float out[2 * PERCH_SGEMM_NR];
    long q = 0;
    while (q < panels) {
        long g = panels - q >= 2 ? 2 : 1;
        if (g == 2) perch_sgemv_group_neon(kc, a, b + q * stride, 2, start, out);
        else perch_sgemv_group_neon(kc, a, b + q * stride, 1, start, out);
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
