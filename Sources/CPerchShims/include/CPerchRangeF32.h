#ifndef CPERCH_RANGE_F32_H
#define CPERCH_RANGE_F32_H
// The range DynamicQuantizeLinear quantizes over: lo = min(0, x…), hi = max(0, x…), NaN
// elements not counted. Every variant applies `v < lo ? v : lo` and `v > hi ? v : hi` (x86's
// min/max instructions are defined as exactly that, with v first; NEON compares and selects), so
// the bounds are the same floats on every ISA, zero signs included.
#include <stddef.h>
#include "CPerchInt8.h"

static inline void perch_range_f32_scalar(const float *x, size_t n, float *lo, float *hi) {
    float l = 0, h = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        l = v < l ? v : l;
        h = v > h ? v : h;
    }
    *lo = l, *hi = h;
}

/// Folds lane bounds (each reached by the scalar rule from 0) into *lo / *hi by the same rule.
static inline void perch_range_f32_fold(const float *lanes_lo, const float *lanes_hi, size_t lanes, float *lo, float *hi) {
    for (size_t i = 0; i < lanes; i++) {
        *lo = lanes_lo[i] < *lo ? lanes_lo[i] : *lo;
        *hi = lanes_hi[i] > *hi ? lanes_hi[i] : *hi;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static inline void perch_range_f32_avx512(const float *x, size_t n, float *lo, float *hi) {
    __m512 l0 = _mm512_setzero_ps(), l1 = l0, h0 = l0, h1 = l0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        l0 = _mm512_min_ps(a, l0); h0 = _mm512_max_ps(a, h0);
        l1 = _mm512_min_ps(b, l1); h1 = _mm512_max_ps(b, h1);
    }
    float ll[32], hh[32];
    _mm512_storeu_ps(ll, l0); _mm512_storeu_ps(ll + 16, l1); _mm512_storeu_ps(hh, h0); _mm512_storeu_ps(hh + 16, h1);
    perch_range_f32_scalar(x + i, n - i, lo, hi);
    perch_range_f32_fold(ll, hh, 32, lo, hi);
}

__attribute__((target("avx2"))) static inline void perch_range_f32_avx2(const float *x, size_t n, float *lo, float *hi) {
    __m256 l0 = _mm256_setzero_ps(), l1 = l0, h0 = l0, h1 = l0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        l0 = _mm256_min_ps(a, l0); h0 = _mm256_max_ps(a, h0);
        l1 = _mm256_min_ps(b, l1); h1 = _mm256_max_ps(b, h1);
    }
    float ll[16], hh[16];
    _mm256_storeu_ps(ll, l0); _mm256_storeu_ps(ll + 8, l1); _mm256_storeu_ps(hh, h0); _mm256_storeu_ps(hh + 8, h1);
    perch_range_f32_scalar(x + i, n - i, lo, hi);
    perch_range_f32_fold(ll, hh, 16, lo, hi);
}
#elif defined(__aarch64__)
#include <arm_neon.h>
static inline void perch_range_f32_neon(const float *x, size_t n, float *lo, float *hi) {
    float32x4_t l0 = vdupq_n_f32(0), l1 = l0, h0 = l0, h1 = l0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + 4);
        l0 = vbslq_f32(vcltq_f32(a, l0), a, l0); h0 = vbslq_f32(vcgtq_f32(a, h0), a, h0);
        l1 = vbslq_f32(vcltq_f32(b, l1), b, l1); h1 = vbslq_f32(vcgtq_f32(b, h1), b, h1);
    }
    float ll[8], hh[8];
    vst1q_f32(ll, l0); vst1q_f32(ll + 4, l1); vst1q_f32(hh, h0); vst1q_f32(hh + 4, h1);
    perch_range_f32_scalar(x + i, n - i, lo, hi);
    perch_range_f32_fold(ll, hh, 8, lo, hi);
}
#endif

/// The fastest variant this CPU runs.
static inline void perch_range_f32(const float *x, size_t n, float *lo, float *hi) {
#if defined(__x86_64__)
    int f = perch_cpu_features();
    if (f & PERCH_CPU_AVX512VNNI) { perch_range_f32_avx512(x, n, lo, hi); return; }
    if (f & PERCH_CPU_AVX2) { perch_range_f32_avx2(x, n, lo, hi); return; }
#elif defined(__aarch64__)
    perch_range_f32_neon(x, n, lo, hi);
    return;
#endif
    perch_range_f32_scalar(x, n, lo, hi);
}

#endif
