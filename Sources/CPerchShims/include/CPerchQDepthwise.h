#ifndef CPERCH_QDEPTHWISE_H
#define CPERCH_QDEPTHWISE_H
// Channel-blocked int8 depthwise convolution. The NCHW activations of 16 channels are transposed
// into a zero-point-padded [Hp][Wp][16] tile, so one output pixel of all 16 channels is one vector:
// each tap is a 16-byte load, the per-channel weights and requantization parameters are vectors
// too, and the cost per channel no longer depends on how small the map is (the per-channel plane
// kernels of CPerchQConv.h spend most of their time in row set-up on 10×10 and 20×20 maps).
// Results are exact int32 sums requantized per channel as perch_requant1, so every path here
// equals the scalar reference bit for bit.
//
// - perch_qdw_tile16_pack: 16 channel planes (NCHW) → padded [Hp][Wp][16] tile.
// - perch_qdw_tile16_*: acc = init[c] + Σ_t w[t][c]·tile[pixel + off[t]][c], requantized per channel,
//   into [P][16] bytes.
// - perch_qdw_tile16_unpack: [P][16] bytes → up to 16 NCHW channel planes.
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "CPerchQConv.h"
#include "CPerchQGemmSIMD.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__x86_64__)
/// In-register transpose of a 16×16 byte block (row i of `r` becomes column i).
static inline __attribute__((always_inline)) void perch_transpose16x16_bytes(__m128i r[16]) {
    __m128i t[16];
    PERCH_UNROLL
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
    }
    // t[2i] holds rows 2i,2i+1 interleaved for columns 0..7, t[2i+1] for columns 8..15.
    PERCH_UNROLL
    for (int i = 0; i < 4; i++) {
        PERCH_UNROLL
        for (int h = 0; h < 2; h++) {
            __m128i a = t[4 * i + h], b = t[4 * i + 2 + h];
            r[4 * i + 2 * h] = _mm_unpacklo_epi16(a, b);
            r[4 * i + 2 * h + 1] = _mm_unpackhi_epi16(a, b);
        }
    }
    // r[4i + q] holds rows 4i..4i+3 for columns 4q..4q+3.
    PERCH_UNROLL
    for (int i = 0; i < 2; i++) {
        PERCH_UNROLL
        for (int q = 0; q < 4; q++) {
            __m128i a = r[8 * i + q], b = r[8 * i + 4 + q];
            t[8 * i + 2 * q] = _mm_unpacklo_epi32(a, b);
            t[8 * i + 2 * q + 1] = _mm_unpackhi_epi32(a, b);
        }
    }
    // t[8i + 2q + e] holds rows 8i..8i+7 for columns 4q+2e, 4q+2e+1.
    PERCH_UNROLL
    for (int c = 0; c < 8; c++) {
        r[2 * c] = _mm_unpacklo_epi64(t[c], t[8 + c]);
        r[2 * c + 1] = _mm_unpackhi_epi64(t[c], t[8 + c]);
    }
}
#endif

/// Fills rows r0..<r0+rows of the padded [Hp][Wp][16] tile (a band: tile row 0 is padded row r0):
/// padded (pH + y, pW + x) = channel c's byte (y, x) ^ flip for the first `chans` channels (planes
/// `inSize` bytes apart), `pad` elsewhere and in channels ≥ chans.
/// SSE2: 16 consecutive bytes of each plane (of one row, or of several when rows are narrower than
/// a vector, as on small maps) are transposed at once and each pixel's 16 channels stored where it
/// belongs; the last group overlaps the one before instead of falling back to bytes.
static inline __attribute__((always_inline)) void perch_qdw_tile16_pack_body(const uint8_t *x, size_t chans, size_t inSize,
                                                                            long inH, long inW, long pH, long pW, long r0,
                                                                            long rows, long Wp, uint8_t flip, uint8_t pad,
                                                                            uint8_t *tile) {
    memset(tile, pad, (size_t)(rows * Wp * 16));
    // Input rows y in [yStart, yEnd) land in the band; columns x < xEnd are read by the convolution.
    long yStart = r0 - pH > 0 ? r0 - pH : 0;
    long yEnd = inH < r0 + rows - pH ? inH : r0 + rows - pH, xEnd = inW < Wp - pW ? inW : Wp - pW;
    tile -= r0 * Wp * 16;  // indexed by padded row from here on
#if defined(__x86_64__)
    const __m128i f = _mm_set1_epi8((char)flip);
    if (xEnd >= 16) {  // rows of at least a vector: 16 pixels of one row per transpose
        for (long y = yStart; y < yEnd; y++) {
            uint8_t *d = tile + ((y + pH) * Wp + pW) * 16;
            for (long i = 0; i < xEnd; i += 16) {
                if (i + 16 > xEnd) i = xEnd - 16;
                __m128i r[16];
                PERCH_UNROLL
                for (size_t c = 0; c < 16; c++)
                    r[c] = c < chans ? _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(x + c * inSize + y * inW + i)), f)
                                     : _mm_set1_epi8((char)pad);
                perch_transpose16x16_bytes(r);
                PERCH_UNROLL
                for (int p = 0; p < 16; p++) _mm_storeu_si128((__m128i *)(void *)(d + (i + p) * 16), r[p]);
            }
        }
        return;
    }
    if ((long)inSize >= 16 && inH * inW == (long)inSize) {  // narrow rows: 16 pixels of the plane, over row ends
        long qEnd = yEnd * inW;
        for (long q0 = yStart * inW; q0 < qEnd; q0 += 16) {
            if (q0 + 16 > qEnd) q0 = qEnd - 16 >= 0 ? qEnd - 16 : 0;
            __m128i r[16];
            PERCH_UNROLL
            for (size_t c = 0; c < 16; c++)
                r[c] = c < chans ? _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(x + c * inSize + q0)), f)
                                 : _mm_set1_epi8((char)pad);
            perch_transpose16x16_bytes(r);
            long y = q0 / inW, xx = q0 % inW;
            PERCH_UNROLL
            for (int i = 0; i < 16; i++) {
                if (y >= yStart && y < yEnd && xx < xEnd) _mm_storeu_si128((__m128i *)(void *)(tile + ((y + pH) * Wp + xx + pW) * 16), r[i]);
                if (++xx == inW) { xx = 0; y++; }
            }
        }
        return;
    }
#endif
    for (long y = yStart; y < yEnd; y++) {
        uint8_t *d = tile + ((y + pH) * Wp + pW) * 16;
        for (long i = 0; i < xEnd; i++)
            for (size_t c = 0; c < chans; c++) d[i * 16 + c] = x[c * inSize + y * inW + i] ^ flip;
    }
}

/// Writes the first `chans` channels of `P` pixels ([P][16] bytes) to NCHW planes `outSize` apart
/// (16 pixels per transpose, the last group overlapping the one before).
static inline __attribute__((always_inline)) void perch_qdw_tile16_unpack_body(const uint8_t *src, size_t P, size_t chans,
                                                                              size_t outSize, uint8_t *dst) {
#if defined(__x86_64__)
    if (P >= 16) {
        for (size_t p = 0; p < P; p += 16) {
            if (p + 16 > P) p = P - 16;
            __m128i r[16];
            PERCH_UNROLL
            for (int i = 0; i < 16; i++) r[i] = _mm_loadu_si128((const __m128i *)(const void *)(src + (p + i) * 16));
            perch_transpose16x16_bytes(r);
            for (size_t c = 0; c < chans; c++) _mm_storeu_si128((__m128i *)(void *)(dst + c * outSize + p), r[c]);
        }
        return;
    }
#endif
    for (size_t p = 0; p < P; p++)
        for (size_t c = 0; c < chans; c++) dst[c * outSize + p] = src[p * 16 + c];
}

static inline void perch_qdw_tile16_pack(const uint8_t *x, size_t chans, size_t inSize, long inH, long inW, long pH, long pW,
                                         long r0, long rows, long Wp, uint8_t flip, uint8_t pad, uint8_t *tile) {
    perch_qdw_tile16_pack_body(x, chans, inSize, inH, inW, pH, pW, r0, rows, Wp, flip, pad, tile);
}

static inline void perch_qdw_tile16_unpack(const uint8_t *src, size_t P, size_t chans, size_t outSize, uint8_t *dst) {
    perch_qdw_tile16_unpack_body(src, P, chans, outSize, dst);
}

#if defined(__x86_64__)
/// The constants of perch_transpose16x16_zmm, opaque to the optimizer: with known constants
/// clang rewrote 512-bit shuffles into several 256-bit ones.
typedef struct {
    __m512i gather, bytes;
} perch_zmm_transpose;

PERCH_AVX512_TARGET static inline perch_zmm_transpose perch_zmm_transpose_make(void) {
    perch_zmm_transpose t;
    t.gather = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    t.bytes = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    __asm__("" : "+v"(t.gather), "+v"(t.bytes));
    return t;
}

/// A 16×16 byte transpose in four vectors (self-inverse). In: z[i] holds rows 4i..4i+3, one per
/// 128-bit lane. Out: r[k] lane L holds row 4L + k. A dword permute and an in-lane byte shuffle
/// turn each input vector into [column][4 rows] words, and a 4×4 dword transpose in the lanes
/// joins the four row quartets — 16 shuffles where sixteen 128-bit registers took 64 and spilled.
PERCH_AVX512_TARGET static inline __attribute__((always_inline)) void perch_transpose16x16_zmm(const perch_zmm_transpose *c, __m512i z[4],
                                                                                               __m512i r[4]) {
    PERCH_UNROLL
    for (int i = 0; i < 4; i++) z[i] = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(c->gather, z[i]), c->bytes);
    __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
    __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
    r[0] = _mm512_unpacklo_epi64(t0, t2);
    r[1] = _mm512_unpackhi_epi64(t0, t2);
    r[2] = _mm512_unpacklo_epi64(t1, t3);
    r[3] = _mm512_unpackhi_epi64(t1, t3);
}

/// AVX-512 pack: 16-pixel runs of full 16-channel blocks through perch_transpose16x16_zmm (other
/// cases as perch_qdw_tile16_pack).
PERCH_AVX512_TARGET static inline void perch_qdw_tile16_pack_avx512(const uint8_t *x, size_t chans, size_t inSize, long inH,
                                                                    long inW, long pH, long pW, long r0, long rows, long Wp,
                                                                    uint8_t flip, uint8_t pad, uint8_t *tile) {
    long xEnd = inW < Wp - pW ? inW : Wp - pW;
    if (chans != 16 || xEnd < 16) {
        perch_qdw_tile16_pack_body(x, chans, inSize, inH, inW, pH, pW, r0, rows, Wp, flip, pad, tile);
        return;
    }
    memset(tile, pad, (size_t)(rows * Wp * 16));
    long yStart = r0 - pH > 0 ? r0 - pH : 0;
    long yEnd = inH < r0 + rows - pH ? inH : r0 + rows - pH;
    tile -= r0 * Wp * 16;
    const perch_zmm_transpose c = perch_zmm_transpose_make();
    const __m512i f = _mm512_set1_epi8((char)flip);
    for (long y = yStart; y < yEnd; y++) {
        uint8_t *d = tile + ((y + pH) * Wp + pW) * 16;
        const uint8_t *row = x + y * inW;
        for (long i = 0; i < xEnd; i += 16) {
            if (i + 16 > xEnd) i = xEnd - 16;
            __m512i z[4], r[4];
            PERCH_UNROLL
            for (int k = 0; k < 4; k++) {  // z[k] lane L: channel 4L + k's 16 pixels
                const uint8_t *p = row + (size_t)k * inSize + i;
                __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(const void *)p));
                v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(const void *)(p + 4 * inSize)), 1);
                v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(const void *)(p + 8 * inSize)), 2);
                v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(const void *)(p + 12 * inSize)), 3);
                z[k] = _mm512_xor_si512(v, f);
            }
            // perch_transpose16x16_zmm's steps in reverse order: the dword transpose makes zz[m]
            // lane L dword k channel 4L + k's pixels 4m..4m+3, the byte shuffle turns them into
            // pixel (4m + j)'s channels 4L..4L+3, the permute gathers each pixel's 16 channels.
            __m512i zz[4];
            __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
            __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
            zz[0] = _mm512_unpacklo_epi64(t0, t2);
            zz[1] = _mm512_unpackhi_epi64(t0, t2);
            zz[2] = _mm512_unpacklo_epi64(t1, t3);
            zz[3] = _mm512_unpackhi_epi64(t1, t3);
            PERCH_UNROLL
            for (int k = 0; k < 4; k++) {
                r[k] = _mm512_permutexvar_epi32(c.gather, _mm512_shuffle_epi8(zz[k], c.bytes));
                _mm512_storeu_si512((void *)(d + (i + 4 * k) * 16), r[k]);
            }
        }
    }
}

/// AVX-512 unpack: full 16-channel blocks of at least 16 pixels through perch_transpose16x16_zmm.
PERCH_AVX512_TARGET static inline void perch_qdw_tile16_unpack_avx512(const uint8_t *src, size_t P, size_t chans, size_t outSize,
                                                                      uint8_t *dst) {
    if (chans != 16 || P < 16) {
        perch_qdw_tile16_unpack_body(src, P, chans, outSize, dst);
        return;
    }
    const perch_zmm_transpose c = perch_zmm_transpose_make();
    for (size_t p = 0; p < P; p += 16) {
        if (p + 16 > P) p = P - 16;
        __m512i z[4], r[4];
        PERCH_UNROLL
        for (int i = 0; i < 4; i++) z[i] = _mm512_loadu_si512((const void *)(src + (p + 4 * i) * 16));
        perch_transpose16x16_zmm(&c, z, r);
        PERCH_UNROLL
        for (int k = 0; k < 4; k++) {  // r[k] lane L: channel 4L + k
            uint8_t *o = dst + (size_t)k * outSize + p;
            _mm_storeu_si128((__m128i *)(void *)o, _mm512_castsi512_si128(r[k]));
            _mm_storeu_si128((__m128i *)(void *)(o + 4 * outSize), _mm512_extracti32x4_epi32(r[k], 1));
            _mm_storeu_si128((__m128i *)(void *)(o + 8 * outSize), _mm512_extracti32x4_epi32(r[k], 2));
            _mm_storeu_si128((__m128i *)(void *)(o + 12 * outSize), _mm512_extracti32x4_epi32(r[k], 3));
        }
    }
}
#endif

/// Scalar reference: output pixel (oy, ox) reads tile pixel (oy·sH, ox·sW) + off[t] (in pixels)
/// for tap t; w holds taps × 16 int32 weights (zero point already subtracted), init/mult/shift one
/// per channel; out gets oH·oW × 16 bytes.
static inline void perch_qdw_tile16_scalar(const uint8_t *tile, long Wp, long oH, long oW, long sH, long sW, const long *off,
                                           size_t taps, const int32_t *w, const int32_t *init, const int32_t *mult,
                                           const int32_t *shift, int32_t zp, int32_t lo, int32_t hi, uint8_t *out) {
    for (long oy = 0; oy < oH; oy++) {
        for (long ox = 0; ox < oW; ox++) {
            const uint8_t *base = tile + (oy * sH * Wp + ox * sW) * 16;
            uint8_t *o = out + (oy * oW + ox) * 16;
            for (int c = 0; c < 16; c++) {
                int32_t a = init[c];
                for (size_t t = 0; t < taps; t++) a += (int32_t)base[off[t] * 16 + c] * w[t * 16 + c];
                o[c] = (uint8_t)perch_requant1(a, mult[c], shift[c], zp, lo, hi);
            }
        }
    }
}

#if defined(__x86_64__)
/// Per-channel right-shift requantization (perch_requant16_right_avx512 with a multiplier and
/// shift per lane): the 64-bit products of even and odd lanes get their own constants, prepared
/// once per channel block.
typedef struct {
    __m512i multE, multO, kE, kO, shE, shO;
} perch_requant16_lanes;

PERCH_AVX512_TARGET static inline perch_requant16_lanes perch_requant16_lanes_make(const int32_t *mult, const int32_t *rshift) {
    int64_t m[2][8], k[2][8], sh[2][8];
    for (int i = 0; i < 16; i++) {
        int e = i & 1, j = i >> 1, r = rshift[i];
        m[e][j] = mult[i];
        k[e][j] = (int64_t)1 << (30 + r);
        sh[e][j] = 31 + r;
    }
    perch_requant16_lanes q;
    q.multE = _mm512_loadu_si512(m[0]);
    q.multO = _mm512_loadu_si512(m[1]);
    q.kE = _mm512_loadu_si512(k[0]);
    q.kO = _mm512_loadu_si512(k[1]);
    q.shE = _mm512_loadu_si512(sh[0]);
    q.shO = _mm512_loadu_si512(sh[1]);
    return q;
}

/// The lanes' requantization with the zero point added, not clamped (for byte packing).
PERCH_AVX512_TARGET static inline __m512i perch_requant16_lanes_unclamped(__m512i x, const perch_requant16_lanes *q, __m512i vzp) {
    __m512i te = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, q->multE), q->kE), q->shE);
    __m512i to = _mm512_srav_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), q->multO), q->kO), q->shO);
    return _mm512_add_epi32(_mm512_mask_shuffle_epi32(te, 0xAAAA, to, (_MM_PERM_ENUM)0x80), vzp);
}

PERCH_AVX512_TARGET static inline __m512i perch_requant16_lanes_apply(__m512i x, const perch_requant16_lanes *q, __m512i vzp,
                                                                      __m512i vlo, __m512i vhi) {
    return _mm512_min_epi32(_mm512_max_epi32(perch_requant16_lanes_unclamped(x, q, vzp), vlo), vhi);
}

/// AVX-512: one pixel's 16 channels per vector, two pixels in flight; requires every shift ≤ 0
/// (`rshift` = −shift per channel, at most 31).
PERCH_AVX512_TARGET static inline void perch_qdw_tile16_avx512(const uint8_t *tile, long Wp, long oH, long oW, long sH, long sW,
                                                               const long *off, size_t taps, const int32_t *w,
                                                               const int32_t *init, const int32_t *mult, const int32_t *rshift,
                                                               int32_t zp, int32_t lo, int32_t hi, uint8_t *out) {
    const __m512i vinit = _mm512_loadu_si512(init);
    const perch_requant16_lanes q = perch_requant16_lanes_make(mult, rshift);
    const __m512i vzp = _mm512_set1_epi32(zp), vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
    const long step = sW * 16;
    for (long oy = 0; oy < oH; oy++) {
        const uint8_t *row = tile + oy * sH * Wp * 16;
        uint8_t *o = out + oy * oW * 16;
        long ox = 0;
        for (; ox + 2 <= oW; ox += 2) {
            const uint8_t *b0 = row + ox * step, *b1 = b0 + step;
            __m512i a0 = vinit, a1 = vinit;
            for (size_t t = 0; t < taps; t++) {
                __m512i wt = _mm512_loadu_si512(w + 16 * t);
                __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b0 + off[t] * 16)));
                __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b1 + off[t] * 16)));
                a0 = _mm512_add_epi32(a0, _mm512_mullo_epi32(v0, wt));
                a1 = _mm512_add_epi32(a1, _mm512_mullo_epi32(v1, wt));
            }
            _mm_storeu_si128((__m128i *)(void *)(o + ox * 16), _mm512_cvtepi32_epi8(perch_requant16_lanes_apply(a0, &q, vzp, vlo, vhi)));
            _mm_storeu_si128((__m128i *)(void *)(o + ox * 16 + 16),
                             _mm512_cvtepi32_epi8(perch_requant16_lanes_apply(a1, &q, vzp, vlo, vhi)));
        }
        for (; ox < oW; ox++) {
            const uint8_t *b0 = row + ox * step;
            __m512i a0 = vinit;
            for (size_t t = 0; t < taps; t++) {
                __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(b0 + off[t] * 16)));
                a0 = _mm512_add_epi32(a0, _mm512_mullo_epi32(v0, _mm512_loadu_si512(w + 16 * t)));
            }
            _mm_storeu_si128((__m128i *)(void *)(o + ox * 16), _mm512_cvtepi32_epi8(perch_requant16_lanes_apply(a0, &q, vzp, vlo, vhi)));
        }
    }
}

/// Word-pair tile for perch_qdw_pairs16_avx512: q[y][j] holds, for 16 channels, the int16 pair
/// (tile[y][j·sW], tile[y][j·sW + 1]), so one vpdpwssd adds two horizontal taps of 16 channels.
/// j < Wq; the pair's second pixel may lie past the row (read from the next row or the 16 bytes
/// of slack `tile` must have past Hp·Wp pixels): the kernels give it weight 0.
PERCH_AVX512_TARGET static inline void perch_qdw_tile16_pairs(const uint8_t *tile, long Hp, long Wp, long sW, long Wq, int16_t *q) {
    for (long y = 0; y < Hp; y++) {
        const uint8_t *row = tile + y * Wp * 16;
        int16_t *d = q + y * Wq * 32;
        for (long j = 0; j < Wq; j++) {
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(row + j * sW * 16));
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(row + (j * sW + 1) * 16));
            __m256i ab = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi8(a, b)), _mm_unpackhi_epi8(a, b), 1);
            _mm512_storeu_si512(d + j * 32, _mm512_cvtepu8_epi16(ab));
        }
    }
}

/// The depthwise tile with two horizontal taps per vpdpwssd (AVX-512 VNNI, exact int32 sums):
/// output (oy, ox) adds, for each kernel row kh and pair m, q[oy·sH + kh·dH][ox + m·jstep] ·
/// wp[kh][m] (wp: 16 channels × (w[kh][2m], w[kh][2m + 1] or 0) as int16). For dW = 1 and
/// sW = 1 (jstep 2) or sW = 2 (jstep 1); four output pixels in flight. Requires every shift ≤ 0.
PERCH_AVX512_TARGET static inline void perch_qdw_pairs16_avx512(const int16_t *q, long Wq, long oH, long oW, long sH, long dH,
                                                                long kH, long pairs, long jstep, const int16_t *wp,
                                                                const int32_t *init, const int32_t *mult, const int32_t *rshift,
                                                                int32_t zp, int32_t lo, int32_t hi, uint8_t *out) {
    const __m512i vinit = _mm512_loadu_si512(init);
    const perch_requant16_lanes rq = perch_requant16_lanes_make(mult, rshift);
    const __m512i vzp = _mm512_set1_epi32(zp), vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
    for (long oy = 0; oy < oH; oy++) {
        uint8_t *o = out + oy * oW * 16;
        long ox = 0;
        for (; ox + 4 <= oW; ox += 4) {
            __m512i a0 = vinit, a1 = vinit, a2 = vinit, a3 = vinit;
            for (long kh = 0; kh < kH; kh++) {
                const int16_t *r = q + ((oy * sH + kh * dH) * Wq + ox) * 32;
                const int16_t *w = wp + kh * pairs * 32;
                for (long m = 0; m < pairs; m++) {
                    __m512i wv = _mm512_loadu_si512(w + m * 32);
                    const int16_t *rm = r + m * jstep * 32;
                    a0 = _mm512_dpwssd_epi32(a0, _mm512_loadu_si512(rm), wv);
                    a1 = _mm512_dpwssd_epi32(a1, _mm512_loadu_si512(rm + 32), wv);
                    a2 = _mm512_dpwssd_epi32(a2, _mm512_loadu_si512(rm + 64), wv);
                    a3 = _mm512_dpwssd_epi32(a3, _mm512_loadu_si512(rm + 96), wv);
                }
            }
            __m128i b0 = _mm512_cvtepi32_epi8(perch_requant16_lanes_apply(a0, &rq, vzp, vlo, vhi));
            __m128i b1 = _mm512_cvtepi32_epi8(perch_requant16_lanes_apply(a1, &rq, vzp, vlo, vhi));
            __m128i b2 = _mm512_cvtepi32_epi8(perch_requant16_lanes_apply(a2, &rq, vzp, vlo, vhi));
            __m128i b3 = _mm512_cvtepi32_epi8(perch_requant16_lanes_apply(a3, &rq, vzp, vlo, vhi));
            _mm_storeu_si128((__m128i *)(void *)(o + ox * 16), b0);
            _mm_storeu_si128((__m128i *)(void *)(o + ox * 16 + 16), b1);
            _mm_storeu_si128((__m128i *)(void *)(o + ox * 16 + 32), b2);
            _mm_storeu_si128((__m128i *)(void *)(o + ox * 16 + 48), b3);
        }
        for (; ox < oW; ox++) {
            __m512i a0 = vinit;
            for (long kh = 0; kh < kH; kh++) {
                const int16_t *r = q + ((oy * sH + kh * dH) * Wq + ox) * 32;
                const int16_t *w = wp + kh * pairs * 32;
                for (long m = 0; m < pairs; m++)
                    a0 = _mm512_dpwssd_epi32(a0, _mm512_loadu_si512(r + m * jstep * 32), _mm512_loadu_si512(w + m * 32));
            }
            _mm_storeu_si128((__m128i *)(void *)(o + ox * 16), _mm512_cvtepi32_epi8(perch_requant16_lanes_apply(a0, &rq, vzp, vlo, vhi)));
        }
    }
}

/// Quad tile for perch_qdw_quads16_vnni: q[y][j] holds, for 16 channels, one 32-bit word per
/// channel of the 4 bytes tile[y][j·sW + e], e = 0..3, so one vpdpbusd adds up to four
/// horizontal taps of 16 channels (3×3 kernels: one instruction per kernel row instead of two
/// vpdpwssd). Each position is one 64-byte load of four tile pixels, a dword permute that gathers
/// each channel quartet's four pixels into one 128-bit lane and a byte shuffle that transposes
/// them. j < Wq; the last position reads up to 3 pixels past the row (the next row or 48 bytes of
/// slack the tile must have), which the kernel weights with 0.
PERCH_AVX512_TARGET static inline void perch_qdw_tile16_quads(const uint8_t *tile, long Hp, long Wp, long sW, long Wq, uint8_t *q) {
    __m512i gather = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i transpose = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    // Opaque to the optimizer: with known constants clang rewrote the two shuffles into five
    // 256-bit ones (the build twice as slow).
    __asm__("" : "+v"(gather), "+v"(transpose));
    for (long y = 0; y < Hp; y++) {
        const uint8_t *row = tile + y * Wp * 16;
        uint8_t *d = q + y * Wq * 64;
        for (long j = 0; j < Wq; j++) {
            __m512i z = _mm512_loadu_si512((const void *)(row + j * sW * 16));
            _mm512_storeu_si512((void *)(d + j * 64), _mm512_shuffle_epi8(_mm512_permutexvar_epi32(gather, z), transpose));
        }
    }
}

/// The depthwise tile with up to four horizontal taps per vpdpbusd (AVX-512 VNNI, exact int32
/// sums: u8 activations × int8 weights): output (oy, ox) adds, for each kernel row kh,
/// q[oy·sH + kh·dH][ox] · w4[kh] (w4: 16 channels × (w[kh][0..<kW], then 0) as int8). For kW ≤ 4
/// and dW = 1, any sW (the quads are built at the output columns). Four output pixels in flight,
/// requantized in the lanes and narrowed 64 bytes at a time. Requires every shift ≤ 0.
PERCH_AVX512_TARGET static inline void perch_qdw_quads16_vnni(const uint8_t *q, long Wq, long oH, long oW, long sH, long dH, long kH,
                                                              const int8_t *w4, const int32_t *init, const int32_t *mult,
                                                              const int32_t *rshift, int32_t zp, int32_t lo, int32_t hi, uint8_t *out) {
    const __m512i vinit = _mm512_loadu_si512(init);
    const perch_requant16_lanes rq = perch_requant16_lanes_make(mult, rshift);
    const __m512i vzp = _mm512_set1_epi32(zp), vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
    const __m512i lo8 = _mm512_set1_epi8((char)lo), hi8 = _mm512_set1_epi8((char)hi);
    for (long oy = 0; oy < oH; oy++) {
        uint8_t *o = out + oy * oW * 16;
        long ox = 0;
        for (; ox + 4 <= oW; ox += 4) {
            __m512i a0 = vinit, a1 = vinit, a2 = vinit, a3 = vinit;
            for (long kh = 0; kh < kH; kh++) {
                const uint8_t *r = q + ((oy * sH + kh * dH) * Wq + ox) * 64;
                __m512i wv = _mm512_loadu_si512((const void *)(w4 + kh * 64));
                a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512((const void *)r), wv);
                a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512((const void *)(r + 64)), wv);
                a2 = _mm512_dpbusd_epi32(a2, _mm512_loadu_si512((const void *)(r + 128)), wv);
                a3 = _mm512_dpbusd_epi32(a3, _mm512_loadu_si512((const void *)(r + 192)), wv);
            }
            __m512i b = perch_pack64_clamped_avx512(perch_requant16_lanes_unclamped(a0, &rq, vzp), perch_requant16_lanes_unclamped(a1, &rq, vzp),
                                                    perch_requant16_lanes_unclamped(a2, &rq, vzp), perch_requant16_lanes_unclamped(a3, &rq, vzp),
                                                    lo >= 0, lo8, hi8);
            _mm512_storeu_si512((void *)(o + ox * 16), b);
        }
        for (; ox < oW; ox++) {
            __m512i a0 = vinit;
            for (long kh = 0; kh < kH; kh++)
                a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512((const void *)(q + ((oy * sH + kh * dH) * Wq + ox) * 64)),
                                         _mm512_loadu_si512((const void *)(w4 + kh * 64)));
            _mm_storeu_si128((__m128i *)(void *)(o + ox * 16), _mm512_cvtepi32_epi8(perch_requant16_lanes_apply(a0, &rq, vzp, vlo, vhi)));
        }
    }
}
#endif

#if defined(__x86_64__)
/// AVX2 form of perch_qdw_tile16_pairs (the same [Hp][Wq][16 channels × 2] int16 layout).
PERCH_AVX2_TARGET static inline void perch_qdw_tile16_pairs_avx2(const uint8_t *tile, long Hp, long Wp, long sW, long Wq, int16_t *q) {
    for (long y = 0; y < Hp; y++) {
        const uint8_t *row = tile + y * Wp * 16;
        int16_t *d = q + y * Wq * 32;
        for (long j = 0; j < Wq; j++) {
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(row + j * sW * 16));
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(row + (j * sW + 1) * 16));
            _mm256_storeu_si256((__m256i *)(void *)(d + j * 32), _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b)));
            _mm256_storeu_si256((__m256i *)(void *)(d + j * 32 + 16), _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b)));
        }
    }
}

/// Per-channel right-shift requantization of 8 lanes (perch_requant8_avx2's constants for one
/// half of a 16-channel block).
typedef struct {
    __m256i mult, multOdd, right, roundEven, roundOdd;
} perch_requant8_lanes;

PERCH_AVX2_INLINE perch_requant8_lanes perch_requant8_lanes_make(const int32_t *mult, const int32_t *rshift) {
    perch_requant8_lanes q;
    q.mult = _mm256_loadu_si256((const __m256i *)(const void *)mult);
    q.multOdd = _mm256_srli_epi64(q.mult, 32);
    q.right = _mm256_loadu_si256((const __m256i *)(const void *)rshift);
    perch_requant_round8_avx2(q.right, &q.roundEven, &q.roundOdd);
    return q;
}

/// The lanes' requantization without the zero point and clamp (perch_requant_mul8_avx2).
PERCH_AVX2_INLINE __m256i perch_requant8_lanes_mul(__m256i x, const perch_requant8_lanes *q) {
    return perch_requant_mul8_avx2(x, q->mult, q->multOdd, q->roundEven, q->roundOdd, q->right);
}

/// 16 clamped lanes (two vectors of 8, each in [−128, 255]) → their low bytes, in lane order.
PERCH_AVX2_INLINE __m128i perch_lowbytes16_avx2(__m256i a, __m256i b) {
    const __m256i ff = _mm256_set1_epi32(0xFF);
    __m256i t = _mm256_permute4x64_epi64(_mm256_packus_epi32(_mm256_and_si256(a, ff), _mm256_and_si256(b, ff)), 0xD8);
    __m256i u = _mm256_packus_epi16(t, t);
    return _mm_unpacklo_epi64(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
}

/// AVX2 form of perch_qdw_pairs16_avx512 (same arguments and sums): each 16-channel pixel is two
/// vectors of 8 channels, two horizontal taps per vpmaddwd; four output pixels in flight.
/// Requires every shift ≤ 0.
PERCH_AVX2_TARGET static inline void perch_qdw_pairs16_avx2(const int16_t *q, long Wq, long oH, long oW, long sH, long dH, long kH,
                                                            long pairs, long jstep, const int16_t *wp, const int32_t *init,
                                                            const int32_t *mult, const int32_t *rshift, int32_t zp, int32_t lo,
                                                            int32_t hi, uint8_t *out) {
    const __m256i i0 = _mm256_loadu_si256((const __m256i *)(const void *)init);
    const __m256i i1 = _mm256_loadu_si256((const __m256i *)(const void *)(init + 8));
    const perch_requant8_lanes q0 = perch_requant8_lanes_make(mult, rshift), q1 = perch_requant8_lanes_make(mult + 8, rshift + 8);
    const __m256i vzp = _mm256_set1_epi32(zp), vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi), z = _mm256_setzero_si256();
    // Four-pixel steps narrow two pixels (32 outputs) at a time with the row requantization's
    // perch_requant_narrow32_avx2 (zero point on int16, clamp on bytes): a third fewer
    // instructions than a full perch_requant8_avx2 per 8 outputs and a narrowing per pixel.
    const __m256i zp16 = _mm256_set1_epi16((short)zp), lo8 = _mm256_set1_epi8((char)lo), hi8 = _mm256_set1_epi8((char)hi);
    const int sig = lo < 0;
#define PERCH_QDW_REQ(x, qq) perch_requant8_avx2((x), z, (qq).right, 0, (qq).mult, (qq).multOdd, vzp, vlo, vhi)
#define PERCH_QDW_LD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
    // Pixels (a, b) and (c, d) (channels 0–7, 8–15 of each) → their 32 output bytes in order.
#define PERCH_QDW_TWO(a, b, c, d) perch_requant_narrow32_avx2(perch_requant8_lanes_mul((a), &q0), perch_requant8_lanes_mul((b), &q1), \
                                                              perch_requant8_lanes_mul((c), &q0), perch_requant8_lanes_mul((d), &q1), \
                                                              zp16, sig, lo8, hi8)
    for (long oy = 0; oy < oH; oy++) {
        uint8_t *o = out + oy * oW * 16;
        long ox = 0;
        for (; ox + 4 <= oW; ox += 4) {
            __m256i a0 = i0, b0 = i1, a1 = i0, b1 = i1, a2 = i0, b2 = i1, a3 = i0, b3 = i1;
            for (long kh = 0; kh < kH; kh++) {
                const int16_t *r = q + ((oy * sH + kh * dH) * Wq + ox) * 32;
                const int16_t *w = wp + kh * pairs * 32;
                for (long m = 0; m < pairs; m++) {
                    __m256i wl = PERCH_QDW_LD(w + m * 32), wh = PERCH_QDW_LD(w + m * 32 + 16);
                    const int16_t *rm = r + m * jstep * 32;
                    a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(PERCH_QDW_LD(rm), wl));
                    b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(PERCH_QDW_LD(rm + 16), wh));
                    a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(PERCH_QDW_LD(rm + 32), wl));
                    b1 = _mm256_add_epi32(b1, _mm256_madd_epi16(PERCH_QDW_LD(rm + 48), wh));
                    a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(PERCH_QDW_LD(rm + 64), wl));
                    b2 = _mm256_add_epi32(b2, _mm256_madd_epi16(PERCH_QDW_LD(rm + 80), wh));
                    a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(PERCH_QDW_LD(rm + 96), wl));
                    b3 = _mm256_add_epi32(b3, _mm256_madd_epi16(PERCH_QDW_LD(rm + 112), wh));
                }
            }
            _mm256_storeu_si256((__m256i *)(void *)(o + ox * 16), PERCH_QDW_TWO(a0, b0, a1, b1));
            _mm256_storeu_si256((__m256i *)(void *)(o + ox * 16 + 32), PERCH_QDW_TWO(a2, b2, a3, b3));
        }
        for (; ox < oW; ox++) {
            __m256i a0 = i0, b0 = i1;
            for (long kh = 0; kh < kH; kh++) {
                const int16_t *r = q + ((oy * sH + kh * dH) * Wq + ox) * 32;
                const int16_t *w = wp + kh * pairs * 32;
                for (long m = 0; m < pairs; m++) {
                    const int16_t *rm = r + m * jstep * 32;
                    a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(PERCH_QDW_LD(rm), PERCH_QDW_LD(w + m * 32)));
                    b0 = _mm256_add_epi32(b0, _mm256_madd_epi16(PERCH_QDW_LD(rm + 16), PERCH_QDW_LD(w + m * 32 + 16)));
                }
            }
            _mm_storeu_si128((__m128i *)(void *)(o + ox * 16), perch_lowbytes16_avx2(PERCH_QDW_REQ(a0, q0), PERCH_QDW_REQ(b0, q1)));
        }
    }
#undef PERCH_QDW_REQ
#undef PERCH_QDW_LD
#undef PERCH_QDW_TWO
}
#endif

#endif
