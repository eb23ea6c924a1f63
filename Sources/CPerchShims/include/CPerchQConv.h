#ifndef CPERCH_QCONV_H
#define CPERCH_QCONV_H
// int8 convolution pieces for NCHW tensors (PerchEngine's QConvOperator):
//
// - perch_qrequant_row_*: TFLite fixed-point requantization (single rounding) of a row of int32
//   accumulators that share one multiplier (one output channel), clamped and narrowed to 8 bits.
//   The SIMD paths compute exactly the scalar arithmetic (64-bit products, the same rounding),
//   so every ISA writes the same bytes.
// - perch_interleave4: packs K rows of P activation bytes into the "K4" layout [K/4][P][4] (four
//   consecutive k of one pixel in one 32-bit word), zero-padding rows and pixels.
// - perch_qconv_k4_*: C[n][p] = sum_k W[n][k] * X[k][p] with X in the K4 layout (uint8) and W
//   rows (int8, K padded to 4 with zeros): output channels × pixels, so the result is NCHW.
// - perch_qdw_row_*: one output row of a depthwise convolution: acc[x] += sum_t w[t] * row_t[x].
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#include <immintrin.h>
#endif

// Loops with constant trip counts after inlining (tile rows and column groups, the 16 vectors of
// a byte transpose), unrolled even at -Os (which Swift uses for imported C) so their vectors live
// in registers.
#if defined(__clang__)
#define PERCH_UNROLL _Pragma("clang loop unroll(full)")
#else
#define PERCH_UNROLL
#endif

/// Fixed-point requantization with one rounding (TFLite's TFLITE_SINGLE_ROUNDING form of
/// MultiplyByQuantizedMultiplier) + zero point + clamp: a positive shift first shifts acc left,
/// saturating; then acc·mult (exact, 64-bit) is divided by 2^(31 + right) rounding half up:
/// floor((acc·mult + 2^(30 + right)) / 2^(31 + right)). gemmlowp's two roundings (doubling high
/// multiply, then a rounding divide) moved a value within 2^−(right+1) of a half step to the other
/// side, one step from ONNX Runtime's float requantization on ~0.5% of outputs, and cost more.
static inline int32_t perch_requant1(int32_t acc, int32_t mult, int32_t shift, int32_t zp, int32_t lo, int32_t hi) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int64_t s = (int64_t)acc << left;
    int32_t x = s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
    int64_t t = (int64_t)x * (int64_t)mult + ((int64_t)1 << (30 + right));
    int32_t v = (int32_t)(t >> (31 + right)) + zp;  // |t| < 2^62: the quotient fits int32
    return v < lo ? lo : (v > hi ? hi : v);
}

/// out[i] = requant(acc[i] + add) for i < n (scalar reference).
static inline void perch_qrequant_row_scalar(const int32_t *acc, size_t n, int32_t add, int32_t mult, int32_t shift,
                                             int32_t zp, int32_t lo, int32_t hi, uint8_t *out) {
    for (size_t i = 0; i < n; i++) out[i] = (uint8_t)perch_requant1((int32_t)((uint32_t)acc[i] + (uint32_t)add), mult, shift, zp, lo, hi);
}

/// Scalar reference of the K4 conv GEMM. X: [K4][ldx][4] bytes; W: N rows of 4*K4 int8 (stride ldw);
/// C: N rows of P int32 (stride ldc).
static inline void perch_qconv_k4_scalar(size_t N, size_t P, size_t K4, const uint8_t *X, size_t ldx, const int8_t *W,
                                         size_t ldw, int32_t *C, size_t ldc) {
    for (size_t n = 0; n < N; n++) {
        const int8_t *w = W + n * ldw;
        int32_t *c = C + n * ldc;
        for (size_t p = 0; p < P; p++) c[p] = 0;
        for (size_t k4 = 0; k4 < K4; k4++) {
            const uint8_t *x = X + k4 * ldx * 4;
            int32_t w0 = w[4 * k4], w1 = w[4 * k4 + 1], w2 = w[4 * k4 + 2], w3 = w[4 * k4 + 3];
            for (size_t p = 0; p < P; p++)
                c[p] += x[4 * p] * w0 + x[4 * p + 1] * w1 + x[4 * p + 2] * w2 + x[4 * p + 3] * w3;
        }
    }
}

/// Scalar reference of a depthwise row: acc[x] = init + sum_t w[t] * rows[t][x], x < n.
static inline void perch_qdw_row_scalar(const uint8_t *const *rows, const int32_t *w, size_t taps, size_t n,
                                        int32_t init, int32_t *acc) {
    for (size_t x = 0; x < n; x++) acc[x] = init;
    for (size_t t = 0; t < taps; t++) {
        const uint8_t *r = rows[t];
        int32_t wt = w[t];
        for (size_t x = 0; x < n; x++) acc[x] += (int32_t)r[x] * wt;
    }
}

/// dst[k4][p][j] = src[(4*k4+j)*srcStride + p] ^ flip for k < K, p < P; zeros for k in K..<4*K4
/// and p in P..<Pp.
static inline void perch_interleave4_scalar(const uint8_t *src, size_t srcStride, size_t K, size_t P, size_t Pp,
                                            uint8_t flip, uint8_t *dst) {
    size_t K4 = (K + 3) / 4;
    for (size_t k4 = 0; k4 < K4; k4++) {
        uint8_t *d = dst + k4 * Pp * 4;
        for (size_t j = 0; j < 4; j++) {
            size_t k = 4 * k4 + j;
            if (k < K) {
                const uint8_t *s = src + k * srcStride;
                for (size_t p = 0; p < P; p++) d[4 * p + j] = s[p] ^ flip;
            } else {
                for (size_t p = 0; p < P; p++) d[4 * p + j] = 0;
            }
        }
        memset(d + 4 * P, 0, 4 * (Pp - P));
    }
}

/// Row-major int8 GEMM (MatMul layout), scalar reference: C[m][n] = sum_k A[m][k] * B[k][n] with A
/// uint8 rows (stride lda, 4*K4 bytes each, zero padded) and B packed as [K4][ldb][4] int8 (ldb >= N).
static inline void perch_qgemm_rm_scalar(size_t M, size_t N, size_t K4, const uint8_t *A, size_t lda, const int8_t *B,
                                         size_t ldb, int32_t *C, size_t ldc) {
    for (size_t m = 0; m < M; m++) {
        const uint8_t *a = A + m * lda;
        int32_t *c = C + m * ldc;
        for (size_t n = 0; n < N; n++) c[n] = 0;
        for (size_t k4 = 0; k4 < K4; k4++) {
            const int8_t *b = B + k4 * ldb * 4;
            int32_t a0 = a[4 * k4], a1 = a[4 * k4 + 1], a2 = a[4 * k4 + 2], a3 = a[4 * k4 + 3];
            for (size_t n = 0; n < N; n++) c[n] += a0 * b[4 * n] + a1 * b[4 * n + 1] + a2 * b[4 * n + 2] + a3 * b[4 * n + 3];
        }
    }
}

/// out[j] = requant(acc[j] + add[j]) with one multiplier/shift per column (scalar reference).
static inline void perch_qrequant_cols_scalar(const int32_t *acc, size_t n, const int32_t *add, const int32_t *mult,
                                              const int32_t *shift, int32_t zp, int32_t lo, int32_t hi, uint8_t *out) {
    for (size_t j = 0; j < n; j++)
        out[j] = (uint8_t)perch_requant1((int32_t)((uint32_t)acc[j] + (uint32_t)add[j]), mult[j], shift[j], zp, lo, hi);
}

/// QuantizeLinear fast path (per-tensor, float32 → 8 bit): q = clamp(round_half_even(x / scale) + z).
/// Rounds with the 1.5·2^23 trick (exact ties-to-even for |v| < 2^22; v is clamped to ±4e6 first,
/// far outside any 8-bit range), so the loop vectorizes instead of calling nearbyintf per element.
/// NaN maps to z, as the Swift reference does.
static inline void perch_quantize_f32_8bit(const float *src, size_t n, float scale, float z, float lo, float hi,
                                           uint8_t *dst) {
    const float magic = 12582912.0f;
    for (size_t i = 0; i < n; i++) {
        float v = src[i] / scale;
        int nan = v != v;
        v = v < -4e6f ? -4e6f : (v > 4e6f ? 4e6f : v);
        float q = ((v + magic) - magic) + z;  /* not folded: no fast-math */
        q = q < lo ? lo : (q > hi ? hi : q);
        q = nan ? z : q;
        int32_t iq = (int32_t)q;
        dst[i] = (uint8_t)iq;
    }
}

/// MaxPool of one 8-bit channel without padding or dilation: the kH rows of a window are first
/// max-ed vertically into `tmp` (inW bytes + 16 of slack; a loop compilers vectorize), then kW
/// columns at stride sW horizontally. `flip` = 0x80 compares int8 codes as uint8 (order-preserving).
static inline void perch_maxpool8_plane(const uint8_t *x, size_t inW, uint8_t *y, size_t outH, size_t outW, size_t kH,
                                        size_t kW, size_t sH, size_t sW, uint8_t flip, uint8_t *tmp) {
    size_t used = (outW - 1) * sW + kW;
    for (size_t oh = 0; oh < outH; oh++) {
        const uint8_t *r0 = x + oh * sH * inW;
        size_t i = 0;
#if defined(__x86_64__)
        // The vertical max 16 columns at a time (max commutes with the flip, applied once).
        for (; i + 16 <= used; i += 16) {
            __m128i m = _mm_loadu_si128((const __m128i *)(const void *)(r0 + i));
            if (flip) {
                const __m128i f = _mm_set1_epi8((char)0x80);
                m = _mm_xor_si128(m, f);
                for (size_t kh = 1; kh < kH; kh++)
                    m = _mm_max_epu8(m, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(r0 + kh * inW + i)), f));
            } else {
                for (size_t kh = 1; kh < kH; kh++) m = _mm_max_epu8(m, _mm_loadu_si128((const __m128i *)(const void *)(r0 + kh * inW + i)));
            }
            _mm_storeu_si128((__m128i *)(void *)(tmp + i), m);
        }
#endif
        for (; i < used; i++) {
            uint8_t m = r0[i] ^ flip;
            for (size_t kh = 1; kh < kH; kh++) {
                uint8_t v = r0[kh * inW + i] ^ flip;
                m = v > m ? v : m;
            }
            tmp[i] = m;
        }
        uint8_t *o = y + oh * outW;
        if (kW == 2 && sW == 2) {
            size_t ow = 0;
#if defined(__x86_64__)
            // 16 outputs from 32 bytes: max of each 16-bit pair's bytes lands in its low byte.
            const __m128i lowBytes = _mm_set1_epi16(0x00FF), f = _mm_set1_epi8((char)flip);
            for (; ow + 16 <= outW; ow += 16) {
                __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(tmp + 2 * ow));
                __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(tmp + 2 * ow + 16));
                a = _mm_and_si128(_mm_max_epu8(a, _mm_srli_epi16(a, 8)), lowBytes);
                b = _mm_and_si128(_mm_max_epu8(b, _mm_srli_epi16(b, 8)), lowBytes);
                _mm_storeu_si128((__m128i *)(void *)(o + ow), _mm_xor_si128(_mm_packus_epi16(a, b), f));
            }
#endif
            for (; ow < outW; ow++) {
                uint8_t a = tmp[2 * ow], b = tmp[2 * ow + 1];
                o[ow] = (a > b ? a : b) ^ flip;
            }
        } else if (kW == 3 && sW == 2) {
            size_t ow = 0;
#if defined(__x86_64__)
            // As 2×2/2, then the next pair's low byte (column 2·ow + 2). Reads one byte past the
            // row's last used column (the caller's tmp has slack).
            const __m128i lowBytes = _mm_set1_epi16(0x00FF), f = _mm_set1_epi8((char)flip);
            for (; ow + 16 <= outW; ow += 16) {
                const uint8_t *t = tmp + 2 * ow;
                __m128i a = _mm_loadu_si128((const __m128i *)(const void *)t);
                __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(t + 16));
                __m128i a2 = _mm_loadu_si128((const __m128i *)(const void *)(t + 2));
                __m128i b2 = _mm_loadu_si128((const __m128i *)(const void *)(t + 18));
                a = _mm_max_epu8(_mm_and_si128(_mm_max_epu8(a, _mm_srli_epi16(a, 8)), lowBytes), _mm_and_si128(a2, lowBytes));
                b = _mm_max_epu8(_mm_and_si128(_mm_max_epu8(b, _mm_srli_epi16(b, 8)), lowBytes), _mm_and_si128(b2, lowBytes));
                _mm_storeu_si128((__m128i *)(void *)(o + ow), _mm_xor_si128(_mm_packus_epi16(a, b), f));
            }
#endif
            for (; ow < outW; ow++) {
                const uint8_t *t = tmp + 2 * ow;
                uint8_t m = t[0] > t[1] ? t[0] : t[1];
                o[ow] = (t[2] > m ? t[2] : m) ^ flip;
            }
        } else if (sW == 1) {
            // Stride 1 (GoogLeNet's 3×3/1 branches): 16 windows at a time, kW shifted loads.
            size_t ow = 0;
#if defined(__x86_64__)
            const __m128i f = _mm_set1_epi8((char)flip);
            for (; ow + 16 <= outW; ow += 16) {
                __m128i m = _mm_loadu_si128((const __m128i *)(const void *)(tmp + ow));
                for (size_t kw = 1; kw < kW; kw++) m = _mm_max_epu8(m, _mm_loadu_si128((const __m128i *)(const void *)(tmp + ow + kw)));
                _mm_storeu_si128((__m128i *)(void *)(o + ow), _mm_xor_si128(m, f));
            }
#endif
            for (; ow < outW; ow++) {
                uint8_t m = tmp[ow];
                for (size_t kw = 1; kw < kW; kw++) m = tmp[ow + kw] > m ? tmp[ow + kw] : m;
                o[ow] = m ^ flip;
            }
        } else {
            for (size_t ow = 0; ow < outW; ow++) {
                const uint8_t *t = tmp + ow * sW;
                uint8_t m = t[0];
                for (size_t kw = 1; kw < kW; kw++) m = t[kw] > m ? t[kw] : m;
                o[ow] = m ^ flip;
            }
        }
    }
}

/// An 8-bit plane copied into `dst` (hp rows of wp bytes) at row pH, column pW, each byte XORed
/// with `flip`; the border and whatever of the window lies past the input get `pad`.
static inline void perch_pad_plane_u8(const uint8_t *x, size_t inH, size_t inW, size_t pH, size_t pW, size_t hp, size_t wp,
                                      uint8_t flip, uint8_t pad, uint8_t *dst) {
    memset(dst, pad, hp * wp);
    size_t cols = pW >= wp ? 0 : (inW < wp - pW ? inW : wp - pW);
    for (size_t r = 0; r < inH && r + pH < hp; r++) {
        uint8_t *d = dst + (r + pH) * wp + pW;
        const uint8_t *s = x + r * inW;
        for (size_t j = 0; j < cols; j++) d[j] = s[j] ^ flip;
    }
}

/// dst[i] = max(a[i], b[i]) for i < n (bytes).
static inline void perch_max_bytes(const uint8_t *a, const uint8_t *b, size_t n, uint8_t *dst) {
    size_t i = 0;
#if defined(__x86_64__)
    for (; i + 16 <= n; i += 16)
        _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm_max_epu8(_mm_loadu_si128((const __m128i *)(const void *)(a + i)),
                                                                    _mm_loadu_si128((const __m128i *)(const void *)(b + i))));
#endif
    for (; i < n; i++) dst[i] = a[i] > b[i] ? a[i] : b[i];
}

/// Stride-1 MaxPool of one 8-bit channel with padding (GoogLeNet's 3×3/1 pad-1 branches, mostly
/// on 13×13 and 27×27 maps) as passes over whole flat planes instead of row by row: the input is
/// copied into a plane bordered with the lowest code (`work`, hp·wp bytes, hp = outH + kH − 1,
/// wp = outW + kW − 1), flipped so bytes order as unsigned; the vertical window max of every
/// output row is one flat max over the plane shifted by whole rows, the horizontal one a flat max
/// shifted by columns (wrapping columns are dropped), so a 13×13 channel is a few dozen vector ops.
/// `work` holds 3·hp·wp + 16 bytes.
static inline void perch_maxpool8_s1_plane(const uint8_t *x, size_t inH, size_t inW, size_t pH, size_t pW, size_t outH,
                                           size_t outW, size_t kH, size_t kW, uint8_t flip, uint8_t *y, uint8_t *work) {
    size_t hp = outH + kH - 1, wp = outW + kW - 1, n = outH * wp;
    uint8_t *plane = work, *v = work + hp * wp, *h = v + hp * wp;
    perch_pad_plane_u8(x, inH, inW, pH, pW, hp, wp, flip, 0, plane);
    // v[i] = max over kh of plane[i + kh·wp] for i < outH·wp. h's windows of the dropped columns
    // past outW read up to kW − 1 bytes beyond (inside `work`, never used).
    memcpy(v, plane, n);
    for (size_t kh = 1; kh < kH; kh++) perch_max_bytes(v, plane + kh * wp, n, v);
    memcpy(h, v, n);
    for (size_t kw = 1; kw < kW; kw++) perch_max_bytes(h, v + kw, n, h);
    for (size_t r = 0; r < outH; r++) {
        const uint8_t *s = h + r * wp;
        uint8_t *d = y + r * outW;
        for (size_t j = 0; j < outW; j++) d[j] = s[j] ^ flip;
    }
}

/// dst[i] = src[2i] ^ flip for i < n (a stride-2 row), reading no byte past src[2(n − 1)]. SSE2:
/// the even bytes of 32 input bytes are the low bytes of their 16-bit pairs, packed with unsigned
/// saturation (which keeps 0..255 as is), 16 outputs at a time.
#if defined(__x86_64__)
/// perch_gather_even_bytes with AVX-512 BW: 32 outputs per step from one masked 63-byte load
/// (never past src[2(n − 1)]) narrowed word to byte (vpmovwb keeps each even byte), the tail by
/// masks instead of a byte loop — a stride-2 conv's im2col rows are often 32 or fewer wide, and
/// the byte loop was half of such a QLinearConv's time.
__attribute__((target("avx512bw,avx512vl,avx512f"))) static inline void perch_gather_even_bytes_avx512(const uint8_t *src, long n,
                                                                                                        uint8_t flip, uint8_t *dst) {
    const __m256i f = _mm256_set1_epi8((char)flip);
    for (long i = 0; i < n; i += 32) {
        long left = n - i < 32 ? n - i : 32;
        __mmask64 lm = (((__mmask64)1) << (2 * left - 1)) - 1;
        __m512i v = _mm512_maskz_loadu_epi8(lm, src + 2 * i);
        __m256i b = _mm256_xor_si256(_mm512_cvtepi16_epi8(v), f);
        _mm256_mask_storeu_epi8(dst + i, (__mmask32)(left == 32 ? 0xFFFFFFFFu : ((1u << left) - 1)), b);
    }
}
#endif

static inline void perch_gather_even_bytes(const uint8_t *src, long n, uint8_t flip, uint8_t *dst) {
    long i = 0;
#if defined(__x86_64__)
    if (n >= 8 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
        perch_gather_even_bytes_avx512(src, n, flip, dst);
        return;
    }
    const __m128i lowBytes = _mm_set1_epi16(0x00FF), f = _mm_set1_epi8((char)flip);
    for (; i + 17 <= n; i += 16) {  // reads up to src[2i + 31] < src[2(n − 1)]
        __m128i a = _mm_and_si128(_mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i)), lowBytes);
        __m128i b = _mm_and_si128(_mm_loadu_si128((const __m128i *)(const void *)(src + 2 * i + 16)), lowBytes);
        _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm_xor_si128(_mm_packus_epi16(a, b), f));
    }
#endif
    for (; i < n; i++) dst[i] = src[2 * i] ^ flip;
}

/// Depthwise input planes, one per phase (rh, rw) of the strides: plane rh·sW + rw
/// (`planeStride` bytes apart), row i (< planeH), column j (< planeW) holds the padded input at
/// (rh + i·sH, rw + j·sW), i.e. input (rh + i·sH − pH, rw + j·sW − pW) ^ flip, or `pad` outside the
/// input. Every tap of a strided depthwise convolution then reads one plane contiguously, for all
/// output rows at once. `hp` is the padded height the convolution reads.
static inline void perch_qdw_planes(const uint8_t *x, long inH, long inW, uint8_t flip, uint8_t pad, long pH, long pW,
                                    long hp, long sH, long sW, long planeH, long planeW, long planeStride, uint8_t *dst) {
    for (long rh = 0; rh < sH; rh++) {
        for (long r = 0; r < sW; r++) {
            uint8_t *plane = dst + (rh * sW + r) * planeStride;
            // Valid j: 0 <= r + j*sW - pW < inW.
            long jLo = pW - r > 0 ? (pW - r + sW - 1) / sW : 0;
            long jHi = inW + pW - r > 0 ? (inW + pW - r + sW - 1) / sW : 0;
            if (jHi > planeW) jHi = planeW;
            if (jLo > jHi) jLo = jHi;
            // One fill of the whole plane with the zero point, then only the input's rows and columns.
            memset(plane, pad, (size_t)(planeH * planeW));
            for (long i = 0; i < planeH; i++) {
                long y = rh + i * sH;
                if (y >= hp) break;
                uint8_t *d = plane + i * planeW;
                long iy = y - pH;
                if (iy < 0 || iy >= inH) continue;
                const uint8_t *xr = x + iy * inW + r - pW;
                if (sW == 1) {
                    if (flip) {
                        for (long j = jLo; j < jHi; j++) d[j] = xr[j] ^ flip;
                    } else {
                        memcpy(d + jLo, xr + jLo, (size_t)(jHi - jLo));
                    }
                } else if (sW == 2) {
                    perch_gather_even_bytes(xr + 2 * jLo, jHi - jLo, flip, d + jLo);
                } else {
                    for (long j = jLo; j < jHi; j++) d[j] = xr[j * sW] ^ flip;
                }
            }
        }
    }
}

/// im2col of one group of a 2-D conv: row (c, kh, kw) of `dst` (stride ld) holds the input bytes
/// under output pixels p0..<p0+m (raw bytes; padded positions get `pad`).
static inline void perch_qim2col_rows(const uint8_t *x, long inPerGroup, long inH, long inW, long outW, long kH, long kW,
                                      long sH, long sW, long dH, long dW, long pH, long pW, long p0, long m, long ld,
                                      uint8_t pad, uint8_t *dst) {
    long row = 0;
    long inSize = inH * inW;
    for (long c = 0; c < inPerGroup; c++) {
        const uint8_t *xc = x + c * inSize;
        for (long kh = 0; kh < kH; kh++) {
            for (long kw = 0; kw < kW; kw++) {
                uint8_t *d = dst + row * ld;
                row++;
                long p = p0, end = p0 + m;
                long off = kw * dW - pW;
                while (p < end) {
                    long oh = p / outW, ow0 = p - oh * outW;
                    long n = outW - ow0 < end - p ? outW - ow0 : end - p;
                    uint8_t *dd = d + (p - p0);
                    long ih = oh * sH - pH + kh * dH;
                    if (ih < 0 || ih >= inH) {
                        memset(dd, pad, (size_t)n);
                    } else {
                        const uint8_t *xr = xc + ih * inW;
                        if (sW == 1) {
                            long lo = -off - ow0;
                            lo = lo < 0 ? 0 : (lo > n ? n : lo);
                            long hi = inW - off - ow0;
                            hi = hi > n ? n : hi;
                            hi = hi < lo ? lo : hi;
                            if (lo > 0) memset(dd, pad, (size_t)lo);
                            if (hi > lo) memcpy(dd + lo, xr + ow0 + lo + off, (size_t)(hi - lo));
                            if (n > hi) memset(dd + hi, pad, (size_t)(n - hi));
                        } else {
                            // Columns i in [lo, hi) read the input; the rest are padding.
                            long lo = 0, hi = n;
                            while (lo < n && (ow0 + lo) * sW + off < 0) lo++;
                            while (hi > lo && (ow0 + hi - 1) * sW + off >= inW) hi--;
                            if (lo > 0) memset(dd, pad, (size_t)lo);
                            if (n > hi) memset(dd + hi, pad, (size_t)(n - hi));
                            const uint8_t *src = xr + ow0 * sW + off;  // column i at src[i·sW]
                            if (sW == 2) {
                                perch_gather_even_bytes(src + 2 * lo, hi - lo, 0, dd + lo);
                            } else {
                                for (long i = lo; i < hi; i++) dd[i] = src[i * sW];
                            }
                        }
                    }
                    p += n;
                }
            }
        }
    }
}

/// Zero-point-padded "phase planes" of `channels` input planes for perch_qim2col4: each channel's
/// perch_qdw_planes (phase (rh, rw) holds padded rows rh, rh+sH, … and columns rw, rw+sW, …,
/// phaseH × phaseW of them; with stride 1 the single phase is the padded plane), channel c's
/// sH·sW phases at dst + c·sH·sW·phaseH·phaseW. A strided conv's tap then reads one contiguous
/// run per output row. Bytes are XORed with `flip`, padding is `pad`.
static inline void perch_qpad_planes(const uint8_t *x, long channels, long inH, long inW, long top, long left, long sH, long sW,
                                     long phaseH, long phaseW, uint8_t flip, uint8_t pad, uint8_t *dst) {
    long phase = phaseH * phaseW;
    for (long c = 0; c < channels; c++)
        perch_qdw_planes(x + c * inH * inW, inH, inW, flip, pad, top, left, sH * phaseH, sH, sW, phaseH, phaseW, phase,
                         dst + c * sH * sW * phase);
}

/// n pixels of 4 source rows interleaved into d[4·i + j] = r[j][i] ^ flip, zeros for a NULL row
/// (a row past K): one K4 group of perch_interleave4 and perch_qim2col4_s1.
static inline void perch_interleave4_span(const uint8_t *const r[4], long n, uint8_t flip, uint8_t *d) {
    long i = 0;
#if defined(__x86_64__)
    // SSE2 (the x86-64 baseline): 16 pixels, then 8, per step.
    const __m128i f = _mm_set1_epi8((char)flip), z = _mm_setzero_si128();
    for (; i + 16 <= n; i += 16) {
        __m128i v[4];
        for (int j = 0; j < 4; j++) v[j] = r[j] ? _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(r[j] + i)), f) : z;
        __m128i ab0 = _mm_unpacklo_epi8(v[0], v[1]), ab1 = _mm_unpackhi_epi8(v[0], v[1]);
        __m128i ce0 = _mm_unpacklo_epi8(v[2], v[3]), ce1 = _mm_unpackhi_epi8(v[2], v[3]);
        _mm_storeu_si128((__m128i *)(void *)(d + 4 * i), _mm_unpacklo_epi16(ab0, ce0));
        _mm_storeu_si128((__m128i *)(void *)(d + 4 * i + 16), _mm_unpackhi_epi16(ab0, ce0));
        _mm_storeu_si128((__m128i *)(void *)(d + 4 * i + 32), _mm_unpacklo_epi16(ab1, ce1));
        _mm_storeu_si128((__m128i *)(void *)(d + 4 * i + 48), _mm_unpackhi_epi16(ab1, ce1));
    }
    for (; i + 8 <= n; i += 8) {
        __m128i v[4];
        for (int j = 0; j < 4; j++) v[j] = r[j] ? _mm_xor_si128(_mm_loadl_epi64((const __m128i *)(const void *)(r[j] + i)), f) : z;
        __m128i ab = _mm_unpacklo_epi8(v[0], v[1]), ce = _mm_unpacklo_epi8(v[2], v[3]);
        _mm_storeu_si128((__m128i *)(void *)(d + 4 * i), _mm_unpacklo_epi16(ab, ce));
        _mm_storeu_si128((__m128i *)(void *)(d + 4 * i + 16), _mm_unpackhi_epi16(ab, ce));
    }
#endif
    for (; i < n; i++)
        for (int j = 0; j < 4; j++) d[4 * i + j] = r[j] ? (uint8_t)(r[j][i] ^ flip) : 0;
}

/// perch_qim2col_rows + perch_interleave4 in one pass, from perch_qpad_planes' phase planes
/// (sH·sW phases of phaseH × phaseW per channel): dst[k4][p − p0][j] for pixels p0..<p0+m and
/// k = (c, kh, kw) = 4·k4 + j (zeros past K and for pixels m..<Pp). Each output row's pixels read
/// one contiguous run of a phase row per k: on VGG's 3×3 layers the two passes spent 12% of the
/// layer in the im2col's per-row copies and border checks, on YOLO's stride-2 ones 11% of the model.
static inline void perch_qim2col4(const uint8_t *planes, long inPerGroup, long sH, long sW, long phaseH, long phaseW, long outW, long kH,
                                  long kW, long dH, long dW, long p0, long m, long Pp, uint8_t *dst) {
    long K = inPerGroup * kH * kW, K4 = (K + 3) / 4, taps = kH * kW, phase = phaseH * phaseW;
    for (long k4 = 0; k4 < K4; k4++) {
        uint8_t *d = dst + k4 * Pp * 4;
        long off[4];
        int live[4];
        for (int j = 0; j < 4; j++) {
            long k = 4 * k4 + j;
            live[j] = k < K;
            long c = live[j] ? k / taps : 0, t = live[j] ? k % taps : 0;
            long ph = (t / kW) * dH, pw = (t % kW) * dW;  // the tap's offset in the padded plane
            off[j] = ((c * sH + ph % sH) * sW + pw % sW) * phase + (ph / sH) * phaseW + pw / sW;
        }
        long p = p0, end = p0 + m;
        while (p < end) {
            long oh = p / outW, ow0 = p - oh * outW;
            long n = outW - ow0 < end - p ? outW - ow0 : end - p;
            const uint8_t *r[4];
            for (int j = 0; j < 4; j++) r[j] = live[j] ? planes + off[j] + oh * phaseW + ow0 : NULL;
            perch_interleave4_span(r, n, 0, d + 4 * (p - p0));
            p += n;
        }
        memset(d + 4 * m, 0, (size_t)(4 * (Pp - m)));
    }
}

/// perch_qpad_planes for channels in groups of four, interleaved: group c4's phase planes at
/// dst + c4·4·sH·sW·phaseH·phaseW hold d[4·i + j] = channel 4·c4 + j's byte i. `tmp` holds one group's
/// four channels of planes (4·sH·sW·phaseH·phaseW bytes). `channels` must be a multiple of 4.
static inline void perch_qpad_planes_c4(const uint8_t *x, long channels, long inH, long inW, long top, long left, long sH, long sW,
                                        long phaseH, long phaseW, uint8_t flip, uint8_t pad, uint8_t *tmp, uint8_t *dst) {
    long planes = sH * sW * phaseH * phaseW;
    for (long c4 = 0; c4 < channels / 4; c4++) {
        perch_qpad_planes(x + 4 * c4 * inH * inW, 4, inH, inW, top, left, sH, sW, phaseH, phaseW, flip, pad, tmp);
        const uint8_t *r[4] = {tmp, tmp + planes, tmp + 2 * planes, tmp + 3 * planes};
        perch_interleave4_span(r, planes, 0, dst + 4 * c4 * planes);
    }
}

/// perch_qim2col4 from perch_qpad_planes_c4's interleaved planes, with K ordered (c / 4, kh, kw,
/// c % 4) instead of (c, kh, kw): K4 group (c4, kh, kw) of an output row is one contiguous run of
/// the group's phase plane, so packing is a copy per output row (perch_qim2col4 interleaves
/// four separate runs per group, 11% of VGG's int8 time). The weights' K must be permuted to
/// match. `inPerGroup` must be a multiple of 4.
static inline void perch_qim2col_c4(const uint8_t *planes, long inPerGroup, long sH, long sW, long phaseH, long phaseW, long outW,
                                    long kH, long kW, long dH, long dW, long p0, long m, long Pp, uint8_t *dst) {
    long phase = phaseH * phaseW, taps = kH * kW;
    for (long c4 = 0; c4 < inPerGroup / 4; c4++) {
        for (long t = 0; t < taps; t++) {
            uint8_t *d = dst + (c4 * taps + t) * Pp * 4;
            long ph = (t / kW) * dH, pw = (t % kW) * dW;
            const uint8_t *src = planes + 4 * ((c4 * sH * sW + (ph % sH) * sW + pw % sW) * phase + (ph / sH) * phaseW + pw / sW);
            long p = p0, end = p0 + m;
            while (p < end) {
                long oh = p / outW, ow0 = p - oh * outW;
                long n = outW - ow0 < end - p ? outW - ow0 : end - p;
                memcpy(d + 4 * (p - p0), src + 4 * (oh * phaseW + ow0), (size_t)(4 * n));
                p += n;
            }
            memset(d + 4 * m, 0, (size_t)(4 * (Pp - m)));
        }
    }
}

/// QLinearAdd/Mul before requantization: tmp[i] = ta[a[i·sA]] + tb[b[i·sB]] (mul = 0) or
/// ta[a[i·sA]] · tb[b[i·sB]] (mul = 1), with 256-entry int32 tables of the per-operand terms.
static inline void perch_qbinary_terms(const uint8_t *a, long sA, const uint8_t *b, long sB, size_t n, const int32_t *ta,
                                       const int32_t *tb, int mul, int32_t *tmp) {
    if (mul) {
        for (size_t i = 0; i < n; i++) tmp[i] = ta[a[i * sA]] * tb[b[i * sB]];
    } else if (sA == 1 && sB == 1) {
        for (size_t i = 0; i < n; i++) tmp[i] = (int32_t)((uint32_t)ta[a[i]] + (uint32_t)tb[b[i]]);
    } else {
        for (size_t i = 0; i < n; i++) tmp[i] = (int32_t)((uint32_t)ta[a[i * sA]] + (uint32_t)tb[b[i * sB]]);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// perch_interleave4_scalar's layout, each K4 group through the SSE2 perch_interleave4_span.
static inline void perch_interleave4(const uint8_t *src, size_t srcStride, size_t K, size_t P, size_t Pp,
                                     uint8_t flip, uint8_t *dst) {
    size_t K4 = (K + 3) / 4;
    for (size_t k4 = 0; k4 < K4; k4++) {
        uint8_t *d = dst + k4 * Pp * 4;
        const uint8_t *r[4];
        for (int j = 0; j < 4; j++) r[j] = 4 * k4 + j < K ? src + (4 * k4 + j) * srcStride : NULL;
        perch_interleave4_span(r, (long)P, flip, d);
        memset(d + 4 * P, 0, 4 * (Pp - P));
    }
}

#define PERCH_AVX512_TARGET __attribute__((target("avx512vnni,avx512bw,avx512f,avx512vl,avx512dq")))

/// 16 lanes of perch_requant1 with one multiplier: bits 31..62 of t = x·mult + 2^(30 + right)
/// (even lanes: shifted down into the low dword; odd lanes: up into the high dword) are
/// floor(t / 2^31), exact in 32 bits since |t| < 2^62; an arithmetic shift by `right` finishes
/// floor(t / 2^(31 + right)).
PERCH_AVX512_TARGET static inline __m512i perch_requant16_avx512(__m512i x, int left, int right, __m512i vmult,
                                                                 __m512i vzp, __m512i vlo, __m512i vhi) {
    if (left > 0) {
        __m512i hiT = _mm512_set1_epi32(INT32_MAX >> left), loT = _mm512_set1_epi32(INT32_MIN >> left);
        __mmask16 over = _mm512_cmpgt_epi32_mask(x, hiT), under = _mm512_cmplt_epi32_mask(x, loT);
        x = _mm512_sllv_epi32(x, _mm512_set1_epi32(left));
        x = _mm512_mask_mov_epi32(x, over, _mm512_set1_epi32(INT32_MAX));
        x = _mm512_mask_mov_epi32(x, under, _mm512_set1_epi32(INT32_MIN));
    }
    const __m512i k = _mm512_set1_epi64((int64_t)1 << (30 + right));
    __m512i pe = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, vmult), k), 31);
    __m512i po = _mm512_slli_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), vmult), k), 1);
    __m512i y = _mm512_mask_blend_epi32(0xAAAA, pe, po);
    if (right > 0) y = _mm512_srai_epi32(y, (unsigned)right);
    y = _mm512_add_epi32(y, vzp);
    return _mm512_min_epi32(_mm512_max_epi32(y, vlo), vhi);
}

/// 16 lanes of perch_requant1 for shift <= 0 (right = −shift) with one 64-bit arithmetic shift:
/// (x·mult + k) >> sh with k = 2^(30 + right), sh = 31 + right, the low dwords gathered.
/// The same without the zero point (or with it folded into k, see perch_qchannel_requant).
PERCH_AVX512_TARGET static inline __m512i perch_requant16_right_raw_avx512(__m512i x, __m512i vmult, __m512i k, __m128i sh) {
    __m512i te = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, vmult), k), sh);
    __m512i to = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), vmult), k), sh);
    // Low dwords: even lanes from te, odd lanes from to (its dword 0 and 2 of each 128-bit lane).
    return _mm512_mask_shuffle_epi32(te, 0xAAAA, to, (_MM_PERM_ENUM)0x80);
}

PERCH_AVX512_TARGET static inline __m512i perch_requant16_right_unclamped_avx512(__m512i x, __m512i vmult, __m512i k, __m128i sh,
                                                                                 __m512i vzp) {
    return _mm512_add_epi32(perch_requant16_right_raw_avx512(x, vmult, k, sh), vzp);
}

PERCH_AVX512_TARGET static inline __m512i perch_requant16_right_avx512(__m512i x, __m512i vmult, __m512i k, __m128i sh,
                                                                       __m512i vzp, __m512i vlo, __m512i vhi) {
    __m512i y = perch_requant16_right_unclamped_avx512(x, vmult, k, sh, vzp);
    return _mm512_min_epi32(_mm512_max_epi32(y, vlo), vhi);
}

/// Four vectors of 16 requantized int32 (zero point added, not clamped) → their 64 bytes in
/// order: saturating packs to int16, then to uint8 (`unsignedOut`) or int8 — the same as clamping
/// to that type's range — and the clamp to [lo, hi] on the bytes, once per 64 outputs instead of
/// per 16. [lo, hi] lies inside the packed type's range.
PERCH_AVX512_TARGET static inline __m512i perch_pack64_clamped_avx512(__m512i y0, __m512i y1, __m512i y2, __m512i y3, int unsignedOut,
                                                                      __m512i lo8, __m512i hi8) {
    // Each 128-bit lane of the packs holds 4 outputs of each vector: gathered per vector.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i w01 = _mm512_packs_epi32(y0, y1), w23 = _mm512_packs_epi32(y2, y3);
    if (unsignedOut) {
        __m512i b = _mm512_permutexvar_epi32(order, _mm512_packus_epi16(w01, w23));
        return _mm512_min_epu8(_mm512_max_epu8(b, lo8), hi8);
    }
    __m512i b = _mm512_permutexvar_epi32(order, _mm512_packs_epi16(w01, w23));
    return _mm512_min_epi8(_mm512_max_epi8(b, lo8), hi8);
}

/// QLinearAdd of two runs of n codes with TFLite's integer formula, 64 outputs per step:
/// y = clamp(requant(MBQM((a − za)·2^20, qa) + MBQM((b − zb)·2^20, qb), qOut) + zy, lo, hi), every
/// multiplier a right shift (ra, rb, rOut ≤ 31; the caller checks). The same integers as
/// perch_requant1 over the operands' term tables, computed instead of looked up: the 64 KiB pair
/// table's one load per element ran at 0.8 ns per element. signedA/B: the codes are int8.
PERCH_AVX512_TARGET static inline void perch_qadd_avx512(const uint8_t *a, int signedA, int32_t za, int32_t ma, int32_t ra, const uint8_t *b,
                                                         int signedB, int32_t zb, int32_t mb, int32_t rb, int32_t mo, int32_t ro, int32_t zy,
                                                         int32_t lo, int32_t hi, size_t n, uint8_t *out) {
    const __m512i vma = _mm512_set1_epi64(ma), vka = _mm512_set1_epi64((int64_t)1 << (30 + ra));
    const __m512i vmb = _mm512_set1_epi64(mb), vkb = _mm512_set1_epi64((int64_t)1 << (30 + rb));
    const __m512i vmo = _mm512_set1_epi64(mo), vko = _mm512_set1_epi64((int64_t)1 << (30 + ro));
    const __m128i sha = _mm_cvtsi32_si128(31 + ra), shb = _mm_cvtsi32_si128(31 + rb), sho = _mm_cvtsi32_si128(31 + ro);
    const __m512i vza = _mm512_set1_epi32(za), vzb = _mm512_set1_epi32(zb), vzy = _mm512_set1_epi32(zy);
    const __m512i lo8 = _mm512_set1_epi8((char)lo), hi8 = _mm512_set1_epi8((char)hi);
    for (size_t i = 0; i < n; i += 64) {
        size_t left = n - i;
        __mmask64 m = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
        __m512i y[4];
        PERCH_UNROLL
        for (int j = 0; j < 4; j++) {
            __mmask16 mj = (__mmask16)(m >> (16 * j));
            __m128i qa = _mm_maskz_loadu_epi8(mj, a + i + 16 * j), qb = _mm_maskz_loadu_epi8(mj, b + i + 16 * j);
            __m512i xa = signedA ? _mm512_cvtepi8_epi32(qa) : _mm512_cvtepu8_epi32(qa);
            __m512i xb = signedB ? _mm512_cvtepi8_epi32(qb) : _mm512_cvtepu8_epi32(qb);
            xa = _mm512_slli_epi32(_mm512_sub_epi32(xa, vza), 20);
            xb = _mm512_slli_epi32(_mm512_sub_epi32(xb, vzb), 20);
            __m512i t = _mm512_add_epi32(perch_requant16_right_raw_avx512(xa, vma, vka, sha), perch_requant16_right_raw_avx512(xb, vmb, vkb, shb));
            y[j] = _mm512_add_epi32(perch_requant16_right_raw_avx512(t, vmo, vko, sho), vzy);
        }
        _mm512_mask_storeu_epi8(out + i, m, perch_pack64_clamped_avx512(y[0], y[1], y[2], y[3], lo >= 0, lo8, hi8));
    }
}

PERCH_AVX512_TARGET static inline void perch_qrequant_row_avx512(const int32_t *acc, size_t n, int32_t add, int32_t mult,
                                                                 int32_t shift, int32_t zp, int32_t lo, int32_t hi,
                                                                 uint8_t *out) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const __m512i vmult = _mm512_set1_epi64(mult), vzp = _mm512_set1_epi32(zp), vlo = _mm512_set1_epi32(lo),
                  vhi = _mm512_set1_epi32(hi), vadd = _mm512_set1_epi32(add);
    size_t i = 0;
    if (left == 0 && right <= 31) {
        const __m512i k = _mm512_set1_epi64((int64_t)1 << (30 + right));
        const __m128i sh = _mm_cvtsi32_si128(31 + right);
        // 64 at a time, narrowed and clamped as bytes.
        const __m512i lo8 = _mm512_set1_epi8((char)lo), hi8 = _mm512_set1_epi8((char)hi);
        for (; i + 64 <= n; i += 64) {
            __m512i y[4];
            PERCH_UNROLL
            for (int v = 0; v < 4; v++)
                y[v] = perch_requant16_right_unclamped_avx512(_mm512_add_epi32(_mm512_loadu_si512(acc + i + 16 * v), vadd), vmult, k,
                                                              sh, vzp);
            _mm512_storeu_si512(out + i, perch_pack64_clamped_avx512(y[0], y[1], y[2], y[3], lo >= 0, lo8, hi8));
        }
        for (; i + 16 <= n; i += 16) {
            __m512i x = _mm512_add_epi32(_mm512_loadu_si512(acc + i), vadd);
            __m512i y = perch_requant16_right_avx512(x, vmult, k, sh, vzp, vlo, vhi);
            _mm_storeu_si128((__m128i *)(out + i), _mm512_cvtepi32_epi8(y));
        }
        if (i < n) {
            __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
            __m512i x = _mm512_add_epi32(_mm512_maskz_loadu_epi32(m, acc + i), vadd);
            __m512i y = perch_requant16_right_avx512(x, vmult, k, sh, vzp, vlo, vhi);
            _mm_mask_storeu_epi8(out + i, m, _mm512_cvtepi32_epi8(y));
        }
        return;
    }
    for (; i + 16 <= n; i += 16) {
        __m512i x = _mm512_add_epi32(_mm512_loadu_si512(acc + i), vadd);
        _mm_storeu_si128((__m128i *)(out + i), _mm512_cvtepi32_epi8(perch_requant16_avx512(x, left, right, vmult, vzp, vlo, vhi)));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512i x = _mm512_add_epi32(_mm512_maskz_loadu_epi32(m, acc + i), vadd);
        _mm_mask_storeu_epi8(out + i, m, _mm512_cvtepi32_epi8(perch_requant16_avx512(x, left, right, vmult, vzp, vlo, vhi)));
    }
}

/// `rows` rows of `n` accumulators (stride lda) with one multiplier, into rows of stride ldo.
PERCH_AVX512_TARGET static inline void perch_qrequant_rows_avx512(const int32_t *acc, size_t lda, size_t n, size_t rows,
                                                                  int32_t add, int32_t mult, int32_t shift, int32_t zp,
                                                                  int32_t lo, int32_t hi, uint8_t *out, size_t ldo) {
    for (size_t r = 0; r < rows; r++) perch_qrequant_row_avx512(acc + r * lda, n, add, mult, shift, zp, lo, hi, out + r * ldo);
}

/// Whole 64-column blocks of perch_qgemm_rm_vnni: tiles of 4 rows × 64 columns, sixteen
/// accumulators (vpdpbusd has a 5-cycle latency and two ports: eight chains leave half the
/// issue slots empty). Each k4 step loads four B vectors and broadcasts four A words for
/// sixteen dot products. Returns the first column it did not do.
PERCH_AVX512_TARGET static inline size_t perch_qgemm_rm_vnni_64(size_t M, size_t N, size_t K4, const uint8_t *A, size_t lda,
                                                                const int8_t *B, size_t ldb, int32_t *C, size_t ldc) {
    size_t n = 0;
    if (M < 4) return 0;
    for (; n + 64 <= N; n += 64) {
        const int8_t *bp = B + n * 4;
        size_t m = 0;
        for (; m + 4 <= M; m += 4) {
            const uint8_t *a = A + m * lda;
            __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
            __m512i c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
            for (size_t k4 = 0; k4 < K4; k4++) {
                const int8_t *b = bp + k4 * ldb * 4;
                __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64);
                __m512i b2 = _mm512_loadu_si512(b + 128), b3 = _mm512_loadu_si512(b + 192);
                __m512i x = _mm512_set1_epi32(*(const int32_t *)(const void *)(a + 4 * k4));
                c00 = _mm512_dpbusd_epi32(c00, x, b0); c01 = _mm512_dpbusd_epi32(c01, x, b1);
                c02 = _mm512_dpbusd_epi32(c02, x, b2); c03 = _mm512_dpbusd_epi32(c03, x, b3);
                x = _mm512_set1_epi32(*(const int32_t *)(const void *)(a + lda + 4 * k4));
                c10 = _mm512_dpbusd_epi32(c10, x, b0); c11 = _mm512_dpbusd_epi32(c11, x, b1);
                c12 = _mm512_dpbusd_epi32(c12, x, b2); c13 = _mm512_dpbusd_epi32(c13, x, b3);
                x = _mm512_set1_epi32(*(const int32_t *)(const void *)(a + 2 * lda + 4 * k4));
                c20 = _mm512_dpbusd_epi32(c20, x, b0); c21 = _mm512_dpbusd_epi32(c21, x, b1);
                c22 = _mm512_dpbusd_epi32(c22, x, b2); c23 = _mm512_dpbusd_epi32(c23, x, b3);
                x = _mm512_set1_epi32(*(const int32_t *)(const void *)(a + 3 * lda + 4 * k4));
                c30 = _mm512_dpbusd_epi32(c30, x, b0); c31 = _mm512_dpbusd_epi32(c31, x, b1);
                c32 = _mm512_dpbusd_epi32(c32, x, b2); c33 = _mm512_dpbusd_epi32(c33, x, b3);
            }
            int32_t *c = C + m * ldc + n;
#define PERCH_ST4(v0, v1, v2, v3) _mm512_storeu_si512(c, v0); _mm512_storeu_si512(c + 16, v1); \
            _mm512_storeu_si512(c + 32, v2); _mm512_storeu_si512(c + 48, v3); c += ldc;
            PERCH_ST4(c00, c01, c02, c03) PERCH_ST4(c10, c11, c12, c13) PERCH_ST4(c20, c21, c22, c23) PERCH_ST4(c30, c31, c32, c33)
#undef PERCH_ST4
        }
        for (; m < M; m++) {
            const uint8_t *a = A + m * lda;
            __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
            for (size_t k4 = 0; k4 < K4; k4++) {
                const int8_t *b = bp + k4 * ldb * 4;
                __m512i x = _mm512_set1_epi32(*(const int32_t *)(const void *)(a + 4 * k4));
                c0 = _mm512_dpbusd_epi32(c0, x, _mm512_loadu_si512(b));
                c1 = _mm512_dpbusd_epi32(c1, x, _mm512_loadu_si512(b + 64));
                c2 = _mm512_dpbusd_epi32(c2, x, _mm512_loadu_si512(b + 128));
                c3 = _mm512_dpbusd_epi32(c3, x, _mm512_loadu_si512(b + 192));
            }
            int32_t *c = C + m * ldc + n;
            _mm512_storeu_si512(c, c0); _mm512_storeu_si512(c + 16, c1);
            _mm512_storeu_si512(c + 32, c2); _mm512_storeu_si512(c + 48, c3);
        }
    }
    return n;
}

/// VNNI row-major GEMM: tiles of 4 rows × 64 columns while whole blocks of 64 remain, then 4 × 32;
/// B must be readable (zero padded) up to a multiple of 32 columns per k4 row.
PERCH_AVX512_TARGET static inline void perch_qgemm_rm_vnni(size_t M, size_t N, size_t K4, const uint8_t *A, size_t lda,
                                                           const int8_t *B, size_t ldb, int32_t *C, size_t ldc) {
    for (size_t n = perch_qgemm_rm_vnni_64(M, N, K4, A, lda, B, ldb, C, ldc); n < N; n += 32) {
        size_t left = N - n;
        __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : (left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0);
        const int8_t *bp = B + n * 4;
        size_t m = 0;
        for (; m + 4 <= M; m += 4) {
            const uint8_t *a = A + m * lda;
            __m512i c00 = _mm512_setzero_si512(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
            for (size_t k4 = 0; k4 < K4; k4++) {
                const int8_t *b = bp + k4 * ldb * 4;
                __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64);
                __m512i x = _mm512_set1_epi32(*(const int32_t *)(const void *)(a + 4 * k4));
                c00 = _mm512_dpbusd_epi32(c00, x, b0); c01 = _mm512_dpbusd_epi32(c01, x, b1);
                x = _mm512_set1_epi32(*(const int32_t *)(const void *)(a + lda + 4 * k4));
                c10 = _mm512_dpbusd_epi32(c10, x, b0); c11 = _mm512_dpbusd_epi32(c11, x, b1);
                x = _mm512_set1_epi32(*(const int32_t *)(const void *)(a + 2 * lda + 4 * k4));
                c20 = _mm512_dpbusd_epi32(c20, x, b0); c21 = _mm512_dpbusd_epi32(c21, x, b1);
                x = _mm512_set1_epi32(*(const int32_t *)(const void *)(a + 3 * lda + 4 * k4));
                c30 = _mm512_dpbusd_epi32(c30, x, b0); c31 = _mm512_dpbusd_epi32(c31, x, b1);
            }
            int32_t *c = C + m * ldc + n;
            _mm512_mask_storeu_epi32(c, m0, c00); if (m1) _mm512_mask_storeu_epi32(c + 16, m1, c01);
            c += ldc;
            _mm512_mask_storeu_epi32(c, m0, c10); if (m1) _mm512_mask_storeu_epi32(c + 16, m1, c11);
            c += ldc;
            _mm512_mask_storeu_epi32(c, m0, c20); if (m1) _mm512_mask_storeu_epi32(c + 16, m1, c21);
            c += ldc;
            _mm512_mask_storeu_epi32(c, m0, c30); if (m1) _mm512_mask_storeu_epi32(c + 16, m1, c31);
        }
        for (; m < M; m++) {
            const uint8_t *a = A + m * lda;
            __m512i c0 = _mm512_setzero_si512(), c1 = c0;
            for (size_t k4 = 0; k4 < K4; k4++) {
                const int8_t *b = bp + k4 * ldb * 4;
                __m512i x = _mm512_set1_epi32(*(const int32_t *)(const void *)(a + 4 * k4));
                c0 = _mm512_dpbusd_epi32(c0, x, _mm512_loadu_si512(b));
                c1 = _mm512_dpbusd_epi32(c1, x, _mm512_loadu_si512(b + 64));
            }
            int32_t *c = C + m * ldc + n;
            _mm512_mask_storeu_epi32(c, m0, c0);
            if (m1) _mm512_mask_storeu_epi32(c + 16, m1, c1);
        }
    }
}

/// Per-column requantization, 16 columns at a time; every shift must be <= 0 (a right shift),
/// which the caller checks (else it uses the scalar path).
PERCH_AVX512_TARGET static inline __m512i perch_requant16_cols_avx512(__m512i x, __m512i vmult, __m512i vright, __m512i vzp,
                                                                      __m512i vlo, __m512i vhi) {
    // As perch_requant16_avx512 with k = 2^(30 + right) per 64-bit product: the even lanes' right
    // shifts are the low dwords of vright, the odd lanes' the high ones.
    const __m512i one = _mm512_set1_epi64(1), thirty = _mm512_set1_epi64(30);
    __m512i ke = _mm512_sllv_epi64(one, _mm512_add_epi64(_mm512_and_si512(vright, _mm512_set1_epi64(0xFFFFFFFF)), thirty));
    __m512i ko = _mm512_sllv_epi64(one, _mm512_add_epi64(_mm512_srli_epi64(vright, 32), thirty));
    __m512i pe = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, vmult), ke), 31);
    __m512i po = _mm512_slli_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(vmult, 32)), ko), 1);
    __m512i y = _mm512_srav_epi32(_mm512_mask_blend_epi32(0xAAAA, pe, po), vright);
    y = _mm512_add_epi32(y, vzp);
    return _mm512_min_epi32(_mm512_max_epi32(y, vlo), vhi);
}

/// `rshift` holds -shift (>= 0) per column.
PERCH_AVX512_TARGET static inline void perch_qrequant_cols_avx512(const int32_t *acc, size_t n, const int32_t *add,
                                                                  const int32_t *mult, const int32_t *rshift, int32_t zp,
                                                                  int32_t lo, int32_t hi, uint8_t *out) {
    const __m512i vzp = _mm512_set1_epi32(zp), vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
    for (size_t j = 0; j < n; j += 16) {
        __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        __m512i x = _mm512_add_epi32(_mm512_maskz_loadu_epi32(m, acc + j), _mm512_maskz_loadu_epi32(m, add + j));
        __m512i y = perch_requant16_cols_avx512(x, _mm512_maskz_loadu_epi32(m, mult + j), _mm512_maskz_loadu_epi32(m, rshift + j),
                                                vzp, vlo, vhi);
        _mm_mask_storeu_epi8(out + j, m, _mm512_cvtepi32_epi8(y));
    }
}

/// AVX-512 depthwise row: 16 outputs at a time, exact int32 products.
PERCH_AVX512_TARGET static inline void perch_qdw_row_avx512(const uint8_t *const *rows, const int32_t *w, size_t taps,
                                                            size_t n, int32_t init, int32_t *acc) {
    size_t x = 0;
    const __m512i vinit = _mm512_set1_epi32(init);
    for (; x + 16 <= n; x += 16) {
        __m512i a = vinit;
        for (size_t t = 0; t < taps; t++) {
            __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(rows[t] + x)));
            a = _mm512_add_epi32(a, _mm512_mullo_epi32(v, _mm512_set1_epi32(w[t])));
        }
        _mm512_storeu_si512(acc + x, a);
    }
    if (x < n) {
        __mmask16 m = (__mmask16)((1u << (n - x)) - 1);
        __m512i a = vinit;
        for (size_t t = 0; t < taps; t++) {
            __m512i v = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, rows[t] + x));
            a = _mm512_add_epi32(a, _mm512_mullo_epi32(v, _mm512_set1_epi32(w[t])));
        }
        _mm512_mask_storeu_epi32(acc + x, m, a);
    }
}

/// VNNI depthwise row, four taps per instruction: for each group of 4 taps the rows' bytes are
/// interleaved into one dword per output (two byte and two word unpacks) and vpdpbusd adds
/// Σ row·w8 to it; 64 outputs per step. `rows` and `w8` hold `groups`·4 taps (padding taps: any
/// readable row, weight 0); weights must fit int8. Equals perch_qdw_row_scalar with the same taps.
PERCH_AVX512_TARGET static inline void perch_qdw_row_vnni(const uint8_t *const *rows, const int8_t *w8, size_t groups,
                                                          size_t n, int32_t init, int32_t *acc) {
    const __m512i vinit = _mm512_set1_epi32(init);
    for (size_t x = 0; x < n; x += 64) {
        size_t left = n - x;
        __mmask64 m = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
        __m512i a0 = vinit, a1 = vinit, a2 = vinit, a3 = vinit;
        for (size_t g = 0; g < groups; g++) {
            const uint8_t *const *r = rows + 4 * g;
            __m512i r0 = _mm512_maskz_loadu_epi8(m, r[0] + x), r1 = _mm512_maskz_loadu_epi8(m, r[1] + x);
            __m512i r2 = _mm512_maskz_loadu_epi8(m, r[2] + x), r3 = _mm512_maskz_loadu_epi8(m, r[3] + x);
            __m512i lo01 = _mm512_unpacklo_epi8(r0, r1), hi01 = _mm512_unpackhi_epi8(r0, r1);
            __m512i lo23 = _mm512_unpacklo_epi8(r2, r3), hi23 = _mm512_unpackhi_epi8(r2, r3);
            __m512i wv = _mm512_set1_epi32(*(const int32_t *)(const void *)(w8 + 4 * g));
            // In 128-bit lane L: a0 holds outputs 16L+0..3, a1 16L+4..7, a2 16L+8..11, a3 16L+12..15.
            a0 = _mm512_dpbusd_epi32(a0, _mm512_unpacklo_epi16(lo01, lo23), wv);
            a1 = _mm512_dpbusd_epi32(a1, _mm512_unpackhi_epi16(lo01, lo23), wv);
            a2 = _mm512_dpbusd_epi32(a2, _mm512_unpacklo_epi16(hi01, hi23), wv);
            a3 = _mm512_dpbusd_epi32(a3, _mm512_unpackhi_epi16(hi01, hi23), wv);
        }
        // 4×4 transpose of 128-bit lanes: out_L = [a0.L, a1.L, a2.L, a3.L] = outputs 16L..16L+15.
        __m512i t0 = _mm512_shuffle_i32x4(a0, a1, 0x44), t1 = _mm512_shuffle_i32x4(a2, a3, 0x44);
        __m512i t2 = _mm512_shuffle_i32x4(a0, a1, 0xEE), t3 = _mm512_shuffle_i32x4(a2, a3, 0xEE);
        __m512i o[4] = {_mm512_shuffle_i32x4(t0, t1, 0x88), _mm512_shuffle_i32x4(t0, t1, 0xDD),
                        _mm512_shuffle_i32x4(t2, t3, 0x88), _mm512_shuffle_i32x4(t2, t3, 0xDD)};
        for (size_t k = 0; k < 4; k++) {
            if (left >= 16 * (k + 1)) {
                _mm512_storeu_si512(acc + x + 16 * k, o[k]);
            } else {
                if (left > 16 * k) _mm512_mask_storeu_epi32(acc + x + 16 * k, (__mmask16)((1u << (left - 16 * k)) - 1), o[k]);
                break;
            }
        }
    }
}

/// AVX2 depthwise row: 8 outputs at a time.
__attribute__((target("avx2"))) static inline void perch_qdw_row_avx2(const uint8_t *const *rows, const int32_t *w,
                                                                       size_t taps, size_t n, int32_t init, int32_t *acc) {
    size_t x = 0;
    for (; x + 8 <= n; x += 8) {
        __m256i a = _mm256_set1_epi32(init);
        for (size_t t = 0; t < taps; t++) {
            __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(rows[t] + x)));
            a = _mm256_add_epi32(a, _mm256_mullo_epi32(v, _mm256_set1_epi32(w[t])));
        }
        _mm256_storeu_si256((__m256i *)(acc + x), a);
    }
    for (; x < n; x++) {
        acc[x] = init;
        for (size_t t = 0; t < taps; t++) acc[x] += (int32_t)rows[t][x] * w[t];
    }
}
#else
static inline void perch_interleave4(const uint8_t *src, size_t srcStride, size_t K, size_t P, size_t Pp, uint8_t flip,
                                     uint8_t *dst) {
    perch_interleave4_scalar(src, srcStride, K, P, Pp, flip, dst);
}
#endif  // __x86_64__

#if defined(__aarch64__)
#include <arm_neon.h>
/// NEON depthwise row: 8 outputs at a time (u8 → s16 → s32 multiply-accumulate, exact).
static inline void perch_qdw_row_neon(const uint8_t *const *rows, const int32_t *w, size_t taps, size_t n,
                                      int32_t init, int32_t *acc) {
    size_t x = 0;
    for (; x + 8 <= n; x += 8) {
        int32x4_t a0 = vdupq_n_s32(init), a1 = vdupq_n_s32(init);
        for (size_t t = 0; t < taps; t++) {
            int16x8_t v = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(rows[t] + x)));
            int32x4_t wt = vdupq_n_s32(w[t]);
            a0 = vmlaq_s32(a0, vmovl_s16(vget_low_s16(v)), wt);
            a1 = vmlaq_s32(a1, vmovl_s16(vget_high_s16(v)), wt);
        }
        vst1q_s32(acc + x, a0);
        vst1q_s32(acc + x + 4, a1);
    }
    for (; x < n; x++) {
        acc[x] = init;
        for (size_t t = 0; t < taps; t++) acc[x] += (int32_t)rows[t][x] * w[t];
    }
}
#endif

#endif
