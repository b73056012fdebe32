import ArgumentParser
import Engine
import Foundation
import Server

/// `tally query`: the reporting query model from the command line.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Run a report query on a data directory (the parameters of GET /v1/properties/ID/metrics).",
        discussion: """
            Reads the parts (and, when no server holds the directory, the unflushed WAL too).
            While `tally serve` runs on the directory, events not yet flushed to a part are not
            seen here (a note says how much WAL that is); ask the server's HTTP API for live answers.

            Examples:
              tally query --property default --period 30d --metrics pageviews,unique_visitors --group-by path --limit 10
              tally query --property shop --from 2026-11-01 --to 2026-11-07 --interval day --metrics events
              tally query --property shop --period 7d --filters 'page_path^=/blog;country_code!=DE' --json
            """
    )

    @Option(help: "The data directory.")
    var data: String = "./data"

    @Option(name: [.customLong("property"), .customLong("site")], help: "The property (events' site_id).")
    var property: String = "default"

    @Option(help: "Start date YYYY-MM-DD (included) or ISO-8601 instant.")
    var from: String?

    @Option(help: "End date YYYY-MM-DD (included) or ISO-8601 instant (excluded).")
    var to: String?

    @Option(help: "today, yesterday or Nd (the last N days, today included); default 7d.")
    var period: String?

    @Option(help: "IANA time zone (default: the property's, else UTC).")
    var tz: String?

    @Option(help: "Comma-separated metrics.")
    var metrics = "pageviews,unique_visitors,sessions"

    @Option(help: "Comma-separated dimensions.")
    var groupBy: String?

    @Option(help: "hour, day, week, month, hour_of_day or day_of_week.")
    var interval: String?

    @Option(help: "Conditions joined by ';' (==, !=, ~, !~, ^=; '|' between values).")
    var filters: String?

    @Option(help: "name:asc|desc, comma-separated.")
    var orderBy: String?

    @Option(help: "Most rows.")
    var limit: Int?

    @Option(help: "Rows to skip.")
    var offset = 0

    @Flag(help: "Exact distinct counts instead of HyperLogLog estimates.")
    var exact = false

    @Flag(help: "Print {\"data\":[…],\"meta\":{…}}.")
    var json = false

    func run() throws {
        var zoneName = tz ?? "UTC"
        if tz == nil, FileManager.default.fileExists(atPath: data + "/" + MetadataStore.fileName),
           let p = try? MetadataStore(directory: data, createIfMissing: false).property(id: property) {
            zoneName = p.timezone
        }
        let query: Query
        do {
            let zone = try QueryTimeZone(identifier: zoneName)
            let (start, end) = try QueryRange.resolve(from: from, to: to, period: period, zone: zone,
                                                      now: Int64(Date().timeIntervalSince1970 * 1000))
            var dimensions = try ReportRoutes.dimensionList(groupBy)
            if let interval {
                guard let bucket = QueryDimension.TimeBucket(rawValue: interval) else {
                    throw QueryError.invalid("interval", "must be hour, day, week, month, hour_of_day or day_of_week")
                }
                dimensions.insert(.time(bucket), at: 0)
            }
            query = Query(site: property, from: start, to: end, timeZone: zone, metrics: try ReportRoutes.metricList(metrics),
                          dimensions: dimensions, filter: try filters.map(FilterSyntax.parse),
                          orderBy: try orderBy.map(FilterSyntax.order) ?? [], limit: limit, offset: offset, exact: exact)
        } catch let e as QueryError {
            throw failure("--\(e.parameter.replacingOccurrences(of: "_", with: "-")): \(e.message)")
        }

        let view = try ReadView(data: data)
        defer { view.close() }
        let result: QueryResult
        do { result = try QueryExecutor.run(query, on: view.snapshot) } catch { throw failure("\(error.parameter): \(error.message)") }
        if let note = view.note { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
        if json {
            var out: [String: Any] = [:]
            out["data"] = result.objects.map { row in row.mapValues(Self.json) }
            out["meta"] = ["source": result.source.rawValue, "rows_scanned": result.rowsScanned, "total_rows": result.totalRows]
            let d = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
            print(String(decoding: d, as: UTF8.self))
        } else {
            print(Self.table(result))
        }
    }

    static func json(_ v: QueryValue) -> Any {
        switch v {
        case .null: NSNull()
        case .int(let i): i
        case .double(let d): d
        case .string(let s): s
        }
    }

    /// Aligned columns: text left, numbers right with thousands separators.
    static func table(_ result: QueryResult) -> String {
        func cell(_ v: QueryValue) -> String {
            switch v {
            case .null: "(none)"
            case .int(let i): grouped(i)
            case .double(let d): String(format: "%.4f", d)
            case .string(let s): s
            }
        }
        let rows = result.rows.map { $0.map(cell) }
        let numeric = result.columns.indices.map { i in result.rows.allSatisfy { $0[i].doubleValue != nil || $0[i] == .null } }
        let widths = result.columns.indices.map { i in ([result.columns[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.indices.map { i in
                let pad = String(repeating: " ", count: widths[i] - cells[i].count)
                return numeric[i] ? pad + cells[i] : cells[i] + pad
            }.joined(separator: "  ")
        }
        var out = [line(result.columns)]
        out += rows.map(line)
        let rollupRows = result.stats.rollupRowsRead
        let rawRows = result.rowsScanned - rollupRows
        let source: String
        switch result.source {
        case .raw: source = "\(grouped(Int64(rawRows))) rows scanned"
        case .rollup: source = "from the daily rollups: \(grouped(Int64(rollupRows))) rollup rows, \(grouped(Int64(rawRows))) buffered rows"
        case .mixed where result.stats.sessionSummariesRead > 0:
            source = "\(grouped(Int64(result.stats.sessionSummariesRead))) session summaries and \(grouped(Int64(rawRows))) rows scanned"
        case .mixed: source = "\(grouped(Int64(rollupRows))) rollup rows and \(grouped(Int64(rawRows))) rows scanned"
        case .sessionSummaries:
            source = "from the session summaries: \(grouped(Int64(result.stats.sessionSummariesRead))) summaries, \(grouped(Int64(rawRows))) buffered rows"
        }
        out.append("(\(grouped(Int64(result.rows.count))) of \(grouped(Int64(result.totalRows))) rows, \(source))")
        return out.joined(separator: "\n")
    }

    static func grouped(_ n: Int64) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}
