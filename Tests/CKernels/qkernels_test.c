// Every SIMD int8 kernel of CPerchQConv.h / CPerchQGemmSIMD.h (and the elementwise kernels of
// CPerchElementwise.h) against its scalar reference, bit for
// bit, on random shapes with ragged tails (columns not a multiple of the kernels' blocks, rows not a
// multiple of their tiles, strides wider than the data) and extreme values (255 × −128).
// x86-64: AVX2 kernels; aarch64: NEON, dotprod and i8mm kernels (run under `qemu-aarch64-static
// -cpu max` by scripts/test-cross.sh, since the Swift tests run on the x86 host only).
// Build: clang -O2 -I Sources/CPerchShims/include Tests/CKernels/qkernels_test.c
#include "CPerchShims.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static uint64_t state = 88172645463325252ull;
static uint32_t rnd(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)state;
}

typedef void (*k4fn)(size_t, size_t, size_t, const uint8_t *, size_t, const int8_t *, size_t, int32_t *, size_t);
typedef void (*dwfn)(const uint8_t *const *, const int32_t *, size_t, size_t, int32_t, int32_t *);
typedef void (*rowfn)(const int32_t *, size_t, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, uint8_t *);
typedef void (*colfn)(const int32_t *, size_t, const int32_t *, const int32_t *, const int32_t *, int32_t, int32_t, int32_t,
                      uint8_t *);
struct path {
    const char *name;
    k4fn conv, rm;
    dwfn dw;
    rowfn row;
    colfn cols;
};

static int fails = 0, checks = 0;
static void expect(int same, const char *what, const char *path, size_t a, size_t b, size_t c) {
    checks++;
    if (!same) {
        fails++;
        if (fails < 20) printf("FAIL %s %s (%zu, %zu, %zu)\n", what, path, a, b, c);
    }
}

static void test_k4(const struct path *p) {
    for (int trial = 0; trial < 300; trial++) {
        size_t rows = 1 + rnd() % 21, cols = 1 + rnd() % 40, k4 = 1 + rnd() % 20;
        if (trial % 50 == 0) rows = 67, cols = 101, k4 = 300;
        // More columns than the row-major AVX2 kernel's L2 block (~160 at K4 = 400): several
        // blocks and a ragged last one.
        if (trial % 50 == 25) rows = 13, cols = 333 + trial % 4, k4 = 400;
        int extreme = trial % 7 == 0;
        size_t ldv = cols + rnd() % 3, lds = 4 * k4 + rnd() % 5, ldc = cols + rnd() % 3;
        uint8_t *v = malloc(k4 * ldv * 4), *s = malloc(rows * lds);
        for (size_t i = 0; i < k4 * ldv * 4; i++) v[i] = extreme ? 255 : (uint8_t)rnd();
        for (size_t i = 0; i < rows * lds; i++) s[i] = extreme ? 0x80 : (uint8_t)rnd();
        int32_t *want = malloc(rows * ldc * 4), *got = malloc(rows * ldc * 4);
        // conv: V = X (uint8), S = W (int8); row-major: S = A (uint8), V = B (int8).
        for (int rm = 0; rm < 2; rm++) {
            for (size_t i = 0; i < rows * ldc; i++) want[i] = got[i] = 77;
            if (rm) {
                if (extreme) for (size_t i = 0; i < rows * lds; i++) s[i] = 255, v[i % (k4 * ldv * 4)] = 0x80;
                perch_qgemm_rm_scalar(rows, cols, k4, s, lds, (const int8_t *)v, ldv, want, ldc);
                p->rm(rows, cols, k4, s, lds, (const int8_t *)v, ldv, got, ldc);
            } else {
                perch_qconv_k4_scalar(rows, cols, k4, v, ldv, (const int8_t *)s, lds, want, ldc);
                p->conv(rows, cols, k4, v, ldv, (const int8_t *)s, lds, got, ldc);
            }
            expect(!memcmp(want, got, rows * ldc * 4), rm ? "row-major gemm" : "k4 conv gemm", p->name, rows, cols, k4);
        }
        free(v), free(s), free(want), free(got);
    }
}

#if defined(__x86_64__)
/// CPerchQConvSplit.h: the split S + R of random weight rows (pairs from −128 to 127, so the
/// residual lists are dense; every 5th trial 0x80 / 0x7F rows against 255 activations, the
/// saturation worst case) through perch_qconv_split_avx2, against perch_qconv_k4_scalar with the
/// unsplit weights; columns checked up to P only (the kernel writes whole blocks of 16).
static void test_split(void) {
    for (int trial = 0; trial < 300; trial++) {
        size_t rows = 1 + rnd() % 23, cols = 1 + rnd() % 150, k4 = 1 + rnd() % 40;
        if (trial % 50 == 0) rows = 67, cols = 200, k4 = 300;
        int extreme = trial % 5 == 0;
        size_t ld = (cols + 15) / 16 * 16 + 16 * (rnd() % 2), ldw = 4 * k4 + rnd() % 5;
        uint8_t *x = malloc(k4 * ld * 4);
        int8_t *w = malloc(rows * ldw), *safe = malloc(rows * ldw);
        for (size_t i = 0; i < k4 * ld * 4; i++) x[i] = extreme ? 255 : (uint8_t)rnd();
        for (size_t i = 0; i < rows * ldw; i++) w[i] = extreme ? (int8_t)(i % 3 ? 0x80 : 0x7F) : (int8_t)rnd();
        size_t n = perch_qsplit_weights(rows, k4, w, ldw, NULL, NULL, NULL, NULL);
        int32_t *start = malloc((rows + 1) * 4), *group = malloc((n + 1) * 4), *resid = malloc((n + 1) * 4);
        expect(perch_qsplit_weights(rows, k4, w, ldw, safe, start, group, resid) == n, "split count", "avx2", rows, k4, n);
        int32_t *want = malloc(rows * ld * 4), *got = malloc(rows * ld * 4);
        perch_qconv_k4_scalar(rows, cols, k4, x, ld, w, ldw, want, ld);
        perch_qsplit_residual res = {start, group, resid};
        perch_qconv_split_avx2(rows, cols, k4, x, ld, safe, ldw, res, got, ld);
        int same = 1;
        for (size_t r = 0; r < rows; r++) same &= !memcmp(want + r * ld, got + r * ld, cols * 4);
        expect(same, "split conv gemm", "avx2", rows, cols, k4);
        free(x), free(w), free(safe), free(start), free(group), free(resid), free(want), free(got);
    }
}
#endif

static void test_dw(const struct path *p) {
    for (int trial = 0; trial < 1000; trial++) {
        size_t taps = 1 + rnd() % 30, n = 1 + rnd() % 100;
        if (trial % 100 == 0) taps = 140;
        const uint8_t *rows[200];
        int32_t w[200], want[128], got[128];
        for (size_t t = 0; t < taps; t++) {
            uint8_t *r = malloc(n);
            for (size_t i = 0; i < n; i++) r[i] = trial % 5 == 0 ? 255 : (uint8_t)rnd();
            rows[t] = r;
            w[t] = trial % 5 == 0 ? -255 : (int32_t)(rnd() % 511) - 255;
            if (trial % 50 == 1) w[t] = (int32_t)(rnd() % 200000) - 100000;  // beyond int16: fallback
        }
        int32_t init = (int32_t)(rnd() % 100000) - 50000;
        perch_qdw_row_scalar(rows, w, taps, n, init, want);
        p->dw(rows, w, taps, n, init, got);
        expect(!memcmp(want, got, n * 4), "depthwise row", p->name, taps, n, 0);
        for (size_t t = 0; t < taps; t++) free((void *)rows[t]);
    }
}

static void test_requant(const struct path *p) {
    for (int trial = 0; trial < 3000; trial++) {
        size_t n = 1 + rnd() % 140;  // past 32: the AVX2 row's packed 32-output steps
        int32_t acc[160], add[160], mult[160], shift[160];
        uint8_t want[160], got[160];
        for (size_t i = 0; i < n; i++) {
            acc[i] = trial % 3 ? (int32_t)(rnd() % 4000000) - 2000000 : (int32_t)rnd();
            add[i] = (int32_t)(rnd() % 2000) - 1000;
            mult[i] = (int32_t)(rnd() >> 1) | (1 << 30);  // QuantizedMultiplier: [2^30, 2^31)
            shift[i] = (int32_t)(rnd() % 24) - 18;
        }
        acc[0] = INT32_MAX;
        if (n > 1) acc[1] = INT32_MIN;
        int sign = trial % 2;
        int32_t zp = (int32_t)(rnd() % 256) - (sign ? 128 : 0), lo = sign ? -128 : 0, hi = sign ? 127 : 255;
        if (trial % 5 == 1) {  // a fused activation's narrower range (ReLU: lo = zp; ReLU6)
            lo = zp;
            hi = lo + (int32_t)(rnd() % (uint32_t)((sign ? 127 : 255) - lo + 1));
        }
        perch_qrequant_row_scalar(acc, n, add[0], mult[0], shift[0], zp, lo, hi, want);
        p->row(acc, n, add[0], mult[0], shift[0], zp, lo, hi, got);
        expect(!memcmp(want, got, n), "requant row", p->name, n, (size_t)(shift[0] + 100), 0);
        perch_qrequant_cols_scalar(acc, n, add, mult, shift, zp, lo, hi, want);
        p->cols(acc, n, add, mult, shift, zp, lo, hi, got);
        expect(!memcmp(want, got, n), "requant columns", p->name, n, 0, 0);
    }
}

/// CPerchElementwise.h: lookup (NEON on aarch64, VBMI on x86 when present), and on x86 the AVX2
/// and AVX-512 Quantize/Dequantize/exp kernels and QLinearMul, bit for bit with the scalar references.
static void test_elementwise(void) {
    uint8_t table[256], src[700], want[700], got[700];
    for (int i = 0; i < 256; i++) table[i] = (uint8_t)rnd();
    for (int trial = 0; trial < 200; trial++) {
        size_t n = trial % 20 == 0 ? 700 : rnd() % 200;
        for (size_t i = 0; i < n; i++) src[i] = (uint8_t)rnd();
        perch_lut8_scalar(src, n, table, want);
#if defined(__aarch64__)
        perch_lut8_neon(src, n, table, got);
        expect(!memcmp(want, got, n), "lut8", "neon", n, 0, 0);
#elif defined(__x86_64__)
        if (perch_cpu_avx512vbmi()) {
            perch_lut8_avx512vbmi(src, n, table, got);
            expect(!memcmp(want, got, n), "lut8", "avx512vbmi", n, 0, 0);
        }
        if (perch_cpu_features() & PERCH_CPU_AVX2) {
            perch_lut8_avx2(src, n, table, got);
            expect(!memcmp(want, got, n), "lut8", "avx2", n, 0, 0);
        }
#endif
    }
#if defined(__x86_64__)
    float f[700], fw[700], fg[700];
    int avx2 = (perch_cpu_features() & PERCH_CPU_AVX2) && __builtin_cpu_supports("fma");
    int avx512 = perch_cpu_features() & PERCH_CPU_AVX512VNNI;
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 1 + rnd() % 300;
        for (size_t i = 0; i < n; i++) f[i] = (float)((int)(rnd() % 8000) - 4000) * 0.0125f, src[i] = (uint8_t)rnd();
        if (n > 8) f[3] = NAN, f[5] = INFINITY, f[7] = 0.025f;
        float lo = trial % 2 ? -128 : 0, hi = trial % 2 ? 127 : 255, z = trial % 2 ? -5 : 130;
        perch_quantize_f32_8bit(f, n, 0.05f, z, lo, hi, want);
        if (avx2) {
            perch_quantize_f32_8bit_avx2(f, n, 0.05f, z, lo, hi, got);
            expect(!memcmp(want, got, n), "quantize", "avx2", n, 0, 0);
        }
        if (avx512) {
            perch_quantize_f32_8bit_avx512(f, n, 0.05f, z, lo, hi, got);
            expect(!memcmp(want, got, n), "quantize", "avx512", n, 0, 0);
        }
        perch_dequantize_8bit_f32_scalar(src, trial % 2, n, 9, 0.037f, fw);
        if (avx2) {
            perch_dequantize_8bit_f32_avx2(src, trial % 2, n, 9, 0.037f, fg);
            expect(!memcmp(fw, fg, n * 4), "dequantize", "avx2", n, 0, 0);
        }
        if (avx512) {
            perch_dequantize_8bit_f32_avx512(src, trial % 2, n, 9, 0.037f, fg);
            expect(!memcmp(fw, fg, n * 4), "dequantize", "avx512", n, 0, 0);
        }
        for (size_t i = 0; i < n; i++) f[i] = (float)((int)(rnd() % 200000) - 100000) * 0.001f, fw[i] = perch_expf_poly(f[i]);
        if (avx2) {
            perch_expf_avx2(f, n, fg);
            expect(!memcmp(fw, fg, n * 4), "expf", "avx2", n, 0, 0);
        }
        if (avx512) {
            perch_expf_avx512(f, n, fg);
            expect(!memcmp(fw, fg, n * 4), "expf", "avx512", n, 0, 0);
        }
        // QLinearMul and QLinearAdd (TFLite's formula; perch_qadd_scalar is checked against the
        // term tables' definition in the Swift QLinearAdd tests).
        uint8_t *b = src + 300;
        for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rnd();
        int32_t shift = -(int32_t)(rnd() % 20), mult = 1073741824 + (int32_t)(rnd() % 1073741823);
        int32_t za = trial % 2 ? -3 : 120, zb = trial % 3 == 0 ? 7 : 131, zy = trial % 2 ? -9 : 125;
        int32_t ma = 1073741824 + (int32_t)(rnd() % 1073741823), mb = 1073741824 + (int32_t)(rnd() % 1073741823);
        int32_t mo = 1073741824 + (int32_t)(rnd() % 1073741823), ra = (int32_t)(rnd() % 3), rb = (int32_t)(rnd() % 3), ro = 10 + (int32_t)(rnd() % 12);
        uint8_t qaddWant[700];
        perch_qmul_scalar(src, trial % 2, 3, b, trial % 3 == 0, -7, n, mult, shift, 11, (int32_t)lo, (int32_t)hi, want);
        perch_qadd_scalar(src, trial % 2, za, ma, ra, b, trial % 3 == 0, zb, mb, rb, mo, ro, zy, (int32_t)lo, (int32_t)hi, n, qaddWant);
        if (avx2) {
            perch_qmul_avx2(src, trial % 2, 3, b, trial % 3 == 0, -7, n, mult, shift, 11, (int32_t)lo, (int32_t)hi, got);
            expect(!memcmp(want, got, n), "qmul", "avx2", n, 0, 0);
            perch_qadd_avx2(src, trial % 2, za, ma, ra, b, trial % 3 == 0, zb, mb, rb, mo, ro, zy, (int32_t)lo, (int32_t)hi, n, got);
            expect(!memcmp(qaddWant, got, n), "qadd", "avx2", n, 0, 0);
        }
        if (avx512) {
            perch_qmul_avx512(src, trial % 2, 3, b, trial % 3 == 0, -7, n, mult, shift, 11, (int32_t)lo, (int32_t)hi, got);
            expect(!memcmp(want, got, n), "qmul", "avx512", n, 0, 0);
            perch_qadd_avx512(src, trial % 2, za, ma, ra, b, trial % 3 == 0, zb, mb, rb, mo, ro, zy, (int32_t)lo, (int32_t)hi, n, got);
            expect(!memcmp(qaddWant, got, n), "qadd", "avx512", n, 0, 0);
        }
    }
#endif
    printf("elementwise ");
}

/// CPerchSigmoidTanh.h: Sigmoid, Tanh and SiLU (NEON on aarch64, AVX2 and AVX-512 on x86) bit for
/// bit with the scalar reference, on ragged lengths over ±100 (both tanh branches, the e^x clamps).
/// CPerchElementwise.h: the column Softmax's AVX2 kernel gives the scalar one's bits (ragged
/// column counts, a row stride past them, NaN and large logits), in place too.
static void test_softmax_columns(void) {
#if defined(__x86_64__)
    if (!(perch_cpu_features() & PERCH_CPU_AVX2)) return;
    static float x[40 * 300], a[40 * 300], b[40 * 300];
    for (int trial = 0; trial < 100; trial++) {
        size_t n = 1 + rnd() % 40, cols = 1 + rnd() % 250, ld = cols + rnd() % 40;
        for (size_t i = 0; i < n * ld; i++) x[i] = (float)((int)(rnd() % 4001) - 2000) / 100.0f;
        if (trial % 5 == 1) x[rnd() % (n * ld)] = NAN;
        if (trial % 5 == 2) x[rnd() % (n * ld)] = 3000.0f;
        perch_softmax_columns_f32_scalar(x, a, n, cols, ld);
        perch_softmax_columns_f32_avx2(x, b, n, cols, ld);
        int same = 1;
        for (size_t k = 0; k < n; k++) same &= memcmp(a + k * ld, b + k * ld, cols * sizeof(float)) == 0;
        memcpy(b, x, n * ld * sizeof(float));
        perch_softmax_columns_f32_avx2(b, b, n, cols, ld);
        for (size_t k = 0; k < n; k++) same &= memcmp(a + k * ld, b + k * ld, cols * sizeof(float)) == 0;
        expect(same, "softmax_columns", "avx2", (size_t)trial, n, cols);
    }
    printf("softmax_columns ");
#endif
}

static void test_sigmoid_tanh(void) {
    float x[300], want[300], got[300];
    for (int trial = 0; trial < 300; trial++) {
        size_t n = 1 + rnd() % 300;
        float range = trial % 3 == 0 ? 0.01f : (trial % 3 == 1 ? 0.0005f : 0.0001f);
        for (size_t i = 0; i < n; i++) x[i] = (float)((int)(rnd() % 2000001) - 1000000) * range;
        if (n > 8) x[2] = 0.625f, x[4] = -0.0f, x[6] = INFINITY;
        int fn = trial % 3;
        perch_sigmoid_tanh_f32_scalar(x, n, fn, want);
#if defined(__aarch64__)
        perch_sigmoid_tanh_f32_neon(x, n, fn, got);
        expect(!memcmp(want, got, n * 4), "sigmoid_tanh", "neon", n, (size_t)fn, 0);
#elif defined(__x86_64__)
        if ((perch_cpu_features() & PERCH_CPU_AVX2) && __builtin_cpu_supports("fma")) {
            perch_sigmoid_tanh_f32_avx2(x, n, fn, got);
            expect(!memcmp(want, got, n * 4), "sigmoid_tanh", "avx2", n, (size_t)fn, 0);
        }
        if (perch_cpu_features() & PERCH_CPU_AVX512VNNI) {
            perch_sigmoid_tanh_f32_avx512(x, n, fn, got);
            expect(!memcmp(want, got, n * 4), "sigmoid_tanh", "avx512", n, (size_t)fn, 0);
        }
#endif
    }
    printf("sigmoid_tanh ");
}

/// perch_gather_even_bytes (a stride-2 im2col row; AVX-512 BW on x86 when present) against the
/// definition dst[i] = src[2i] ^ flip, every length 1…100, the source ending at its last read byte.
static void test_gather_even(void) {
    for (long n = 1; n <= 100; n++) {
        uint8_t *src = malloc((size_t)(2 * n - 1)), got[100], want[100];
        for (long i = 0; i < 2 * n - 1; i++) src[i] = (uint8_t)rnd();
        uint8_t flip = n % 2 ? 0x80 : 0;
        for (long i = 0; i < n; i++) want[i] = src[2 * i] ^ flip;
        perch_gather_even_bytes(src, n, flip, got);
        expect(!memcmp(want, got, (size_t)n), "gather_even", "best", (size_t)n, flip, 0);
        free(src);
    }
    printf("gather_even ");
}

/// The SIMD fp32 GEMM variants this CPU runs (NEON on aarch64; AVX2 and AVX-512 on x86) into out.
static int sgemm_simd_variants(int *out) {
    int n = 0;
#if defined(__aarch64__)
    out[n++] = PERCH_SGEMM_NEON;
#elif defined(__x86_64__)
    if (perch_sgemm_supported(PERCH_SGEMM_AVX2)) out[n++] = PERCH_SGEMM_AVX2;
    if (perch_sgemm_supported(PERCH_SGEMM_AVX512)) out[n++] = PERCH_SGEMM_AVX512;
#endif
    return n;
}

/// CPerchSGEMV.h: one row against packed B panels, bit for bit with row 0 of the 6×16 micro-kernel
/// of the same variant (NEON on aarch64; AVX2 and AVX-512 on x86), with accumulation, bias, clamp.
static void test_sgemv(void) {
    enum { KMAX = 70, PMAX = 11 };
    static float a[KMAX * PERCH_SGEMM_MR], b[KMAX * PERCH_SGEMM_NR * PMAX], c0[PMAX * 16], want[PMAX * 16], got[PMAX * 16];
    int variants[3], nv = sgemm_simd_variants(variants);
    for (int trial = 0; trial < 120; trial++) {
        long kc = 1 + rnd() % KMAX, n = 1 + rnd() % (PMAX * 16), panels = (n + 15) / 16;
        int add = trial % 3 == 1, clamp = trial % 3 == 2;
        float bias = (float)((int)(rnd() % 201) - 100) / 50.0f;
        for (long i = 0; i < kc * PERCH_SGEMM_MR; i++) a[i] = (float)((int)(rnd() % 2001) - 1000) / 300.0f;
        for (long i = 0; i < kc * 16 * panels; i++) b[i] = (float)((int)(rnd() % 2001) - 1000) / 700.0f;
        for (long i = 0; i < n; i++) c0[i] = (float)((int)(rnd() % 2001) - 1000) / 100.0f;
        float arow[KMAX];
        for (long p = 0; p < kc; p++) arow[p] = a[p * PERCH_SGEMM_MR];  // row 0 of the packed A panel
        for (int v = 0; v < nv; v++) {
            perch_sgemm_epilogue ep = { add ? 0 : &bias, clamp, -0.5f, 0.75f };
            memcpy(want, c0, sizeof(float) * n);
            for (long q = 0; q < panels; q++) {
                long cols = n - q * 16 < 16 ? n - q * 16 : 16;
                perch_sgemm_6x16_ep(variants[v], kc, a, b + q * kc * 16, want + q * 16, 0, 1, cols, add, &ep);
            }
            memcpy(got, c0, sizeof(float) * n);
            perch_sgemv_panels(variants[v], kc, arow, b, n, got, add, add ? 0.0f : bias, clamp, -0.5f, 0.75f);
            expect(!memcmp(want, got, sizeof(float) * n), "sgemv", variants[v] == PERCH_SGEMM_AVX512 ? "avx512" : "avx2/neon", (size_t)kc,
                   (size_t)n, (size_t)(add * 2 + clamp));
        }
    }
    printf("sgemv ");
}

/// CPerchSGEMVInt8W.h: a float row times int8 weights in their panels, every SIMD variant bit for
/// bit with the scalar reference, over widths (whole groups of panels and a ragged last one),
/// with and without zero points; the reference itself against the definition in double.
static void test_sgemv_i8w(void) {
    enum { KMAX = 90, NMAX = 400 };
    static float a[KMAX], scale[NMAX], zero[NMAX], want[NMAX], got[NMAX];
    static int8_t q[KMAX * NMAX], packed[KMAX * (NMAX + 15) / 16 * 16 + KMAX * 16];
    int variants[3], nv = sgemm_simd_variants(variants);
    for (int trial = 0; trial < 120; trial++) {
        long kc = 1 + rnd() % KMAX, n = 1 + rnd() % NMAX;
        if (trial % 10 == 0) n = 128 * (1 + trial % 3);
        int transposed = trial % 2, zeros = trial % 3 == 0;
        float sumA = 0;
        for (long p = 0; p < kc; p++) { a[p] = (float)((int)(rnd() % 2001) - 1000) / 999.0f; sumA += a[p]; }
        for (long i = 0; i < kc * n; i++) q[i] = (int8_t)(trial % 7 == 0 ? (i % 2 ? 127 : -128) : (int)(rnd() % 256) - 128);
        for (long j = 0; j < n; j++) { scale[j] = (float)(1 + rnd() % 1000) / 50000.0f; zero[j] = zeros ? (float)((int)(rnd() % 21) - 10) : 0; }
        long ldq = transposed ? kc : n;
        perch_sgemv_i8w_pack(kc, n, q, ldq, transposed, packed);
        perch_sgemv_i8w_scalar(kc, a, packed, n, scale, zeros ? zero : 0, sumA, want);
        int close = 1;
        for (long j = 0; j < n; j++) {
            double s = 0;
            for (long p = 0; p < kc; p++) s += (double)a[p] * ((transposed ? q[j * ldq + p] : q[p * ldq + j]) - zero[j]);
            s *= scale[j];
            if (fabs(s - want[j]) > 1e-4 * (1 + fabs(s))) close = 0;
        }
        expect(close, "sgemv_i8w", "scalar vs definition", (size_t)kc, (size_t)n, (size_t)zeros);
        for (int v = 0; v < nv; v++) {
            memset(got, 0xCD, sizeof got);
            perch_sgemv_i8w(variants[v], kc, a, packed, n, scale, zeros ? zero : 0, sumA, got);
            expect(!memcmp(want, got, sizeof(float) * n), "sgemv_i8w", variants[v] == PERCH_SGEMM_AVX512 ? "avx512" : "avx2/neon",
                   (size_t)kc, (size_t)n, (size_t)zeros);
        }
    }
    printf("sgemv_i8w ");
}

/// CPerchRangeF32.h: DynamicQuantizeLinear's range, every variant the same floats as the scalar
/// rule (NaN elements skipped, zero signs as the scalar loop leaves them), over ragged lengths.
static void test_range(void) {
    static float x[300];
    for (int trial = 0; trial < 300; trial++) {
        size_t n = rnd() % 300;
        for (size_t i = 0; i < n; i++) {
            int kind = (int)(rnd() % 20);
            x[i] = kind == 0 ? NAN : kind == 1 ? -0.0f : kind == 2 ? 0.0f : (float)((int)(rnd() % 20001) - 10000) / (trial % 2 ? 7.0f : -3.0f);
            if (trial % 9 == 0) x[i] = kind < 10 ? -0.0f : NAN;  // no non-zero value at all
        }
        float wl, wh, gl, gh;
        perch_range_f32_scalar(x, n, &wl, &wh);
        perch_range_f32(x, n, &gl, &gh);
        expect(!memcmp(&wl, &gl, 4) && !memcmp(&wh, &gh, 4), "range", "best", n, 0, 0);
#if defined(__x86_64__)
        if (perch_cpu_features() & PERCH_CPU_AVX2) {
            perch_range_f32_avx2(x, n, &gl, &gh);
            expect(!memcmp(&wl, &gl, 4) && !memcmp(&wh, &gh, 4), "range", "avx2", n, 0, 0);
        }
#endif
    }
    printf("range ");
}

/// CPerchPoolF32.h's perch_max_first_f32 against the serial rule, bit for bit: NaN first or
/// inside, ties of +0 and −0 in every order, ragged lengths.
static void test_max_first(void) {
    static float x[200];
    for (int trial = 0; trial < 400; trial++) {
        long n = 1 + (long)(rnd() % 200);
        for (long i = 0; i < n; i++) {
            int kind = (int)(rnd() % 12);
            x[i] = kind == 0 ? NAN : kind == 1 ? -0.0f : kind == 2 ? 0.0f : (float)((int)(rnd() % 2001) - 1000) / (trial % 3 ? 7.0f : -900.0f);
            if (trial % 5 == 0 && x[i] > 0) x[i] = -x[i];  // maxima of zero
        }
        float want = x[0];
        for (long k = 1; k < n; k++) want = x[k] > want ? x[k] : want;
        float got = perch_max_first_f32(x, n);
        expect(!memcmp(&want, &got, 4), "max_first", "lanes", (size_t)n, (size_t)trial, 0);
    }
    printf("max_first ");
}

/// perch_sgemm_column: a column of row panels (AVX-512 runs them two at a time, 12×16, with a lone
/// last panel and ≤ 8-column edges on the 6-row kernels), bit for bit with one 6×16 call per
/// panel of the same variant, over panel counts, partial last panels, edge widths, accumulation,
/// bias and clamp.
static void test_sgemm_column(void) {
    enum { KMAX = 40, PMAX = 7, LDC = 20 };
    static float a[KMAX * PERCH_SGEMM_MR * PMAX], b[KMAX * PERCH_SGEMM_NR], bias[PMAX * PERCH_SGEMM_MR];
    static float c0[PMAX * PERCH_SGEMM_MR * LDC], want[PMAX * PERCH_SGEMM_MR * LDC], got[PMAX * PERCH_SGEMM_MR * LDC];
    int variants[4] = { PERCH_SGEMM_SCALAR }, nv = 1 + sgemm_simd_variants(variants + 1);
    for (int trial = 0; trial < 160; trial++) {
        long kc = 1 + rnd() % KMAX, m = 1 + rnd() % (PMAX * PERCH_SGEMM_MR), panels = (m + 5) / 6;
        long cols = 1 + rnd() % 16;
        if (trial % 2) cols = 9 + rnd() % 8;
        int add = trial % 4 == 1, clamp = trial % 4 >= 2, useBias = trial % 4 != 1 && trial % 3 != 0;
        for (long i = 0; i < kc * PERCH_SGEMM_MR * panels; i++) a[i] = (float)((int)(rnd() % 2001) - 1000) / 300.0f;
        for (long i = 0; i < kc * 16; i++) b[i] = (float)((int)(rnd() % 2001) - 1000) / 700.0f;
        for (long i = 0; i < panels * 6; i++) bias[i] = (float)((int)(rnd() % 201) - 100) / 50.0f;
        for (long i = 0; i < panels * 6 * LDC; i++) c0[i] = (float)((int)(rnd() % 2001) - 1000) / 100.0f;
        for (int v = 0; v < nv; v++) {
            memcpy(want, c0, sizeof c0);
            for (long ip = 0; ip < panels; ip++) {
                long left = m - ip * 6, rows = left < 6 ? left : 6;
                perch_sgemm_epilogue ep = { useBias ? bias + ip * 6 : 0, clamp, -0.5f, 0.75f };
                perch_sgemm_6x16_ep(variants[v], kc, a + ip * 6 * kc, b, want + ip * 6 * LDC, LDC, rows, cols, add,
                                    useBias || clamp ? &ep : 0);
            }
            memcpy(got, c0, sizeof c0);
            perch_sgemm_column(variants[v], kc, a, panels, m, b, got, LDC, cols, add, useBias ? bias : 0, clamp, -0.5f, 0.75f,
                               (trial & 2) ? b + kc * 16 : 0);  /* a prefetched next panel changes no bits */
            static const char *names[] = { "scalar", "avx2", "avx512", "neon" };
            expect(!memcmp(want, got, sizeof c0), "sgemm_column", names[variants[v]], (size_t)kc, (size_t)m, (size_t)cols);
        }
    }
    printf("sgemm_column ");
}

/// The fp32 direct conv (CPerchConvDirectF32.h): the NEON tile kernel against the scalar reference,
/// bit for bit (both fused multiply-adds in (c, kh, kw) order), every tile width, both channel
/// halves, stride 1 and 2, dilation, a clamp.
static void test_conv_direct(void) {
#if defined(__aarch64__) || defined(__x86_64__)
#if defined(__x86_64__)
    if (!(perch_cpu_features() & PERCH_CPU_AVX2)) return;
#define perch_conv_direct_tile_simd perch_conv_direct_tile_avx2
    const char *path = "avx2";
#else
#define perch_conv_direct_tile_simd perch_conv_direct_tile_neon
    const char *path = "neon";
#endif
    static const long shapes[][8] = {  // cin, kH, kW, s, d, outH, outW, cout
        {3, 3, 3, 1, 1, 3, 13, 40}, {5, 3, 3, 2, 1, 2, 9, 32}, {2, 5, 3, 1, 2, 2, 7, 7}, {4, 1, 1, 1, 1, 2, 11, 20},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const long *sh = shapes[i];
        long cin = sh[0], kH = sh[1], kW = sh[2], st = sh[3], d = sh[4], outH = sh[5], outW = sh[6], cout = sh[7];
        long hp = (outH - 1) * st + (kH - 1) * d + 1, wp = (outW - 1) * st + (kW - 1) * d + 1;
        long k = cin * kH * kW, blocks = (cout + 31) / 32;
        float *x = malloc(sizeof(float) * cin * hp * wp), *w = malloc(sizeof(float) * cout * k);
        float *wt = malloc(sizeof(float) * blocks * k * 32), *bias = malloc(sizeof(float) * blocks * 32);
        float *a = malloc(sizeof(float) * 32 * outH * outW), *b = malloc(sizeof(float) * 32 * outH * outW);
        for (long j = 0; j < cin * hp * wp; j++) x[j] = (float)((int)(rnd() % 2001) - 1000) / 250.0f;
        for (long j = 0; j < cout * k; j++) w[j] = (float)((int)(rnd() % 2001) - 1000) / 700.0f;
        for (long j = 0; j < blocks * 32; j++) bias[j] = (float)((int)(rnd() % 201) - 100) / 50.0f;
        perch_conv_direct_pack(w, cout, k, wt);
        perch_conv_direct g = {x, hp * wp, wp, cin, kH, kW, st, st, d, d, outW, outH * outW};
        for (long blk = 0; blk < blocks; blk++)
            for (long half = 0; half < 2; half++) {
                long nco = cout - blk * 32 - half * 16;
                if (nco <= 0) continue;
                if (nco > 16) nco = 16;
                for (int clamp = 0; clamp < 2; clamp++)
                    for (long nt = 1; nt <= 6 && nt <= outW; nt++)
                        for (long oy = 0; oy < outH; oy++) {
                            long ox0 = outW - nt, off = oy * outW + ox0;
                            for (long j = 0; j < 32 * outH * outW; j++) a[j] = b[j] = 9.0f;
                            const float *wb = wt + blk * k * 32 + half * 16, *bb = bias + blk * 32 + half * 16;
                            perch_conv_direct_tile_simd(&g, wb, bb, oy, ox0, nt, nco, clamp, -0.5f, 0.75f, a + off);
                            perch_conv_direct_tile_reference(&g, wb, bb, oy, ox0, nt, nco, clamp, -0.5f, 0.75f, b + off);
                            expect(memcmp(a, b, sizeof(float) * 32 * outH * outW) == 0, "conv_direct", path, (size_t)i,
                                   (size_t)nt, (size_t)oy);
                        }
            }
        free(x); free(w); free(wt); free(bias); free(a); free(b);
    }
    printf("conv_direct ");
#undef perch_conv_direct_tile_simd
#endif
}

/// CPerchConvStemF32.h: the phase planes hold the zero-padded input (the reference over them
/// equals a plain conv over the input, bit for bit: zeros where a window leaves it), and the AVX2
/// tiles give the reference's bits — strides 1 and 2, kernels 1–5, pads 0–2 on each side, rows
/// of 8 to 60 (whole and masked vectors), 1 to 9 channels (4-channel tiles and the remainder),
/// clamp on and off. The outputs around the written rows and channels must stay untouched.
static void test_conv_stem(void) {
    static float x[4 * 40 * 130], w[9 * 4 * 25], bias[9], planes[4 * 4 * 40 * 80], a[9 * 40 * 64], b[9 * 40 * 64], c[9 * 40 * 64];
    for (int trial = 0; trial < 300; trial++) {
        long cin = 1 + rnd() % 4, kH = 1 + rnd() % 5, kW = 1 + rnd() % 5, st = 1 + rnd() % 2;
        long pT = rnd() % 3, pL = rnd() % 3, pB = rnd() % 3, pR = rnd() % 3;
        long outW = 8 + rnd() % 53, outH = 1 + rnd() % 9, cout = 1 + rnd() % 9;
        // An input that gives outW × outH with these pads (any extra columns or rows are unread).
        long inW = (outW - 1) * st + kW - pL - pR, inH = (outH - 1) * st + kH - pT - pB;
        if (inW < 1 || inH < 1) continue;
        long R = perch_conv_stem_r(outH, kH, st), Q = perch_conv_stem_q(outW, kW, st);
        for (long j = 0; j < cin * inH * inW; j++) x[j] = (float)((int)(rnd() % 2001) - 1000) / 250.0f;
        for (long j = 0; j < cout * cin * kH * kW; j++) w[j] = (float)((int)(rnd() % 2001) - 1000) / 700.0f;
        for (long j = 0; j < cout; j++) bias[j] = (float)((int)(rnd() % 201) - 100) / 50.0f;
        long split = rnd() % (R + 1);  // filled in two row ranges, as two threads would
        perch_conv_stem_phases_f32(x, cin, inH, inW, pT, pL, st, R, Q, split, R, planes);
        perch_conv_stem_phases_f32(x, cin, inH, inW, pT, pL, st, R, Q, 0, split, planes);
        perch_conv_stem g = {planes, R, Q, cin, kH, kW, st, outH, outW};
        int clamp = trial % 3 == 0;
        long oc0 = rnd() % cout, n = 1 + rnd() % (cout - oc0), oy0 = rnd() % outH, oy1 = oy0 + 1 + rnd() % (outH - oy0);
        const float *bp = trial % 5 == 0 ? 0 : bias;
        for (long j = 0; j < 9 * 40 * 64; j++) a[j] = b[j] = c[j] = 9.0f;
        perch_conv_stem_rows_reference(&g, w, bp, oc0, n, oy0, oy1, clamp, -0.5f, 0.75f, b);
        // The plain conv over the unpadded input, same order and fused multiply-adds.
        long taps = cin * kH * kW;
        for (long oc = oc0; oc < oc0 + n; oc++)
            for (long oy = oy0; oy < oy1; oy++)
                for (long ox = 0; ox < outW; ox++) {
                    float acc = bp ? bp[oc] : 0.0f;
                    for (long ci = 0, t = 0; ci < cin; ci++)
                        for (long kh = 0; kh < kH; kh++)
                            for (long kw = 0; kw < kW; kw++, t++) {
                                long iy = oy * st + kh - pT, ix = ox * st + kw - pL;
                                float v = iy >= 0 && iy < inH && ix >= 0 && ix < inW ? x[(ci * inH + iy) * inW + ix] : 0.0f;
                                acc = fmaf(w[oc * taps + t], v, acc);
                            }
                    if (clamp) acc = acc < -0.5f ? -0.5f : (acc > 0.75f ? 0.75f : acc);
                    c[oc * outH * outW + oy * outW + ox] = acc;
                }
        expect(memcmp(b, c, sizeof b) == 0, "conv_stem_phases", "scalar", (size_t)trial, (size_t)st, (size_t)outW);
#if defined(__x86_64__)
        if (perch_cpu_features() & PERCH_CPU_AVX2) {
            perch_conv_stem_rows_avx2(&g, w, bp, oc0, n, oy0, oy1, clamp, -0.5f, 0.75f, a);
            expect(memcmp(a, b, sizeof a) == 0, "conv_stem", "avx2", (size_t)trial, (size_t)n, (size_t)outW);
        }
#endif
    }
#if defined(__x86_64__)
    // Wide inputs (96–127 channels × 3 rows of 66 floats: more than the 64 KB after which the
    // AVX2 kernel puts the channel tiles innermost), 3×3, 1 to 9 output channels.
    static float wx[128 * 4 * 60], ww[9 * 128 * 9], wplanes[128 * 6 * 66], wa[9 * 4 * 60], wb[9 * 4 * 60];
    for (int trial = 0; trial < 40 && (perch_cpu_features() & PERCH_CPU_AVX2); trial++) {
        long cin = 96 + rnd() % 32, outW = 57 + rnd() % 4, outH = 1 + rnd() % 4, cout = 1 + rnd() % 9;
        long inW = outW, inH = outH, R = perch_conv_stem_r(outH, 3, 1), Q = perch_conv_stem_q(outW, 3, 1);
        expect(cin * 3 * Q * (long)sizeof(float) > 64 * 1024, "conv_stem_wide", "setup", (size_t)trial, (size_t)cin, (size_t)Q);
        for (long j = 0; j < cin * inH * inW; j++) wx[j] = (float)((int)(rnd() % 2001) - 1000) / 250.0f;
        for (long j = 0; j < cout * cin * 9; j++) ww[j] = (float)((int)(rnd() % 2001) - 1000) / 7000.0f;
        perch_conv_stem_phases_f32(wx, cin, inH, inW, 1, 1, 1, R, Q, 0, R, wplanes);
        perch_conv_stem g = {wplanes, R, Q, cin, 3, 3, 1, outH, outW};
        int clamp = trial % 2;
        for (long j = 0; j < 9 * 4 * 60; j++) wa[j] = wb[j] = 9.0f;
        perch_conv_stem_rows_reference(&g, ww, bias, 0, cout, 0, outH, clamp, -0.5f, 0.75f, wb);
        perch_conv_stem_rows_avx2(&g, ww, bias, 0, cout, 0, outH, clamp, -0.5f, 0.75f, wa);
        expect(memcmp(wa, wb, sizeof wa) == 0, "conv_stem_wide", "avx2", (size_t)trial, (size_t)cin, (size_t)outW);
    }
#endif
    printf("conv_stem ");
}

/// CPerchQConv.h: perch_interleave4 packs what perch_interleave4_scalar packs, and the one-pass
/// im2col from padded phase planes (perch_qpad_planes + perch_qim2col4, strides 1–3) exactly what
/// perch_qim2col_rows + perch_interleave4_scalar pack: kernel sizes 1–5, dilations,
/// asymmetric and zero pads, int8 flips, pixel blocks that start and end inside output rows; with
/// channels in fours, perch_qpad_planes_c4 + perch_qim2col_c4 the same bytes in their K order.
static void test_im2col4(void) {
    static uint8_t x[8 * 23 * 80], col[8 * 25 * 600], want[8 * 25 * 600 + 64], got[8 * 25 * 600 + 64], planes[8 * 30 * 90],
        tmp[4 * 30 * 90];
    for (int trial = 0; trial < 400; trial++) {
        // Every 4th trial wide rows (the SIMD column gathers of stride-2 phase planes).
        long cin = 1 + rnd() % 8, inH = 1 + rnd() % 23, inW = 1 + rnd() % (trial % 4 == 3 ? 80 : 23), kH = 1 + rnd() % 5, kW = 1 + rnd() % 5;
        long dH = 1 + rnd() % 2, dW = 1 + rnd() % 2, pT = rnd() % 3, pL = rnd() % 3, pB = rnd() % 3, pR = rnd() % 3;
        long sH = trial % 3 ? 1 + rnd() % 3 : 1, sW = trial % 3 ? 1 + rnd() % 3 : 1;
        long spanH = inH + pT + pB - (kH - 1) * dH, spanW = inW + pL + pR - (kW - 1) * dW;
        if (spanH < 1 || spanW < 1) continue;
        long outH = (spanH - 1) / sH + 1, outW = (spanW - 1) / sW + 1;
        long P = outH * outW, p0 = rnd() % P, m = 1 + rnd() % (P - p0);
        if (m > 600) m = 600;
        long Pp = m + rnd() % 5, K = cin * kH * kW;
        uint8_t flip = trial % 2 ? 0x80 : 0, padRaw = (uint8_t)rnd();
        for (long i = 0; i < cin * inH * inW; i++) x[i] = (uint8_t)rnd();
        long phaseH = outH + (kH - 1) * dH / sH, phaseW = outW + (kW - 1) * dW / sW;
        perch_qim2col_rows(x, cin, inH, inW, outW, kH, kW, sH, sW, dH, dW, pT, pL, p0, m, m, padRaw, col);
        size_t bytes = (size_t)((K + 3) / 4 * Pp * 4);
        memset(want, 0xEE, bytes);
        memset(got, 0xDD, bytes);
        perch_interleave4_scalar(col, (size_t)m, (size_t)K, (size_t)m, (size_t)Pp, flip, want);
        perch_interleave4(col, (size_t)m, (size_t)K, (size_t)m, (size_t)Pp, flip, got);
        expect(!memcmp(want, got, bytes), "interleave4", "host", (size_t)K, (size_t)m, (size_t)Pp);
        memset(got, 0xDD, bytes);
        perch_qpad_planes(x, cin, inH, inW, pT, pL, sH, sW, phaseH, phaseW, flip, padRaw ^ flip, planes);
        perch_qim2col4(planes, cin, sH, sW, phaseH, phaseW, outW, kH, kW, dH, dW, p0, m, Pp, got);
        expect(!memcmp(want, got, bytes), "im2col4", "host", (size_t)K, (size_t)p0, (size_t)(100 * sH + sW));
        if (cin % 4) continue;
        memset(got, 0xDD, bytes);
        perch_qpad_planes_c4(x, cin, inH, inW, pT, pL, sH, sW, phaseH, phaseW, flip, padRaw ^ flip, tmp, planes);
        perch_qim2col_c4(planes, cin, sH, sW, phaseH, phaseW, outW, kH, kW, dH, dW, p0, m, Pp, got);
        long taps = kH * kW, bad = 0;
        for (long k = 0; k < K; k++) {
            long c = k / taps, t = k % taps, kc = (c / 4) * taps * 4 + t * 4 + c % 4;  // k in the c4 order
            for (long p = 0; p < Pp; p++) bad += want[(k / 4 * Pp + p) * 4 + k % 4] != got[(kc / 4 * Pp + p) * 4 + kc % 4];
        }
        expect(!bad, "im2col_c4", "host", (size_t)K, (size_t)p0, (size_t)(100 * sH + sW));
    }
    printf("im2col4 ");
}

int main(void) {
    struct path paths[5];
    int np = 0, f = perch_cpu_features();
#if defined(__x86_64__)
    if (f & PERCH_CPU_AVX2)
        paths[np++] = (struct path){"avx2", perch_qconv_k4_avx2, perch_qgemm_rm_avx2, perch_qdw_row_avx2_pairs,
                                    perch_qrequant_row_avx2, perch_qrequant_cols_avx2};
    if (f & PERCH_CPU_AVX2)  // the row-major GEMM MatMul runs on AVX2 (widened rows of A)
        paths[np++] = (struct path){"avx2-w16", perch_qconv_k4_avx2, perch_qgemm_rm_w16_avx2, perch_qdw_row_avx2_pairs,
                                    perch_qrequant_row_avx2, perch_qrequant_cols_avx2};
    if (f & PERCH_CPU_AVX512VNNI)  // VNNI GEMMs; the requantization of columns is AVX2's (AVX-512's takes right shifts)
        paths[np++] = (struct path){"vnni", perch_qconv_k4_vnni, perch_qgemm_rm_vnni, perch_qdw_row_avx512,
                                    perch_qrequant_row_avx512, perch_qrequant_cols_avx2};
#elif defined(__aarch64__)
    paths[np++] = (struct path){"neon", perch_qconv_k4_neon, perch_qgemm_rm_neon, perch_qdw_row_neon16, perch_qrequant_row_neon,
                                perch_qrequant_cols_neon};
    if (f & PERCH_CPU_DOTPROD)
        paths[np++] = (struct path){"neondot", perch_qconv_k4_neondot, perch_qgemm_rm_neondot, perch_qdw_row_neon16,
                                    perch_qrequant_row_neon, perch_qrequant_cols_neon};
    if ((f & PERCH_CPU_DOTPROD) && (f & PERCH_CPU_I8MM))
        paths[np++] = (struct path){"i8mm", perch_qconv_k4_i8mm, perch_qgemm_rm_i8mm, perch_qdw_row_neon16,
                                    perch_qrequant_row_neon, perch_qrequant_cols_neon};
#endif
    for (int i = 0; i < np; i++) {
        test_k4(&paths[i]);
        test_dw(&paths[i]);
        test_requant(&paths[i]);
        printf("%s ", paths[i].name);
    }
    test_elementwise();
    test_sigmoid_tanh();
    test_softmax_columns();
    test_sgemv();
    test_sgemm_column();
    test_sgemv_i8w();
    test_range();
    test_max_first();
    test_gather_even();
    test_conv_direct();
    test_conv_stem();
    test_im2col4();
#if defined(__x86_64__)
    if (f & PERCH_CPU_AVX2) {
        test_split();
        printf("split ");
    }
#endif
    printf("paths: %d checks, %d failed\n", checks, fails);
    return fails || np == 0;
}
