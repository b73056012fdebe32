import ArgumentParser
import Engine
import Foundation

/// Opens a data directory for a command that changes it: takes the directory's lock (so it
/// refuses while `tally serve` runs there) and runs no background threads.
func openForChange(_ data: String, _ what: String) throws -> EventStore {
    guard FileManager.default.fileExists(atPath: data + "/parts") else { throw failure("\(data): no data directory") }
    var options = StoreOptions(directory: data)
    options.backgroundFlush = false
    do { return try EventStore(options: options) } catch {
        throw failure("\(data): \(error) (\(what) takes the directory's lock: stop `tally serve` first)")
    }
}

/// `tally merge`: merge parts now.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge the parts of each month (or one) into one part, and each rollup month into one part.",
        discussion: """
            What ClickHouse's OPTIMIZE ... FINAL does: fewer, larger parts answer queries faster and
            exact duplicates (retries that slipped past the dedupe window) are dropped. `tally serve`
            merges in the background by itself (FORMAT.md, "Merges"); this command takes the data
            directory's lock, so it refuses while a server runs there.

            Examples:
              tally merge --data ./data
              tally merge --data ./data --partition 202608
            """
    )

    @Option(help: "The data directory.")
    var data: String = "./data"

    @Option(help: "Only this month (YYYYMM).")
    var partition: String?

    func run() throws {
        var month: Partition?
        if let partition {
            guard partition.count == 6, let n = Int(partition), let m = Partition(yyyymm: n) else {
                throw failure("--partition \(partition): not a month (YYYYMM, e.g. 202608)")
            }
            month = m
        }
        let store = try openForChange(data, "merge")
        do {
            let before = store.snapshot().parts.count
            let reports = try store.mergeNow(partition: month, force: true)
            let rollupMerges = try store.mergeRollups(force: true)
            let summaries = try store.buildSessionSummaries()
            try store.close()
            let rows = reports.reduce(0) { $0 + $1.rows }
            let seconds = reports.reduce(0) { $0 + $1.seconds }
            let bytes = reports.reduce(0) { $0 + $1.inputBytes }
            print("merged \(before) parts into \(store.snapshot().parts.count) in \(reports.count) merges "
                + "(\(QueryCommand.grouped(Int64(rows))) rows written, "
                + String(format: "%.1f MB/s", seconds > 0 ? Double(bytes) / seconds / 1e6 : 0)
                + ", \(reports.reduce(0) { $0 + $1.duplicatesDropped }) duplicates dropped); \(rollupMerges) rollup merges; session summaries of \(summaries) parts built")
        } catch {
            throw failure("\(data): \(error)")
        }
    }
}

/// `tally rollup rebuild`: re-aggregate rollups from raw events.
struct RollupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollup",
        abstract: "Manage the daily rollups.",
        subcommands: [Rebuild.self]
    )

    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rebuild",
            abstract: "Rebuild every rollup for the months of a date range from the raw events.",
            discussion: """
                For a rollup added later, a property whose time zone changed, or a repair. Months whose
                raw events are gone (past the raw retention) keep their rollups. Takes the data
                directory's lock, so it refuses while `tally serve` runs there (the server rebuilds the
                months of a property whose time zone changed by itself).

                Example:
                  tally rollup rebuild --from 2026-08-01 --to 2026-10-31 --data ./data
                """
        )

        @Option(help: "The data directory.")
        var data: String = "./data"

        @Option(help: "First day, YYYY-MM-DD.")
        var from: String

        @Option(help: "Last day, YYYY-MM-DD (inclusive).")
        var to: String

        func run() throws {
            guard let first = QueryRange.date(from) else { throw failure("--from \(from): not a date (YYYY-MM-DD)") }
            guard let last = QueryRange.date(to) else { throw failure("--to \(to): not a date (YYYY-MM-DD)") }
            guard first <= last else { throw failure("--from \(from) is after --to \(to)") }
            let store = try openForChange(data, "rollup rebuild")
            do {
                let months = try store.rebuildRollups(from: first * 86_400_000, to: (last + 1) * 86_400_000)
                try store.close()
                print(months.isEmpty
                    ? "no month of \(from)…\(to) has raw events left; nothing rebuilt"
                    : "rebuilt the rollups of \(months.map(\.description).joined(separator: ", "))")
            } catch {
                throw failure("\(data): \(error)")
            }
        }
    }
}
