/// Resolves API keys to the property they belong to. `MetadataStore` is the real one; tests
/// may use their own.
public protocol KeyDirectory: Sendable {
    /// The id of the property whose live (unrevoked) write key `key` is, or nil.
    func propertyID(forWriteKey key: String) throws -> String?
}
