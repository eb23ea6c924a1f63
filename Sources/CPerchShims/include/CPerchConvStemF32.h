#ifndef CPERCH_CONV_STEM_F32_H
#define CPERCH_CONV_STEM_F32_H
// fp32 convolution for a network's stem: few input taps (3 channels × 3 × 3 = 27), many output
// pixels; also taken by narrow stride-1 convs (≤ 64 outputs, ≤ 1024 taps: YOLO's and VGG's early
// 3×3 layers, a text detector's 96→24 heads), where it beat both the GEMM and the
// channels-in-lanes direct kernel. The im2col +
// GEMM path packs a 27-row panel per 16 pixels and runs three or six 27-step micro-kernels on it,
// so packing and tile set-up cost as much as the multiply-adds (YOLO's 3→16 3×3/2 stem on
// 256×256: 0.43 ms, ONNX Runtime 0.24); the direct kernel with channels in the lanes needs a
// transposed store per pixel. Here pixels fill the vector lanes and
// each weight is broadcast: a tile of 6 output channels × 16 neighbouring pixels of one output
// row (12 ymm accumulators) loads two input vectors and broadcasts six weights per tap, and its
// rows are stored straight into the NCHW output. (4 × 24 pixels, also 12 accumulators, left
// clang too few registers for the loads and spilled accumulators inside the tap loop.)
//
// The input is first copied into stride-phase planes (perch_conv_stem_phases_f32): for stride
// s, plane (c, ph, pw) holds the zero-padded input's rows s·r + ph and columns s·q + pw, so tap
// (c, kh, kw) reads plane (c, kh mod s, kw mod s) from row oy + kh / s and column ox + kw / s —
// contiguous pixels for strides 1 and 2 alike.
//
// Each output is the bias, then one fused multiply-add per tap in (c, kh, kw) order: the order
// of the direct kernel (CPerchConvDirectF32.h) and of the GEMM path's micro-kernels for sums of
// at most one K block (256 taps; a stem gives the same bits on either path), and of
// perch_conv_stem_rows_reference, which Tests/CKernels/qkernels_test.c holds the AVX2 kernel to
// bit for bit.
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "CPerchQConv.h"  // PERCH_UNROLL
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/// A stem conv's input as stride-phase planes and its output geometry. Planes are `R` rows of
/// `Q` floats, plane (c, ph, pw) at ((c·s + ph)·s + pw)·R·Q; Q covers every tap of every vector
/// of 8 pixels (perch_conv_stem_q), so whole-vector loads stay inside their row.
typedef struct {
    const float *x;
    long R, Q, cin, kH, kW, s, outH, outW;
} perch_conv_stem;

/// Phase-plane rows: outH + (kH − 1) / s.
static inline long perch_conv_stem_r(long outH, long kH, long s) { return outH + (kH - 1) / s; }

/// Phase-plane row length: outW rounded up to 8, plus (kW − 1) / s.
static inline long perch_conv_stem_q(long outW, long kW, long s) { return (outW + 7) / 8 * 8 + (kW - 1) / s; }

/// dst[i] = src[2i] for i < n, reading src[0 ... 2n − 2] only (a stride-2 phase row; the
/// scalar loop was as costly as YOLO's whole stem kernel).
static inline void perch_conv_stem_even_f32(const float *src, long n, float *dst) {
    long i = 0;
#if defined(__x86_64__)
    // SSE2 (the x86-64 baseline): four outputs from two loads, src[2i ... 2i + 7].
    for (; i + 5 <= n; i += 4)
        _mm_storeu_ps(dst + i, _mm_shuffle_ps(_mm_loadu_ps(src + 2 * i), _mm_loadu_ps(src + 2 * i + 4), _MM_SHUFFLE(2, 0, 2, 0)));
#endif
    for (; i < n; i++) dst[i] = src[2 * i];
}

/// Fills rows [r0, r1) of every phase plane of `dst` (perch_conv_stem's layout, `cin` channels)
/// from the NCHW input planes `x` (inH × inW), pads pH (top) and pW (left), zeros outside the
/// input. Disjoint row ranges can be filled by different threads.
static inline void perch_conv_stem_phases_f32(const float *x, long cin, long inH, long inW, long pH, long pW, long s, long R, long Q,
                                              long r0, long r1, float *dst) {
    for (long c = 0; c < cin; c++)
        for (long ph = 0; ph < s; ph++)
            for (long pw = 0; pw < s; pw++) {
                float *plane = dst + ((c * s + ph) * s + pw) * R * Q;
                const float *src = x + c * inH * inW;
                for (long r = r0; r < r1; r++) {
                    float *row = plane + r * Q;
                    long iy = s * r + ph - pH;
                    if (iy < 0 || iy >= inH) {
                        memset(row, 0, sizeof(float) * (size_t)Q);
                        continue;
                    }
                    const float *in = src + iy * inW;
                    // Columns q with 0 ≤ s·q + pw − pW < inW.
                    long qa = pW - pw > 0 ? (pW - pw + s - 1) / s : 0;
                    long qb = inW + pW - pw > 0 ? (inW + pW - pw + s - 1) / s : 0;
                    if (qa > Q) qa = Q;
                    if (qb > Q) qb = Q;
                    if (qb < qa) qb = qa;
                    for (long q = 0; q < qa; q++) row[q] = 0.0f;
                    if (s == 1) {
                        if (qb > qa) memcpy(row + qa, in + qa + pw - pW, sizeof(float) * (size_t)(qb - qa));
                    } else if (s == 2) {
                        if (qb > qa) perch_conv_stem_even_f32(in + 2 * qa + pw - pW, qb - qa, row + qa);
                    } else {
                        for (long q = qa; q < qb; q++) row[q] = in[s * q + pw - pW];
                    }
                    for (long q = qb; q < Q; q++) row[q] = 0.0f;
                }
            }
}

/// The reference: output rows [oy0, oy1) of channels [oc0, oc0 + n) into y (NCHW planes of
/// outH·outW), weights w[oc][c][kh][kw], bias (NULL: 0), clamp to [lo, hi] when `clamp`.
static inline void perch_conv_stem_rows_reference(const perch_conv_stem *g, const float *w, const float *bias, long oc0, long n,
                                                  long oy0, long oy1, int clamp, float lo, float hi, float *y) {
    const long taps = g->cin * g->kH * g->kW, plane = g->R * g->Q, outSize = g->outH * g->outW;
    for (long oc = oc0; oc < oc0 + n; oc++)
        for (long oy = oy0; oy < oy1; oy++)
            for (long ox = 0; ox < g->outW; ox++) {
                float acc = bias ? bias[oc] : 0.0f;
                long t = 0;
                for (long c = 0; c < g->cin; c++)
                    for (long kh = 0; kh < g->kH; kh++)
                        for (long kw = 0; kw < g->kW; kw++, t++) {
                            const float *p = g->x + ((c * g->s + kh % g->s) * g->s + kw % g->s) * plane;
                            acc = fmaf(w[oc * taps + t], p[(oy + kh / g->s) * g->Q + ox + kw / g->s], acc);
                        }
                if (clamp) acc = acc < lo ? lo : (acc > hi ? hi : acc);
                y[oc * outSize + oy * g->outW + ox] = acc;
            }
}

#if defined(__x86_64__)
#define PERCH_STEM_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

/// R ≤ 6 channels × V ≤ 2 vectors of 8 pixels at `base` (the phase planes at output row oy,
/// column ox), tap t reading base + off[t]; the last vector stores only `last` lanes (1…8).
/// 12 accumulators, two input vectors and the broadcast weight: the 16 ymm registers.
PERCH_STEM_INLINE void perch_conv_stem_tile_avx2(int R, int V, const float *base, const long *off, long taps, const float *w,
                                                 const float *bias, int last, int clamp, float lo, float hi, float *out, long outSize) {
    __m256 acc[6][2];
    PERCH_UNROLL
    for (int r = 0; r < R; r++) {
        __m256 b = _mm256_set1_ps(bias ? bias[r] : 0.0f);
        PERCH_UNROLL
        for (int v = 0; v < V; v++) acc[r][v] = b;
    }
    for (long t = 0; t < taps; t++) {
        const float *p = base + off[t];
        __m256 xv[2];
        PERCH_UNROLL
        for (int v = 0; v < V; v++) xv[v] = _mm256_loadu_ps(p + 8 * v);
        PERCH_UNROLL
        for (int r = 0; r < R; r++) {
            __m256 wv = _mm256_broadcast_ss(w + r * taps + t);
            PERCH_UNROLL
            for (int v = 0; v < V; v++) acc[r][v] = _mm256_fmadd_ps(wv, xv[v], acc[r][v]);
        }
    }
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(last), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    PERCH_UNROLL
    for (int r = 0; r < R; r++) {
        PERCH_UNROLL
        for (int v = 0; v < V; v++) {
            __m256 a = acc[r][v];
            // Clip's expression: lo where below, hi where above (NaN passes through).
            if (clamp) a = _mm256_blendv_ps(_mm256_blendv_ps(a, vlo, _mm256_cmp_ps(a, vlo, _CMP_LT_OQ)), vhi, _mm256_cmp_ps(a, vhi, _CMP_GT_OQ));
            if (v == V - 1 && last < 8) _mm256_maskstore_ps(out + r * outSize + 8 * v, mask, a);
            else _mm256_storeu_ps(out + r * outSize + 8 * v, a);
        }
    }
}

/// R channels of one output row's 16-pixel blocks [ox0, ox1) (ox1 = outW or a block boundary).
PERCH_STEM_INLINE void perch_conv_stem_row_avx2(int R, const perch_conv_stem *g, const float *row, long ox0, long ox1, const long *off,
                                                long taps, const float *w, const float *bias, int clamp, float lo, float hi, float *out,
                                                long outSize) {
    long ox = ox0;
    for (; ox + 16 <= ox1; ox += 16) perch_conv_stem_tile_avx2(R, 2, row + ox, off, taps, w, bias, 8, clamp, lo, hi, out + ox, outSize);
    long left = ox1 - ox;
    if (left > 8) perch_conv_stem_tile_avx2(R, 2, row + ox, off, taps, w, bias, (int)(left - 8), clamp, lo, hi, out + ox, outSize);
    else if (left > 0) perch_conv_stem_tile_avx2(R, 1, row + ox, off, taps, w, bias, (int)left, clamp, lo, hi, out + ox, outSize);
}

/// Channels 0 ..< n (from `w`, `bias`, `out`) of one output row's pixel blocks [ox0, ox1), in
/// ⌈n / maxR⌉ tiles as even as they go (16 channels: 6 + 5 + 5; a 2-channel tile after five of
/// 6 ran 32→32 layers 12% slower than tiles of 4).
PERCH_STEM_INLINE void perch_conv_stem_channels_avx2(const perch_conv_stem *g, const float *row, long ox0, long ox1, const long *off,
                                                     long taps, const float *w, const float *bias, long n, long maxR, int clamp, float lo,
                                                     float hi, float *out, long outSize) {
    long tiles = (n + maxR - 1) / maxR, big = n - (n / tiles) * tiles;  // `big` tiles of n / tiles + 1
    for (long i = 0, oc = 0; i < tiles; i++) {
        long m = n / tiles + (i < big ? 1 : 0);
        const float *wr = w + oc * taps, *br = bias ? bias + oc : 0;
        float *o = out + oc * outSize;
        switch (m) {
        case 6: perch_conv_stem_row_avx2(6, g, row, ox0, ox1, off, taps, wr, br, clamp, lo, hi, o, outSize); break;
        case 5: perch_conv_stem_row_avx2(5, g, row, ox0, ox1, off, taps, wr, br, clamp, lo, hi, o, outSize); break;
        case 4: perch_conv_stem_row_avx2(4, g, row, ox0, ox1, off, taps, wr, br, clamp, lo, hi, o, outSize); break;
        case 3: perch_conv_stem_row_avx2(3, g, row, ox0, ox1, off, taps, wr, br, clamp, lo, hi, o, outSize); break;
        case 2: perch_conv_stem_row_avx2(2, g, row, ox0, ox1, off, taps, wr, br, clamp, lo, hi, o, outSize); break;
        default: perch_conv_stem_row_avx2(1, g, row, ox0, ox1, off, taps, wr, br, clamp, lo, hi, o, outSize); break;
        }
        oc += m;
    }
}

/// perch_conv_stem_rows_reference's contract, with AVX2 + FMA (the same bits).
__attribute__((target("avx2,fma"))) static inline void perch_conv_stem_rows_avx2(const perch_conv_stem *g, const float *w,
                                                                                const float *bias, long oc0, long n, long oy0,
                                                                                long oy1, int clamp, float lo, float hi, float *y) {
    const long taps = g->cin * g->kH * g->kW, outSize = g->outH * g->outW, plane = g->R * g->Q, s = g->s;
    // Each tap's offset in the phase planes from (row oy, column ox) of plane 0, computed once:
    // per tap, the divisions by the stride cost more than its eight multiply-adds.
    long off[1024];
    if (taps > 1024) {  // the reference (callers take this kernel for at most 1024 taps)
        perch_conv_stem_rows_reference(g, w, bias, oc0, n, oy0, oy1, clamp, lo, hi, y);
        return;
    }
    for (long c = 0, t = 0; c < g->cin; c++)
        for (long kh = 0; kh < g->kH; kh++)
            for (long kw = 0; kw < g->kW; kw++, t++)
                off[t] = ((c * s + kh % s) * s + kw % s) * plane + (kh / s) * g->Q + kw / s;
    // Tiles of 6 channels × 16 pixels. When one output row's input (cin·kH phase rows) outgrows
    // L1, the channels go innermost: each 16-pixel block's input stays in L1 while the weights
    // stream in order, where channel blocks outermost re-read the whole row from L2 with scattered
    // loads (a 96→24 3×3 layer on 160×160: 17.6 → 14.3 ms; 32→64 on 128×128 stays channels-first).
    // Stems (≤ 32 taps) keep tiles of 4 channels: there the tile's set-up and stores weigh more,
    // and 6-channel tiles ran 5–18% slower.
    const int channelsInner = g->cin * g->kH * g->Q * (long)sizeof(float) > 64 * 1024;
    const long maxR = taps <= 32 ? 4 : 6;
    for (long oy = oy0; oy < oy1; oy++) {
        const float *row = g->x + oy * g->Q;
        float *out = y + oc0 * outSize + oy * g->outW;
        const float *wr = w + oc0 * taps, *br = bias ? bias + oc0 : 0;
        if (channelsInner) {
            for (long ox = 0; ox < g->outW; ox += 16) {
                long ox1 = ox + 16 < g->outW ? ox + 16 : g->outW;
                perch_conv_stem_channels_avx2(g, row, ox, ox1, off, taps, wr, br, n, maxR, clamp, lo, hi, out, outSize);
            }
        } else {
            perch_conv_stem_channels_avx2(g, row, 0, g->outW, off, taps, wr, br, n, maxR, clamp, lo, hi, out, outSize);
        }
    }
}
#endif

#endif
