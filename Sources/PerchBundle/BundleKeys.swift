import Crypto
import Foundation

/// Ed25519 signing keys in Perch's one-line text files:
/// `perch-signing.key` = `perch-ed25519-secret <base64 of the 32-byte seed>` (mode 0600),
/// `perch-signing.pub` = `perch-ed25519 <base64 of the 32-byte public key>`.
public enum BundleKeys {
    public static let secretPrefix = "perch-ed25519-secret"
    public static let publicPrefix = "perch-ed25519"
    public static let secretFileName = "perch-signing.key"
    public static let publicFileName = "perch-signing.pub"

    /// Creates a new key pair in `directory` (created if missing). Refuses to overwrite an existing key.
    @discardableResult
    public static func generate(in directory: String) throws -> (secretPath: String, publicPath: String) {
        let fm = FileManager.default
        try? fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let secretPath = (directory as NSString).appendingPathComponent(secretFileName)
        let publicPath = (directory as NSString).appendingPathComponent(publicFileName)
        if fm.fileExists(atPath: secretPath) || fm.fileExists(atPath: publicPath) {
            throw BundleError.badInput("'" + secretPath + "' or '" + publicPath + "' already exists (refusing to overwrite a signing key)")
        }
        let key = Curve25519.Signing.PrivateKey()
        let secretLine = secretPrefix + " " + key.rawRepresentation.base64EncodedString() + "\n"
        let publicLine = publicPrefix + " " + key.publicKey.rawRepresentation.base64EncodedString() + "\n"
        guard fm.createFile(atPath: secretPath, contents: Data(secretLine.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw BundleError.badInput("cannot write '" + secretPath + "'")
        }
        try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secretPath)
        guard fm.createFile(atPath: publicPath, contents: Data(publicLine.utf8), attributes: [.posixPermissions: 0o644]) else {
            throw BundleError.badInput("cannot write '" + publicPath + "'")
        }
        return (secretPath, publicPath)
    }

    public static func loadSecret(_ path: String) throws -> Curve25519.Signing.PrivateKey {
        let raw = try decodeLine(path, prefix: secretPrefix)
        do { return try Curve25519.Signing.PrivateKey(rawRepresentation: raw) } catch {
            throw BundleError.badKey(path: path, reason: "not an Ed25519 secret key")
        }
    }

    public static func loadPublic(_ path: String) throws -> Curve25519.Signing.PublicKey {
        let raw = try decodeLine(path, prefix: publicPrefix)
        do { return try Curve25519.Signing.PublicKey(rawRepresentation: raw) } catch {
            throw BundleError.badKey(path: path, reason: "not an Ed25519 public key")
        }
    }

    static func decodeLine(_ path: String, prefix: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BundleError.badKey(path: path, reason: "does not exist or is not readable")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0] == prefix else {
            throw BundleError.badKey(path: path, reason: "expected one line '" + prefix + " <base64>' (make keys with 'perch keys generate')")
        }
        guard let raw = Data(base64Encoded: String(parts[1])), raw.count == 32 else {
            throw BundleError.badKey(path: path, reason: "the key is not 32 bytes of base64")
        }
        return raw
    }
}
