#ifndef CPERCH_PEAK_H
#define CPERCH_PEAK_H
// Peak-throughput probes for `perch bench-gemm`: chains of independent FMAs / int8 dot products on
// registers only (12 accumulators, more than the units' latency × throughput), so the time is the
// execution units' at whatever clock the core runs — /proc/cpuinfo's "cpu MHz" is the base clock,
// and a core that boosts above it made GEMMs look faster than "100% of peak".
// Each returns the operations done (flops, or multiply-adds × 2); the caller times the call.
#include <stdint.h>
#include <stddef.h>
#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#define PERCH_PEAK_12(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static inline double perch_peak_fma_avx512(long iters) {
#define PERCH_PEAK_DECL(i) __m512 a##i = _mm512_set1_ps(1.0f + (float)(i) * 1e-3f);
    PERCH_PEAK_12(PERCH_PEAK_DECL)
#undef PERCH_PEAK_DECL
    const __m512 x = _mm512_set1_ps(0.9999f), y = _mm512_set1_ps(1e-4f);
    for (long r = 0; r < iters; r++) {
#define PERCH_PEAK_STEP(i) a##i = _mm512_fmadd_ps(a##i, x, y);
        PERCH_PEAK_12(PERCH_PEAK_STEP)
#undef PERCH_PEAK_STEP
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
        __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
    return (double)iters * 12 * 16 * 2;
}

__attribute__((target("avx2,fma"))) static inline double perch_peak_fma_avx2(long iters) {
#define PERCH_PEAK_DECL(i) __m256 a##i = _mm256_set1_ps(1.0f + (float)(i) * 1e-3f);
    PERCH_PEAK_12(PERCH_PEAK_DECL)
#undef PERCH_PEAK_DECL
    const __m256 x = _mm256_set1_ps(0.9999f), y = _mm256_set1_ps(1e-4f);
    for (long r = 0; r < iters; r++) {
#define PERCH_PEAK_STEP(i) a##i = _mm256_fmadd_ps(a##i, x, y);
        PERCH_PEAK_12(PERCH_PEAK_STEP)
#undef PERCH_PEAK_STEP
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
        __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
    }
    return (double)iters * 12 * 8 * 2;
}

__attribute__((target("avx512vnni,avx512f,avx512bw"))) static inline double perch_peak_vnni_avx512(long iters) {
#define PERCH_PEAK_DECL(i) __m512i a##i = _mm512_set1_epi32(i);
    PERCH_PEAK_12(PERCH_PEAK_DECL)
#undef PERCH_PEAK_DECL
    const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-5);
    for (long r = 0; r < iters; r++) {
#define PERCH_PEAK_STEP(i) a##i = _mm512_dpbusd_epi32(a##i, x, y);
        PERCH_PEAK_12(PERCH_PEAK_STEP)
#undef PERCH_PEAK_STEP
        __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
        __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
    return (double)iters * 12 * 64 * 2;
}
#elif defined(__aarch64__)
static inline double perch_peak_fma_neon(long iters) {
#define PERCH_PEAK_DECL(i) float32x4_t a##i = vdupq_n_f32(1.0f + (float)(i) * 1e-3f);
    PERCH_PEAK_12(PERCH_PEAK_DECL)
#undef PERCH_PEAK_DECL
    const float32x4_t x = vdupq_n_f32(0.9999f), y = vdupq_n_f32(1e-4f);
    for (long r = 0; r < iters; r++) {
#define PERCH_PEAK_STEP(i) a##i = vfmaq_f32(y, a##i, x);
        PERCH_PEAK_12(PERCH_PEAK_STEP)
#undef PERCH_PEAK_STEP
        __asm__ volatile("" : "+w"(a0), "+w"(a1), "+w"(a2), "+w"(a3), "+w"(a4), "+w"(a5));
        __asm__ volatile("" : "+w"(a6), "+w"(a7), "+w"(a8), "+w"(a9), "+w"(a10), "+w"(a11));
    }
    return (double)iters * 12 * 4 * 2;
}
#endif

#endif
