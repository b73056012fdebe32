import ArgumentParser
import Foundation
import Server

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Create, revoke and list a property's API keys.",
        discussion: """
            Write keys (tw_…) post events; read keys (tr_…) read reports.
            A key is shown once, when it is created; listings show its id
            and first 8 characters. Safe while `tally serve` runs: a
            revocation counts there within a second.

            Examples:
              tally key create --property example.com --kind write
              tally key list --property example.com
              tally key revoke key_3xJq9ZkQ0aBcDeFg
            """,
        subcommands: [Create.self, Revoke.self, List.self]
    )

    /// `--kind write|read`.
    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case write, read

        var apiKind: APIKey.Kind {
            switch self {
            case .write: .write
            case .read: .read
            }
        }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it (shown only this once).")

        @Option(help: "The property the key is for.")
        var property: String

        @Option(help: "write (post events) or read (read reports).")
        var kind: Kind

        @OptionGroup var location: DataLocation

        @Flag(help: "Print {\"key_id\",\"property_id\",\"kind\",\"key\"} as JSON.")
        var json = false

        func run() throws {
            let store = try location.open(createIfMissing: false)
            let (key, text): (APIKey, String)
            do { (key, text) = try store.createKey(propertyID: property, kind: kind.apiKind) } catch {
                throw failure(error.description)
            }
            if json {
                print(MetadataOutput.json([
                    "key_id": key.id, "property_id": key.propertyID, "kind": key.kind.rawValue, "key": text,
                ]))
            } else {
                print("""
                    created \(key.kind.rawValue) key \(key.id) for property \(key.propertyID)
                    key: \(text)
                    The key is shown only now; Tally keeps only its SHA-256.
                    """)
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a key; a running server refuses it within a second.")

        @Argument(help: "The key's id (key_…), its first 8 characters as listed (tw_AbCdE), or the whole key.")
        var key: String

        @OptionGroup var location: DataLocation

        func run() throws {
            let store = try location.open(createIfMissing: false)
            let revoked: APIKey
            let started = Int64(Date().timeIntervalSince1970 * 1000)
            // A prefix copied from `tally key list` may carry its ellipsis.
            let reference = key.hasSuffix("…") ? String(key.dropLast()) : key
            do { revoked = try store.revokeKey(reference) } catch { throw failure(error.description) }
            let what = "\(revoked.kind.rawValue) key \(revoked.id) (\(revoked.prefix)…) of property \(revoked.propertyID)"
            if let at = revoked.revokedAt, at < started {
                print("\(what) was already revoked at \(MetadataOutput.time(at))")
            } else {
                print("revoked \(what)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a property's keys, revoked ones included.")

        @Option(help: "The property whose keys to list.")
        var property: String

        @OptionGroup var location: DataLocation

        @Flag(help: "Print a JSON array.")
        var json = false

        func run() throws {
            let keys: [APIKey]
            let store = try location.open(createIfMissing: false)
            do { keys = try store.listKeys(propertyID: property) } catch {
                throw failure(error.description)
            }
            if json {
                print(MetadataOutput.json(keys.map { k in
                    [
                        "id": k.id, "property_id": k.propertyID, "kind": k.kind.rawValue, "prefix": k.prefix,
                        "created_at": MetadataOutput.time(k.createdAt),
                        "revoked_at": k.revokedAt.map(MetadataOutput.time) ?? NSNull(),
                    ] as [String: Any]
                }))
            } else {
                print(MetadataOutput.table(
                    ["ID", "KIND", "PREFIX", "CREATED", "REVOKED"],
                    keys.map { k in
                        [k.id, k.kind.rawValue, k.prefix + "…", MetadataOutput.time(k.createdAt),
                         k.revokedAt.map(MetadataOutput.time) ?? "-"]
                    }))
            }
        }
    }
}
