import CPerchAgentShims

/// SHA-256 and Ed25519 through libsodium (so the agent needs no Swift crypto package).
enum Crypto {
    static func initialize() throws(AgentError) {
        if pa_sodium_init() < 0 { throw AgentError(Exit.internalError, "libsodium failed to initialize", "this is a bug in perch-agent; please report it") }
    }

    static func verify(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == 64, publicKey.count == 32 else { return false }
        return signature.withUnsafeBufferPointer { s in
            message.withUnsafeBufferPointer { m in
                publicKey.withUnsafeBufferPointer { k in
                    pa_ed25519_verify(s.baseAddress, m.baseAddress, UInt64(m.count), k.baseAddress) == 0
                }
            }
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        var s = ""
        for b in bytes { s += hexByte(b) }
        return s
    }

    static func base64Decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 0
        var padding = 0
        for c in text.utf8 {
            var v: UInt32
            if c >= 65 && c <= 90 { v = UInt32(c - 65) } else if c >= 97 && c <= 122 { v = UInt32(c - 71) } else if c >= 48 && c <= 57 { v = UInt32(c + 4) } else if c == 43 { v = 62 } else if c == 47 { v = 63 } else if c == 61 { padding += 1; continue } else { return nil }
            if padding > 0 { return nil }
            acc = (acc << 6) | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((acc >> UInt32(bits)) & 0xFF))
            }
        }
        return out
    }
}

/// Incremental SHA-256 (libsodium state kept in a heap buffer).
final class SHA256Stream {
    private let state: UnsafeMutableRawPointer

    init() {
        state = UnsafeMutableRawPointer.allocate(byteCount: pa_sha256_state_size(), alignment: 16)
        _ = pa_sha256_init(state)
    }

    deinit { state.deallocate() }

    func update(_ p: UnsafeRawPointer, _ n: Int) {
        _ = pa_sha256_update(state, p.assumingMemoryBound(to: UInt8.self), UInt64(n))
    }

    func hexDigest() -> String {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBufferPointer { _ = pa_sha256_final(state, $0.baseAddress) }
        return Crypto.hex(out)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let s = SHA256Stream()
        bytes.withUnsafeBytes { if let b = $0.baseAddress { s.update(b, $0.count) } }
        return s.hexDigest()
    }
}
