extension MetadataStore: KeyDirectory {
    public func propertyID(forWriteKey key: String) throws -> String? {
        try authenticate(key: key, kind: .write)?.id
    }
}
