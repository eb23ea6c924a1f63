import CPerchShims

/// fp16 arithmetic (ARMv8.2-A FP16: Cortex-A55/A76 and later, e.g. Raspberry Pi 5). Conv layers
/// whose weights a model stores as fp16 (`perch optimize`'s fp16 layers) keep those weights as
/// fp16 and run their multiply-adds in fp16 vectors (`perch_hgemm_neon`, partial sums widened into
/// fp32 every 32 steps). Other CPUs widen fp16 weights to fp32 and compute in fp32.
public enum HalfGEMM {
    /// Whether this CPU runs fp16 arithmetic, unless `PERCH_FP16_ARITH=0` turns it off (to compare
    /// against the fp32 path on the same device).
    public static var available: Bool {
        if let e = getenv("PERCH_FP16_ARITH"), e.pointee == 0x30 { return false }
        return perch_cpu_has_fp16_arith() != 0
    }
}
