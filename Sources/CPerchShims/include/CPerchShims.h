#ifndef CPERCH_SHIMS_H
#define CPERCH_SHIMS_H
// Thin C wrappers for what Swift cannot call directly (variadic libc functions, intrinsics,
// pthreads with C function pointers). Everything here is static inline: no object code, so the
// same header serves the host build and the Embedded Swift cross build.
#include <stdint.h>
#include <stddef.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "CPerchInt8.h"
#include "CPerchQConv.h"
#include "CPerchQDepthwise.h"
#include "CPerchQConvTaps.h"
#include "CPerchQPointwise.h"
#include "CPerchQGemmSIMD.h"
#include "CPerchQConvSplit.h"
#include "CPerchThreads.h"
#include "CPerchSGEMM.h"
#include "CPerchSGEMV.h"
#include "CPerchSGEMVInt8W.h"
#include "CPerchRangeF32.h"
#include "CPerchConvDirectF32.h"
#include "CPerchConvStemF32.h"
#include "CPerchDepthwiseF32.h"
#include "CPerchDepthwiseTilesF32.h"
#include "CPerchHalf.h"
#include "CPerchElementwise.h"
#include "CPerchErfGelu.h"
#include "CPerchSigmoidTanh.h"
#include "CPerchPeak.h"
#include "CPerchPoolF32.h"
#include "CPerchQSoftmax.h"

/// Monotonic clock in nanoseconds.
static inline uint64_t perch_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/// 64-byte aligned allocation (for the arena and weights); free with perch_aligned_free.
static inline void *perch_aligned_alloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes == 0 ? 64 : bytes) != 0) return NULL;
    return p;
}

static inline void perch_aligned_free(void *p) { free(p); }

static inline float perch_erff(float x) { return erff(x); }
static inline float perch_expf(float x) { return expf(x); }
static inline float perch_logf(float x) { return logf(x); }
static inline float perch_tanhf(float x) { return tanhf(x); }
static inline float perch_powf(float x, float y) { return powf(x, y); }
static inline float perch_sqrtf(float x) { return sqrtf(x); }
static inline float perch_floorf(float x) { return floorf(x); }
static inline float perch_ceilf(float x) { return ceilf(x); }
static inline float perch_roundf_even(float x) { return nearbyintf(x); }
static inline double perch_erf(double x) { return erf(x); }
static inline double perch_exp(double x) { return exp(x); }
static inline double perch_log(double x) { return log(x); }
static inline double perch_tanh(double x) { return tanh(x); }
static inline double perch_pow(double x, double y) { return pow(x, y); }
static inline double perch_sqrt(double x) { return sqrt(x); }
static inline double perch_floor(double x) { return floor(x); }
static inline double perch_ceil(double x) { return ceil(x); }
static inline double perch_round_even(double x) { return nearbyint(x); }
static inline double perch_fmod(double x, double y) { return fmod(x, y); }
static inline float perch_fmodf(float x, float y) { return fmodf(x, y); }
static inline float perch_sinf(float x) { return sinf(x); }
static inline float perch_cosf(float x) { return cosf(x); }
static inline double perch_sin(double x) { return sin(x); }
static inline double perch_cos(double x) { return cos(x); }
static inline float perch_tanf(float x) { return tanf(x); }
static inline float perch_acosf(float x) { return acosf(x); }
static inline float perch_asinf(float x) { return asinf(x); }
static inline float perch_atanf(float x) { return atanf(x); }
static inline float perch_acoshf(float x) { return acoshf(x); }
static inline float perch_asinhf(float x) { return asinhf(x); }
static inline float perch_atanhf(float x) { return atanhf(x); }
static inline float perch_coshf(float x) { return coshf(x); }
static inline float perch_sinhf(float x) { return sinhf(x); }
static inline double perch_tan(double x) { return tan(x); }
static inline double perch_acos(double x) { return acos(x); }
static inline double perch_asin(double x) { return asin(x); }
static inline double perch_atan(double x) { return atan(x); }
static inline double perch_acosh(double x) { return acosh(x); }
static inline double perch_asinh(double x) { return asinh(x); }
static inline double perch_atanh(double x) { return atanh(x); }
static inline double perch_cosh(double x) { return cosh(x); }
static inline double perch_sinh(double x) { return sinh(x); }

#endif
