import ArgumentParser
import Engine
import Foundation
import Logging
import Server

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Tally HTTP server (ingest at POST /v1/events, GET /health).",
        discussion: """
            With no arguments: data in ./data, listening on 127.0.0.1:8080. On the first start it
            creates the property `default` and prints its write and read keys once.
            Every option can also come from the environment: TALLY_DATA, TALLY_HOST, TALLY_PORT,
            TALLY_MAX_BODY_BYTES, TALLY_MAX_EVENTS, TALLY_COUNTRY_HEADER, TALLY_RATE_LIMIT_PER_IP,
            TALLY_RATE_LIMIT_PER_KEY.

            Examples:
              tally serve
              tally serve --data /var/lib/tally --host 0.0.0.0 --port 8080
              curl -X POST localhost:8080/v1/events -H "Authorization: Bearer $WRITE_KEY" \\
                   -d '{"events":[{"event_type":"page_view","occurred_at":"2026-11-23T10:00:00Z"}]}'
            """
    )

    @Option(help: "The data directory (events and meta.sqlite). [env: TALLY_DATA]")
    var data: String?

    @Option(help: "Address to listen on. [env: TALLY_HOST]")
    var host: String?

    @Option(help: "Port to listen on. [env: TALLY_PORT]")
    var port: Int?

    @Option(help: "Largest request body in bytes (413 above). [env: TALLY_MAX_BODY_BYTES]")
    var maxBodyBytes: Int?

    @Option(help: "Most events per request (413 above). [env: TALLY_MAX_EVENTS]")
    var maxEvents: Int?

    @Option(help: "Header a trusted proxy sets with the client's country, e.g. CF-IPCountry. [env: TALLY_COUNTRY_HEADER]")
    var countryHeader: String?

    @Option(help: "Requests a minute per client address, 0 for no limit. [env: TALLY_RATE_LIMIT_PER_IP]")
    var rateLimitPerIP: Int?

    @Option(help: "Requests a minute per write key, 0 for no limit. [env: TALLY_RATE_LIMIT_PER_KEY]")
    var rateLimitPerKey: Int?

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let directory = data ?? env["TALLY_DATA"] ?? "./data"
        var configuration = ServerConfiguration()
        configuration.host = host ?? env["TALLY_HOST"] ?? configuration.host
        configuration.port = port ?? env["TALLY_PORT"].flatMap(Int.init) ?? configuration.port
        configuration.maxBodyBytes = maxBodyBytes ?? env["TALLY_MAX_BODY_BYTES"].flatMap(Int.init) ?? configuration.maxBodyBytes
        configuration.maxEventsPerRequest = maxEvents ?? env["TALLY_MAX_EVENTS"].flatMap(Int.init)
            ?? configuration.maxEventsPerRequest

        configuration.countryHeader = countryHeader ?? env["TALLY_COUNTRY_HEADER"]
        configuration.requestsPerMinutePerIP = rateLimitPerIP ?? env["TALLY_RATE_LIMIT_PER_IP"].flatMap(Int.init)
            ?? configuration.requestsPerMinutePerIP
        configuration.requestsPerMinutePerKey = rateLimitPerKey ?? env["TALLY_RATE_LIMIT_PER_KEY"].flatMap(Int.init)
            ?? configuration.requestsPerMinutePerKey

        let logger = Logger(label: "tally")
        let store: EventStore
        do { store = try EventStore(options: StoreOptions(directory: directory)) } catch {
            throw failure("\(directory): \(error)")
        }
        let metadata: MetadataStore
        do { metadata = try MetadataStore(directory: directory) } catch {
            try? store.close()
            throw failure("\(directory)/meta.sqlite: \(error)")
        }
        if let created = try metadata.ensureDefaultProperty() {
            say("""
                Created property "\(created.property.id)". Its keys are shown only now:
                  write key: \(created.writeKey)
                  read key:  \(created.readKey)
                """)
        }
        let report = store.openReport
        if report.walRowsReplayed > 0 || !report.problems.isEmpty {
            logger.info("opened \(directory): \(report.parts) parts, \(report.walRowsReplayed) events replayed from the WAL")
            for p in report.problems { logger.warning("\(p)") }
        }
        say("Tally listening on http://\(configuration.host):\(configuration.port) (data: \(directory))")
        let app = TallyServer.application(store: store, keys: metadata, configuration: configuration, logger: logger)
        try await app.runService()
    }
}

/// Writes a line to standard output at once (print is buffered when stdout is not a terminal,
/// and the keys must reach a log or a script before any request does).
private func say(_ text: String) {
    FileHandle.standardOutput.write((text + "\n").data(using: .utf8)!)
}
