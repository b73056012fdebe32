import ArgumentParser
import Engine
import Foundation

/// `tally merge`: merge parts now.
struct MergeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge the parts of each month (or one) into one part, and each rollup month into one part.",
        discussion: """
            What ClickHouse's OPTIMIZE ... FINAL does: fewer, larger parts answer queries faster and
            exact duplicates (retries that slipped past the dedupe window) are dropped. `tally serve`
            merges in the background by itself (FORMAT.md, "Merges"). This command takes the data
            directory's lock; while `tally serve` holds it, the command asks that server through its
            admin API instead (the server writes how to reach it to DIR/SERVER).

            Examples:
              tally merge --data ./data
              tally merge --data ./data --partition 202608
            """
    )

    @Option(help: "The data directory.")
    var data: String = "./data"

    @Option(help: "Only this month (YYYYMM).")
    var partition: String?

    func run() async throws {
        var month: Partition?
        if let partition {
            guard partition.count == 6, let n = Int(partition), let m = Partition(yyyymm: n) else {
                throw failure("--partition \(partition): not a month (YYYYMM, e.g. 202608)")
            }
            month = m
        }
        let access = try Maintenance.open(data, "merge")
        let answer: (before: Int, after: Int, merges: Int, rows: Int, seconds: Double, duplicates: Int, rollups: Int, summaries: Int)
        switch access {
        case .local(let store):
            do {
                let before = store.snapshot().parts.count
                let reports = try store.mergeNow(partition: month, force: true)
                let rollupMerges = try store.mergeRollups(force: true)
                let summaries = try store.buildSessionSummaries()
                try store.close()
                answer = (before, store.snapshot().parts.count, reports.count, reports.reduce(0) { $0 + $1.rows },
                          reports.reduce(0) { $0 + $1.seconds }, reports.reduce(0) { $0 + $1.duplicatesDropped },
                          rollupMerges, summaries)
            } catch {
                throw failure("\(data): \(error)")
            }
        case .server(let server):
            var body: [String: Any] = [:]
            if let partition { body["partition"] = partition }
            let o = try await Maintenance.post(server, "/v1/admin/merge", body, data: data)
            func int(_ k: String) -> Int { (o[k] as? NSNumber)?.intValue ?? 0 }
            answer = (int("parts_before"), int("parts_after"), int("merges"), int("rows_written"),
                      (o["seconds"] as? NSNumber)?.doubleValue ?? 0, int("duplicates_dropped"), int("rollup_merges"),
                      int("session_summaries_built"))
        }
        print("merged \(answer.before) parts into \(answer.after) in \(answer.merges) merges "
            + "(\(QueryCommand.grouped(Int64(answer.rows))) rows written in "
            + String(format: "%.1f s", answer.seconds)
            + ", \(answer.duplicates) duplicates dropped); \(answer.rollups) rollup merges; session summaries of \(answer.summaries) parts built "
            + access.how(data))
    }
}

/// `tally rollup rebuild`: re-aggregate rollups from raw events.
struct RollupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollup",
        abstract: "Manage the daily rollups.",
        subcommands: [Rebuild.self]
    )

    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rebuild",
            abstract: "Rebuild every rollup for the months of a date range from the raw events.",
            discussion: """
                For a rollup added later, a property whose time zone changed, or a repair. Months whose
                raw events are gone (past the raw retention) keep their rollups. Takes the data
                directory's lock, or asks the `tally serve` holding it through its admin API (the
                server also rebuilds the months of a property whose time zone changed by itself).

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

        func run() async throws {
            guard let first = QueryRange.date(from) else { throw failure("--from \(from): not a date (YYYY-MM-DD)") }
            guard let last = QueryRange.date(to) else { throw failure("--to \(to): not a date (YYYY-MM-DD)") }
            guard first <= last else { throw failure("--from \(from) is after --to \(to)") }
            let access = try Maintenance.open(data, "rollup rebuild")
            let months: [String]
            switch access {
            case .local(let store):
                do {
                    months = try store.rebuildRollups(from: first * 86_400_000, to: (last + 1) * 86_400_000).map(\.description)
                    try store.close()
                } catch {
                    throw failure("\(data): \(error)")
                }
            case .server(let server):
                let o = try await Maintenance.post(server, "/v1/admin/rollups/rebuild", ["from": from, "to": to], data: data)
                months = o["months"] as? [String] ?? []
            }
            print((months.isEmpty
                ? "no month of \(from)…\(to) has raw events left; nothing rebuilt"
                : "rebuilt the rollups of \(months.joined(separator: ", "))") + " " + access.how(data))
        }
    }
}
