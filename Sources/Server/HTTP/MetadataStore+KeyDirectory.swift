extension MetadataStore: KeyDirectory {
    public func writeScope(forKey key: String) throws -> WriteScope? {
        guard let property = try authenticate(key: key, kind: .write) else { return nil }
        return WriteScope(propertyID: property.id, allowedOrigins: property.allowedOrigins,
                          rawRetentionDays: property.rawRetentionDays,
                          respectPrivacySignals: property.respectPrivacySignals)
    }

    public func readProperty(forKey key: String) throws -> Property? {
        try authenticate(key: key, kind: .read)
    }
}
