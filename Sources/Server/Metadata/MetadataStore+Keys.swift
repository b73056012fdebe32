import Crypto
import Foundation
import GRDB

extension MetadataStore {
    /// A new key of `kind` for the property; the key's text is returned here only.
    public func createKey(propertyID: String, kind: APIKey.Kind) throws(MetadataError) -> (APIKey, String) {
        try sqlite {
            try pool.write { db in
                guard try fetchProperty(propertyID, db) != nil else { throw Self.noProperty(propertyID) }
                return try insertKey(propertyID: propertyID, kind: kind, db)
            }
        }
    }

    /// Revokes the key named by `reference`: its id (`key_…`), its listing prefix (`tw_AbCdE`, when
    /// no other key has it) or the whole key. Revoking a revoked key changes nothing.
    @discardableResult
    public func revokeKey(_ reference: String) throws(MetadataError) -> APIKey {
        let now = clock.nowMillis()
        let key = try sqlite {
            try pool.write { db in
                let select = "SELECT \(MetadataSchema.keyColumns) FROM api_keys"
                var rows = try Row.fetchAll(db, sql: "\(select) WHERE id = ?", arguments: [reference])
                if rows.isEmpty, KeySecret.isWellFormed(reference) {
                    let digest = Data(KeySecret.hash(reference))
                    rows = try Row.fetchAll(db, sql: "\(select) WHERE key_hash = ?", arguments: [digest])
                    if rows.isEmpty {
                        rows = try Row.fetchAll(
                            db, sql: "\(select) WHERE prefix = ? ORDER BY created_at", arguments: [reference])
                    }
                }
                let keys = try rows.map(MetadataSchema.key)
                guard var key = keys.first else {
                    throw MetadataError(.notFound, "no key has the id or prefix '\(reference)'")
                }
                guard keys.count == 1 else {
                    let ids = keys.map(\.id).joined(separator: ", ")
                    throw MetadataError(
                        .ambiguous, "prefix '\(reference)' matches \(keys.count) keys (\(ids)); give the key id")
                }
                if key.revokedAt == nil {
                    try db.execute(sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ?", arguments: [now, key.id])
                    key.revokedAt = now
                }
                return key
            }
        }
        keyCache.removeAll()
        return key
    }

    /// The property's keys, revoked ones included, oldest first.
    public func listKeys(propertyID: String) throws(MetadataError) -> [APIKey] {
        try sqlite {
            try pool.read { db in
                guard try fetchProperty(propertyID, db) != nil else { throw Self.noProperty(propertyID) }
                return try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(MetadataSchema.keyColumns) FROM api_keys
                        WHERE property_id = ? ORDER BY created_at, rowid
                        """,
                    arguments: [propertyID]
                ).map(MetadataSchema.key)
            }
        }
    }

    /// The property a presented key belongs to, when the key exists, is of `kind` and is not
    /// revoked; `nil` otherwise. Throws only when SQLite fails (a 500, not a 401).
    ///
    /// The key is hashed, looked up by its hash (an index), and the stored hash compared with
    /// swift-crypto's constant-time comparison. Keys that authenticated are remembered for up to
    /// `KeyCache.lifetimeMillis`: a revocation here counts at once, one by another process within
    /// that time.
    public func authenticate(key: String, kind: APIKey.Kind) throws(MetadataError) -> Property? {
        guard KeySecret.isWellFormed(key) else { return nil }
        let digest = KeySecret.hash(key)
        let now = clock.nowMillis()
        let cacheKey = KeyCache.Digest(digest)
        if let hit = keyCache.lookup(cacheKey, now: now) {
            return hit.kind == kind ? hit.property : nil
        }
        let generation = keyCache.generation
        let found: (Property, APIKey.Kind)? = try sqlite {
            try pool.read { db in
                let statement = try db.cachedStatement(
                    sql: """
                        SELECT k.kind, k.key_hash, k.revoked_at, \(Self.qualifiedPropertyColumns)
                        FROM api_keys k JOIN properties p ON p.id = k.property_id
                        WHERE k.key_hash = ?
                        """)
                guard let row = try Row.fetchOne(statement, arguments: [Data(digest)]),
                    KeySecret.matches(digest, stored: row["key_hash"]),
                    (row["revoked_at"] as Int64?) == nil,
                    let keyKind = APIKey.Kind(rawValue: row["kind"])
                else { return nil }
                return (try MetadataSchema.property(row), keyKind)
            }
        }
        guard let (property, keyKind) = found else { return nil }
        keyCache.insert(cacheKey, property: property, kind: keyKind, now: now, generation: generation)
        return keyKind == kind ? property : nil
    }

    static let qualifiedPropertyColumns = MetadataSchema.propertyColumns
        .split(separator: ", ").map { "p.\($0)" }.joined(separator: ", ")

    func insertKey(propertyID: String, kind: APIKey.Kind, _ db: Database) throws -> (APIKey, String) {
        let secret = KeySecret.generate(kind)
        let key = APIKey(
            id: KeySecret.newID(), propertyID: propertyID, kind: kind, prefix: KeySecret.prefix(secret),
            createdAt: clock.nowMillis(), revokedAt: nil)
        try db.execute(
            sql: "INSERT INTO api_keys (id, property_id, kind, key_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [key.id, propertyID, kind.rawValue, Data(KeySecret.hash(secret)), key.prefix, key.createdAt])
        return (key, secret)
    }

    static func noProperty(_ id: String) -> MetadataError {
        MetadataError(.notFound, "property '\(id)' does not exist")
    }
}
