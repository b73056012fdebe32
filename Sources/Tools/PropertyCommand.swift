import ArgumentParser
import Foundation
import Server

struct PropertyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "property",
        abstract: "Create, change and list properties (the sites and apps whose events Tally stores).",
        discussion: """
            Properties and their keys live in DIR/meta.sqlite; these commands
            are safe while `tally serve` runs on the same directory.

            Examples:
              tally property create example.com --name "Example" --timezone Europe/Berlin \\
                    --origin https://example.com --origin https://www.example.com
              tally property update example.com --timezone America/New_York --raw-retention-days 30
              tally property list
            """,
        subcommands: [Create.self, Update.self, List.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a property and print its write key and read key (shown only this once).")

        @Argument(help: "The property id: 1–128 characters of A-Z a-z 0-9 . _ - (events' site_id).")
        var id: String

        @Option(help: "A display name (default: the id).")
        var name: String?

        @Option(help: "IANA time zone for day boundaries in reports.")
        var timezone: String = "UTC"

        @Option(
            name: .customLong("origin"),
            help: "An origin browsers may post from, scheme://host[:port]; repeatable. Default: any origin (*).")
        var origins: [String] = []

        @Option(help: "Days raw events are kept.")
        var rawRetentionDays = 90

        @Option(help: "Days daily rollups are kept (at least the raw retention).")
        var rollupRetentionDays = 730

        @Flag(help: "Drop events from browsers that send Do Not Track or Global Privacy Control (counted as filtered).")
        var respectPrivacySignals = false

        @OptionGroup var location: DataLocation

        @Flag(help: "Print {\"property_id\",\"write_key\",\"read_key\"} as JSON.")
        var json = false

        func run() throws {
            let store = try location.open(createIfMissing: true)
            let created: (property: Property, writeKey: String, readKey: String)
            do {
                created = try store.createProperty(
                    id: id, name: name, timezone: timezone, origins: origins.isEmpty ? ["*"] : origins,
                    rawRetentionDays: rawRetentionDays, rollupRetentionDays: rollupRetentionDays,
                    respectPrivacySignals: respectPrivacySignals)
            } catch { throw failure(error.description) }
            let p = created.property
            if json {
                print(MetadataOutput.json(["property_id": p.id, "write_key": created.writeKey, "read_key": created.readKey]))
            } else {
                print("""
                    created property \(p.id) (\(p.name), \(p.timezone), origins: \(p.allowedOrigins.joined(separator: " ")))
                    write key: \(created.writeKey)
                    read key:  \(created.readKey)
                    The keys are shown only now; Tally keeps only their SHA-256.
                    """)
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a property's name, time zone, origins or retention (keys are untouched).")

        @Argument(help: "The property id.")
        var id: String

        @Option(help: "A new display name.")
        var name: String?

        @Option(help: "A new IANA time zone.")
        var timezone: String?

        @Option(name: .customLong("origin"), help: "Replaces the allowed origins (repeatable; * = any).")
        var origins: [String] = []

        @Option(help: "Days raw events are kept.")
        var rawRetentionDays: Int?

        @Option(help: "Days daily rollups are kept.")
        var rollupRetentionDays: Int?

        @Option(help: "true: drop events from browsers that send Do Not Track or Global Privacy Control; false: keep them.")
        var respectPrivacySignals: Bool?

        @OptionGroup var location: DataLocation

        @Flag(help: "Print the property as JSON.")
        var json = false

        func run() throws {
            let store = try location.open(createIfMissing: false)
            let p: Property
            do {
                p = try store.updateProperty(
                    id: id,
                    .init(name: name, timezone: timezone, origins: origins.isEmpty ? nil : origins,
                          rawRetentionDays: rawRetentionDays, rollupRetentionDays: rollupRetentionDays,
                          respectPrivacySignals: respectPrivacySignals))
            } catch { throw failure(error.description) }
            if json {
                print(MetadataOutput.json(MetadataOutput.property(p)))
            } else {
                print("updated property \(p.id) (\(p.name), \(p.timezone), origins: \(p.allowedOrigins.joined(separator: " ")), "
                    + "raw \(p.rawRetentionDays) days, rollups \(p.rollupRetentionDays) days)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the properties.")

        @OptionGroup var location: DataLocation

        @Flag(help: "Print a JSON array.")
        var json = false

        func run() throws {
            let properties: [Property]
            let store = try location.open(createIfMissing: false)
            do { properties = try store.listProperties() } catch {
                throw failure(error.description)
            }
            if json {
                print(MetadataOutput.json(properties.map(MetadataOutput.property)))
            } else if properties.isEmpty {
                print("no properties (create one with 'tally property create ID')")
            } else {
                print(MetadataOutput.table(
                    ["ID", "NAME", "TIMEZONE", "ORIGINS", "RETENTION", "CREATED"],
                    properties.map { p in
                        [p.id, p.name, p.timezone, p.allowedOrigins.joined(separator: " "),
                         "\(p.rawRetentionDays)d/\(p.rollupRetentionDays)d", MetadataOutput.time(p.createdAt)]
                    }))
            }
        }
    }
}

/// `--data DIR` for the property and key commands.
struct DataLocation: ParsableArguments {
    @Option(help: "The data directory holding meta.sqlite (default: $TALLY_DATA, else ./data).")
    var data: String?

    var directory: String { data ?? ProcessInfo.processInfo.environment["TALLY_DATA"] ?? "./data" }

    /// The store, or a one-line failure naming the file.
    func open(createIfMissing: Bool) throws -> MetadataStore {
        do { return try MetadataStore(directory: directory, createIfMissing: createIfMissing) } catch {
            throw failure(error.description)
        }
    }
}

/// Printing for the property and key commands.
enum MetadataOutput {
    static func property(_ p: Property) -> [String: Any] {
        [
            "id": p.id, "name": p.name, "timezone": p.timezone, "allowed_origins": p.allowedOrigins,
            "raw_retention_days": p.rawRetentionDays, "rollup_retention_days": p.rollupRetentionDays,
            "created_at": MetadataOutput.time(p.createdAt), "respect_privacy_signals": p.respectPrivacySignals,
        ]
    }

    static func json(_ object: Any) -> String {
        // Only strings, numbers, arrays and dictionaries reach here, which always serialize.
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Milliseconds since the epoch as `2026-08-01T10:00:00Z`.
    static func time(_ ms: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    /// Left-aligned columns two spaces apart.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { i in
                i == row.count - 1 ? row[i] : row[i].padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0)
            }.joined()
        }.joined(separator: "\n")
    }
}
