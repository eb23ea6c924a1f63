#ifndef CPERCH_SIGMOID_TANH_H
#define CPERCH_SIGMOID_TANH_H
// float32 Sigmoid, Tanh and SiLU (x·sigmoid(x)) over arrays. A Swift loop over libm's expf/tanhf
// ran 5–10 ns per element: a YOLO-style detector's SiLUs and an LSTM's gates were spent there.
//
// - sigmoid(x) = 1 / (1 + e^−x) with perch_expf_poly (CPerchElementwise.h; e^−x clamps at e^88, so
//   x < −88 gives about 6e−39 instead of a smaller denormal, and x > 87 gives exactly 1).
// - tanh(x): for |x| < 0.625 the odd polynomial |x| + |x|³·P(x²) (degree-5 P, least-squares fit,
//   ≤ 7e−8 relative error in float32), otherwise 1 − 2/(e^{2|x|} + 1); the sign copied from x.
// - silu(x) = x · sigmoid(x) (the Sigmoid→Mul pair detectors and EfficientNets are made of).
//
// Every SIMD kernel runs the scalar reference's operations in the same order (fused multiply-adds
// where the reference calls fmaf, IEEE division), so they agree bit for bit. NaN stays NaN.
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include "CPerchElementwise.h"

#define PERCH_TANH_SMALL 0.625f
#define PERCH_TANH_C0 -0.3333333134651184f
#define PERCH_TANH_C1 0.133332297205925f
#define PERCH_TANH_C2 -0.05394979566335678f
#define PERCH_TANH_C3 0.02171768993139267f
#define PERCH_TANH_C4 -0.008220166899263859f
#define PERCH_TANH_C5 0.002182707889005542f

/// Which function perch_sigmoid_tanh_f32_* applies.
enum { PERCH_ACT_SIGMOID = 0, PERCH_ACT_TANH = 1, PERCH_ACT_SILU = 2 };

static inline float perch_sigmoid_f32_one(float x) {
    return 1.0f / (1.0f + perch_expf_poly(-x));
}

static inline float perch_tanh_f32_one(float x) {
    float a = fabsf(x);
    float big = 1.0f - 2.0f / (perch_expf_poly(2.0f * a) + 1.0f);
    float s = a * a;
    float p = PERCH_TANH_C5;
    p = fmaf(p, s, PERCH_TANH_C4);
    p = fmaf(p, s, PERCH_TANH_C3);
    p = fmaf(p, s, PERCH_TANH_C2);
    p = fmaf(p, s, PERCH_TANH_C1);
    p = fmaf(p, s, PERCH_TANH_C0);
    float small = fmaf(a * s, p, a);
    return copysignf(a < PERCH_TANH_SMALL ? small : big, x);
}

/// Scalar reference: y[i] = f(x[i]) for f = `fn` (PERCH_ACT_*); y may be x.
static inline void perch_sigmoid_tanh_f32_scalar(const float *x, size_t n, int fn, float *y) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = fn == PERCH_ACT_TANH ? perch_tanh_f32_one(v) : (fn == PERCH_ACT_SILU ? v * perch_sigmoid_f32_one(v) : perch_sigmoid_f32_one(v));
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

PERCH_AVX512F_TARGET static inline __m512 perch_sigmoid16_avx512(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, perch_expf16_avx512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

PERCH_AVX512F_TARGET static inline __m512 perch_tanh16_avx512(__m512 x) {
    const __m512 sign = _mm512_set1_ps(-0.0f), one = _mm512_set1_ps(1.0f);
    __m512 a = _mm512_andnot_ps(sign, x);
    __m512 e = perch_expf16_avx512(_mm512_add_ps(a, a));
    __m512 big = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
    __m512 s = _mm512_mul_ps(a, a);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(PERCH_TANH_C5), s, _mm512_set1_ps(PERCH_TANH_C4));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(PERCH_TANH_C3));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(PERCH_TANH_C2));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(PERCH_TANH_C1));
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(PERCH_TANH_C0));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(a, s), p, a);
    __mmask16 isSmall = _mm512_cmp_ps_mask(a, _mm512_set1_ps(PERCH_TANH_SMALL), _CMP_LT_OQ);
    __m512 r = _mm512_mask_mov_ps(big, isSmall, small);
    return _mm512_or_ps(r, _mm512_and_ps(sign, x));
}

PERCH_AVX512F_TARGET static inline void perch_sigmoid_tanh_f32_avx512(const float *x, size_t n, int fn, float *y) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 r = fn == PERCH_ACT_TANH ? perch_tanh16_avx512(v) : perch_sigmoid16_avx512(v);
        if (fn == PERCH_ACT_SILU) r = _mm512_mul_ps(v, r);
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

PERCH_AVX2FMA_TARGET static inline __m256 perch_sigmoid8_avx2(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, perch_expf8_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

PERCH_AVX2FMA_TARGET static inline __m256 perch_tanh8_avx2(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 a = _mm256_andnot_ps(sign, x);
    __m256 e = perch_expf8_avx2(_mm256_add_ps(a, a));
    __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    __m256 s = _mm256_mul_ps(a, a);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(PERCH_TANH_C5), s, _mm256_set1_ps(PERCH_TANH_C4));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(PERCH_TANH_C3));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(PERCH_TANH_C2));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(PERCH_TANH_C1));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(PERCH_TANH_C0));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(a, s), p, a);
    __m256 isSmall = _mm256_cmp_ps(a, _mm256_set1_ps(PERCH_TANH_SMALL), _CMP_LT_OQ);
    __m256 r = _mm256_blendv_ps(big, small, isSmall);
    return _mm256_or_ps(r, _mm256_and_ps(sign, x));
}

PERCH_AVX2FMA_TARGET static inline void perch_sigmoid_tanh_f32_avx2(const float *x, size_t n, int fn, float *y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 r = fn == PERCH_ACT_TANH ? perch_tanh8_avx2(v) : perch_sigmoid8_avx2(v);
        if (fn == PERCH_ACT_SILU) r = _mm256_mul_ps(v, r);
        _mm256_storeu_ps(y + i, r);
    }
    if (i < n) perch_sigmoid_tanh_f32_scalar(x + i, n - i, fn, y + i);
}
#endif  // __x86_64__

#if defined(__aarch64__)
#include <arm_neon.h>

/// perch_expf_poly on 4 lanes (bit-identical: vrndnq rounds to nearest even like nearbyintf).
static inline float32x4_t perch_expf4_neon(float32x4_t x) {
    x = vminq_f32(x, vdupq_n_f32(PERCH_EXPF_HI));
    uint32x4_t under = vcltq_f32(x, vdupq_n_f32(PERCH_EXPF_LO));
    x = vmaxq_f32(x, vdupq_n_f32(PERCH_EXPF_LO));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmaq_f32(x, n, vdupq_n_f32(-0.693359375f));
    r = vfmaq_f32(r, n, vdupq_n_f32(2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(r, p, vmulq_f32(r, r));
    p = vaddq_f32(p, vdupq_n_f32(1.0f));
    int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    float32x4_t e = vmulq_f32(p, vreinterpretq_f32_s32(bits));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(e), under));
}

static inline float32x4_t perch_sigmoid4_neon(float32x4_t x) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    return vdivq_f32(one, vaddq_f32(one, perch_expf4_neon(vnegq_f32(x))));
}

static inline float32x4_t perch_tanh4_neon(float32x4_t x) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t a = vabsq_f32(x);
    float32x4_t e = perch_expf4_neon(vaddq_f32(a, a));
    float32x4_t big = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, one)));
    float32x4_t s = vmulq_f32(a, a);
    float32x4_t p = vfmaq_f32(vdupq_n_f32(PERCH_TANH_C4), vdupq_n_f32(PERCH_TANH_C5), s);
    p = vfmaq_f32(vdupq_n_f32(PERCH_TANH_C3), p, s);
    p = vfmaq_f32(vdupq_n_f32(PERCH_TANH_C2), p, s);
    p = vfmaq_f32(vdupq_n_f32(PERCH_TANH_C1), p, s);
    p = vfmaq_f32(vdupq_n_f32(PERCH_TANH_C0), p, s);
    float32x4_t small = vfmaq_f32(a, vmulq_f32(a, s), p);
    float32x4_t r = vbslq_f32(vcltq_f32(a, vdupq_n_f32(PERCH_TANH_SMALL)), small, big);
    const uint32x4_t sign = vdupq_n_u32(0x80000000u);
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(r), vandq_u32(sign, vreinterpretq_u32_f32(x))));
}

static inline void perch_sigmoid_tanh_f32_neon(const float *x, size_t n, int fn, float *y) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        float32x4_t r = fn == PERCH_ACT_TANH ? perch_tanh4_neon(v) : perch_sigmoid4_neon(v);
        if (fn == PERCH_ACT_SILU) r = vmulq_f32(v, r);
        vst1q_f32(y + i, r);
    }
    if (i < n) perch_sigmoid_tanh_f32_scalar(x + i, n - i, fn, y + i);
}
#endif  // __aarch64__

#endif
