import Engine
import Foundation
import GRDB

#if canImport(Glibc)
    import Glibc
#endif

/// Properties and API keys, in `DIR/meta.sqlite` next to the event data.
///
/// SQLite in WAL mode through a GRDB `DatabasePool`: readers never wait for the writer, and other
/// processes (`tally property create` while `tally serve` runs) may open the same file; their
/// writes are serialized by SQLite's lock and seen by the next read here.
public final class MetadataStore: Sendable {
    public static let fileName = "meta.sqlite"

    /// How long a write waits for another connection's write (another process's, or a WAL
    /// checkpoint) before failing. Metadata writes take milliseconds; 5 s only fails when
    /// something holds the lock for real.
    static let busyTimeout: TimeInterval = 5

    /// `DIR/meta.sqlite`.
    public let path: String
    let pool: DatabasePool
    let clock: any TallyClock
    let keyCache = KeyCache()

    /// Opens (or creates, with `createIfMissing`) `directory/meta.sqlite` and brings its tables
    /// up to date.
    public init(directory: String, createIfMissing: Bool = true, clock: any TallyClock = SystemClock())
        throws(MetadataError)
    {
        path = directory + "/" + Self.fileName
        self.clock = clock
        if !FileManager.default.fileExists(atPath: path) {
            guard createIfMissing else {
                throw MetadataError(.notFound, "\(path): no such file (no property was created in \(directory))")
            }
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw MetadataError(.database, "\(directory): cannot create the directory", cause: "\(error)")
            }
        }
        var config = Configuration()
        config.busyMode = .timeout(Self.busyTimeout)
        config.label = "tally.metadata"
        let path = path
        // Opening (which switches a new file to WAL mode) and migrating are done by one store at
        // a time, across processes and threads: connections racing to do them on a new file got
        // "database is locked" at once, without SQLite's busy timeout (a CI run of the
        // concurrent-open test). GRDB also reads which migrations are applied before taking
        // the write lock, so two could both try to apply one.
        let opening = Self.openingLock(path + "-open.lock")
        defer { if opening >= 0 { flock(opening, LOCK_UN); Glibc.close(opening) } }
        pool = try Self.sqlite(path) { try DatabasePool(path: path, configuration: config) }
        let migrator = MetadataSchema.migrator
        try Self.sqlite(path) {
            do {
                try migrator.migrate(pool)
            } catch {
                // Without the lock (below), two stores can both try to apply a migration: the
                // loser fails, and on a second look finds it applied.
                try migrator.migrate(pool)
            }
        }
    }

    /// An exclusive `flock` on `lockPath` (its own descriptor, so threads of one process
    /// exclude each other too), held while a store opens the file. Waits at most `busyTimeout`
    /// for another store's opening; -1 if it cannot be had (opening then goes on, and SQLite's
    /// locks and the migration's retry decide).
    private static func openingLock(_ lockPath: String) -> Int32 {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { return -1 }
        let deadline = Date().addingTimeInterval(busyTimeout)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, Date() < deadline else {
                Glibc.close(fd)
                return -1
            }
            usleep(2_000)
        }
        return fd
    }

    /// Writes a consistent copy of the database to the new file `target` through SQLite's online
    /// backup API: readers and writers (here and in other processes) go on meanwhile.
    public func backup(to target: String) throws(MetadataError) {
        try Self.sqlite(target) {
            let copy = try DatabaseQueue(path: target)
            try pool.backup(to: copy)
            try copy.close()
        }
    }

    /// Closes the file; later calls fail.
    public func close() throws(MetadataError) {
        try sqlite { try pool.close() }
    }

    // MARK: Properties

    /// Creates a property with a new write key and read key, which are returned here only.
    /// `name` defaults to the id; `origins` are `scheme://host[:port]` or `*` (any origin).
    public func createProperty(id: String, name: String? = nil, timezone: String = "UTC", origins: [String] = ["*"],
                               rawRetentionDays: Int = 90, rollupRetentionDays: Int = 730, respectPrivacySignals: Bool = false)
        throws(MetadataError) -> (property: Property, writeKey: String, readKey: String)
    {
        let id = try PropertyValidation.id(id)
        let (raw, rollup) = try PropertyValidation.retention(raw: rawRetentionDays, rollup: rollupRetentionDays, id: id)
        let property = Property(
            id: id, name: try PropertyValidation.name(name ?? id, id: id),
            timezone: try PropertyValidation.timezone(timezone, id: id),
            allowedOrigins: try PropertyValidation.origins(origins),
            rawRetentionDays: raw, rollupRetentionDays: rollup, createdAt: clock.nowMillis(),
            respectPrivacySignals: respectPrivacySignals)
        return try sqlite {
            try pool.write { db in
                try insertWithKeys(property, db)
            }
        }
    }

    /// What `updateProperty` changes; nil fields stay as they are.
    public struct PropertyChange: Sendable {
        public var name: String?
        public var timezone: String?
        public var origins: [String]?
        public var rawRetentionDays: Int?
        public var rollupRetentionDays: Int?
        public var respectPrivacySignals: Bool?

        public init(name: String? = nil, timezone: String? = nil, origins: [String]? = nil,
                    rawRetentionDays: Int? = nil, rollupRetentionDays: Int? = nil, respectPrivacySignals: Bool? = nil) {
            self.respectPrivacySignals = respectPrivacySignals
            self.name = name
            self.timezone = timezone
            self.origins = origins
            self.rawRetentionDays = rawRetentionDays
            self.rollupRetentionDays = rollupRetentionDays
        }
    }

    /// Changes a property's name, time zone, origins or retention, validated as on creation;
    /// returns the property as stored. Keys are untouched.
    @discardableResult
    public func updateProperty(id: String, _ change: PropertyChange) throws(MetadataError) -> Property {
        // Cached keys carry their property: a change made here counts at once (as a revocation does).
        defer { keyCache.removeAll() }
        return try sqlite {
            try pool.write { db in
                guard var p = try fetchProperty(id, db) else { throw Self.noProperty(id) }
                if let name = change.name { p.name = try PropertyValidation.name(name, id: id) }
                if let tz = change.timezone { p.timezone = try PropertyValidation.timezone(tz, id: id) }
                if let origins = change.origins { p.allowedOrigins = try PropertyValidation.origins(origins) }
                (p.rawRetentionDays, p.rollupRetentionDays) = try PropertyValidation.retention(
                    raw: change.rawRetentionDays ?? p.rawRetentionDays,
                    rollup: change.rollupRetentionDays ?? p.rollupRetentionDays, id: id)
                if let r = change.respectPrivacySignals { p.respectPrivacySignals = r }
                try db.execute(
                    sql: """
                        UPDATE properties SET name = ?, timezone = ?, allowed_origins = ?, raw_retention_days = ?,
                        rollup_retention_days = ?, respect_privacy_signals = ? WHERE id = ?
                        """,
                    arguments: [
                        p.name, p.timezone, MetadataSchema.originsJSON(p.allowedOrigins), p.rawRetentionDays,
                        p.rollupRetentionDays, p.respectPrivacySignals ? 1 : 0, id,
                    ])
                return p
            }
        }
    }

    // MARK: Filtered events

    /// Adds to the counts of events filtered as bots, by (property, UTC day, reason).
    public func addFilteredEvents(_ counts: [FilteredEventCount]) throws(MetadataError) {
        guard !counts.isEmpty else { return }
        try sqlite {
            try pool.write { db in
                let statement = try db.cachedStatement(
                    sql: """
                        INSERT INTO filtered_events (property_id, day, reason, events) VALUES (?, ?, ?, ?)
                        ON CONFLICT (property_id, day, reason) DO UPDATE SET events = events + excluded.events
                        """)
                for c in counts {
                    try statement.execute(arguments: [c.propertyID, c.day, c.reason, c.events])
                }
            }
        }
    }

    /// Events filtered as bots, per property, day and reason, newest day first.
    public func filteredEvents() throws(MetadataError) -> [FilteredEventCount] {
        try sqlite {
            try pool.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT property_id, day, reason, events FROM filtered_events ORDER BY day DESC, property_id, reason"
                ).map { FilteredEventCount(propertyID: $0["property_id"], day: $0["day"], reason: $0["reason"], events: $0["events"]) }
            }
        }
    }

    /// Creates the property `default` (any origin, UTC) with its keys when there is no property
    /// at all, as `tally serve` does on its first start; `nil` when there is one.
    public func ensureDefaultProperty(origins: [String] = ["*"], rawRetentionDays: Int = 90,
                                      rollupRetentionDays: Int = 730) throws(MetadataError)
        -> (property: Property, writeKey: String, readKey: String)?
    {
        let (raw, rollup) = try PropertyValidation.retention(
            raw: rawRetentionDays, rollup: rollupRetentionDays, id: "default")
        let property = Property(
            id: "default", name: "Default", timezone: "UTC", allowedOrigins: try PropertyValidation.origins(origins),
            rawRetentionDays: raw, rollupRetentionDays: rollup, createdAt: clock.nowMillis())
        return try sqlite {
            try pool.write { db in
                // The write transaction is IMMEDIATE, so two processes cannot both see none.
                guard try Int.fetchOne(db, sql: "SELECT count(*) FROM properties") == 0 else { return nil }
                return try insertWithKeys(property, db)
            }
        }
    }

    public func listProperties() throws(MetadataError) -> [Property] {
        try sqlite {
            try pool.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT \(MetadataSchema.propertyColumns) FROM properties ORDER BY created_at, rowid")
                    .map(MetadataSchema.property)
            }
        }
    }

    public func property(id: String) throws(MetadataError) -> Property? {
        try sqlite {
            try pool.read { db in try fetchProperty(id, db) }
        }
    }

    // MARK: Helpers

    private func insertWithKeys(_ property: Property, _ db: Database) throws -> (Property, String, String) {
        if try fetchProperty(property.id, db) != nil {
            throw MetadataError(.alreadyExists, "property '\(property.id)' already exists")
        }
        try db.execute(
            sql: "INSERT INTO properties (\(MetadataSchema.propertyColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            arguments: [
                property.id, property.name, property.timezone, MetadataSchema.originsJSON(property.allowedOrigins),
                property.rawRetentionDays, property.rollupRetentionDays, property.createdAt,
                property.respectPrivacySignals ? 1 : 0,
            ])
        let write = try insertKey(propertyID: property.id, kind: .write, db)
        let read = try insertKey(propertyID: property.id, kind: .read, db)
        return (property, write.1, read.1)
    }

    func fetchProperty(_ id: String, _ db: Database) throws -> Property? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT \(MetadataSchema.propertyColumns) FROM properties WHERE id = ?"),
            arguments: [id]
        ).map(MetadataSchema.property)
    }

    /// Runs `body`, turning SQLite's errors into a `MetadataError` naming the file.
    func sqlite<T>(_ body: () throws -> T) throws(MetadataError) -> T {
        try Self.sqlite(path, body)
    }

    static func sqlite<T>(_ path: String, _ body: () throws -> T) throws(MetadataError) -> T {
        do {
            return try body()
        } catch let error as MetadataError {
            throw error
        } catch let error as DatabaseError {
            throw MetadataError(.database, "\(path): \(error.resultCode)", cause: error.message)
        } catch {
            throw MetadataError(.database, "\(path)", cause: "\(error)")
        }
    }
}
