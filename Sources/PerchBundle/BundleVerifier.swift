import Crypto
import Foundation

/// What `verify` found in a bundle that passed every check.
public struct VerifiedBundle: Sendable {
    public var manifest: BundleManifest
    public var manifestBytes: [UInt8]
    public var signed: Bool
    /// Index into the trusted keys of the key that signed it, nil when unsigned.
    public var signerIndex: Int?
    /// Payload files (everything but the manifest and signature), in archive order.
    public var files: [(name: String, bytes: [UInt8])]
}

/// Checks a bundle the way the device agent does, without extracting anything: the first entry is
/// the manifest, the second its signature (checked against the trusted keys before any other entry
/// is read), and every other entry is a regular file the manifest lists, with its size and SHA-256.
public enum BundleVerifier {
    /// The largest manifest accepted (a manifest is a few hundred bytes; anything bigger is hostile).
    public static let maxManifestBytes = 1 << 20

    public static func verify(_ bundle: [UInt8], trustedKeys: [Curve25519.Signing.PublicKey], allowUnsigned: Bool = false) throws -> VerifiedBundle {
        let reader = try ArchiveReader(bundle)
        guard let first = try reader.next() else { throw BundleError.archive("the archive is empty") }
        try checkSafe(first, expected: "manifest.json")
        guard first.name == "manifest.json" else {
            throw BundleError.manifest("the first entry is '" + first.name + "', not manifest.json")
        }
        guard first.size <= maxManifestBytes else { throw BundleError.decompressionBomb(name: first.name, declared: maxManifestBytes) }
        let manifestBytes = try reader.readData(name: first.name, limit: maxManifestBytes)
        var next = try reader.next()
        var signerIndex: Int? = nil
        if let h = next, h.name == "manifest.sig" {
            try checkSafe(h, expected: "manifest.sig")
            guard h.size == 64 else { throw BundleError.signature("manifest.sig is " + String(h.size) + " bytes, not a 64-byte Ed25519 signature") }
            let signature = try reader.readData(name: h.name, limit: 64)
            signerIndex = trustedKeys.firstIndex { $0.isValidSignature(signature, for: manifestBytes) }
            if signerIndex == nil {
                throw BundleError.signature("manifest.sig does not verify against " + (trustedKeys.count == 1 ? "the trusted key" : "any of the " + String(trustedKeys.count) + " trusted keys") + " (manifest edited, or signed by another key)")
            }
            next = try reader.next()
        } else if !allowUnsigned {
            throw BundleError.signature("the bundle is not signed (no manifest.sig)")
        }
        let manifest = try BundleManifest.parse(manifestBytes)
        var files: [(name: String, bytes: [UInt8])] = []
        var seen = Set<String>()
        while let h = next {
            try checkSafe(h, expected: nil)
            guard let digest = manifest.files[h.name] else {
                throw BundleError.unsafeEntry(name: h.name, reason: "not listed in the manifest")
            }
            guard !seen.contains(h.name) else { throw BundleError.unsafeEntry(name: h.name, reason: "appears twice") }
            seen.insert(h.name)
            if h.size > digest.size { throw BundleError.decompressionBomb(name: h.name, declared: digest.size) }
            let bytes = try reader.readData(name: h.name, limit: digest.size)
            guard bytes.count == digest.size else {
                throw BundleError.hash(h.name + " is " + String(bytes.count) + " bytes, the manifest says " + String(digest.size))
            }
            guard BundleManifest.sha256Hex(bytes) == digest.sha256 else {
                throw BundleError.hash("SHA-256 of " + h.name + " differs from the manifest (the file was modified)")
            }
            files.append((h.name, bytes))
            next = try reader.next()
        }
        for name in manifest.files.keys.sorted() where !seen.contains(name) {
            throw BundleError.hash("'" + name + "' is listed in the manifest but missing from the archive")
        }
        return VerifiedBundle(manifest: manifest, manifestBytes: manifestBytes, signed: signerIndex != nil, signerIndex: signerIndex, files: files)
    }

    /// Refuses entries that could write outside the version directory or are not plain files.
    static func checkSafe(_ h: ArchiveReader.Header, expected: String?) throws {
        if h.name.hasPrefix("/") { throw BundleError.unsafeEntry(name: h.name, reason: "absolute path") }
        if h.name.split(separator: "/", omittingEmptySubsequences: false).contains("..") {
            throw BundleError.unsafeEntry(name: h.name, reason: "path contains '..' (would leave the version directory)")
        }
        switch h.type {
        case .regular: break
        case .symlink: throw BundleError.unsafeEntry(name: h.name, reason: "symbolic link to '" + h.linkTarget + "' (only regular files are allowed)")
        case .hardlink: throw BundleError.unsafeEntry(name: h.name, reason: "hard link to '" + h.linkTarget + "' (only regular files are allowed)")
        case .directory: throw BundleError.unsafeEntry(name: h.name, reason: "directory entry (only regular files are allowed)")
        case .device: throw BundleError.unsafeEntry(name: h.name, reason: "device or FIFO (only regular files are allowed)")
        case .other: throw BundleError.unsafeEntry(name: h.name, reason: "unknown entry type (only regular files are allowed)")
        }
        if let expected, h.name != expected, h.name != "manifest.json" {
            throw BundleError.unsafeEntry(name: h.name, reason: "expected '" + expected + "' here")
        }
    }
}
