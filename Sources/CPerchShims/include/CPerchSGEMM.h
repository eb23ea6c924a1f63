#ifndef CPERCH_SGEMM_H
#define CPERCH_SGEMM_H
// fp32 GEMM micro-kernels: C[6×16] (+)= A_panel · B_panel over kc, where A_panel is packed
// kc × 6 (row index fastest) and B_panel kc × 16. One scalar reference kernel plus SIMD kernels
// per ISA, chosen at run time (x86-64: cpuid) or compile time (aarch64: NEON is baseline).
// `rows`/`cols` ≤ 6/16 clip the tile at the matrix edge; `add` accumulates into C.
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#include <cpuid.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

enum { PERCH_SGEMM_MR = 6, PERCH_SGEMM_NR = 16 };
/// Kernel variants; `perch_sgemm_best()` picks the fastest this CPU runs.
enum { PERCH_SGEMM_SCALAR = 0, PERCH_SGEMM_AVX2 = 1, PERCH_SGEMM_AVX512 = 2, PERCH_SGEMM_NEON = 3 };

/// What a micro-kernel does with its tile besides storing it (the fused Conv/Gemm epilogue).
/// `bias` (may be NULL; read only when the tile does not accumulate into C) gives each of the
/// tile's rows a starting value, so C needs no bias pass first; `clamp` != 0 clamps the final
/// values to [lo, hi] with Clip's expression (v < lo ? lo : v > hi ? hi : v; NaN passes), which
/// folds a following Relu/Clip in while the tile is in registers.
typedef struct {
    const float *bias;
    int clamp;
    float lo, hi;
} perch_sgemm_epilogue;

static inline float perch_clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

static inline void perch_sgemm_store_tile(const float *tile, float *c, long ldc, long rows, long cols, int add,
                                          const perch_sgemm_epilogue *ep) {
    for (long r = 0; r < rows; r++) {
        float *cr = c + r * ldc;
        const float *tr = tile + r * PERCH_SGEMM_NR;
        if (add) { for (long j = 0; j < cols; j++) cr[j] += tr[j]; }
        else if (ep && ep->bias) { float b = ep->bias[r]; for (long j = 0; j < cols; j++) cr[j] = b + tr[j]; }
        else { for (long j = 0; j < cols; j++) cr[j] = tr[j]; }
        if (ep && ep->clamp) { for (long j = 0; j < cols; j++) cr[j] = perch_clampf(cr[j], ep->lo, ep->hi); }
    }
}

/// Clamps n floats in place with Clip's expression (a Relu/Clip fused into a kernel that has no
/// epilogue of its own, run on a block still in cache).
static inline void perch_clamp_f32(float *y, long n, float lo, float hi) {
    for (long i = 0; i < n; i++) y[i] = perch_clampf(y[i], lo, hi);
}

/// Packs rows p0…p0+kc of a row-major B (row stride ldb) from column j0, `cols` ≤ 16 columns,
/// into one kc × 16 panel, zero-padding the missing columns.
static inline void perch_sgemm_pack_b_rows(long kc, long cols, const float *b, long ldb, float *dst) {
    if (cols == PERCH_SGEMM_NR) {
        for (long p = 0; p < kc; p++) __builtin_memcpy(dst + p * PERCH_SGEMM_NR, b + p * ldb, PERCH_SGEMM_NR * sizeof(float));
        return;
    }
    for (long p = 0; p < kc; p++) {
        float *d = dst + p * PERCH_SGEMM_NR;
        const float *s = b + p * ldb;
        long j = 0;
        for (; j < cols; j++) d[j] = s[j];
        for (; j < PERCH_SGEMM_NR; j++) d[j] = 0.0f;
    }
}

/// A 2-D convolution's im2col matrix without writing it: row q = (c, kh, kw) (c slowest), column
/// j = output pixel (oy, ox) = x[c·planeSize + (oy·sH + kh·dH)·Wp + ox·sW + kw·dW], where x is the
/// input already padded (planes of rows Wp floats long). The GEMM's B packing reads the input
/// through this instead of a materialized matrix kH·kW times the input's size (for a 3×3 conv, 9×
/// the input written and read back per layer).
typedef struct {
    const float *x;
    long planeSize, Wp, outW, kH, kW, sH, sW, dH, dW;
} perch_conv_im2col;

#if defined(__x86_64__)
/// perch_sgemm_pack_b_conv with AVX-512: each panel row is one 16-float store whatever the
/// panel's shape — a load (one run of stride 1), two loads and an even-lane permute (stride 2),
/// two loads blended by column (a run across one row end), or a masked gather through the
/// panel's 16 column offsets (runs across several rows: 14×14 and 7×7 maps, where the portable
/// path copied float by float and took 8% of GoogLeNet-v2's time). Same panel, bit for bit.
__attribute__((target("avx512f"))) static inline void perch_sgemm_pack_b_conv_avx512(long kc, long q0, long j0, long cols,
                                                                                     const perch_conv_im2col *g, float *dst) {
    int32_t off[PERCH_SGEMM_NR];
    long oy = j0 / g->outW, ox = j0 % g->outW, split = 0;
    int runs = 1;
    for (long j = 0; j < PERCH_SGEMM_NR; j++) {
        off[j] = j < cols ? (int32_t)(oy * g->sH * g->Wp + ox * g->sW) : 0;
        if (j < cols && ++ox == g->outW && j + 1 < cols) {
            ox = 0;
            oy++;
            runs++;
            if (runs == 2) split = j + 1;
        }
    }
    const __mmask16 valid = (__mmask16)(cols >= PERCH_SGEMM_NR ? 0xffff : ((1u << cols) - 1));
    const int full = cols == PERCH_SGEMM_NR;
    // 0: one stride-1 run; 1: one stride-2 run; 2: two stride-1 runs; 3: gather.
    const int mode = full && runs == 1 && g->sW == 1 ? 0
                   : full && runs == 1 && g->sW == 2 ? 1
                   : full && runs == 2 && g->sW == 1 && g->Wp >= PERCH_SGEMM_NR ? 2 : 3;
    const __m512i idx = _mm512_loadu_si512(off);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __mmask16 first = (__mmask16)((1u << split) - 1);
    const long taps = g->kH * g->kW;
    long c = q0 / taps, t = q0 % taps, kh = t / g->kW, kw = t % g->kW;
    for (long p = 0; p < kc; p++) {
        const float *base = g->x + c * g->planeSize + kh * g->dH * g->Wp + kw * g->dW;
        __m512 v;
        switch (mode) {
        case 0: v = _mm512_loadu_ps(base + off[0]); break;
        case 1: {
            // 31 floats are needed; the 32nd may lie past the input, so it is masked off.
            __m512 lo = _mm512_loadu_ps(base + off[0]), hi = _mm512_maskz_loadu_ps(0x7fff, base + off[0] + 16);
            v = _mm512_permutex2var_ps(lo, even, hi);
            break;
        }
        case 2:
            v = _mm512_mask_blend_ps(first, _mm512_loadu_ps(base + off[split] - split), _mm512_loadu_ps(base + off[0]));
            break;
        default: v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, idx, base, 4); break;
        }
        _mm512_storeu_ps(dst + p * PERCH_SGEMM_NR, v);
        if (++kw == g->kW) {
            kw = 0;
            if (++kh == g->kH) {
                kh = 0;
                c++;
            }
        }
    }
}
#endif

/// The portable implicit im2col packing (the reference for the AVX-512 one): runs of columns
/// within one output row copied row by row of the panel.
static inline void perch_sgemm_pack_b_conv_portable(long kc, long q0, long j0, long cols, const perch_conv_im2col *g, float *dst) {
    // The panel's columns as runs within one output row: offset in the plane, first column, length.
    long segOff[PERCH_SGEMM_NR], segCol[PERCH_SGEMM_NR], segLen[PERCH_SGEMM_NR];
    int segs = 0;
    for (long j = 0; j < cols;) {
        long p = j0 + j, oy = p / g->outW, ox = p % g->outW;
        long len = g->outW - ox < cols - j ? g->outW - ox : cols - j;
        segOff[segs] = oy * g->sH * g->Wp + ox * g->sW;
        segCol[segs] = j;
        segLen[segs] = len;
        segs++;
        j += len;
    }
    const long taps = g->kH * g->kW;
    const int whole = segs == 1 && cols == PERCH_SGEMM_NR && (g->sW == 1 || g->sW == 2);
    // A full panel across one row end (56-, 28-wide maps: every other panel): the first row's
    // part and the next row's, each as one unconditional 16-float load, blended by column. The
    // loads stay inside the plane: past the first part is the rest of the padded row and the next
    // rows; before the second part, the end of the row above it.
    const int straddle = segs == 2 && cols == PERCH_SGEMM_NR && g->sW == 1 && g->Wp >= PERCH_SGEMM_NR;
    const long split = segCol[1 < segs ? 1 : 0];
    // The tap (kh, kw) advances with p (a division per row was 11% of this function's samples).
    long c = q0 / taps, t = q0 % taps, kh = t / g->kW, kw = t % g->kW;
    for (long p = 0; p < kc; p++) {
        const float *base = g->x + c * g->planeSize + kh * g->dH * g->Wp + kw * g->dW;
        float *d = dst + p * PERCH_SGEMM_NR;
        if (straddle) {
            const float *a = base + segOff[0], *b = base + segOff[1] - split;
#if defined(__x86_64__)
            // SSE2 (the x86-64 baseline): 4 lanes at a time, lane j < split from a.
            const __m128i sp = _mm_set1_epi32((int)split);
            for (int q = 0; q < 4; q++) {
                __m128 m = _mm_castsi128_ps(_mm_cmplt_epi32(_mm_setr_epi32(4 * q, 4 * q + 1, 4 * q + 2, 4 * q + 3), sp));
                __m128 va = _mm_loadu_ps(a + 4 * q), vb = _mm_loadu_ps(b + 4 * q);
                _mm_storeu_ps(d + 4 * q, _mm_or_ps(_mm_and_ps(m, va), _mm_andnot_ps(m, vb)));
            }
#else
            for (int l = 0; l < PERCH_SGEMM_NR; l++) d[l] = l < split ? a[l] : b[l];
#endif
        } else if (whole && g->sW == 1) {
            __builtin_memcpy(d, base + segOff[0], PERCH_SGEMM_NR * sizeof(float));
        } else if (whole) {
            // Stride 2 (stem and downsampling convs): the even elements of 31 floats.
            const float *src = base + segOff[0];
#if defined(__x86_64__)
            // SSE2, 4 lanes per shuffle (the scalar loop was 40% of this function's samples on
            // YOLO). The last group loads src[27..30]: src[31] may lie past the input.
            for (int q = 0; q < 3; q++)
                _mm_storeu_ps(d + 4 * q, _mm_shuffle_ps(_mm_loadu_ps(src + 8 * q), _mm_loadu_ps(src + 8 * q + 4), _MM_SHUFFLE(2, 0, 2, 0)));
            _mm_storeu_ps(d + 12, _mm_shuffle_ps(_mm_loadu_ps(src + 24), _mm_loadu_ps(src + 27), _MM_SHUFFLE(3, 1, 2, 0)));
#else
            for (int l = 0; l < PERCH_SGEMM_NR; l++) d[l] = src[2 * l];
#endif
        } else {
            for (int s = 0; s < segs; s++) {
                const float *src = base + segOff[s];
                float *dd = d + segCol[s];
                if (g->sW == 1) {
                    for (long l = 0; l < segLen[s]; l++) dd[l] = src[l];
                } else {
                    for (long l = 0; l < segLen[s]; l++) dd[l] = src[l * g->sW];
                }
            }
            for (long j = cols; j < PERCH_SGEMM_NR; j++) d[j] = 0.0f;
        }
        if (++kw == g->kW) {
            kw = 0;
            if (++kh == g->kH) {
                kh = 0;
                c++;
            }
        }
    }
}

static inline int perch_sgemm_best(void);

/// Packs rows q0…q0+kc of the implicit im2col matrix, columns j0…j0+cols (cols ≤ 16), into one
/// kc × 16 panel, zero-padding the missing columns (what perch_sgemm_pack_b_rows does with the
/// materialized matrix): with AVX-512 when the CPU has it, else portably.
static inline void perch_sgemm_pack_b_conv(long kc, long q0, long j0, long cols, const perch_conv_im2col *g, float *dst) {
#if defined(__x86_64__)
    if (perch_sgemm_best() == PERCH_SGEMM_AVX512 && g->planeSize < (1L << 30)) {
        perch_sgemm_pack_b_conv_avx512(kc, q0, j0, cols, g, dst);
        return;
    }
#endif
    perch_sgemm_pack_b_conv_portable(kc, q0, j0, cols, g, dst);
}

/// The reference: plain C, same summation order as the SIMD kernels (p ascending, one fused or
/// unfused multiply-add per step), so results agree to rounding.
static inline void perch_sgemm_6x16_scalar(long kc, const float *a, const float *b, float *c, long ldc,
                                           long rows, long cols, int add, const perch_sgemm_epilogue *ep) {
    float acc[PERCH_SGEMM_MR * PERCH_SGEMM_NR];
    for (int r = 0; r < PERCH_SGEMM_MR; r++) {
        float b0 = (!add && ep && ep->bias && r < rows) ? ep->bias[r] : 0.0f;
        for (int j = 0; j < PERCH_SGEMM_NR; j++) acc[r * PERCH_SGEMM_NR + j] = b0;
    }
    for (long p = 0; p < kc; p++) {
        for (int r = 0; r < PERCH_SGEMM_MR; r++) {
            float av = a[p * PERCH_SGEMM_MR + r];
            for (int j = 0; j < PERCH_SGEMM_NR; j++) acc[r * PERCH_SGEMM_NR + j] += av * b[p * PERCH_SGEMM_NR + j];
        }
    }
    perch_sgemm_epilogue rest = { 0, ep ? ep->clamp : 0, ep ? ep->lo : 0.0f, ep ? ep->hi : 0.0f };
    perch_sgemm_store_tile(acc, c, ldc, rows, cols, add, &rest);
}

/// Row r's starting value: bias[r] when the epilogue has one and the tile does not accumulate.
static inline float perch_sgemm_row_start(const perch_sgemm_epilogue *ep, int add, long rows, long r) {
    return (!add && ep && ep->bias && r < rows) ? ep->bias[r] : 0.0f;
}

#if defined(__x86_64__)
/// The right edge of C when at most 8 columns are left (e.g. 100 pixels = 6 × 16 + 4): one ymm
/// per row instead of a zmm (or two ymm), half the FMA work of a 16-wide tile; same summation
/// order. B panels keep their 16-float stride.
__attribute__((target("avx2,fma")))
static inline void perch_sgemm_6x8_avx2(long kc, const float *a, const float *b, float *c, long ldc,
                                        long rows, long cols, int add, const perch_sgemm_epilogue *ep) {
    __m256 c0 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 0)), c1 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 1));
    __m256 c2 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 2)), c3 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 3));
    __m256 c4 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 4)), c5 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 5));
    for (long p = 0; p < kc; p++) {
        __m256 bv = _mm256_loadu_ps(b);
        c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 0), bv, c0);
        c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 1), bv, c1);
        c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 2), bv, c2);
        c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 3), bv, c3);
        c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 4), bv, c4);
        c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 5), bv, c5);
        a += PERCH_SGEMM_MR;
        b += PERCH_SGEMM_NR;
    }
    float tile[PERCH_SGEMM_MR * PERCH_SGEMM_NR];
    _mm256_storeu_ps(tile + 0, c0); _mm256_storeu_ps(tile + 16, c1); _mm256_storeu_ps(tile + 32, c2);
    _mm256_storeu_ps(tile + 48, c3); _mm256_storeu_ps(tile + 64, c4); _mm256_storeu_ps(tile + 80, c5);
    perch_sgemm_epilogue rest = { 0, ep ? ep->clamp : 0, ep ? ep->lo : 0.0f, ep ? ep->hi : 0.0f };
    perch_sgemm_store_tile(tile, c, ldc, rows, cols, add, &rest);
}

__attribute__((target("avx2,fma")))
static inline void perch_sgemm_6x16_avx2(long kc, const float *a, const float *b, float *c, long ldc,
                                         long rows, long cols, int add, const perch_sgemm_epilogue *ep) {
    if (cols <= 8) { perch_sgemm_6x8_avx2(kc, a, b, c, ldc, rows, cols, add, ep); return; }
    /* C was written a K block ago and has left the cache: fetch it while the FMAs run. */
    for (long r = 0; r < rows; r++) { __builtin_prefetch(c + r * ldc, 1); __builtin_prefetch(c + r * ldc + 15, 1); }
    __m256 c00 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 0)), c01 = c00;
    __m256 c10 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 1)), c11 = c10;
    __m256 c20 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 2)), c21 = c20;
    __m256 c30 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 3)), c31 = c30;
    __m256 c40 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 4)), c41 = c40;
    __m256 c50 = _mm256_set1_ps(perch_sgemm_row_start(ep, add, rows, 5)), c51 = c50;
    for (long p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 av;
        av = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);
        a += PERCH_SGEMM_MR;
        b += PERCH_SGEMM_NR;
    }
    if (rows == PERCH_SGEMM_MR && cols == PERCH_SGEMM_NR) {
        int clamp = ep && ep->clamp;
        __m256 vlo = _mm256_set1_ps(clamp ? ep->lo : 0.0f), vhi = _mm256_set1_ps(clamp ? ep->hi : 0.0f);
#define PERCH_ST(r, lo, hi) do { float *cr = c + (r) * ldc; \
        if (add) { lo = _mm256_add_ps(lo, _mm256_loadu_ps(cr)); hi = _mm256_add_ps(hi, _mm256_loadu_ps(cr + 8)); } \
        if (clamp) { lo = _mm256_min_ps(vhi, _mm256_max_ps(vlo, lo)); hi = _mm256_min_ps(vhi, _mm256_max_ps(vlo, hi)); } \
        _mm256_storeu_ps(cr, lo); _mm256_storeu_ps(cr + 8, hi); } while (0)
        PERCH_ST(0, c00, c01); PERCH_ST(1, c10, c11); PERCH_ST(2, c20, c21);
        PERCH_ST(3, c30, c31); PERCH_ST(4, c40, c41); PERCH_ST(5, c50, c51);
#undef PERCH_ST
        return;
    }
    float tile[PERCH_SGEMM_MR * PERCH_SGEMM_NR];
    _mm256_storeu_ps(tile + 0, c00); _mm256_storeu_ps(tile + 8, c01);
    _mm256_storeu_ps(tile + 16, c10); _mm256_storeu_ps(tile + 24, c11);
    _mm256_storeu_ps(tile + 32, c20); _mm256_storeu_ps(tile + 40, c21);
    _mm256_storeu_ps(tile + 48, c30); _mm256_storeu_ps(tile + 56, c31);
    _mm256_storeu_ps(tile + 64, c40); _mm256_storeu_ps(tile + 72, c41);
    _mm256_storeu_ps(tile + 80, c50); _mm256_storeu_ps(tile + 88, c51);
    perch_sgemm_epilogue rest = { 0, ep ? ep->clamp : 0, ep ? ep->lo : 0.0f, ep ? ep->hi : 0.0f };
    perch_sgemm_store_tile(tile, c, ldc, rows, cols, add, &rest);
}

/// Stores `rows` zmm accumulator rows of an AVX-512 tile (`count` of them in registers): whole
/// tiles straight from the registers with the `add` and the clamp; an edge tile through a buffer
/// and perch_sgemm_store_tile. Always inlined, so the array stays in registers.
__attribute__((target("avx512f"), always_inline))
static inline void perch_sgemm_finish_avx512(const __m512 *acc, int count, float *c, long ldc, long rows, long cols, int add,
                                             const perch_sgemm_epilogue *ep) {
    if (rows == count && cols == PERCH_SGEMM_NR) {
        int clamp = ep && ep->clamp;
        __m512 vlo = _mm512_set1_ps(clamp ? ep->lo : 0.0f), vhi = _mm512_set1_ps(clamp ? ep->hi : 0.0f);
        for (int r = 0; r < count; r++) {
            float *cr = c + r * ldc;
            __m512 v = acc[r];
            if (add) v = _mm512_add_ps(v, _mm512_loadu_ps(cr));
            if (clamp) v = _mm512_min_ps(vhi, _mm512_max_ps(vlo, v));
            _mm512_storeu_ps(cr, v);
        }
        return;
    }
    float tile[2 * PERCH_SGEMM_MR * PERCH_SGEMM_NR];
    for (int r = 0; r < count; r++) _mm512_storeu_ps(tile + 16 * r, acc[r]);
    perch_sgemm_epilogue rest = { 0, ep ? ep->clamp : 0, ep ? ep->lo : 0.0f, ep ? ep->hi : 0.0f };
    perch_sgemm_store_tile(tile, c, ldc, rows, cols, add, &rest);
}

/// 6×16 with one zmm per row: half the FMA instructions of AVX2 (on cores with two 512-bit FMA
/// pipes, twice the throughput; on Zen 4, which splits zmm into two 256-bit halves, the same).
__attribute__((target("avx512f")))
static inline void perch_sgemm_6x16_avx512(long kc, const float *a, const float *b, float *c, long ldc,
                                           long rows, long cols, int add, const perch_sgemm_epilogue *ep) {
    if (cols <= 8) { perch_sgemm_6x8_avx2(kc, a, b, c, ldc, rows, cols, add, ep); return; }
    /* C was written a K block ago and has left the cache: fetch it while the FMAs run. */
    for (long r = 0; r < rows; r++) { __builtin_prefetch(c + r * ldc, 1); __builtin_prefetch(c + r * ldc + 15, 1); }
    __m512 c0 = _mm512_set1_ps(perch_sgemm_row_start(ep, add, rows, 0)), c1 = _mm512_set1_ps(perch_sgemm_row_start(ep, add, rows, 1));
    __m512 c2 = _mm512_set1_ps(perch_sgemm_row_start(ep, add, rows, 2)), c3 = _mm512_set1_ps(perch_sgemm_row_start(ep, add, rows, 3));
    __m512 c4 = _mm512_set1_ps(perch_sgemm_row_start(ep, add, rows, 4)), c5 = _mm512_set1_ps(perch_sgemm_row_start(ep, add, rows, 5));
    for (long p = 0; p < kc; p++) {
        __m512 bv = _mm512_loadu_ps(b);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0]), bv, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[1]), bv, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[2]), bv, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[3]), bv, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[4]), bv, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[5]), bv, c5);
        a += PERCH_SGEMM_MR;
        b += PERCH_SGEMM_NR;
    }
    const __m512 acc[PERCH_SGEMM_MR] = { c0, c1, c2, c3, c4, c5 };
    perch_sgemm_finish_avx512(acc, PERCH_SGEMM_MR, c, ldc, rows, cols, add, ep);
}

/// Two 6-row panels (12 rows: `a` and the panel after it, 6·kc floats on) against one B panel,
/// one zmm per row. Six accumulators cannot cover the FMA latency of a core with two 512-bit FMA
/// pipes (4 cycles × 2 in flight = 8 needed); twelve can, and each B vector loaded is used twelve
/// times. Every C element sees the same fused multiply-adds in the same order as in the 6×16
/// kernels, so the results are the same bits. `rows` is 7…12.
///
/// `next` (may be NULL): the B panel the caller runs after this one, one line of which each
/// step prefetches. A thin A against a large constant B (ddddocr's 40 × 1024 · 1024 × 8210 Gemm
/// streams 34 MB of packed weights) otherwise waited for each panel to come from memory at the
/// column's first tile, then computed the rest of the column with the memory idle: the Gemm's
/// minimum 6.2 → 4.6 ms in the model, one thread (ORT 4.6).
__attribute__((target("avx512f")))
static inline void perch_sgemm_12x16_avx512(long kc, const float *a, const float *b, float *c, long ldc,
                                            long rows, long cols, int add, const perch_sgemm_epilogue *ep,
                                            const float *next) {
    const float *a1 = a + PERCH_SGEMM_MR * kc;
    for (long r = 0; r < rows; r++) __builtin_prefetch(c + r * ldc, 1);
#define PERCH_S(r) _mm512_set1_ps(perch_sgemm_row_start(ep, add, rows, r))
    __m512 c0 = PERCH_S(0), c1 = PERCH_S(1), c2 = PERCH_S(2), c3 = PERCH_S(3), c4 = PERCH_S(4), c5 = PERCH_S(5);
    __m512 c6 = PERCH_S(6), c7 = PERCH_S(7), c8 = PERCH_S(8), c9 = PERCH_S(9), c10 = PERCH_S(10), c11 = PERCH_S(11);
#undef PERCH_S
    for (long p = 0; p < kc; p++) {
        if (next) _mm_prefetch((const char *)(next + p * PERCH_SGEMM_NR), _MM_HINT_T0);
        __m512 bv = _mm512_loadu_ps(b);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0]), bv, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[1]), bv, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[2]), bv, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[3]), bv, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[4]), bv, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[5]), bv, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(a1[0]), bv, c6);
        c7 = _mm512_fmadd_ps(_mm512_set1_ps(a1[1]), bv, c7);
        c8 = _mm512_fmadd_ps(_mm512_set1_ps(a1[2]), bv, c8);
        c9 = _mm512_fmadd_ps(_mm512_set1_ps(a1[3]), bv, c9);
        c10 = _mm512_fmadd_ps(_mm512_set1_ps(a1[4]), bv, c10);
        c11 = _mm512_fmadd_ps(_mm512_set1_ps(a1[5]), bv, c11);
        a += PERCH_SGEMM_MR;
        a1 += PERCH_SGEMM_MR;
        b += PERCH_SGEMM_NR;
    }
    const __m512 acc[2 * PERCH_SGEMM_MR] = { c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11 };
    perch_sgemm_finish_avx512(acc, 2 * PERCH_SGEMM_MR, c, ldc, rows, cols, add, ep);
}

static inline int perch_x86_detect(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return PERCH_SGEMM_SCALAR;
    int fma = (ecx >> 12) & 1, osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1;
    if (!osxsave || !avx) return PERCH_SGEMM_SCALAR;
    unsigned lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0x6) != 0x6) return PERCH_SGEMM_SCALAR;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return PERCH_SGEMM_SCALAR;
    int avx2 = (ebx >> 5) & 1, avx512f = (ebx >> 16) & 1;
    if (avx512f && (lo & 0xe0) == 0xe0) return PERCH_SGEMM_AVX512;
    if (avx2 && fma) return PERCH_SGEMM_AVX2;
    return PERCH_SGEMM_SCALAR;
}
#endif

#if defined(__aarch64__)
static inline void perch_sgemm_6x16_neon(long kc, const float *a, const float *b, float *c, long ldc,
                                         long rows, long cols, int add, const perch_sgemm_epilogue *ep) {
    /* C was written a K block ago and has left the cache: fetch it while the FMAs run. */
    for (long r = 0; r < rows; r++) { __builtin_prefetch(c + r * ldc, 1); __builtin_prefetch(c + r * ldc + 15, 1); }
    float32x4_t acc[PERCH_SGEMM_MR][4];
    for (int r = 0; r < PERCH_SGEMM_MR; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = vdupq_n_f32(perch_sgemm_row_start(ep, add, rows, r));
    for (long p = 0; p < kc; p++) {
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8), b3 = vld1q_f32(b + 12);
        float32x4_t a03 = vld1q_f32(a);
        float32x2_t a45 = vld1_f32(a + 4);
#define PERCH_ROW(r, av, lane) \
        acc[r][0] = vfmaq_laneq_f32(acc[r][0], b0, av, lane); acc[r][1] = vfmaq_laneq_f32(acc[r][1], b1, av, lane); \
        acc[r][2] = vfmaq_laneq_f32(acc[r][2], b2, av, lane); acc[r][3] = vfmaq_laneq_f32(acc[r][3], b3, av, lane);
        PERCH_ROW(0, a03, 0) PERCH_ROW(1, a03, 1) PERCH_ROW(2, a03, 2) PERCH_ROW(3, a03, 3)
#undef PERCH_ROW
#define PERCH_ROW2(r, lane) \
        acc[r][0] = vfmaq_lane_f32(acc[r][0], b0, a45, lane); acc[r][1] = vfmaq_lane_f32(acc[r][1], b1, a45, lane); \
        acc[r][2] = vfmaq_lane_f32(acc[r][2], b2, a45, lane); acc[r][3] = vfmaq_lane_f32(acc[r][3], b3, a45, lane);
        PERCH_ROW2(4, 0) PERCH_ROW2(5, 1)
#undef PERCH_ROW2
        a += PERCH_SGEMM_MR;
        b += PERCH_SGEMM_NR;
    }
    float tile[PERCH_SGEMM_MR * PERCH_SGEMM_NR];
    for (int r = 0; r < PERCH_SGEMM_MR; r++)
        for (int q = 0; q < 4; q++) vst1q_f32(tile + r * PERCH_SGEMM_NR + q * 4, acc[r][q]);
    perch_sgemm_epilogue rest = { 0, ep ? ep->clamp : 0, ep ? ep->lo : 0.0f, ep ? ep->hi : 0.0f };
    perch_sgemm_store_tile(tile, c, ldc, rows, cols, add, &rest);
}
#endif

/// The fastest variant this CPU supports (detected once per translation unit).
static inline int perch_sgemm_best(void) {
#if defined(__x86_64__)
    static int cached = -1;
    if (cached < 0) cached = perch_x86_detect();
    return cached;
#elif defined(__aarch64__)
    return PERCH_SGEMM_NEON;
#else
    return PERCH_SGEMM_SCALAR;
#endif
}

/// True when `variant` runs on this CPU.
static inline int perch_sgemm_supported(int variant) {
    if (variant == PERCH_SGEMM_SCALAR) return 1;
#if defined(__x86_64__)
    int best = perch_sgemm_best();
    return (variant == PERCH_SGEMM_AVX2 && best >= PERCH_SGEMM_AVX2) || (variant == PERCH_SGEMM_AVX512 && best == PERCH_SGEMM_AVX512);
#elif defined(__aarch64__)
    return variant == PERCH_SGEMM_NEON;
#else
    return 0;
#endif
}

/// Runs the 6×16 micro-kernel `variant` (which must be supported). `ep` may be NULL (plain
/// store); its `bias` points at the tile's first row's value.
static inline void perch_sgemm_6x16_ep(int variant, long kc, const float *a, const float *b, float *c, long ldc,
                                       long rows, long cols, int add, const perch_sgemm_epilogue *ep) {
    switch (variant) {
#if defined(__x86_64__)
    case PERCH_SGEMM_AVX512: perch_sgemm_6x16_avx512(kc, a, b, c, ldc, rows, cols, add, ep); return;
    case PERCH_SGEMM_AVX2: perch_sgemm_6x16_avx2(kc, a, b, c, ldc, rows, cols, add, ep); return;
#elif defined(__aarch64__)
    case PERCH_SGEMM_NEON: perch_sgemm_6x16_neon(kc, a, b, c, ldc, rows, cols, add, ep); return;
#endif
    default: perch_sgemm_6x16_scalar(kc, a, b, c, ldc, rows, cols, add, ep); return;
    }
}

/// One column of micro-tiles: row panels 0 ..< panels of a packed A block (each 6·kc floats,
/// consecutive) against one packed B panel, C tiles 6 rows apart, `m` rows in all from the first.
/// `bias` (may be NULL) is the first row's; `clamp` applies Clip's clamp to the finished tile. The
/// loop is here rather than in Swift: with short sums (a 3-channel stem: 27 taps, 162 multiply-
/// adds per tile) the per-call work around each micro-kernel in Swift cost as much as the tile.
/// `nextB` (may be NULL): the B panel the caller runs next, which the AVX-512 kernels prefetch.
static inline void perch_sgemm_column(int variant, long kc, const float *a, long panels, long m, const float *b, float *c, long ldc,
                                      long cols, int add, const float *bias, int clamp, float lo, float hi, const float *nextB) {
    perch_sgemm_epilogue ep = { 0, clamp, lo, hi };
    const int useEp = bias != 0 || clamp;
    long ip = 0;
#if defined(__x86_64__)
    /* Wide columns: two panels a call (twelve accumulators). A column of at most 8 keeps the
       6×8 ymm kernel, a lone last panel the 6×16 one. */
    if (variant == PERCH_SGEMM_AVX512 && cols > 8) {
        for (; ip + 1 < panels; ip += 2) {
            long left = m - ip * PERCH_SGEMM_MR;
            long rows = left < 2 * PERCH_SGEMM_MR ? left : 2 * PERCH_SGEMM_MR;
            ep.bias = bias ? bias + ip * PERCH_SGEMM_MR : 0;
            perch_sgemm_12x16_avx512(kc, a + ip * PERCH_SGEMM_MR * kc, b, c + ip * PERCH_SGEMM_MR * ldc, ldc, rows, cols, add,
                                     useEp ? &ep : 0, nextB);
        }
    }
#endif
    for (; ip < panels; ip++) {
        long left = m - ip * PERCH_SGEMM_MR;
        long rows = left < PERCH_SGEMM_MR ? left : PERCH_SGEMM_MR;
        ep.bias = bias ? bias + ip * PERCH_SGEMM_MR : 0;
        perch_sgemm_6x16_ep(variant, kc, a + ip * PERCH_SGEMM_MR * kc, b, c + ip * PERCH_SGEMM_MR * ldc, ldc, rows, cols, add,
                            useEp ? &ep : 0);
    }
}

/// The micro-kernel with a plain store (no bias, no clamp).
static inline void perch_sgemm_6x16(int variant, long kc, const float *a, const float *b, float *c, long ldc,
                                    long rows, long cols, int add) {
    perch_sgemm_6x16_ep(variant, kc, a, b, c, ldc, rows, cols, add, 0);
}

#endif
