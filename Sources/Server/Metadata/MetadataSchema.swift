import Foundation
import GRDB

/// The tables of `meta.sqlite` and how their rows become `Property` and `APIKey` values.
///
/// Migrations are append-only: a released one is never edited, a change is a new one.
enum MetadataSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: properties and api_keys") { db in
            try db.execute(
                sql: """
                    CREATE TABLE properties (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL,
                        timezone TEXT NOT NULL DEFAULT 'UTC',
                        allowed_origins TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
                        raw_retention_days INTEGER NOT NULL DEFAULT 90,
                        rollup_retention_days INTEGER NOT NULL DEFAULT 730,
                        created_at INTEGER NOT NULL  -- ms since the Unix epoch
                    );
                    CREATE TABLE api_keys (
                        id TEXT PRIMARY KEY NOT NULL,
                        property_id TEXT NOT NULL REFERENCES properties(id) ON DELETE CASCADE,
                        kind TEXT NOT NULL CHECK (kind IN ('write', 'read')),
                        key_hash BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),  -- SHA-256 of the key
                        prefix TEXT NOT NULL,  -- the key's first 8 characters, for listings
                        created_at INTEGER NOT NULL,
                        revoked_at INTEGER
                    );
                    CREATE INDEX api_keys_property_id ON api_keys(property_id);
                    CREATE INDEX api_keys_prefix ON api_keys(prefix);
                    """)
        }
        migrator.registerMigration("v2: filtered_events") { db in
            try db.execute(
                sql: """
                    CREATE TABLE filtered_events (
                        property_id TEXT NOT NULL,
                        day TEXT NOT NULL,     -- UTC day the server filtered them, YYYY-MM-DD
                        reason TEXT NOT NULL,  -- the bot rule's category: crawler, headless, monitor, ...
                        events INTEGER NOT NULL,
                        PRIMARY KEY (property_id, day, reason)
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v3: funnels") { db in
            try db.execute(
                sql: """
                    CREATE TABLE funnels (
                        property_id TEXT NOT NULL REFERENCES properties(id) ON DELETE CASCADE,
                        name TEXT NOT NULL,
                        definition TEXT NOT NULL,  -- FunnelSpec as JSON: steps, window_seconds, count_by, mode
                        created_at INTEGER NOT NULL,
                        PRIMARY KEY (property_id, name)
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v4: properties.respect_privacy_signals") { db in
            try db.execute(sql: "ALTER TABLE properties ADD COLUMN respect_privacy_signals INTEGER NOT NULL DEFAULT 0")
        }
        return migrator
    }

    static let propertyColumns =
        "id, name, timezone, allowed_origins, raw_retention_days, rollup_retention_days, created_at, respect_privacy_signals"
    static let keyColumns = "id, property_id, kind, prefix, created_at, revoked_at"

    static func property(_ row: Row) throws(MetadataError) -> Property {
        let id: String = row["id"]
        let json: String = row["allowed_origins"]
        guard let origins = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String] else {
            throw MetadataError(.database, "allowed_origins of property '\(id)' is not a JSON array of strings: \(json)")
        }
        return Property(
            id: id, name: row["name"], timezone: row["timezone"], allowedOrigins: origins,
            rawRetentionDays: row["raw_retention_days"], rollupRetentionDays: row["rollup_retention_days"],
            createdAt: row["created_at"], respectPrivacySignals: (row["respect_privacy_signals"] as Int? ?? 0) != 0)
    }

    static func key(_ row: Row) throws(MetadataError) -> APIKey {
        let id: String = row["id"]
        let kindText: String = row["kind"]
        guard let kind = APIKey.Kind(rawValue: kindText) else {
            throw MetadataError(.database, "key '\(id)' has an unknown kind '\(kindText)'")
        }
        return APIKey(
            id: id, propertyID: row["property_id"], kind: kind, prefix: row["prefix"], createdAt: row["created_at"],
            revokedAt: row["revoked_at"])
    }

    static func originsJSON(_ origins: [String]) -> String {
        // An array of strings always serializes.
        let data =
            (try? JSONSerialization.data(withJSONObject: origins, options: [.withoutEscapingSlashes])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
