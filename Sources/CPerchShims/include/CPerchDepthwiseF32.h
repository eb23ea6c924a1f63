#ifndef CPERCH_DEPTHWISE_F32_H
#define CPERCH_DEPTHWISE_F32_H
// fp32 3×3 depthwise convolution of one channel over its zero-padded copy (stride 1 or 2,
// dilation 1): y[oh][ow] = bias + Σ_t w[t]·plane[oh·s + t/3][ow·s + t%3], the nine taps as fused
// multiply-adds in tap order, so the scalar reference (fmaf) and the SIMD kernels agree bit for
// bit. `width` is the plane's row stride; it must cover (outW − 1)·s + 3 columns, plus one for
// stride 2 (the SIMD kernels' second load). Rows of at least one vector end with a vector that
// overlaps the previous one instead of a scalar tail. Variants are CPerchSGEMM.h's.
#include <math.h>
#include <string.h>
#include "CPerchSGEMM.h"

/// The padded plane: `height` rows of `width` floats; row y, column j holds x[y − pH][j − pW], or 0
/// outside the input (inH×inW). Only the borders are zeroed; interior rows are one memcpy each.
static inline void perch_dw_pad_plane_f32(const float *x, long inH, long inW, long pH, long pW, long width, long height,
                                          float *plane) {
    long left = pW < width ? pW : width;
    long copy = inW < width - left ? inW : width - left;
    if (copy < 0) copy = 0;
    for (long y = 0; y < height; y++) {
        float *d = plane + y * width;
        long iy = y - pH;
        if (iy < 0 || iy >= inH || copy == 0) { memset(d, 0, (size_t)width * sizeof(float)); continue; }
        for (long j = 0; j < left; j++) d[j] = 0.0f;
        memcpy(d + left, x + iy * inW, (size_t)copy * sizeof(float));
        for (long j = left + copy; j < width; j++) d[j] = 0.0f;
    }
}

static inline void perch_dw3x3_f32_scalar(const float *plane, long width, long s, long outH, long outW, const float *w,
                                          float bias, float *y) {
    for (long oh = 0; oh < outH; oh++) {
        const float *a0 = plane + oh * s * width, *a1 = a0 + width, *a2 = a1 + width;
        for (long ow = 0; ow < outW; ow++) {
            long i = ow * s;
            float v = bias;
            v = fmaf(w[0], a0[i], v); v = fmaf(w[1], a0[i + 1], v); v = fmaf(w[2], a0[i + 2], v);
            v = fmaf(w[3], a1[i], v); v = fmaf(w[4], a1[i + 1], v); v = fmaf(w[5], a1[i + 2], v);
            v = fmaf(w[6], a2[i], v); v = fmaf(w[7], a2[i + 1], v); v = fmaf(w[8], a2[i + 2], v);
            y[oh * outW + ow] = v;
        }
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static inline void perch_dw3x3_f32_avx2(const float *plane, long width, long s, long outH,
                                                                           long outW, const float *w, float bias, float *y) {
    if (outW < 8) { perch_dw3x3_f32_scalar(plane, width, s, outH, outW, w, bias, y); return; }
    __m256 k[9];
    for (int t = 0; t < 9; t++) k[t] = _mm256_set1_ps(w[t]);
    const __m256 vb = _mm256_set1_ps(bias);
    const __m256i evens = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    for (long oh = 0; oh < outH; oh++) {
        const float *r[3] = {plane + oh * s * width, plane + (oh * s + 1) * width, plane + (oh * s + 2) * width};
        float *yr = y + oh * outW;
        for (long ow = 0; ow < outW; ow += 8) {
            if (ow + 8 > outW) ow = outW - 8;
            __m256 v = vb;
            for (int kh = 0; kh < 3; kh++) {
                const float *p = r[kh] + ow * s;
                __m256 x0, x1, x2;
                if (s == 1) {
                    x0 = _mm256_loadu_ps(p); x1 = _mm256_loadu_ps(p + 1); x2 = _mm256_loadu_ps(p + 2);
                } else {
                    // Columns 2i, 2i+1 from p[0..15]; 2i+2 from p[2..17].
                    __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p), evens);
                    __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p + 8), evens);
                    __m256 lo2 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p + 2), evens);
                    __m256 hi2 = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p + 10), evens);
                    x0 = _mm256_permute2f128_ps(lo, hi, 0x20);
                    x1 = _mm256_permute2f128_ps(lo, hi, 0x31);
                    x2 = _mm256_permute2f128_ps(lo2, hi2, 0x20);
                }
                v = _mm256_fmadd_ps(k[3 * kh], x0, v);
                v = _mm256_fmadd_ps(k[3 * kh + 1], x1, v);
                v = _mm256_fmadd_ps(k[3 * kh + 2], x2, v);
            }
            _mm256_storeu_ps(yr + ow, v);
        }
    }
}

__attribute__((target("avx512f"))) static inline void perch_dw3x3_f32_avx512(const float *plane, long width, long s, long outH,
                                                                            long outW, const float *w, float bias, float *y) {
    if (outW < 16) { perch_dw3x3_f32_avx2(plane, width, s, outH, outW, w, bias, y); return; }
    __m512 k[9];
    for (int t = 0; t < 9; t++) k[t] = _mm512_set1_ps(w[t]);
    const __m512 vb = _mm512_set1_ps(bias);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (long oh = 0; oh < outH; oh++) {
        const float *r[3] = {plane + oh * s * width, plane + (oh * s + 1) * width, plane + (oh * s + 2) * width};
        float *yr = y + oh * outW;
        for (long ow = 0; ow < outW; ow += 16) {
            if (ow + 16 > outW) ow = outW - 16;
            __m512 v = vb;
            for (int kh = 0; kh < 3; kh++) {
                const float *p = r[kh] + ow * s;
                __m512 x0, x1, x2;
                if (s == 1) {
                    x0 = _mm512_loadu_ps(p); x1 = _mm512_loadu_ps(p + 1); x2 = _mm512_loadu_ps(p + 2);
                } else {
                    // Columns 2i, 2i+1 from p[0..31]; 2i+2 from p[2..33].
                    __m512 a = _mm512_loadu_ps(p), b = _mm512_loadu_ps(p + 16);
                    __m512 c = _mm512_loadu_ps(p + 2), d = _mm512_loadu_ps(p + 18);
                    x0 = _mm512_permutex2var_ps(a, even, b);
                    x1 = _mm512_permutex2var_ps(a, odd, b);
                    x2 = _mm512_permutex2var_ps(c, even, d);
                }
                v = _mm512_fmadd_ps(k[3 * kh], x0, v);
                v = _mm512_fmadd_ps(k[3 * kh + 1], x1, v);
                v = _mm512_fmadd_ps(k[3 * kh + 2], x2, v);
            }
            _mm512_storeu_ps(yr + ow, v);
        }
    }
}
#endif

/// Runs `variant` (a PERCH_SGEMM_* value this CPU supports; others run the scalar reference).
static inline void perch_dw3x3_f32(int variant, const float *plane, long width, long s, long outH, long outW, const float *w,
                                   float bias, float *y) {
    switch (variant) {
#if defined(__x86_64__)
    case PERCH_SGEMM_AVX512: perch_dw3x3_f32_avx512(plane, width, s, outH, outW, w, bias, y); return;
    case PERCH_SGEMM_AVX2: perch_dw3x3_f32_avx2(plane, width, s, outH, outW, w, bias, y); return;
#endif
    default: perch_dw3x3_f32_scalar(plane, width, s, outH, outW, w, bias, y); return;
    }
}

#endif
