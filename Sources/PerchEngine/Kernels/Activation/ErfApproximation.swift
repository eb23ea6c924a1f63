/// erf(x) in float32 as a rational function on [-4, 4] (odd degree-13 numerator over even
/// degree-8 denominator, the minimax fit Eigen and XNNPACK use), clamped outside: erf(±4) is
/// 1 − 1.5e-8, below float32's resolution at 1. Max absolute error against libm's `erff` is
/// 4.5e-7 over the whole line (tested); branch-free, so loops over it vectorize, where `erff`
/// made GELU the second-largest cost of a transformer encoder after GEMM.
@inline(__always)
func erfApproximation(_ value: Float) -> Float {
    if value != value { return value }  // NaN passes through
    let x = value < -4 ? -4 : (value > 4 ? 4 : value)
    let x2 = x * x
    var p: Float = -2.72614225801306e-10
    p = p * x2 + 2.77068142495902e-08
    p = p * x2 - 2.10102402082508e-06
    p = p * x2 - 5.69250639462346e-05
    p = p * x2 - 7.34990630326855e-04
    p = p * x2 - 2.95459980854025e-03
    p = p * x2 - 1.60960333262415e-02
    p *= x
    var q: Float = -1.45660718464996e-05
    q = q * x2 - 2.13374055278905e-04
    q = q * x2 - 1.68282697438203e-03
    q = q * x2 - 7.37332916720468e-03
    q = q * x2 - 1.42647390514189e-02
    return p / q
}
