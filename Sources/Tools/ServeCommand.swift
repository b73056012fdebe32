import ArgumentParser
import Engine
import Foundation
import Logging
import Server

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Tally HTTP server (ingest at POST /v1/events, admin at /v1/admin, GET /health, GET /metrics).",
        discussion: """
            With no arguments: data in ./data, listening on 127.0.0.1:8080. On the first start it
            creates the property `default` and prints its write and read keys once.

            Settings come from a JSON config file (--config, or TALLY_CONFIG), then the environment
            (TALLY_<KEY>, e.g. TALLY_PORT), then flags (the named ones below, or --set KEY=VALUE
            for any), later ones winning. Every key:
            \(TallySettings.all.map { "  \($0.key) (\($0.environmentName)) default \"\($0.defaultValue)\": \($0.help)" }.joined(separator: "\n"))

            Examples:
              tally serve
              tally serve --data /var/lib/tally --host 0.0.0.0 --port 8080
              tally serve --config /etc/tally.json --set flush_rows=500000
              curl -X POST localhost:8080/v1/events -H "Authorization: Bearer $WRITE_KEY" \\
                   -d '{"events":[{"event_type":"page_view","occurred_at":"2026-11-23T10:00:00Z"}]}'
            """
    )

    @Option(help: "A JSON file of settings. [env: TALLY_CONFIG]")
    var config: String?

    @Option(help: "The data directory (events and meta.sqlite). [data, TALLY_DATA]")
    var data: String?

    @Option(help: "Address to listen on. [host, TALLY_HOST]")
    var host: String?

    @Option(help: "Port to listen on. [port, TALLY_PORT]")
    var port: Int?

    @Option(help: "Largest request body in bytes (413 above). [max_body_bytes]")
    var maxBodyBytes: Int?

    @Option(help: "Most events per request (413 above). [max_events]")
    var maxEvents: Int?

    @Option(help: "Header a trusted proxy sets with the client's country, e.g. CF-IPCountry. [country_header]")
    var countryHeader: String?

    @Option(help: "Requests a minute per client address, 0 for no limit. [rate_limit_per_ip]")
    var rateLimitPerIP: Int?

    @Option(help: "Requests a minute per write key, 0 for no limit. [rate_limit_per_key]")
    var rateLimitPerKey: Int?

    @Option(name: .customLong("set"), help: ArgumentHelp("Any setting, as KEY=VALUE; repeatable.", valueName: "KEY=VALUE"))
    var assignments: [String] = []

    func settings() throws -> TallySettings {
        var flags: [String: String] = [:]
        for a in assignments {
            guard let eq = a.firstIndex(of: "=") else { throw failure("--set \(a): expected KEY=VALUE") }
            flags[String(a[..<eq])] = String(a[a.index(after: eq)...])
        }
        let named: [(String, String?)] = [
            ("data", data), ("host", host), ("port", port.map(String.init)), ("max_body_bytes", maxBodyBytes.map(String.init)),
            ("max_events", maxEvents.map(String.init)), ("country_header", countryHeader),
            ("rate_limit_per_ip", rateLimitPerIP.map(String.init)), ("rate_limit_per_key", rateLimitPerKey.map(String.init)),
        ]
        for case (let key, let value?) in named { flags[key] = value }
        let env = ProcessInfo.processInfo.environment
        do {
            return try TallySettings(configFile: config ?? env["TALLY_CONFIG"], environment: env, flags: flags)
        } catch { throw failure(error.message) }
    }

    func run() async throws {
        let settings = try settings()
        let directory = settings.dataDirectory
        var configuration: ServerConfiguration
        let options: StoreOptions
        do {
            configuration = try settings.serverConfiguration()
            configuration.controlToken = ServerFile.newToken()
            options = try settings.storeOptions()
        } catch { throw failure(error.message) }

        let logger = Logger(label: "tally")
        let metadata: MetadataStore
        do { metadata = try MetadataStore(directory: directory) } catch {
            throw failure("\(directory)/meta.sqlite: \(error)")
        }
        // Month partitions go once past the longest raw retention of any property (the default
        // property, created below, has the configured default).
        // Rollup days in each property's time zone; rollup months kept for the longest rollup
        // retention.
        var storeOptions = options
        let properties: [Property]
        do { properties = try metadata.listProperties() } catch {
            throw failure("\(directory)/meta.sqlite: \(error)")
        }
        let (days, rollupDays) = PropertySettings.retentionDays(properties, configuration: configuration)
        storeOptions.retention = Int64(days) * 86_400_000
        storeOptions.rollups = storeOptions.rollups.map { var d = $0; d.retentionDays = rollupDays; return d }
        for p in properties {
            if let zone = try? QueryTimeZone(identifier: p.timezone) { storeOptions.siteTimeZones.set(p.id, zone) }
        }
        // The store first: its directory lock refuses a second server before any key is made.
        let store: EventStore
        do { store = try EventStore(options: storeOptions) } catch {
            throw failure("\(directory): \(error)")
        }
        let created: (property: Property, writeKey: String, readKey: String)?
        do {
            created = try metadata.ensureDefaultProperty(
                origins: configuration.defaultOrigins, rawRetentionDays: configuration.defaultRawRetentionDays,
                rollupRetentionDays: configuration.defaultRollupRetentionDays)
        } catch {
            try? store.close()
            throw failure("\(directory)/meta.sqlite: \(error)")
        }
        if let created {
            say("""
                Created property "\(created.property.id)". Its keys are shown only now:
                  write key: \(created.writeKey)
                  read key:  \(created.readKey)
                """)
        }
        // Rollup months counted in a zone the property no longer has are rebuilt in the background.
        for p in properties {
            if let zone = try? QueryTimeZone(identifier: p.timezone), store.setTimeZone(zone, forSite: p.id) {
                logger.info("rebuilding the rollups of \(p.id) for its time zone \(p.timezone)")
            }
        }
        let report = store.openReport
        if !report.partitionsDropped.isEmpty {
            logger.info("dropped partitions past the raw retention: \(report.partitionsDropped.map(\.description).joined(separator: ", "))")
        }
        if report.walRowsReplayed > 0 || !report.problems.isEmpty {
            logger.info("opened \(directory): \(report.parts) parts, \(report.walRowsReplayed) events replayed from the WAL")
            for p in report.problems { logger.warning("\(p)") }
        }
        say("Tally listening on http://\(configuration.host):\(configuration.port) (data: \(directory))")
        let app = TallyServer.application(store: store, keys: metadata, metadata: metadata, configuration: configuration,
                                          logger: logger)
        // How `tally backup`, `merge`, `rollup rebuild` and `drop-partition` reach this server.
        let serverFile = ServerFile(pid: getpid(), url: ServerFile.url(host: configuration.host, port: configuration.port),
                                    token: configuration.controlToken!)
        do { try serverFile.write(into: directory) } catch {
            logger.warning("cannot write \(directory)/\(ServerFile.name): \(error); the admin CLI cannot reach this server")
        }
        defer { serverFile.remove(from: directory) }
        try await app.runService()
    }
}

/// Writes a line to standard output at once (print is buffered when stdout is not a terminal,
/// and the keys must reach a log or a script before any request does).
private func say(_ text: String) {
    FileHandle.standardOutput.write((text + "\n").data(using: .utf8)!)
}
