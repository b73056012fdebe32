import ArgumentParser
import Foundation

/// `tally export`: events as NDJSON that `tally ingest` reads back, or CSV.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write events as NDJSON (which `tally ingest` loads back) or CSV.",
        discussion: """
            Every column of every event in the range, all properties unless --site. The NDJSON lines
            are events in the flat shape of POST /v1/events, so `tally export … | tally ingest - --data NEW`
            copies a directory's events (received_at becomes the time of the new ingest).

            Examples:
              tally export --data ./data --from 2026-11-01 --to 2026-11-30 > november.ndjson
              tally export --data ./data --site shop --format csv > shop.csv
            """
    )

    @Option(help: "The data directory.")
    var data: String = "./data"

    @Option(help: "Only this site (property).")
    var site: String?

    @Option(help: "From: a date YYYY-MM-DD (UTC day, included) or an ISO-8601 instant.")
    var from: String?

    @Option(help: "To: a date YYYY-MM-DD (UTC day, included) or an ISO-8601 instant (excluded).")
    var to: String?

    @Option(help: "ndjson or csv.")
    var format = "ndjson"

    func run() throws {
        var arguments = ["--data", data, "--format", format]
        if let site { arguments += ["--site", site] }
        if let from { arguments += ["--from", from] }
        if let to { arguments += ["--to", to] }
        let dump = try DumpCommand.parse(arguments)
        try dump.run()
    }
}
