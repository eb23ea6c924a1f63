#ifndef CPERCH_DEPTHWISE_TILES_F32_H
#define CPERCH_DEPTHWISE_TILES_F32_H
// fp32 depthwise convolution 16 channels at a time (AVX-512, or AVX2 + FMA as two vectors of 8): a band of the input is transposed
// into a zero-padded tile [rows][Wp][16] (one vector per pixel, a channel per lane), each output
// pixel is bias + Σ_t w_t·tile[pixel + off_t] with one vector FMA per tap, and the [pixels][16]
// result is transposed back into the 16 NCHW planes. Working a channel at a time, a 10×10 map
// spent more time on row ends, padding and loop set-up than on its 900 multiply-adds; here every
// instruction does 16 channels' work whatever the map size. The taps run in row-major order as
// fused multiply-adds from the bias, as perch_dw_f32_scalar (CPerchDepthwiseF32.h) does, so a
// channel's outputs are bit for bit that reference's on the same padded plane.
//
// - perch_dwf32_pack16: input rows of up to 16 channels → tile rows (zeros for padding and for
//   lanes past the channel count).
// - perch_dwf32_tile16: tile → [oH·oW][16] outputs, optionally clamped (a fused Relu/Clip).
// - perch_dwf32_unpack16: [P][16] → the first `chans` of 16 planes.
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>

#define PERCH_AVX512F_ONLY __attribute__((target("avx512f")))
#include "CPerchQConv.h"  // PERCH_UNROLL: the transposes' fixed loops must unroll for v[] to stay in registers

/// In-register transpose of 16 vectors of 16 floats: afterwards v[i][j] is the old v[j][i].
PERCH_AVX512F_ONLY static inline __attribute__((always_inline)) void perch_transpose16x16_f32(__m512 v[16]) {
    __m512 t[16], r[16];
    PERCH_UNROLL
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
    }
    PERCH_UNROLL
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    PERCH_UNROLL
    for (int h = 0; h < 16; h += 8) {
        PERCH_UNROLL
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + 4 + i], 0x88);
            t[h + 4 + i] = _mm512_shuffle_f32x4(r[h + i], r[h + 4 + i], 0xDD);
        }
    }
    PERCH_UNROLL
    for (int i = 0; i < 8; i++) {
        v[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        v[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
    }
}

/// Tile rows 0..<rows hold padded rows ty0… of channels 0..<chans (planes `plane` floats apart,
/// inH × inW): padded (ty, tx) = x[ty − pH][tx − pW], zero outside the input; Wp columns.
PERCH_AVX512F_ONLY static inline void perch_dwf32_pack16(const float *x, long plane, int chans, long inH, long inW, long pH, long pW,
                                                        long ty0, long rows, long Wp, float *tile) {
    const __m512 zero = _mm512_setzero_ps();
    long x0 = pW, x1 = pW + inW < Wp ? pW + inW : Wp;  // tile columns the input covers
    for (long r = 0; r < rows; r++) {
        float *trow = tile + r * Wp * 16;
        long iy = ty0 + r - pH;
        if (iy < 0 || iy >= inH || x1 <= x0) {
            for (long j = 0; j < Wp; j++) _mm512_storeu_ps(trow + j * 16, zero);
            continue;
        }
        for (long j = 0; j < x0 && j < Wp; j++) _mm512_storeu_ps(trow + j * 16, zero);
        for (long j = x1; j < Wp; j++) _mm512_storeu_ps(trow + j * 16, zero);
        for (long ix = 0; ix < x1 - x0; ix += 16) {
            long n = x1 - x0 - ix < 16 ? x1 - x0 - ix : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1);
            __m512 v[16];
            PERCH_UNROLL
            for (int c = 0; c < 16; c++) v[c] = c < chans ? _mm512_maskz_loadu_ps(m, x + c * plane + iy * inW + ix) : zero;
            perch_transpose16x16_f32(v);
            PERCH_UNROLL
            for (long j = 0; j < 16; j++)
                if (j < n) _mm512_storeu_ps(trow + (x0 + ix + j) * 16, v[j]);
        }
    }
}

/// out[oy·oW + ox] = bias + Σ_t w[t]·tile[(oy·sH)·Wp + ox·sW + off[t]] (pixel units; taps in
/// row-major order, FMAs), then clamped to [lo, hi] with Clip's expression when `clamp`. Four
/// output pixels at a time share each tap's weight vector.
PERCH_AVX512F_ONLY static inline void perch_dwf32_tile16(const float *tile, long Wp, long oH, long oW, long sH, long sW,
                                                        const long *off, long taps, const float *w, const float *bias,
                                                        int clamp, float lo, float hi, float *out) {
    const __m512 vb = _mm512_loadu_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (long oy = 0; oy < oH; oy++) {
        const float *row = tile + oy * sH * Wp * 16;
        float *o = out + oy * oW * 16;
        long ox = 0;
        for (; ox + 4 <= oW; ox += 4) {
            const float *b0 = row + ox * sW * 16, *b1 = b0 + sW * 16, *b2 = b1 + sW * 16, *b3 = b2 + sW * 16;
            __m512 a0 = vb, a1 = vb, a2 = vb, a3 = vb;
            for (long t = 0; t < taps; t++) {
                __m512 wt = _mm512_loadu_ps(w + 16 * t);
                long d = off[t] * 16;
                a0 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(b0 + d), a0);
                a1 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(b1 + d), a1);
                a2 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(b2 + d), a2);
                a3 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(b3 + d), a3);
            }
            if (clamp) {
                a0 = _mm512_min_ps(vhi, _mm512_max_ps(vlo, a0));
                a1 = _mm512_min_ps(vhi, _mm512_max_ps(vlo, a1));
                a2 = _mm512_min_ps(vhi, _mm512_max_ps(vlo, a2));
                a3 = _mm512_min_ps(vhi, _mm512_max_ps(vlo, a3));
            }
            _mm512_storeu_ps(o + ox * 16, a0);
            _mm512_storeu_ps(o + ox * 16 + 16, a1);
            _mm512_storeu_ps(o + ox * 16 + 32, a2);
            _mm512_storeu_ps(o + ox * 16 + 48, a3);
        }
        for (; ox < oW; ox++) {
            const float *b0 = row + ox * sW * 16;
            __m512 a0 = vb;
            for (long t = 0; t < taps; t++) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 16 * t), _mm512_loadu_ps(b0 + off[t] * 16), a0);
            if (clamp) a0 = _mm512_min_ps(vhi, _mm512_max_ps(vlo, a0));
            _mm512_storeu_ps(o + ox * 16, a0);
        }
    }
}

/// Planes c < chans (`plane` floats apart) get y[c][p] = out[p][c] for p < P.
PERCH_AVX512F_ONLY static inline void perch_dwf32_unpack16(const float *out, long P, int chans, float *y, long plane) {
    for (long p = 0; p < P; p += 16) {
        long n = P - p < 16 ? P - p : 16;
        __mmask16 m = (__mmask16)((1u << n) - 1);
        __m512 v[16];
        PERCH_UNROLL
        for (long j = 0; j < 16; j++) v[j] = j < n ? _mm512_loadu_ps(out + (p + j) * 16) : _mm512_setzero_ps();
        perch_transpose16x16_f32(v);
        PERCH_UNROLL
        for (int c = 0; c < 16; c++)
            if (c < chans) _mm512_mask_storeu_ps(y + c * plane + p, m, v[c]);
    }
}

/// AVX2 + FMA forms of the three functions above on the same [rows][Wp][16] tiles: a pixel's 16
/// channels are two vectors of 8, the transposes 8×8. The taps run in the same order as the same
/// FMAs, so the results are those of the AVX-512 kernels and of perch_dw_f32_scalar bit for bit.
#define PERCH_AVX2_FMA_ONLY __attribute__((target("avx2,fma")))

/// In-register transpose of 8 vectors of 8 floats: afterwards v[i][j] is the old v[j][i].
PERCH_AVX2_FMA_ONLY static inline __attribute__((always_inline)) void perch_transpose8x8_f32(__m256 v[8]) {
    __m256 t[8], s[8];
    PERCH_UNROLL
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
    }
    PERCH_UNROLL
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    PERCH_UNROLL
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
        v[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
}

/// Lanes below n set (n ≤ 8): the mask of a partial load or store.
PERCH_AVX2_FMA_ONLY static inline __attribute__((always_inline)) __m256i perch_lanes_below_avx2(long n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// perch_dwf32_pack16 on AVX2.
PERCH_AVX2_FMA_ONLY static inline void perch_dwf32_pack16_avx2(const float *x, long plane, int chans, long inH, long inW, long pH,
                                                              long pW, long ty0, long rows, long Wp, float *tile) {
    const __m256 zero = _mm256_setzero_ps();
    long x0 = pW, x1 = pW + inW < Wp ? pW + inW : Wp;  // tile columns the input covers
    for (long r = 0; r < rows; r++) {
        float *trow = tile + r * Wp * 16;
        long iy = ty0 + r - pH;
        if (iy < 0 || iy >= inH || x1 <= x0) {
            for (long j = 0; j < 2 * Wp; j++) _mm256_storeu_ps(trow + j * 8, zero);
            continue;
        }
        for (long j = 0; j < x0 && j < Wp; j++) { _mm256_storeu_ps(trow + j * 16, zero); _mm256_storeu_ps(trow + j * 16 + 8, zero); }
        for (long j = x1; j < Wp; j++) { _mm256_storeu_ps(trow + j * 16, zero); _mm256_storeu_ps(trow + j * 16 + 8, zero); }
        for (long ix = 0; ix < x1 - x0; ix += 8) {
            long n = x1 - x0 - ix < 8 ? x1 - x0 - ix : 8;
            __m256i m = perch_lanes_below_avx2(n);
            PERCH_UNROLL
            for (int h = 0; h < 2; h++) {
                __m256 v[8];
                PERCH_UNROLL
                for (int c = 0; c < 8; c++)
                    v[c] = 8 * h + c >= chans ? zero
                         : n == 8 ? _mm256_loadu_ps(x + (8 * h + c) * plane + iy * inW + ix)
                                  : _mm256_maskload_ps(x + (8 * h + c) * plane + iy * inW + ix, m);
                perch_transpose8x8_f32(v);
                PERCH_UNROLL
                for (long j = 0; j < 8; j++)
                    if (j < n) _mm256_storeu_ps(trow + (x0 + ix + j) * 16 + 8 * h, v[j]);
            }
        }
    }
}

/// perch_dwf32_tile16 on AVX2 (four output pixels at a time, each two vectors).
PERCH_AVX2_FMA_ONLY static inline void perch_dwf32_tile16_avx2(const float *tile, long Wp, long oH, long oW, long sH, long sW,
                                                              const long *off, long taps, const float *w, const float *bias,
                                                              int clamp, float lo, float hi, float *out) {
    const __m256 bl = _mm256_loadu_ps(bias), bh = _mm256_loadu_ps(bias + 8), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
#define PERCH_DWF32_CLAMP(a) (clamp ? _mm256_min_ps(vhi, _mm256_max_ps(vlo, (a))) : (a))
    for (long oy = 0; oy < oH; oy++) {
        const float *row = tile + oy * sH * Wp * 16;
        float *o = out + oy * oW * 16;
        long ox = 0;
        for (; ox + 4 <= oW; ox += 4) {
            const float *b0 = row + ox * sW * 16, *b1 = b0 + sW * 16, *b2 = b1 + sW * 16, *b3 = b2 + sW * 16;
            __m256 a0 = bl, c0 = bh, a1 = bl, c1 = bh, a2 = bl, c2 = bh, a3 = bl, c3 = bh;
            for (long t = 0; t < taps; t++) {
                __m256 wl = _mm256_loadu_ps(w + 16 * t), wh = _mm256_loadu_ps(w + 16 * t + 8);
                long d = off[t] * 16;
                a0 = _mm256_fmadd_ps(wl, _mm256_loadu_ps(b0 + d), a0);
                c0 = _mm256_fmadd_ps(wh, _mm256_loadu_ps(b0 + d + 8), c0);
                a1 = _mm256_fmadd_ps(wl, _mm256_loadu_ps(b1 + d), a1);
                c1 = _mm256_fmadd_ps(wh, _mm256_loadu_ps(b1 + d + 8), c1);
                a2 = _mm256_fmadd_ps(wl, _mm256_loadu_ps(b2 + d), a2);
                c2 = _mm256_fmadd_ps(wh, _mm256_loadu_ps(b2 + d + 8), c2);
                a3 = _mm256_fmadd_ps(wl, _mm256_loadu_ps(b3 + d), a3);
                c3 = _mm256_fmadd_ps(wh, _mm256_loadu_ps(b3 + d + 8), c3);
            }
            _mm256_storeu_ps(o + ox * 16, PERCH_DWF32_CLAMP(a0));
            _mm256_storeu_ps(o + ox * 16 + 8, PERCH_DWF32_CLAMP(c0));
            _mm256_storeu_ps(o + ox * 16 + 16, PERCH_DWF32_CLAMP(a1));
            _mm256_storeu_ps(o + ox * 16 + 24, PERCH_DWF32_CLAMP(c1));
            _mm256_storeu_ps(o + ox * 16 + 32, PERCH_DWF32_CLAMP(a2));
            _mm256_storeu_ps(o + ox * 16 + 40, PERCH_DWF32_CLAMP(c2));
            _mm256_storeu_ps(o + ox * 16 + 48, PERCH_DWF32_CLAMP(a3));
            _mm256_storeu_ps(o + ox * 16 + 56, PERCH_DWF32_CLAMP(c3));
        }
        for (; ox < oW; ox++) {
            const float *b0 = row + ox * sW * 16;
            __m256 a0 = bl, c0 = bh;
            for (long t = 0; t < taps; t++) {
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 16 * t), _mm256_loadu_ps(b0 + off[t] * 16), a0);
                c0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 16 * t + 8), _mm256_loadu_ps(b0 + off[t] * 16 + 8), c0);
            }
            _mm256_storeu_ps(o + ox * 16, PERCH_DWF32_CLAMP(a0));
            _mm256_storeu_ps(o + ox * 16 + 8, PERCH_DWF32_CLAMP(c0));
        }
    }
#undef PERCH_DWF32_CLAMP
}

/// perch_dwf32_unpack16 on AVX2.
PERCH_AVX2_FMA_ONLY static inline void perch_dwf32_unpack16_avx2(const float *out, long P, int chans, float *y, long plane) {
    const __m256 zero = _mm256_setzero_ps();
    for (long p = 0; p < P; p += 8) {
        long n = P - p < 8 ? P - p : 8;
        __m256i m = perch_lanes_below_avx2(n);
        PERCH_UNROLL
        for (int h = 0; h < 2; h++) {
            if (8 * h >= chans) break;
            __m256 v[8];
            PERCH_UNROLL
            for (long j = 0; j < 8; j++) v[j] = j < n ? _mm256_loadu_ps(out + (p + j) * 16 + 8 * h) : zero;
            perch_transpose8x8_f32(v);
            // Masked stores only for the last group: on Zen 3 a vmaskmovps store costs about ten
            // plain ones, and with one per vector this unpack took 12% of MobileNetV2's fp32 run.
            if (n == 8) {
                PERCH_UNROLL
                for (int c = 0; c < 8; c++)
                    if (8 * h + c < chans) _mm256_storeu_ps(y + (8 * h + c) * plane + p, v[c]);
            } else {
                PERCH_UNROLL
                for (int c = 0; c < 8; c++)
                    if (8 * h + c < chans) _mm256_maskstore_ps(y + (8 * h + c) * plane + p, m, v[c]);
            }
        }
    }
}
#endif

#endif
