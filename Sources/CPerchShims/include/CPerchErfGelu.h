#ifndef CPERCH_ERF_GELU_H
#define CPERCH_ERF_GELU_H
// float32 erf and GELU (erf form) over arrays: the rational approximation of ErfApproximation.swift
// (odd degree-13 numerator over even degree-8 denominator on [-4, 4], clamped outside; NaN passes
// through). Swift's loop over the scalar function stayed scalar (no FMA in the baseline x86-64
// build): 2.3 ns per element, a transformer's GELU costing more than its Softmax and LayerNorms
// together. The SIMD kernels evaluate the same polynomials with fused multiply-adds, so they agree
// with the scalar reference to a few float32 ulps, not bit for bit.
//
// - perch_erf_gelu_f32_*: y[i] = erf(x[i]) (gelu = 0) or 0.5·x·(1 + erf(x/√2)) (gelu = 1); y may be x.
#include <stddef.h>
#include <stdint.h>

/// Scalar reference (the Swift function's operations in the same order).
static inline float perch_erf_f32_scalar(float value) {
    if (value != value) return value;
    float x = value < -4.0f ? -4.0f : (value > 4.0f ? 4.0f : value);
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    p *= x;
    float q = -1.45660718464996e-05f;
    q = q * x2 - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return p / q;
}

static inline void perch_erf_gelu_f32_scalar(const float *x, size_t n, int gelu, float *y) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = gelu ? 0.5f * v * (1.0f + perch_erf_f32_scalar(v * 0.7071067811865476f)) : perch_erf_f32_scalar(v);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// The rational function on 16 lanes (AVX-512 F). NaN lanes come back as NaN (min/max pass the
/// second operand, the clamp bound, so they are restored from the input).
__attribute__((target("avx512f"))) static inline __m512 perch_erf16_avx512(__m512 v) {
    __m512 x = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(-2.72614225801306e-10f), x2, _mm512_set1_ps(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.60960333262415e-02f));
    p = _mm512_mul_ps(p, x);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(-1.45660718464996e-05f), x2, _mm512_set1_ps(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.42647390514189e-02f));
    __m512 r = _mm512_div_ps(p, q);
    return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
}

__attribute__((target("avx512f"))) static inline void perch_erf_gelu_f32_avx512(const float *x, size_t n, int gelu, float *y) {
    const __m512 half = _mm512_set1_ps(0.5f), rsqrt2 = _mm512_set1_ps(0.7071067811865476f), one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 r = gelu ? _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, perch_erf16_avx512(_mm512_mul_ps(v, rsqrt2))))
                        : perch_erf16_avx512(v);
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

/// The same on 8 lanes (AVX2 + FMA).
__attribute__((target("avx2,fma"))) static inline __m256 perch_erf8_avx2(__m256 v) {
    __m256 x = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-4.0f)), _mm256_set1_ps(4.0f));
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(-2.72614225801306e-10f), x2, _mm256_set1_ps(2.77068142495902e-08f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.10102402082508e-06f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-5.69250639462346e-05f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-7.34990630326855e-04f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-1.60960333262415e-02f));
    p = _mm256_mul_ps(p, x);
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(-1.45660718464996e-05f), x2, _mm256_set1_ps(-2.13374055278905e-04f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.68282697438203e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-7.37332916720468e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-1.42647390514189e-02f));
    __m256 r = _mm256_div_ps(p, q);
    return _mm256_blendv_ps(r, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

__attribute__((target("avx2,fma"))) static inline void perch_erf_gelu_f32_avx2(const float *x, size_t n, int gelu, float *y) {
    const __m256 half = _mm256_set1_ps(0.5f), rsqrt2 = _mm256_set1_ps(0.7071067811865476f), one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 r = gelu ? _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, perch_erf8_avx2(_mm256_mul_ps(v, rsqrt2))))
                        : perch_erf8_avx2(v);
        _mm256_storeu_ps(y + i, r);
    }
    perch_erf_gelu_f32_scalar(x + i, n - i, gelu, y + i);
}
#endif  // __x86_64__

#endif
