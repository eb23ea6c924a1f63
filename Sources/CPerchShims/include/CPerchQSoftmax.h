#ifndef CPERCH_QSOFTMAX_H
#define CPERCH_QSOFTMAX_H
// QLinearSoftmax rows (PerchEngine's QLinearSoftmaxOperator documents the arithmetic, which is
// ONNX Runtime's table softmax): the sum runs in order in float, as ORT adds it, so that loop is
// a scalar chain; rounding uses no libm call (see below).
#include <stdint.h>
#include <stddef.h>

/// One row of n codes (int8 codes XORed with flip = 0x80 so they order as uint8): e = table[max − x]
/// (kept in tmp, n floats), Σ = e₀ + e₁ + … in float, y = round_half_even(e·yScale / Σ) + zp clamped
/// to [lo, hi] (the output type's range, in float so a huge yScale cannot overflow an integer).
static inline void perch_qsoftmax_row(const uint8_t *x, size_t n, uint8_t flip, const float *table, float yScale, float zp,
                                      float lo, float hi, float *tmp, uint8_t *y) {
    uint8_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t v = (uint8_t)(x[i] ^ flip);
        m = v > m ? v : m;
    }
    float sum = 0;
    for (size_t i = 0; i < n; i++) {
        float e = table[m - (uint8_t)(x[i] ^ flip)];
        tmp[i] = e;
        sum += e;
    }
    // Round half to even by adding and subtracting 1.5·2^23 (exact below 2^22; v ≥ 0 and anything
    // above 4e6 saturates the same), so the loop vectorizes instead of calling nearbyintf.
    for (size_t i = 0; i < n; i++) {
        float v = tmp[i] * yScale / sum;
        v = v < 4e6f ? v : 4e6f;
        float q = ((v + 12582912.0f) - 12582912.0f) + zp;
        q = q < lo ? lo : (q > hi ? hi : q);
        y[i] = (uint8_t)(int32_t)q;
    }
}

#endif
