import Engine
import Foundation
import GRDB
@testable import Server
import TallyTestSupport
import Testing

/// Properties and API keys in `meta.sqlite`.
@Suite("property and key store")
struct MetadataTests {
    let dir = TemporaryDirectory("tally-meta")
    let clock = ManualClock()

    func open() throws -> MetadataStore {
        try MetadataStore(directory: dir.path + "/data", clock: clock)
    }

    /// The error `body` throws, or a failed expectation.
    func error(_ body: () throws -> Void) -> MetadataError? {
        do {
            try body()
            Issue.record("expected an error")
            return nil
        } catch let error as MetadataError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test("a created property is listed and found by id with its name, timezone, origins and retention")
    func createAndList() throws {
        let store = try open()
        let (site, writeKey, readKey) = try store.createProperty(
            id: "example.com", name: "Example", timezone: "Europe/Berlin",
            origins: ["https://Example.com", "http://localhost:8080"])
        clock.advance(1)
        _ = try store.createProperty(id: "b-site_2")

        #expect(site.id == "example.com")
        #expect(site.name == "Example")
        #expect(site.timezone == "Europe/Berlin")
        #expect(site.allowedOrigins == ["https://example.com", "http://localhost:8080"])
        #expect(site.rawRetentionDays == 90)
        #expect(site.rollupRetentionDays == 730)
        #expect(site.createdAt == clock.nowMillis() - 1)
        #expect(writeKey.hasPrefix("tw_") && writeKey.utf8.count == 46)
        #expect(readKey.hasPrefix("tr_") && readKey.utf8.count == 46)

        let all = try store.listProperties()
        #expect(all.map(\.id) == ["example.com", "b-site_2"])
        #expect(all[0] == site)
        #expect(all[1].name == "b-site_2")
        #expect(all[1].timezone == "UTC")
        #expect(all[1].allowedOrigins == ["*"])
        #expect(try store.property(id: "example.com") == site)
        #expect(try store.property(id: "missing") == nil)
    }

    @Test("a key authenticates only for its own property and kind")
    func keysAreScoped() throws {
        let store = try open()
        let (a, aWrite, aRead) = try store.createProperty(id: "a")
        let (b, bWrite, _) = try store.createProperty(id: "b")

        #expect(try store.authenticate(key: aWrite, kind: .write) == a)
        #expect(try store.authenticate(key: aRead, kind: .read) == a)
        #expect(try store.authenticate(key: bWrite, kind: .write) == b)
        #expect(try store.authenticate(key: aWrite, kind: .read) == nil)
        #expect(try store.authenticate(key: aRead, kind: .write) == nil)

        // Near misses: one character changed, truncated, extended, empty, not a key at all.
        var changed = Array(aWrite)
        changed[10] = changed[10] == "A" ? "B" : "A"
        for wrong in [String(changed), String(aWrite.dropLast()), aWrite + "0", "", "tw_", "Bearer " + aWrite] {
            #expect(try store.authenticate(key: wrong, kind: .write) == nil)
        }

        let (extra, extraKey) = try store.createKey(propertyID: "b", kind: .read)
        #expect(extra.propertyID == "b" && extra.kind == .read && extra.prefix == String(extraKey.prefix(8)))
        #expect(try store.authenticate(key: extraKey, kind: .read) == b)
        #expect(try store.listKeys(propertyID: "b").map(\.kind) == [.write, .read, .read])
        #expect(try store.listKeys(propertyID: "a").count == 2)
    }

    @Test("a revoked key no longer authenticates; keys are revoked by id, listing prefix or whole key")
    func revocation() throws {
        let store = try open()
        let (_, write, read) = try store.createProperty(id: "a")
        let (second, secondText) = try store.createKey(propertyID: "a", kind: .write)

        clock.advance(5)
        let revoked = try store.revokeKey(second.id)
        #expect(revoked.id == second.id && revoked.revokedAt == clock.nowMillis())
        #expect(try store.authenticate(key: secondText, kind: .write) == nil)
        #expect(try store.authenticate(key: write, kind: .write)?.id == "a")

        let byPrefix = try store.revokeKey(String(write.prefix(8)))
        #expect(byPrefix.kind == .write && byPrefix.prefix == String(write.prefix(8)))
        #expect(try store.authenticate(key: write, kind: .write) == nil)

        try store.revokeKey(read)
        #expect(try store.authenticate(key: read, kind: .read) == nil)

        // Revoking again keeps the first revocation time.
        clock.advance(5)
        #expect(try store.revokeKey(second.id).revokedAt == revoked.revokedAt)
        #expect(try store.listKeys(propertyID: "a").allSatisfy(\.isRevoked))

        let missing = error { try store.revokeKey("key_nope") }
        #expect(missing?.code == .notFound)
        #expect(missing?.message == "no key has the id or prefix 'key_nope'")
    }

    @Test("a key prefix shared by two keys is refused and the message lists their ids")
    func ambiguousPrefix() throws {
        let store = try open()
        let (first, _) = try store.createKey(propertyID: try store.createProperty(id: "a").property.id, kind: .write)
        try store.pool.write { db in
            try db.execute(
                sql: "INSERT INTO api_keys (id, property_id, kind, key_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: ["key_twin", "a", "write", Data(repeating: 7, count: 32), first.prefix, 0])
        }
        let e = error { try store.revokeKey(first.prefix) }
        #expect(e?.code == .ambiguous)
        #expect(e?.message.contains(first.id) == true && e?.message.contains("key_twin") == true)
        #expect(try store.listKeys(propertyID: "a").allSatisfy { !$0.isRevoked })
    }

    @Test("keys are stored only as SHA-256: no raw key appears in the database files")
    func keysAreHashed() throws {
        let store = try open()
        var keys: [String] = []
        for i in 0..<5 {
            let (_, w, r) = try store.createProperty(id: "p\(i)")
            keys += [w, r]
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/data")
            .filter { $0.hasPrefix(MetadataStore.fileName) }
        #expect(files.contains(MetadataStore.fileName))
        var bytes = Data()
        for f in files { bytes += try Data(contentsOf: URL(fileURLWithPath: dir.path + "/data/" + f)) }
        for key in keys {
            #expect(bytes.range(of: Data(key.utf8)) == nil)
            #expect(bytes.range(of: Data(key.utf8.dropFirst(8))) == nil)  // nor the secret part alone
            #expect(bytes.range(of: Data(KeySecret.hash(key))) != nil)
        }
    }

    @Test("creating a property whose id exists fails naming the property and changes nothing")
    func duplicateID() throws {
        let store = try open()
        _ = try store.createProperty(id: "shop", name: "Shop")
        let e = error { _ = try store.createProperty(id: "shop", name: "Other") }
        #expect(e?.code == .alreadyExists)
        #expect(e?.description == "property 'shop' already exists")
        #expect(try store.listProperties().map(\.name) == ["Shop"])
        #expect(try store.listKeys(propertyID: "shop").count == 2)
    }

    @Test("invalid ids, names, timezones and origins are refused with a message naming the value")
    func validation() throws {
        let store = try open()
        let tooLong = String(repeating: "a", count: 129)
        for id in ["", "a b", "a/b", "ä", tooLong] {
            let e = error { _ = try store.createProperty(id: id) }
            #expect(e?.code == .invalidArgument)
            #expect(e?.message.hasPrefix("property id '\(id)' is invalid") == true)
        }
        _ = try store.createProperty(id: String(repeating: "a", count: 128))

        let zone = error { _ = try store.createProperty(id: "x", timezone: "Mars/Olympus") }
        #expect(zone?.message.contains("timezone 'Mars/Olympus' of property 'x'") == true)
        let name = error { _ = try store.createProperty(id: "x", name: "  ") }
        #expect(name?.message.hasPrefix("name of property 'x' is invalid") == true)

        let badOrigins = [
            "example.com", "https://", "https://example.com/", "https://example.com/path", "https://a.com:0",
            "https://a.com:99999", "https://a.com:", "https://user@a.com", "https://-a.com", "https://a..com",
            "1http://a.com", "https://[::1", "https://a.com?x=1", "**",
        ]
        for origin in badOrigins {
            let e = error { _ = try store.createProperty(id: "x", origins: [origin]) }
            #expect(e?.code == .invalidArgument)
            #expect(e?.message.hasPrefix("origin '\(origin)'") == true, "\(origin): \(e?.message ?? "")")
        }
        #expect(try store.property(id: "x") == nil)

        let good = ["*", "HTTPS://Example.COM", "http://localhost:3000", "http://127.0.0.1", "http://[::1]:8080",
                    "chrome-extension://abcdef"]
        let p = try store.createProperty(id: "x", origins: good + ["https://example.com"]).property
        #expect(p.allowedOrigins == ["*", "https://example.com", "http://localhost:3000", "http://127.0.0.1",
                                     "http://[::1]:8080", "chrome-extension://abcdef"])
    }

    @Test("an origin is allowed when listed (case-insensitively) or when the list has *")
    func originMatching() throws {
        let store = try open()
        let p = try store.createProperty(id: "a", origins: ["https://example.com", "http://localhost:3000"]).property
        #expect(p.allowsOrigin("https://example.com"))
        #expect(p.allowsOrigin("https://EXAMPLE.com"))
        #expect(p.allowsOrigin("http://localhost:3000"))
        #expect(!p.allowsOrigin("http://example.com"))
        #expect(!p.allowsOrigin("https://example.com:8443"))
        #expect(!p.allowsOrigin("https://evil.example.com"))
        #expect(!p.allowsOrigin("null"))
        let any = try store.createProperty(id: "b", origins: ["*"]).property
        #expect(any.allowsOrigin("https://anything.test"))
        let none = try store.createProperty(id: "c", origins: []).property
        #expect(!none.allowsOrigin("https://example.com"))
    }

    @Test("the default property is created with its keys once, and never when a property exists")
    func defaultProperty() throws {
        let store = try open()
        let first = try #require(try store.ensureDefaultProperty())
        #expect(first.property.id == "default" && first.property.allowedOrigins == ["*"])
        #expect(try store.authenticate(key: first.writeKey, kind: .write)?.id == "default")
        #expect(try store.authenticate(key: first.readKey, kind: .read)?.id == "default")
        #expect(try store.ensureDefaultProperty() == nil)
        #expect(try store.listProperties().count == 1)

        let other = try MetadataStore(directory: dir.path + "/other", clock: clock)
        _ = try other.createProperty(id: "mine")
        #expect(try other.ensureDefaultProperty() == nil)
        #expect(try other.listProperties().map(\.id) == ["mine"])
    }

    @Test("two stores on one file see each other's properties, keys and revocations")
    func twoStores() throws {
        let one = try open()
        let two = try open()
        let (a, write, _) = try one.createProperty(id: "a")
        #expect(try two.property(id: "a") == a)
        #expect(try two.authenticate(key: write, kind: .write) == a)

        let (key, text) = try two.createKey(propertyID: "a", kind: .read)
        #expect(try one.authenticate(key: text, kind: .read) == a)
        try one.revokeKey(key.id)
        #expect(try two.authenticate(key: text, kind: .read) == nil)

        let e = error { _ = try two.createProperty(id: "a") }
        #expect(e?.code == .alreadyExists)
        #expect(try two.ensureDefaultProperty() == nil)
    }

    @Test("a revocation by another store counts once the authentication cache lifetime has passed")
    func revocationElsewhereExpires() throws {
        let server = try open()
        let cli = try open()
        let (a, write, _) = try server.createProperty(id: "a")
        #expect(try server.authenticate(key: write, kind: .write) == a)
        #expect(try server.authenticate(key: write, kind: .read) == nil)  // the cache keeps the kind

        try cli.revokeKey(write)
        clock.advance(KeyCache.lifetimeMillis - 1)
        #expect(try server.authenticate(key: write, kind: .write) == a)
        clock.advance(1)
        #expect(try server.authenticate(key: write, kind: .write) == nil)

        // A key created elsewhere works at once: failures are never cached.
        let (_, fresh) = try cli.createKey(propertyID: "a", kind: .write)
        #expect(try server.authenticate(key: fresh, kind: .write) == a)
    }

    @Test("stores opening a new file at the same time all migrate it and one default property is made")
    func concurrentOpen() async throws {
        let path = dir.path + "/race"
        let clock = clock
        let made = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let store = try MetadataStore(directory: path, clock: clock)
                    return try store.ensureDefaultProperty() != nil
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(made == 1)
        #expect(try MetadataStore(directory: path).listProperties().map(\.id) == ["default"])
    }

    @Test("keys and listings for a missing property, and a missing file, fail naming them")
    func notFound() throws {
        let store = try open()
        let key = error { _ = try store.createKey(propertyID: "ghost", kind: .write) }
        #expect(key?.code == .notFound)
        #expect(key?.message == "property 'ghost' does not exist")
        #expect(error { _ = try store.listKeys(propertyID: "ghost") }?.code == .notFound)

        let missing = error { _ = try MetadataStore(directory: dir.path + "/nowhere", createIfMissing: false) }
        #expect(missing?.code == .notFound)
        #expect(missing?.message.hasPrefix(dir.path + "/nowhere/meta.sqlite: no such file") == true)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/nowhere"))
    }

    @Test("base62 text of 32 bytes is always 43 characters and keeps leading zero bytes")
    func base62() {
        #expect(Base62.encode([UInt8](repeating: 0, count: 32)) == String(repeating: "0", count: 43))
        #expect(Base62.encode([UInt8](repeating: 255, count: 32)).utf8.count == 43)
        #expect(Base62.encode([0, 0, 1]) == "00001")
        #expect(Base62.encode([0, 0, 62]) == "00010")
        #expect(Base62.encode([1, 0]) == "048")  // 256 = 4 * 62 + 8
        let keys = Set((0..<100).map { _ in KeySecret.generate(.write) })
        #expect(keys.count == 100)
        #expect(keys.allSatisfy(KeySecret.isWellFormed))
    }
}
