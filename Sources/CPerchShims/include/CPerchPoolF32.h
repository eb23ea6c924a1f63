#ifndef CPERCH_POOL_F32_H
#define CPERCH_POOL_F32_H
// Float MaxPool rows (PerchEngine's MaxPoolF32). A stride-2 window of width 2 or 3 takes the even
// and odd lanes of 32 loaded floats with one vpermt2ps each: 16 outputs per step, where Swift's
// SIMD16 evenHalf/oddHalf compiled to 8 at a time and SqueezeNet's 3×3/2 pools ran 3× ORT's time.
#include <stdint.h>
#include <stddef.h>
#include <math.h>
#include "CPerchDepthwiseF32.h"  // perch_dw_pad_plane_f32

/// Stride-1 MaxPool of one plane (dilation 1), separably: each input row's kW-wide maxima into
/// `tmp` (inH × outW floats), then each output row the maximum of its kH rows of `tmp` — kH + kW
/// comparisons per output instead of kH·kW (YOLO's SPPF: three 5×5/1 pools on an 8×8 map ran
/// 30× ONNX Runtime's time one window at a time). Each fold starts at its window's first tap
/// inside the plane and replaces only when greater (`v > m ? v : m`, a vmaxps), so the result
/// is the row-major fold's bit for bit, NaN included: the first tap of the first row decides a
/// leading NaN in both. Windows with no tap inside give −∞ like the reference.
static inline void perch_maxpool_s1_plane_f32(const float *x, long inH, long inW, long kH, long kW, long pH, long pW, long outH,
                                              long outW, float *tmp, float *y) {
    for (long r = 0; r < inH; r++) {
        const float *row = x + r * inW;
        float *t = tmp + r * outW;
        for (long ow = 0; ow < outW; ow++) {
            long s = ow - pW, w0 = s < 0 ? -s : 0, w1 = kW < inW - s ? kW : inW - s;
            if (w0 == 0 && w1 == kW) {
                // The run of whole windows: one pass per tap across it (vectorizes).
                long end = ow;
                while (end < outW && end - pW + kW <= inW) end++;
                for (long o = ow; o < end; o++) t[o] = row[o - pW];
                for (long kw = 1; kw < kW; kw++)
                    for (long o = ow; o < end; o++) { float v = row[o - pW + kw]; t[o] = v > t[o] ? v : t[o]; }
                ow = end - 1;
                continue;
            }
            float m = w1 > w0 ? row[s + w0] : -INFINITY;
            for (long kw = w0 + 1; kw < w1; kw++) { float v = row[s + kw]; m = v > m ? v : m; }
            t[ow] = m;
        }
    }
    for (long oh = 0; oh < outH; oh++) {
        long s = oh - pH, h0 = s < 0 ? -s : 0, h1 = kH < inH - s ? kH : inH - s;
        float *yr = y + oh * outW;
        if (h1 <= h0) { for (long o = 0; o < outW; o++) yr[o] = -INFINITY; continue; }
        const float *t0 = tmp + (s + h0) * outW;
        for (long o = 0; o < outW; o++) yr[o] = t0[o];
        for (long kh = h0 + 1; kh < h1; kh++) {
            const float *t = tmp + (s + kh) * outW;
            for (long o = 0; o < outW; o++) { float v = t[o]; yr[o] = v > yr[o] ? v : yr[o]; }
        }
    }
}

/// The maximum of x[0..<n] (n ≥ 1) for GlobalMaxPool as the serial rule takes it: x[0], then
/// every later element greater than the best so far (so NaN counts only as the first element,
/// and of equal values the first stays). Sixteen running maxima (element i in lane i mod 16: a
/// compare-and-select that vectorizes on every ISA), folded in lane order, give the same value
/// except for which zero sign wins a tie of +0 and −0, so a zero maximum is taken again serially.
static inline float perch_max_first_f32(const float *x, long n) {
    float acc[16];
    for (int j = 0; j < 16; j++) acc[j] = x[0];
    long i = 1;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
    for (int j = 0; i + j < n; j++) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
    float best = x[0];
    for (int j = 0; j < 16; j++) best = acc[j] > best ? acc[j] : best;
    if (best == 0.0f) {
        best = x[0];
        for (long k = 1; k < n; k++) best = x[k] > best ? x[k] : best;
    }
    return best;
}

/// The mean of x[0..<n] for GlobalAveragePool: sixteen running sums (element i goes to sum i mod
/// 16, which vectorizes on every ISA and is the same order everywhere), added in order, over n.
static inline float perch_mean_f32(const float *x, long n) {
    float acc[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += x[i + j];
    for (int j = 0; i + j < n; j++) acc[j] += x[i + j];
    float s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    return s / (float)n;
}

/// One output row of AveragePool from its window-row sums `v` (the kH rows of the padded plane
/// added column by column): each output the sum of its kW columns in order, over its count of
/// input positions (`rows` of them vertically; 0 outputs where none).
static inline void perch_avgpool_row_f32(const float *v, long rows, long inW, long pW, long outW, long kW, long sW, float *y) {
    for (long ox = 0; ox < outW; ox++) {
        const float *t = v + ox * sW;
        float s = t[0];
        for (long kw = 1; kw < kW; kw++) s += t[kw];
        long ix0 = ox * sW - pW, ix1 = ix0 + kW;
        long cols = (ix1 < inW ? ix1 : inW) - (ix0 > 0 ? ix0 : 0);
        long count = rows > 0 && cols > 0 ? rows * cols : 0;
        y[ox] = count > 0 ? s / (float)count : 0.0f;
    }
}

/// AveragePool of one channel, 2-D, no dilation, count_include_pad = 0 (pads and ceil-mode
/// overhang do not count): the window sums come from a zero-bordered copy of the plane (`work`:
/// hp·wp + wp floats, hp = (outH − 1)·sH + kH, wp = (outW − 1)·sW + kW) as a vertical pass per
/// output row (kH rows added in order over the whole padded row) and a horizontal pass over it,
/// then a division by the window's count of input positions. GoogLeNet-v2's 3×3/1 pools went
/// through the generic per-window loops at a sixth of ONNX Runtime's speed.
static inline void perch_avgpool_f32_plane(const float *x, long inH, long inW, long pH, long pW, long outH, long outW, long kH,
                                           long kW, long sH, long sW, float *y, float *work) {
    long hp = (outH - 1) * sH + kH, wp = (outW - 1) * sW + kW;
    float *plane = work, *v = work + hp * wp;
    perch_dw_pad_plane_f32(x, inH, inW, pH, pW, wp, hp, plane);
    for (long oy = 0; oy < outH; oy++) {
        const float *r0 = plane + oy * sH * wp;
        for (long j = 0; j < wp; j++) v[j] = r0[j];
        for (long kh = 1; kh < kH; kh++)
            for (long j = 0; j < wp; j++) v[j] += r0[kh * wp + j];
        long iy0 = oy * sH - pH, iy1 = iy0 + kH;
        long rows = (iy1 < inH ? iy1 : inH) - (iy0 > 0 ? iy0 : 0);
        perch_avgpool_row_f32(v, rows, inW, pW, outW, kW, sW, y + oy * outW);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// perch_avgpool_f32_plane with AVX-512, the same sums in the same order and the same division
/// (so the same bits): the vertical pass 16 columns at a time, and for stride 1 the horizontal
/// pass 16 outputs at a time with each lane's count of input positions computed in vector
/// integers. GoogLeNet-v2's eight 3×3/1 pools took 6% of its time with the portable loops.
__attribute__((target("avx512f"))) static inline void perch_avgpool_f32_plane_avx512(const float *x, long inH, long inW, long pH,
                                                                                     long pW, long outH, long outW, long kH, long kW,
                                                                                     long sH, long sW, float *y, float *work) {
    long hp = (outH - 1) * sH + kH, wp = (outW - 1) * sW + kW;
    float *plane = work, *v = work + hp * wp;
    perch_dw_pad_plane_f32(x, inH, inW, pH, pW, wp, hp, plane);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i zero = _mm512_setzero_si512(), vinW = _mm512_set1_epi32((int)inW);
    for (long oy = 0; oy < outH; oy++) {
        const float *r0 = plane + oy * sH * wp;
        for (long j = 0; j < wp; j += 16) {
            __mmask16 m = (__mmask16)(wp - j >= 16 ? 0xffff : (1u << (wp - j)) - 1);
            __m512 acc = _mm512_maskz_loadu_ps(m, r0 + j);
            for (long kh = 1; kh < kH; kh++) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, r0 + kh * wp + j));
            _mm512_mask_storeu_ps(v + j, m, acc);
        }
        long iy0 = oy * sH - pH, iy1 = iy0 + kH;
        long rows = (iy1 < inH ? iy1 : inH) - (iy0 > 0 ? iy0 : 0);
        float *yr = y + oy * outW;
        if (sW != 1 || rows <= 0) {
            perch_avgpool_row_f32(v, rows, inW, pW, outW, kW, sW, yr);
            continue;
        }
        const __m512i vrows = _mm512_set1_epi32((int)rows);
        for (long ox = 0; ox < outW; ox += 16) {
            __mmask16 m = (__mmask16)(outW - ox >= 16 ? 0xffff : (1u << (outW - ox)) - 1);
            __m512 s = _mm512_maskz_loadu_ps(m, v + ox);
            for (long kw = 1; kw < kW; kw++) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(m, v + ox + kw));
            __m512i ix0 = _mm512_add_epi32(lane, _mm512_set1_epi32((int)(ox - pW)));
            __m512i ix1 = _mm512_add_epi32(ix0, _mm512_set1_epi32((int)kW));
            __m512i cols = _mm512_sub_epi32(_mm512_min_epi32(ix1, vinW), _mm512_max_epi32(ix0, zero));
            __mmask16 some = _mm512_cmpgt_epi32_mask(cols, zero);
            __m512 count = _mm512_cvtepi32_ps(_mm512_mullo_epi32(cols, vrows));
            _mm512_mask_storeu_ps(yr + ox, m, _mm512_maskz_div_ps(some, s, count));
        }
    }
}

/// out[o] for o < n: the window max over rows[0..<nrows] at columns 2o .. 2o + kW − 1 (kW 2 or 3),
/// combined as maxPool2DF32's vector path (per row: even, then odd, then the next even, each
/// replacing when greater; rows likewise), so NaNs and signed zeros come out the same. Reads only
/// rows[r][0 ..< 2n + kW − 1].
__attribute__((target("avx512f"))) static inline void perch_maxpool_s2_row_f32_avx512(const float *const *rows, size_t nrows,
                                                                                      size_t kW, size_t n, float *out) {
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    size_t inputs = 2 * n + kW - 1;
    for (size_t o = 0; o < n; o += 16) {
        size_t b = 2 * o, left = inputs - b;
#define PERCH_MASK(off) (left > (off) ? (left - (off) >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (left - (off))) - 1)) : (__mmask16)0)
        __mmask16 k0 = PERCH_MASK(0), k1 = PERCH_MASK(16), k2 = PERCH_MASK(2), k3 = PERCH_MASK(18);
#undef PERCH_MASK
        __m512 acc = _mm512_setzero_ps();
        for (size_t r = 0; r < nrows; r++) {
            const float *x = rows[r] + b;
            __m512 l0 = _mm512_maskz_loadu_ps(k0, x), l1 = _mm512_maskz_loadu_ps(k1, x + 16);
            __m512 m = _mm512_permutex2var_ps(l0, evens, l1);
            m = _mm512_max_ps(_mm512_permutex2var_ps(l0, odds, l1), m);  // odd > m ? odd : m
            if (kW == 3) {
                __m512 l2 = _mm512_maskz_loadu_ps(k2, x + 2), l3 = _mm512_maskz_loadu_ps(k3, x + 18);
                m = _mm512_max_ps(_mm512_permutex2var_ps(l2, evens, l3), m);
            }
            acc = r == 0 ? m : _mm512_max_ps(m, acc);
        }
        size_t count = n - o;
        _mm512_mask_storeu_ps(out + o, count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1), acc);
    }
}
#endif

#endif
