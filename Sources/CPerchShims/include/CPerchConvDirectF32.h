#ifndef CPERCH_CONV_DIRECT_F32_H
#define CPERCH_CONV_DIRECT_F32_H
// fp32 direct convolution with output channels in the vector lanes, the arrangement ONNX
// Runtime's NCHWc kernels use, here reading NCHW input and writing NCHW output directly. An
// AVX-512 tile is up to 12 neighbouring output pixels of one row × 32 output channels, in 24 zmm
// accumulators (NEON: 6 pixels × 16 channels in 24 q registers; AVX2: the same in 12 ymm);
// each (input channel, kh, kw) step loads 32 channels of packed weights (two vectors) and
// broadcasts each pixel's input value, so nothing is packed per run. The im2col + GEMM path packs
// the column matrix (kH·kW times the input) on every run and shares each packed panel among only
// M/6 micro-kernel calls: DenseNet's 32-channel 3×3 convs ran at 79 GFLOP/s there.
//
// Sums run over (c, kh, kw) in order from the bias, one fused multiply-add each: the same order as
// perch_conv_direct_tile_reference, which the tests hold the AVX-512 kernel (DirectConvTests) and
// the NEON and AVX2 ones (Tests/CKernels/qkernels_test.c, NEON under qemu) to, bit for bit.
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include "CPerchQConv.h"  // PERCH_UNROLL

/// Channels per weight block and the widest pixel tile.
enum { PERCH_CONV_DIRECT_CO = 32, PERCH_CONV_DIRECT_MAXT = 12 };

/// The input a direct conv reads: channel planes of `planeSize` floats, rows `Wp` floats apart,
/// already padded (every window inside), and the output's row width and plane size.
typedef struct {
    const float *x;
    long planeSize, Wp, cin, kH, kW, sH, sW, dH, dW, outW, outSize;
} perch_conv_direct;

/// Packs W ([cout][k], k = cin·kH·kW) into blocks of 32 output channels, wt[b][q][l] = W[32b + l][q],
/// zero past cout. `wt` holds ceil(cout / 32) · k · 32 floats.
static inline void perch_conv_direct_pack(const float *w, long cout, long k, float *wt) {
    long blocks = (cout + PERCH_CONV_DIRECT_CO - 1) / PERCH_CONV_DIRECT_CO;
    for (long b = 0; b < blocks; b++)
        for (long q = 0; q < k; q++)
            for (long l = 0; l < PERCH_CONV_DIRECT_CO; l++) {
                long co = b * PERCH_CONV_DIRECT_CO + l;
                wt[(b * k + q) * PERCH_CONV_DIRECT_CO + l] = co < cout ? w[co * k + q] : 0.0f;
            }
}

static inline float perch_conv_direct_clamp(float v, int clamp, float lo, float hi) {
    return clamp ? (v < lo ? lo : (v > hi ? hi : v)) : v;
}

/// The reference for one tile: pixels ox0 … ox0 + nt − 1 of output row oy, channels co0 … co0 +
/// nco − 1 of block `wt` (this block's [k][32] weights), `bias` the block's 32 starting values,
/// `y` the output at (co0, oy, ox0).
static inline void perch_conv_direct_tile_reference(const perch_conv_direct *g, const float *wt, const float *bias, long oy,
                                                    long ox0, long nt, long nco, int clamp, float lo, float hi, float *y) {
    for (long co = 0; co < nco; co++)
        for (long j = 0; j < nt; j++) {
            float acc = bias[co];
            const float *w = wt + co;
            for (long c = 0; c < g->cin; c++)
                for (long kh = 0; kh < g->kH; kh++)
                    for (long kw = 0; kw < g->kW; kw++) {
                        const float *p = g->x + c * g->planeSize + (oy * g->sH + kh * g->dH) * g->Wp + (ox0 + j) * g->sW + kw * g->dW;
                        acc = fmaf(*p, *w, acc);
                        w += PERCH_CONV_DIRECT_CO;
                    }
            y[co * g->outSize + j] = perch_conv_direct_clamp(acc, clamp, lo, hi);
        }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// One tile with NT pixels (a constant at every call, so the loops unroll into registers), input
/// stride S (1, 2, or 0 for "g->sW"), WIDE = two vectors of channels (else one, nco ≤ 16).
__attribute__((target("avx512f"), always_inline)) static inline void
perch_conv_direct_tile_avx512_t(const perch_conv_direct *g, const float *wt, const float *bias, long oy, long ox0, const int NT,
                                const int S, const int WIDE, long nco, int clamp, float lo, float hi, float *y) {
    __m512 a0[PERCH_CONV_DIRECT_MAXT], a1[PERCH_CONV_DIRECT_MAXT];
    const __m512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
    PERCH_UNROLL for (int j = 0; j < NT; j++) {
        a0[j] = b0;
        a1[j] = b1;
    }
    const long s = S ? S : g->sW;
    const float *xr = g->x + oy * g->sH * g->Wp + ox0 * s;
    for (long c = 0; c < g->cin; c++) {
        for (long kh = 0; kh < g->kH; kh++) {
            const float *p = xr + c * g->planeSize + kh * g->dH * g->Wp;
            for (long kw = 0; kw < g->kW; kw++) {
                const __m512 w0 = _mm512_loadu_ps(wt);
                if (WIDE) {
                    const __m512 w1 = _mm512_loadu_ps(wt + 16);
                    PERCH_UNROLL for (int j = 0; j < NT; j++) {
                        const __m512 xb = _mm512_set1_ps(p[j * s]);
                        a0[j] = _mm512_fmadd_ps(xb, w0, a0[j]);
                        a1[j] = _mm512_fmadd_ps(xb, w1, a1[j]);
                    }
                } else {
                    PERCH_UNROLL for (int j = 0; j < NT; j++) a0[j] = _mm512_fmadd_ps(_mm512_set1_ps(p[j * s]), w0, a0[j]);
                }
                wt += PERCH_CONV_DIRECT_CO;
                p += g->dW;
            }
        }
    }
    // Channels × pixels: each channel's NT results are one masked store into its output row.
    float t[PERCH_CONV_DIRECT_MAXT * PERCH_CONV_DIRECT_CO] __attribute__((aligned(64)));
    PERCH_UNROLL for (int j = 0; j < NT; j++) {
        _mm512_store_ps(t + j * PERCH_CONV_DIRECT_CO, a0[j]);
        if (WIDE) _mm512_store_ps(t + j * PERCH_CONV_DIRECT_CO + 16, a1[j]);
    }
    const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(PERCH_CONV_DIRECT_CO));
    const __mmask16 m = (__mmask16)((1u << NT) - 1);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (long co = 0; co < nco; co++) {
        __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rows, t + co, 4);
        if (clamp) v = _mm512_min_ps(vhi, _mm512_max_ps(vlo, v));
        _mm512_mask_storeu_ps(y + co * g->outSize, m, v);
    }
}

/// Dispatches one tile of nt ≤ 12 pixels to its unrolled kernel.
__attribute__((target("avx512f"))) static inline void perch_conv_direct_tile_avx512(const perch_conv_direct *g, const float *wt,
                                                                                    const float *bias, long oy, long ox0, long nt,
                                                                                    long nco, int clamp, float lo, float hi, float *y) {
    const int wide = nco > 16;
#define PERCH_DC(N, S)                                                                                             \
    case N:                                                                                                        \
        if (wide) perch_conv_direct_tile_avx512_t(g, wt, bias, oy, ox0, N, S, 1, nco, clamp, lo, hi, y);          \
        else perch_conv_direct_tile_avx512_t(g, wt, bias, oy, ox0, N, S, 0, nco, clamp, lo, hi, y);               \
        return;
#define PERCH_DC_ALL(S) switch (nt) { PERCH_DC(1, S) PERCH_DC(2, S) PERCH_DC(3, S) PERCH_DC(4, S) PERCH_DC(5, S) PERCH_DC(6, S) \
        PERCH_DC(7, S) PERCH_DC(8, S) PERCH_DC(9, S) PERCH_DC(10, S) PERCH_DC(11, S) PERCH_DC(12, S) default: return; }
    if (g->sW == 1) { PERCH_DC_ALL(1) }
    else { PERCH_DC_ALL(0) }
#undef PERCH_DC_ALL
#undef PERCH_DC
}

/// Output rows oy0 ..< oy1 of one 32-channel block, each row cut into the fewest tiles of at most
/// 12 pixels, of widths differing by at most one (a 14-wide row is two tiles of 7, not 12 and 2).
__attribute__((target("avx512f"))) static inline void perch_conv_direct_rows_avx512(const perch_conv_direct *g, const float *wt,
                                                                                    const float *bias, long oy0, long oy1, long nco,
                                                                                    int clamp, float lo, float hi, float *y) {
    const long tiles = (g->outW + PERCH_CONV_DIRECT_MAXT - 1) / PERCH_CONV_DIRECT_MAXT;
    for (long oy = oy0; oy < oy1; oy++)
        for (long t = 0; t < tiles; t++) {
            long ox = g->outW * t / tiles, nt = g->outW * (t + 1) / tiles - ox;
            perch_conv_direct_tile_avx512(g, wt, bias, oy, ox, nt, nco, clamp, lo, hi, y + oy * g->outW + ox);
        }
}

/// The AVX2 tile, as the NEON one: NT ≤ 6 pixels × 16 channels (one half of a 32-channel weight
/// block) in 12 ymm accumulators, two weight vectors and the broadcast input value (16 registers);
/// each step is two weight loads, NT broadcasts from memory and 2·NT fused multiply-adds. S: the
/// input stride when it is 1, else 0 for g->sW.
__attribute__((target("avx2,fma"), always_inline)) static inline void
perch_conv_direct_tile_avx2_t(const perch_conv_direct *g, const float *wt, const float *bias, long oy, long ox0, const int NT,
                              const int S, long nco, int clamp, float lo, float hi, float *y) {
    __m256 a0[6], a1[6];
    const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
    PERCH_UNROLL for (int j = 0; j < NT; j++) {
        a0[j] = b0;
        a1[j] = b1;
    }
    const long s = S ? S : g->sW;
    const float *xr = g->x + oy * g->sH * g->Wp + ox0 * s;
    for (long c = 0; c < g->cin; c++) {
        for (long kh = 0; kh < g->kH; kh++) {
            const float *p = xr + c * g->planeSize + kh * g->dH * g->Wp;
            for (long kw = 0; kw < g->kW; kw++) {
                const __m256 w0 = _mm256_loadu_ps(wt), w1 = _mm256_loadu_ps(wt + 8);
                PERCH_UNROLL for (int j = 0; j < NT; j++) {
                    const __m256 xb = _mm256_broadcast_ss(p + j * s);
                    a0[j] = _mm256_fmadd_ps(xb, w0, a0[j]);
                    a1[j] = _mm256_fmadd_ps(xb, w1, a1[j]);
                }
                wt += PERCH_CONV_DIRECT_CO;
                p += g->dW;
            }
        }
    }
    float t[6 * 16];
    PERCH_UNROLL for (int j = 0; j < NT; j++) {
        _mm256_storeu_ps(t + j * 16, a0[j]);
        _mm256_storeu_ps(t + j * 16 + 8, a1[j]);
    }
    for (long co = 0; co < nco; co++)
        for (int j = 0; j < NT; j++) y[co * g->outSize + j] = perch_conv_direct_clamp(t[j * 16 + co], clamp, lo, hi);
}

/// One tile of nt ≤ 6 pixels and nco ≤ 16 channels; `wt` and `bias` already offset to the half.
__attribute__((target("avx2,fma"))) static inline void perch_conv_direct_tile_avx2(const perch_conv_direct *g, const float *wt,
                                                                                   const float *bias, long oy, long ox0, long nt,
                                                                                   long nco, int clamp, float lo, float hi, float *y) {
#define PERCH_DC(N, S) \
    case N: perch_conv_direct_tile_avx2_t(g, wt, bias, oy, ox0, N, S, nco, clamp, lo, hi, y); return;
#define PERCH_DC_ALL(S) switch (nt) { PERCH_DC(1, S) PERCH_DC(2, S) PERCH_DC(3, S) PERCH_DC(4, S) PERCH_DC(5, S) PERCH_DC(6, S) default: return; }
    if (g->sW == 1) { PERCH_DC_ALL(1) }
    else { PERCH_DC_ALL(0) }
#undef PERCH_DC_ALL
#undef PERCH_DC
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

/// The NEON tile: NT ≤ 6 pixels × 16 channels (one half of a 32-channel weight block, `half` 0 or
/// 1) in 24 q-register accumulators; each step loads 16 weights and multiplies each pixel's input
/// value in by element (fmla … v.s[0], fused like the reference's fmaf). NT is a constant at
/// every call, so the loops unroll into registers.
__attribute__((always_inline)) static inline void perch_conv_direct_tile_neon_t(const perch_conv_direct *g, const float *wt,
                                                                                 const float *bias, long oy, long ox0, const int NT,
                                                                                 long nco, int clamp, float lo, float hi, float *y) {
    float32x4_t acc[6][4];
    PERCH_UNROLL for (int j = 0; j < NT; j++)
        PERCH_UNROLL for (int q = 0; q < 4; q++) acc[j][q] = vld1q_f32(bias + 4 * q);
    const long s = g->sW;
    const float *xr = g->x + oy * g->sH * g->Wp + ox0 * s;
    for (long c = 0; c < g->cin; c++) {
        for (long kh = 0; kh < g->kH; kh++) {
            const float *p = xr + c * g->planeSize + kh * g->dH * g->Wp;
            for (long kw = 0; kw < g->kW; kw++) {
                const float32x4_t w0 = vld1q_f32(wt), w1 = vld1q_f32(wt + 4), w2 = vld1q_f32(wt + 8), w3 = vld1q_f32(wt + 12);
                PERCH_UNROLL for (int j = 0; j < NT; j++) {
                    const float v = p[j * s];
                    acc[j][0] = vfmaq_n_f32(acc[j][0], w0, v);
                    acc[j][1] = vfmaq_n_f32(acc[j][1], w1, v);
                    acc[j][2] = vfmaq_n_f32(acc[j][2], w2, v);
                    acc[j][3] = vfmaq_n_f32(acc[j][3], w3, v);
                }
                wt += PERCH_CONV_DIRECT_CO;
                p += g->dW;
            }
        }
    }
    float t[6 * 16];
    PERCH_UNROLL for (int j = 0; j < NT; j++)
        PERCH_UNROLL for (int q = 0; q < 4; q++) vst1q_f32(t + j * 16 + 4 * q, acc[j][q]);
    for (long co = 0; co < nco; co++)
        for (int j = 0; j < NT; j++) y[co * g->outSize + j] = perch_conv_direct_clamp(t[j * 16 + co], clamp, lo, hi);
}

/// One tile of nt ≤ 6 pixels and nco ≤ 16 channels; `wt` and `bias` already offset to the half.
static inline void perch_conv_direct_tile_neon(const perch_conv_direct *g, const float *wt, const float *bias, long oy, long ox0,
                                               long nt, long nco, int clamp, float lo, float hi, float *y) {
    switch (nt) {
    case 1: perch_conv_direct_tile_neon_t(g, wt, bias, oy, ox0, 1, nco, clamp, lo, hi, y); return;
    case 2: perch_conv_direct_tile_neon_t(g, wt, bias, oy, ox0, 2, nco, clamp, lo, hi, y); return;
    case 3: perch_conv_direct_tile_neon_t(g, wt, bias, oy, ox0, 3, nco, clamp, lo, hi, y); return;
    case 4: perch_conv_direct_tile_neon_t(g, wt, bias, oy, ox0, 4, nco, clamp, lo, hi, y); return;
    case 5: perch_conv_direct_tile_neon_t(g, wt, bias, oy, ox0, 5, nco, clamp, lo, hi, y); return;
    default: perch_conv_direct_tile_neon_t(g, wt, bias, oy, ox0, 6, nco, clamp, lo, hi, y); return;
    }
}
#endif

#if defined(__x86_64__) || defined(__aarch64__)
/// Output rows oy0 ..< oy1 of one 32-channel block with the 6 × 16 tile (AVX2 on x86-64, NEON on
/// aarch64): each 16-channel half over the rows, each row cut into tiles of at most 6 pixels of
/// widths differing by at most one (a 7-wide row is 4 + 3, not 6 + 1).
static inline void perch_conv_direct_rows_6x16(const perch_conv_direct *g, const float *wt, const float *bias, long oy0, long oy1,
                                               long nco, int clamp, float lo, float hi, float *y) {
#if defined(__x86_64__)
#define PERCH_DC_TILE perch_conv_direct_tile_avx2
#else
#define PERCH_DC_TILE perch_conv_direct_tile_neon
#endif
    const long tiles = (g->outW + 5) / 6;
    for (long half = 0; half * 16 < nco; half++) {
        long n = nco - half * 16 < 16 ? nco - half * 16 : 16;
        for (long oy = oy0; oy < oy1; oy++)
            for (long t = 0; t < tiles; t++) {
                long ox = g->outW * t / tiles, nt = g->outW * (t + 1) / tiles - ox;
                PERCH_DC_TILE(g, wt + half * 16, bias + half * 16, oy, ox, nt, n, clamp, lo, hi, y + half * 16 * g->outSize + oy * g->outW + ox);
            }
    }
#undef PERCH_DC_TILE
}
#endif

#endif
