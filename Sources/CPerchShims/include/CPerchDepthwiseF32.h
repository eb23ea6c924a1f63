#ifndef CPERCH_DEPTHWISE_F32_H
#define CPERCH_DEPTHWISE_F32_H
// fp32 kH×kW depthwise convolution of one channel over its zero-padded copy (stride 1 or 2,
// dilation 1): y[oh][ow] = bias + Σ w[kh][kw]·plane[oh·s + kh][ow·s + kw], the taps as fused
// multiply-adds in row-major tap order, so the scalar reference (fmaf) and the SIMD kernels agree
// bit for bit. `width` is the plane's row stride; it must cover (outW − 1)·s + kW columns, plus one
// for stride 2 (the SIMD kernels' second load). Rows of at least one vector end with a vector that
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

static inline void perch_dw_f32_scalar(const float *plane, long width, long s, long outH, long outW, long kH, long kW,
                                       const float *w, float bias, float *y) {
    for (long oh = 0; oh < outH; oh++) {
        for (long ow = 0; ow < outW; ow++) {
            float v = bias;
            for (long kh = 0; kh < kH; kh++) {
                const float *r = plane + (oh * s + kh) * width + ow * s;
                for (long kw = 0; kw < kW; kw++) v = fmaf(w[kh * kW + kw], r[kw], v);
            }
            y[oh * outW + ow] = v;
        }
    }
}

#if defined(__x86_64__)
/// One body for every kernel size; the dispatchers below call it with constant 3×3 too, so the
/// common case is unrolled.
__attribute__((target("avx2,fma"), always_inline)) static inline void perch_dw_f32_avx2_body(
    const float *plane, long width, long s, long outH, long outW, long kH, long kW, const float *w, float bias, float *y) {
    const __m256 vb = _mm256_set1_ps(bias);
    const __m256i evens = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256 k[25];  // weights broadcast once (kept in registers when the size is a constant)
    for (long t = 0; t < kH * kW && t < 25; t++) k[t] = _mm256_set1_ps(w[t]);
    for (long oh = 0; oh < outH; oh++) {
        float *yr = y + oh * outW;
        for (long ow = 0; ow < outW; ow += 8) {
            if (ow + 8 > outW) ow = outW - 8;
            __m256 v = vb;
            for (long kh = 0; kh < kH; kh++) {
                const float *p = plane + (oh * s + kh) * width + ow * s;
                if (s == 1) {
                    for (long kw = 0; kw < kW; kw++) {
                        long t = kh * kW + kw;
                        v = _mm256_fmadd_ps(t < 25 ? k[t] : _mm256_set1_ps(w[t]), _mm256_loadu_ps(p + kw), v);
                    }
                    continue;
                }
                // Stride 2: one pair of loads p[kw .. kw + 15] serves taps kw (even lanes, columns
                // 2i + kw) and kw + 1 (odd lanes).
                for (long kw = 0; kw < kW; kw += 2) {
                    __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p + kw), evens);
                    __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p + kw + 8), evens);
                    long t = kh * kW + kw;
                    v = _mm256_fmadd_ps(t < 25 ? k[t] : _mm256_set1_ps(w[t]), _mm256_permute2f128_ps(lo, hi, 0x20), v);
                    if (kw + 1 < kW) {
                        v = _mm256_fmadd_ps(t + 1 < 25 ? k[t + 1] : _mm256_set1_ps(w[t + 1]), _mm256_permute2f128_ps(lo, hi, 0x31), v);
                    }
                }
            }
            _mm256_storeu_ps(yr + ow, v);
        }
    }
}

__attribute__((target("avx2,fma"))) static inline void perch_dw_f32_avx2(const float *plane, long width, long s, long outH,
                                                                        long outW, long kH, long kW, const float *w, float bias,
                                                                        float *y) {
    if (outW < 8) { perch_dw_f32_scalar(plane, width, s, outH, outW, kH, kW, w, bias, y); return; }
    // Constant stride and 3×3 instantiations: unrolled taps, no stride test in the loop.
    if (kH == 3 && kW == 3) {
        if (s == 1) perch_dw_f32_avx2_body(plane, width, 1, outH, outW, 3, 3, w, bias, y);
        else perch_dw_f32_avx2_body(plane, width, 2, outH, outW, 3, 3, w, bias, y);
    } else if (s == 1) {
        perch_dw_f32_avx2_body(plane, width, 1, outH, outW, kH, kW, w, bias, y);
    } else {
        perch_dw_f32_avx2_body(plane, width, 2, outH, outW, kH, kW, w, bias, y);
    }
}

__attribute__((target("avx512f"), always_inline)) static inline void perch_dw_f32_avx512_body(
    const float *plane, long width, long s, long outH, long outW, long kH, long kW, const float *w, float bias, float *y) {
    const __m512 vb = _mm512_set1_ps(bias);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 k[25];  // weights broadcast once (kept in registers when the size is a constant)
    for (long t = 0; t < kH * kW && t < 25; t++) k[t] = _mm512_set1_ps(w[t]);
    for (long oh = 0; oh < outH; oh++) {
        float *yr = y + oh * outW;
        for (long ow = 0; ow < outW; ow += 16) {
            if (ow + 16 > outW) ow = outW - 16;
            __m512 v = vb;
            for (long kh = 0; kh < kH; kh++) {
                const float *p = plane + (oh * s + kh) * width + ow * s;
                if (s == 1) {
                    for (long kw = 0; kw < kW; kw++) {
                        long t = kh * kW + kw;
                        v = _mm512_fmadd_ps(t < 25 ? k[t] : _mm512_set1_ps(w[t]), _mm512_loadu_ps(p + kw), v);
                    }
                    continue;
                }
                // Stride 2: one pair of loads p[kw .. kw + 31] serves taps kw (even lanes, columns
                // 2i + kw) and kw + 1 (odd lanes).
                for (long kw = 0; kw < kW; kw += 2) {
                    __m512 a = _mm512_loadu_ps(p + kw), b = _mm512_loadu_ps(p + kw + 16);
                    long t = kh * kW + kw;
                    v = _mm512_fmadd_ps(t < 25 ? k[t] : _mm512_set1_ps(w[t]), _mm512_permutex2var_ps(a, even, b), v);
                    if (kw + 1 < kW) {
                        v = _mm512_fmadd_ps(t + 1 < 25 ? k[t + 1] : _mm512_set1_ps(w[t + 1]), _mm512_permutex2var_ps(a, odd, b), v);
                    }
                }
            }
            _mm512_storeu_ps(yr + ow, v);
        }
    }
}

__attribute__((target("avx512f"))) static inline void perch_dw_f32_avx512(const float *plane, long width, long s, long outH,
                                                                         long outW, long kH, long kW, const float *w,
                                                                         float bias, float *y) {
    if (outW < 16) { perch_dw_f32_avx2(plane, width, s, outH, outW, kH, kW, w, bias, y); return; }
    // Constant stride and 3×3 instantiations: unrolled taps, no stride test in the loop.
    if (kH == 3 && kW == 3) {
        if (s == 1) perch_dw_f32_avx512_body(plane, width, 1, outH, outW, 3, 3, w, bias, y);
        else perch_dw_f32_avx512_body(plane, width, 2, outH, outW, 3, 3, w, bias, y);
    } else if (s == 1) {
        perch_dw_f32_avx512_body(plane, width, 1, outH, outW, kH, kW, w, bias, y);
    } else {
        perch_dw_f32_avx512_body(plane, width, 2, outH, outW, kH, kW, w, bias, y);
    }
}
#endif

/// Runs `variant` (a PERCH_SGEMM_* value this CPU supports; others run the scalar reference).
static inline void perch_dw_f32(int variant, const float *plane, long width, long s, long outH, long outW, long kH, long kW,
                                const float *w, float bias, float *y) {
    switch (variant) {
#if defined(__x86_64__)
    case PERCH_SGEMM_AVX512: perch_dw_f32_avx512(plane, width, s, outH, outW, kH, kW, w, bias, y); return;
    case PERCH_SGEMM_AVX2: perch_dw_f32_avx2(plane, width, s, outH, outW, kH, kW, w, bias, y); return;
#endif
    default: perch_dw_f32_scalar(plane, width, s, outH, outW, kH, kW, w, bias, y); return;
    }
}

#endif
