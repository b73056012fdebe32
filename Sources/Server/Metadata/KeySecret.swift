import Crypto
import Foundation

/// The text of an API key and what is stored of it.
///
/// A key is its kind's tag and 32 random bytes in base62 (`tw_` + 43 characters); only its
/// SHA-256 is stored. A plain, unsalted hash is enough because the key is 256 random bits, not a
/// password: there is nothing to guess and a hash table cannot cover the space.
enum KeySecret {
    /// Characters of a key kept in the clear for listings (`tw_` and 5 base62 characters).
    static let prefixLength = 8
    /// Longer input is not a key; it is refused before hashing (`tw_` + 43 = 46 characters).
    static let maximumLength = 128

    /// A new random key of `kind`, from the system's cryptographic generator (`getrandom`).
    static func generate(_ kind: APIKey.Kind) -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        return kind.tag + Base62.encode(bytes)
    }

    /// A new key id: `key_` and 16 base62 characters (95 random bits).
    static func newID() -> String {
        let bytes = SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) }
        return "key_" + Base62.encode(bytes).suffix(16)
    }

    static func hash(_ key: String) -> SHA256Digest {
        SHA256.hash(data: Array(key.utf8))
    }

    static func prefix(_ key: String) -> String {
        String(key.prefix(prefixLength))
    }

    /// Whether `stored` (a `key_hash` column) is `digest`, in time independent of where they differ
    /// (swift-crypto's digest comparison is `CRYPTO_memcmp`).
    static func matches(_ digest: SHA256Digest, stored: Data) -> Bool {
        stored.count == SHA256Digest.byteCount && digest == stored
    }

    /// Whether `text` looks like a key at all: tag, then base62, bounded length.
    static func isWellFormed(_ text: String) -> Bool {
        let u = text.utf8
        guard u.count > 3, u.count <= maximumLength,
            text.hasPrefix(APIKey.Kind.write.tag) || text.hasPrefix(APIKey.Kind.read.tag)
        else { return false }
        return u.dropFirst(3).allSatisfy(Base62.isDigit)
    }
}
