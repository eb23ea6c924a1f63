#ifndef CPERCH_ELEMENTWISE_H
#define CPERCH_ELEMENTWISE_H
// Elementwise kernels of the int8 transformer path (PerchEngine's QElementwise, Cast, Softmax and
// LayerNormalization operators). Each SIMD kernel has a scalar reference beside it:
//
// - perch_lut8_*: dst[i] = table[src[i]] (256-byte table): QLinearLookup, and QLinearAdd/Mul with
//   a one-element operand (the table is the op applied to every code). Bit-exact on every ISA.
// - perch_qmul_*: QLinearMul of two 8-bit tensors: requant((a − za)·(b − zb)) with TFLite's
//   fixed-point requantization (perch_requant1 / perch_requant16_avx512). Bit-exact.
// - perch_quantize_f32_8bit_avx512 / perch_dequantize_8bit_f32_*: per-tensor QuantizeLinear and
//   DequantizeLinear; the same float operations as the scalar references, so bit-exact.
// - perch_expf_poly / perch_expf16_avx512: Cephes' expf polynomial (about 2 ulp from libm's expf),
//   the same fused multiply-adds in the scalar and SIMD versions, so they agree bit for bit.
// - perch_softmax_row_f32_*: one contiguous Softmax row; the SIMD sum uses 16 partial sums (a
//   different rounding order than the scalar reference, within float tolerance).
// - perch_layernorm_row_f32_*: one LayerNormalization row with per-element scale and bias; sums in
//   partial sums as above.
// x86-64 has AVX-512 (F/BW/VL/DQ, VBMI for the lookup) and AVX2(+FMA) versions; aarch64 has a NEON
// lookup.
// - perch_qadd_*: QLinearAdd with TFLite's integer formula (every multiplier a right shift).
#include <stdint.h>
#include <stddef.h>
#include <math.h>
#include "CPerchQConv.h"
#include "CPerchQGemmSIMD.h"  // perch_requant8_avx2, perch_store8_lowbytes_avx2

// MARK: Per-channel affine (inference BatchNormalization)

/// y[i] = x[i]·a + b for i < n — a multiply, then an add (never one fused multiply-add, so
/// every ISA rounds alike) — then Clip's clamp to [lo, hi] when `clamp` (a Relu/Clip fused into
/// the BatchNormalization; NaN passes). One channel of an inference BatchNormalization.
static inline void perch_affine_f32_scalar(const float *x, long n, float a, float b, int clamp, float lo, float hi, float *y) {
    for (long i = 0; i < n; i++) {
        float t = x[i] * a;
        float v = t + b;
        y[i] = clamp ? (v < lo ? lo : (v > hi ? hi : v)) : v;
    }
}

// MARK: LRN rows

/// sq[i] += row[i]² for i < n (one channel of an LRN window; channels added in order).
static inline void perch_lrn_sumsq_f32(const float *row, long n, float *sq) {
    for (long i = 0; i < n; i++) sq[i] += row[i] * row[i];
}

/// y[i] = x[i] / (bias + scale·sq[i])^0.75, the power as √d·√√d (AlexNet's and GoogLeNet's β).
/// The element-wise square root builtin sets no errno, so the loop vectorizes.
static inline void perch_lrn_row_075_f32(const float *x, const float *sq, long n, float bias, float scale, float *y) {
    for (long i = 0; i < n; i++) {
        float d = bias + scale * sq[i];
#if defined(__clang__) && __has_builtin(__builtin_elementwise_sqrt)
        float r = __builtin_elementwise_sqrt(d);
        y[i] = x[i] / (r * __builtin_elementwise_sqrt(r));
#else
        float r = sqrtf(d);
        y[i] = x[i] / (r * sqrtf(r));
#endif
    }
}

// MARK: byte sums

/// Σ (src[i] ^ flip) for i < n: the spatial sum of one channel of an 8-bit global average pool
/// (flip 0x80 reads int8 codes as uint8, 128 higher each). SSE2 psadbw sums 16 bytes per step.
static inline uint64_t perch_sum_bytes(const uint8_t *src, size_t n, uint8_t flip) {
    uint64_t sum = 0;
    size_t i = 0;
#if defined(__x86_64__)
    const __m128i f = _mm_set1_epi8((char)flip), z = _mm_setzero_si128();
    __m128i acc = z;
    for (; i + 16 <= n; i += 16)
        acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(src + i)), f), z));
    sum = (uint64_t)_mm_cvtsi128_si64(acc) + (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc));
#endif
    for (; i < n; i++) sum += (uint8_t)(src[i] ^ flip);
    return sum;
}

// MARK: byte lookup

static inline void perch_lut8_scalar(const uint8_t *src, size_t n, const uint8_t *table, uint8_t *dst) {
    for (size_t i = 0; i < n; i++) dst[i] = table[src[i]];
}

// MARK: QLinearMul

/// out[i] = requant((a[i] − za)·(b[i] − zb)), codes read as int8 when aSigned / bSigned.
static inline void perch_qmul_scalar(const uint8_t *a, int aSigned, int32_t za, const uint8_t *b, int bSigned, int32_t zb,
                                     size_t n, int32_t mult, int32_t shift, int32_t zy, int32_t lo, int32_t hi,
                                     uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        int32_t x = (aSigned ? (int32_t)(int8_t)a[i] : (int32_t)a[i]) - za;
        int32_t y = (bSigned ? (int32_t)(int8_t)b[i] : (int32_t)b[i]) - zb;
        out[i] = (uint8_t)perch_requant1(x * y, mult, shift, zy, lo, hi);
    }
}

// MARK: DequantizeLinear

/// dst[i] = (float)(src[i] − z) · scale (codes read as int8 when isSigned).
static inline void perch_dequantize_8bit_f32_scalar(const uint8_t *src, int isSigned, size_t n, int32_t z, float scale,
                                                    float *dst) {
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)((isSigned ? (int32_t)(int8_t)src[i] : (int32_t)src[i]) - z) * scale;
}

// MARK: exp, Softmax, LayerNormalization

#define PERCH_EXPF_LO -87.0f
#define PERCH_EXPF_HI 88.0f

/// Cephes expf: n = round(x·log2 e), r = x − n·ln2 (two parts), e^r by a degree-7 polynomial,
/// times 2^n. Below −87 the result is 0 (libm returns < 1.7e-38 there), above 88 it is e^88 (for
/// Softmax, whose inputs are ≤ 0, neither matters); NaN stays NaN.
static inline float perch_expf_poly(float x) {
    x = x > PERCH_EXPF_HI ? PERCH_EXPF_HI : x;
    int under = x < PERCH_EXPF_LO;
    x = x < PERCH_EXPF_LO ? PERCH_EXPF_LO : x;
    float n = nearbyintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r);
    p = p + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    float e = p * scale;
    return under ? 0.0f : e;
}

/// Softmax of one contiguous row (n ≥ 1): y = exp(x − max) / Σ exp(x − max).
static inline void perch_softmax_row_f32_scalar(const float *x, float *y, size_t n) {
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    float sum = 0;
    for (size_t i = 0; i < n; i++) {
        float e = perch_expf_poly(x[i] - m);
        y[i] = e;
        sum += e;
    }
    float r = 1.0f / sum;
    for (size_t i = 0; i < n; i++) y[i] *= r;
}

/// Softmax down the columns of an n × cols block (rows `ld` floats apart): for each column j,
/// y[k·ld + j] = exp(x[k·ld + j] − max) / Σ exp(x[k′·ld + j] − max) — a Softmax over a non-last
/// axis (YOLOv8's DFL head: 16 bins over 8400 positions), which ran as strided scalar loops at
/// 5 ns an element. Max, exp and sum run in k order per column, so the SIMD kernels (a column per
/// lane) give these bits. y may be x.
static inline void perch_softmax_columns_f32_scalar(const float *x, float *y, size_t n, size_t cols, size_t ld) {
    for (size_t j = 0; j < cols; j++) {
        float m = x[j];
        for (size_t k = 1; k < n; k++) m = x[k * ld + j] > m ? x[k * ld + j] : m;
        float sum = 0;
        for (size_t k = 0; k < n; k++) {
            float e = perch_expf_poly(x[k * ld + j] - m);
            y[k * ld + j] = e;
            sum += e;
        }
        float r = 1.0f / sum;
        for (size_t k = 0; k < n; k++) y[k * ld + j] *= r;
    }
}

/// LayerNormalization of one row: y = (x − mean)·inv·scale + bias (bias may be NULL),
/// inv = 1/sqrt(var + eps). Writes mean and inv.
static inline void perch_layernorm_row_f32_scalar(const float *x, size_t n, const float *scale, const float *bias, float eps,
                                                  float *y, float *meanOut, float *invOut) {
    float sum = 0;
    for (size_t i = 0; i < n; i++) sum += x[i];
    float mean = sum / (float)n;
    float sq = 0;
    for (size_t i = 0; i < n; i++) {
        float d = x[i] - mean;
        sq += d * d;
    }
    float inv = 1.0f / sqrtf(sq / (float)n + eps);
    for (size_t i = 0; i < n; i++) {
        float v = (x[i] - mean) * inv * scale[i];
        y[i] = bias ? v + bias[i] : v;
    }
    *meanOut = mean;
    *invOut = inv;
}

#if defined(__x86_64__)
#include <immintrin.h>

/// AVX-512 VBMI (vpermt2b), which Ice Lake and Zen 4 have and Skylake-X does not.
static inline int perch_cpu_avx512vbmi(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512f");
}

#define PERCH_VBMI_TARGET __attribute__((target("avx512vbmi,avx512bw,avx512f")))
#define PERCH_AVX512F_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

/// 64 bytes per step: two 128-entry vpermt2b lookups, chosen by each index's top bit.
PERCH_VBMI_TARGET static inline void perch_lut8_avx512vbmi(const uint8_t *src, size_t n, const uint8_t *table,
                                                           uint8_t *dst) {
    const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
    const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512i x = _mm512_loadu_si512(src + i);
        __m512i lo = _mm512_permutex2var_epi8(t0, x, t1), hi = _mm512_permutex2var_epi8(t2, x, t3);
        _mm512_storeu_si512(dst + i, _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi));
    }
    if (i < n) {
        __mmask64 m = (__mmask64)(~0ull >> (64 - (n - i)));
        __m512i x = _mm512_maskz_loadu_epi8(m, src + i);
        __m512i lo = _mm512_permutex2var_epi8(t0, x, t1), hi = _mm512_permutex2var_epi8(t2, x, t3);
        _mm512_mask_storeu_epi8(dst + i, m, _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi));
    }
}

PERCH_AVX512_TARGET static inline __m512i perch_load16_8bit_epi32(const uint8_t *p, int isSigned, __mmask16 m) {
    __m128i v = _mm_maskz_loadu_epi8(m, p);
    return isSigned ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
}

PERCH_AVX512_TARGET static inline void perch_qmul_avx512(const uint8_t *a, int aSigned, int32_t za, const uint8_t *b,
                                                         int bSigned, int32_t zb, size_t n, int32_t mult, int32_t shift,
                                                         int32_t zy, int32_t lo, int32_t hi, uint8_t *out) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const __m512i vmult = _mm512_set1_epi64(mult), vzp = _mm512_set1_epi32(zy), vlo = _mm512_set1_epi32(lo),
                  vhi = _mm512_set1_epi32(hi), vza = _mm512_set1_epi32(za), vzb = _mm512_set1_epi32(zb);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512i x = _mm512_sub_epi32(perch_load16_8bit_epi32(a + i, aSigned, m), vza);
        __m512i y = _mm512_sub_epi32(perch_load16_8bit_epi32(b + i, bSigned, m), vzb);
        __m512i q = perch_requant16_avx512(_mm512_mullo_epi32(x, y), left, right, vmult, vzp, vlo, vhi);
        _mm_mask_storeu_epi8(out + i, m, _mm512_cvtepi32_epi8(q));
    }
}

/// perch_quantize_f32_8bit (CPerchQConv.h) 16 lanes at a time: divide, round half to even,
/// add the zero point, saturate, NaN to the zero point.
PERCH_AVX512F_TARGET static inline void perch_quantize_f32_8bit_avx512(const float *src, size_t n, float scale, float z,
                                                                       float lo, float hi, uint8_t *dst) {
    const __m512 vs = _mm512_set1_ps(scale), vz = _mm512_set1_ps(z), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, src + i), vs);
        __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        v = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
        v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
        v = _mm512_mask_mov_ps(v, nan, vz);
        _mm_mask_storeu_epi8(dst + i, m, _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
    }
}

PERCH_AVX512F_TARGET static inline void perch_dequantize_8bit_f32_avx512(const uint8_t *src, int isSigned, size_t n, int32_t z,
                                                                         float scale, float *dst) {
    const __m512i vz = _mm512_set1_epi32(z);
    const __m512 vs = _mm512_set1_ps(scale);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512i x = _mm512_sub_epi32(perch_load16_8bit_epi32(src + i, isSigned, m), vz);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(x), vs));
    }
}

/// perch_expf_poly on 16 lanes (bit-identical).
/// perch_affine_f32_scalar 16 floats at a time (masked tail), the same operations: bit-exact.
/// DenseNet-121's 62 BatchNorms after its Concats ran at a fifth of a Mul's speed as a Swift loop.
PERCH_AVX512F_TARGET static inline void perch_affine_f32_avx512(const float *x, long n, float a, float b, int clamp, float lo,
                                                                 float hi, float *y) {
    const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), va), vb);
        // max(lo, v) then min(hi, ·) return v when it is NaN, as Clip's expression does.
        if (clamp) v = _mm512_min_ps(vhi, _mm512_max_ps(vlo, v));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

PERCH_AVX512F_TARGET static inline __m512 perch_expf16_avx512(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(PERCH_EXPF_HI), x);  // NaN in x stays NaN (second operand)
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(PERCH_EXPF_LO), _CMP_LT_OQ);
    x = _mm512_max_ps(_mm512_set1_ps(PERCH_EXPF_LO), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 e = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
    return _mm512_mask_mov_ps(e, under, _mm512_setzero_ps());
}

/// Writes exp of n floats (the test hook for perch_expf16_avx512).
PERCH_AVX512F_TARGET static inline void perch_expf_avx512(const float *x, size_t n, float *y) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, perch_expf16_avx512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

PERCH_AVX512F_TARGET static inline void perch_softmax_row_f32_avx512(const float *x, float *y, size_t n) {
    __m512 mv = _mm512_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(x + i));
    float m = _mm512_reduce_max_ps(mv);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    const __m512 vm = _mm512_set1_ps(m);
    __m512 sums = _mm512_setzero_ps();
    for (i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = perch_expf16_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm));
        e = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(y + i, k, e);
        sums = _mm512_add_ps(sums, e);
    }
    const __m512 r = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sums));
    for (i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, y + i), r));
    }
}

PERCH_AVX512F_TARGET static inline void perch_layernorm_row_f32_avx512(const float *x, size_t n, const float *scale,
                                                                       const float *bias, float eps, float *y,
                                                                       float *meanOut, float *invOut) {
    __m512 s = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(k, x + i));
    }
    float mean = _mm512_reduce_add_ps(s) / (float)n;
    const __m512 vm = _mm512_set1_ps(mean);
    __m512 sq = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), vm);
        sq = _mm512_add_ps(sq, _mm512_mul_ps(d, d));
    }
    float inv = 1.0f / sqrtf(_mm512_reduce_add_ps(sq) / (float)n + eps);
    const __m512 vi = _mm512_set1_ps(inv);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm), vi),
                                 _mm512_maskz_loadu_ps(k, scale + i));
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, bias + i));
        _mm512_mask_storeu_ps(y + i, k, v);
    }
    *meanOut = mean;
    *invOut = inv;
}
// AVX2 + FMA versions (x86-64 without AVX-512): 8 lanes, tails through the scalar references.
#define PERCH_AVX2FMA_TARGET __attribute__((target("avx2,fma")))

/// 32 bytes per step from 16 vpshufb sub-tables of 16 entries, each lane taking the one its high
/// nibble selects (compare, shuffle, blend: 48 vector ops per 32 bytes). About 3× a scalar load
/// per byte; without VBMI, a 256-entry table has no single-instruction form.
PERCH_AVX2_TARGET static inline void perch_lut8_avx2(const uint8_t *src, size_t n, const uint8_t *table, uint8_t *dst) {
    __m256i t[16];
    for (int j = 0; j < 16; j++) t[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(table + 16 * j)));
    const __m256i nibble = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(src + i));
        __m256i lo = _mm256_and_si256(x, nibble), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble);
        __m256i r = _mm256_shuffle_epi8(t[0], lo), key = _mm256_setzero_si256();
        PERCH_UNROLL
        for (int j = 1; j < 16; j++) {
            key = _mm256_add_epi8(key, one);
            r = _mm256_blendv_epi8(r, _mm256_shuffle_epi8(t[j], lo), _mm256_cmpeq_epi8(hi, key));
        }
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), r);
    }
    perch_lut8_scalar(src + i, n - i, table, dst + i);
}

/// perch_qmul_scalar 8 lanes at a time (the product in int32, perch_requant8_avx2), scalar tail.
PERCH_AVX2_TARGET static inline void perch_qmul_avx2(const uint8_t *a, int aSigned, int32_t za, const uint8_t *b, int bSigned,
                                                     int32_t zb, size_t n, int32_t mult, int32_t shift, int32_t zy, int32_t lo,
                                                     int32_t hi, uint8_t *out) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const __m256i vleft = _mm256_set1_epi32(left), vright = _mm256_set1_epi32(right), vmult = _mm256_set1_epi64x(mult),
                  vzp = _mm256_set1_epi32(zy), vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi),
                  vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i qa = _mm_loadl_epi64((const __m128i *)(const void *)(a + i)), qb = _mm_loadl_epi64((const __m128i *)(const void *)(b + i));
        __m256i x = _mm256_sub_epi32(aSigned ? _mm256_cvtepi8_epi32(qa) : _mm256_cvtepu8_epi32(qa), vza);
        __m256i y = _mm256_sub_epi32(bSigned ? _mm256_cvtepi8_epi32(qb) : _mm256_cvtepu8_epi32(qb), vzb);
        __m256i q = perch_requant8_avx2(_mm256_mullo_epi32(x, y), vleft, vright, left > 0, vmult, vmult, vzp, vlo, vhi);
        perch_store8_lowbytes_avx2(q, out + i);
    }
    perch_qmul_scalar(a + i, aSigned, za, b + i, bSigned, zb, n - i, mult, shift, zy, lo, hi, out + i);
}

/// floor((x·mult + 2^(30+r)) / 2^(31+r)) in every lane (perch_requant1 with a right shift r ≤ 31,
/// no zero point, no clamp): the 64-bit products' bits 31..62, then an arithmetic shift by r.
PERCH_AVX2_INLINE __m256i perch_requant8_right_raw_avx2(__m256i x, __m256i vmult, __m256i vk, __m128i r) {
    __m256i pe = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, vmult), vk), 31);
    __m256i po = _mm256_slli_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), vmult), vk), 1);
    return _mm256_sra_epi32(_mm256_blend_epi32(pe, po, 0xAA), r);
}

/// Scalar tail of perch_qadd_avx2 / perch_qadd_avx512's formula.
static inline void perch_qadd_scalar(const uint8_t *a, int signedA, int32_t za, int32_t ma, int32_t ra, const uint8_t *b, int signedB,
                                     int32_t zb, int32_t mb, int32_t rb, int32_t mo, int32_t ro, int32_t zy, int32_t lo, int32_t hi,
                                     size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        int32_t xa = ((signedA ? (int32_t)(int8_t)a[i] : (int32_t)a[i]) - za) * (1 << 20);
        int32_t xb = ((signedB ? (int32_t)(int8_t)b[i] : (int32_t)b[i]) - zb) * (1 << 20);
        int32_t t = perch_requant1(xa, ma, -ra, 0, INT32_MIN, INT32_MAX) + perch_requant1(xb, mb, -rb, 0, INT32_MIN, INT32_MAX);
        out[i] = (uint8_t)perch_requant1(t, mo, -ro, zy, lo, hi);
    }
}

/// perch_qadd_avx512 (TFLite's QLinearAdd, every multiplier a right shift ≤ 31) 8 lanes at a
/// time, scalar tail: the same integers.
PERCH_AVX2_TARGET static inline void perch_qadd_avx2(const uint8_t *a, int signedA, int32_t za, int32_t ma, int32_t ra, const uint8_t *b,
                                                     int signedB, int32_t zb, int32_t mb, int32_t rb, int32_t mo, int32_t ro, int32_t zy,
                                                     int32_t lo, int32_t hi, size_t n, uint8_t *out) {
    const __m256i vma = _mm256_set1_epi64x(ma), vka = _mm256_set1_epi64x((int64_t)1 << (30 + ra));
    const __m256i vmb = _mm256_set1_epi64x(mb), vkb = _mm256_set1_epi64x((int64_t)1 << (30 + rb));
    const __m256i vmo = _mm256_set1_epi64x(mo), vko = _mm256_set1_epi64x((int64_t)1 << (30 + ro));
    const __m128i sha = _mm_cvtsi32_si128(ra), shb = _mm_cvtsi32_si128(rb), sho = _mm_cvtsi32_si128(ro);
    const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb), vzy = _mm256_set1_epi32(zy);
    const __m256i vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i qa = _mm_loadl_epi64((const __m128i *)(const void *)(a + i)), qb = _mm_loadl_epi64((const __m128i *)(const void *)(b + i));
        __m256i xa = _mm256_slli_epi32(_mm256_sub_epi32(signedA ? _mm256_cvtepi8_epi32(qa) : _mm256_cvtepu8_epi32(qa), vza), 20);
        __m256i xb = _mm256_slli_epi32(_mm256_sub_epi32(signedB ? _mm256_cvtepi8_epi32(qb) : _mm256_cvtepu8_epi32(qb), vzb), 20);
        __m256i t = _mm256_add_epi32(perch_requant8_right_raw_avx2(xa, vma, vka, sha), perch_requant8_right_raw_avx2(xb, vmb, vkb, shb));
        __m256i y = _mm256_add_epi32(perch_requant8_right_raw_avx2(t, vmo, vko, sho), vzy);
        perch_store8_lowbytes_avx2(_mm256_min_epi32(_mm256_max_epi32(y, vlo), vhi), out + i);
    }
    perch_qadd_scalar(a + i, signedA, za, ma, ra, b + i, signedB, zb, mb, rb, mo, ro, zy, lo, hi, n - i, out + i);
}

PERCH_AVX2FMA_TARGET static inline void perch_quantize_f32_8bit_avx2(const float *src, size_t n, float scale, float z, float lo,
                                                                  float hi, uint8_t *dst) {
    const __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps(z), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_div_ps(_mm256_loadu_ps(src + i), vs);
        __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        v = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
        v = _mm256_min_ps(_mm256_max_ps(v, vlo), vhi);
        v = _mm256_blendv_ps(v, vz, nan);
        __m256i q = _mm256_cvttps_epi32(v);
        __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        // Codes are in [lo, hi] ⊂ [−128, 255]: signed packing is exact for int8, unsigned for uint8.
        __m128i q8 = lo < 0 ? _mm_packs_epi16(q16, q16) : _mm_packus_epi16(q16, q16);
        _mm_storel_epi64((__m128i *)(dst + i), q8);
    }
    if (i < n) perch_quantize_f32_8bit(src + i, n - i, scale, z, lo, hi, dst + i);
}

PERCH_AVX2FMA_TARGET static inline void perch_dequantize_8bit_f32_avx2(const uint8_t *src, int isSigned, size_t n, int32_t z,
                                                                    float scale, float *dst) {
    const __m256i vz = _mm256_set1_epi32(z);
    const __m256 vs = _mm256_set1_ps(scale);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i b = _mm_loadl_epi64((const __m128i *)(src + i));
        __m256i x = _mm256_sub_epi32(isSigned ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b), vz);
        _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_cvtepi32_ps(x), vs));
    }
    if (i < n) perch_dequantize_8bit_f32_scalar(src + i, isSigned, n - i, z, scale, dst + i);
}

/// perch_expf_poly on 8 lanes (bit-identical).
PERCH_AVX2FMA_TARGET static inline __m256 perch_expf8_avx2(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(PERCH_EXPF_HI), x);
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(PERCH_EXPF_LO), _CMP_LT_OQ);
    x = _mm256_max_ps(_mm256_set1_ps(PERCH_EXPF_LO), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

PERCH_AVX2FMA_TARGET static inline void perch_expf_avx2(const float *x, size_t n, float *y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, perch_expf8_avx2(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = perch_expf_poly(x[i]);
}

PERCH_AVX2FMA_TARGET static inline float perch_hsum256_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

PERCH_AVX2FMA_TARGET static inline void perch_softmax_row_f32_avx2(const float *x, float *y, size_t n) {
    __m256 mv = _mm256_set1_ps(-INFINITY);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    float lanes[8];
    _mm256_storeu_ps(lanes, mv);
    float m = lanes[0];
    for (int l = 1; l < 8; l++) m = lanes[l] > m ? lanes[l] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    const __m256 vm = _mm256_set1_ps(m);
    __m256 sums = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = perch_expf8_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(y + i, e);
        sums = _mm256_add_ps(sums, e);
    }
    float sum = perch_hsum256_ps(sums);
    for (; i < n; i++) {
        y[i] = perch_expf_poly(x[i] - m);
        sum += y[i];
    }
    const float r = 1.0f / sum;
    const __m256 vr = _mm256_set1_ps(r);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), vr));
    for (; i < n; i++) y[i] *= r;
}

/// perch_softmax_columns_f32_scalar eight columns at a time (the same bits), scalar tail.
PERCH_AVX2FMA_TARGET static inline void perch_softmax_columns_f32_avx2(const float *x, float *y, size_t n, size_t cols, size_t ld) {
    size_t j = 0;
    for (; j + 8 <= cols; j += 8) {
        // max(v, m) keeps m when v is NaN, as `v > m ? v : m` does.
        __m256 m = _mm256_loadu_ps(x + j);
        for (size_t k = 1; k < n; k++) m = _mm256_max_ps(_mm256_loadu_ps(x + k * ld + j), m);
        __m256 sum = _mm256_setzero_ps();
        for (size_t k = 0; k < n; k++) {
            __m256 e = perch_expf8_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + k * ld + j), m));
            _mm256_storeu_ps(y + k * ld + j, e);
            sum = _mm256_add_ps(sum, e);
        }
        const __m256 r = _mm256_div_ps(_mm256_set1_ps(1.0f), sum);
        for (size_t k = 0; k < n; k++) _mm256_storeu_ps(y + k * ld + j, _mm256_mul_ps(_mm256_loadu_ps(y + k * ld + j), r));
    }
    if (j < cols) perch_softmax_columns_f32_scalar(x + j, y + j, n, cols - j, ld);
}

PERCH_AVX2FMA_TARGET static inline void perch_layernorm_row_f32_avx2(const float *x, size_t n, const float *scale,
                                                                  const float *bias, float eps, float *y, float *meanOut,
                                                                  float *invOut) {
    __m256 s = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(x + i));
    float sum = perch_hsum256_ps(s);
    for (; i < n; i++) sum += x[i];
    float mean = sum / (float)n;
    const __m256 vm = _mm256_set1_ps(mean);
    __m256 sq = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        sq = _mm256_add_ps(sq, _mm256_mul_ps(d, d));
    }
    float sqs = perch_hsum256_ps(sq);
    for (; i < n; i++) {
        float d = x[i] - mean;
        sqs += d * d;
    }
    float inv = 1.0f / sqrtf(sqs / (float)n + eps);
    const __m256 vi = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vi), _mm256_loadu_ps(scale + i));
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
        _mm256_storeu_ps(y + i, v);
    }
    for (; i < n; i++) {
        float v = (x[i] - mean) * inv * scale[i];
        y[i] = bias ? v + bias[i] : v;
    }
    *meanOut = mean;
    *invOut = inv;
}
#endif  // __x86_64__

#if defined(__aarch64__)
#include <arm_neon.h>

/// 16 bytes per step: vqtbl4q over the first 64 entries, vqtbx4q over the other three quarters
/// (an index outside a quarter's 0..63 leaves the lane as it is).
static inline void perch_lut8_neon(const uint8_t *src, size_t n, const uint8_t *table, uint8_t *dst) {
    const uint8x16x4_t t0 = vld1q_u8_x4(table), t1 = vld1q_u8_x4(table + 64);
    const uint8x16x4_t t2 = vld1q_u8_x4(table + 128), t3 = vld1q_u8_x4(table + 192);
    const uint8x16_t c64 = vdupq_n_u8(64);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint8x16_t x = vld1q_u8(src + i);
        uint8x16_t r = vqtbl4q_u8(t0, x);
        x = vsubq_u8(x, c64);
        r = vqtbx4q_u8(r, t1, x);
        x = vsubq_u8(x, c64);
        r = vqtbx4q_u8(r, t2, x);
        x = vsubq_u8(x, c64);
        r = vqtbx4q_u8(r, t3, x);
        vst1q_u8(dst + i, r);
    }
    for (; i < n; i++) dst[i] = table[src[i]];
}
#endif  // __aarch64__

#if !defined(__x86_64__)
static inline int perch_cpu_avx512vbmi(void) { return 0; }
#endif

#endif
