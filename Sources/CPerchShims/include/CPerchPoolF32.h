#ifndef CPERCH_POOL_F32_H
#define CPERCH_POOL_F32_H
// Float MaxPool rows (PerchEngine's MaxPoolF32). A stride-2 window of width 2 or 3 takes the even
// and odd lanes of 32 loaded floats with one vpermt2ps each: 16 outputs per step, where Swift's
// SIMD16 evenHalf/oddHalf compiled to 8 at a time and SqueezeNet's 3×3/2 pools ran 3× ORT's time.
#include <stdint.h>
#include <stddef.h>

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

#if defined(__x86_64__)
#include <immintrin.h>

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
