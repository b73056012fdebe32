import ArgumentParser
import Engine
import Foundation
import Server

/// `tally dump`: rows of a data directory as NDJSON or CSV, through the engine's scan and pruning.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print stored events as NDJSON or CSV, filtered by site, time and column values.",
        discussion: """
            Uses the engine's scan: partitions and granules are skipped by the sort key, min/max time
            and bloom filters (--stats prints how many). Read-only; beside a running server it reads
            the parts (events still only in the WAL are not printed).

            Examples:
              tally dump --data ./data --site shop --from 2026-11-01 --to 2026-11-02 --limit 10
              tally dump --site shop --where event_type=widget_click --columns occurred_at,visitor_id,page_path --format csv
              tally dump --site shop --where visitor_id=01J9ZK3V8M3K2Q6W7X8Y9Z0ABC --stats
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

    @Option(name: .customLong("where"), help: "COLUMN=VALUE; repeatable (all must hold); the same column twice means either value.")
    var conditions: [String] = []

    @Option(help: "Comma-separated columns (default: all).")
    var columns: String?

    @Option(help: "Most rows printed.")
    var limit: Int?

    @Option(help: "ndjson or csv.")
    var format = "ndjson"

    @Flag(help: "Print scan statistics (parts and granules read and skipped) to standard error.")
    var stats = false

    struct Done: Error {}

    func run() throws {
        guard format == "ndjson" || format == "csv" else { throw failure("--format \(format): use ndjson or csv") }
        var selected = EventColumn.allCases
        if let columns {
            selected = try columns.split(separator: ",").map { name in
                guard let c = EventColumn(name: name.trimmingCharacters(in: .whitespaces)) else {
                    throw failure("--columns: unknown column '\(name)' (known: \(EventColumn.allCases.map(\.name).joined(separator: ", ")))")
                }
                return c
            }
        }
        var byColumn: [EventColumn: [String?]] = [:]
        var order: [EventColumn] = []
        for c in conditions {
            guard let eq = c.firstIndex(of: "="), let column = EventColumn(name: String(c[..<eq])) else {
                throw failure("--where \(c): expected COLUMN=VALUE with a column name")
            }
            if byColumn[column] == nil { order.append(column) }
            byColumn[column, default: []].append(String(c[c.index(after: eq)...]))
        }
        let filters = order.map { ColumnFilter($0, byColumn[$0]!) }
        var start: Int64?
        var end: Int64?
        do {
            if let from { start = try QueryRange.instant(from, parameter: "from", zone: .utc, end: false) }
            if let to { end = try QueryRange.instant(to, parameter: "to", zone: .utc, end: true) }
        } catch { throw failure("--\(error.parameter): \(error.message)") }

        let view = try ReadView(data: data)
        defer { view.close() }
        if let note = view.note { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
        let snapshot = view.snapshot

        let out = FileHandle.standardOutput
        var buffer: [UInt8] = []
        func flushBuffer(_ force: Bool = false) {
            if force || buffer.count > 1 << 16 {
                out.write(Data(buffer))
                buffer.removeAll(keepingCapacity: true)
            }
        }
        if format == "csv" {
            buffer.append(contentsOf: (selected.map(\.name).joined(separator: ",") + "\n").utf8)
        }
        var printed = 0
        let request = ScanRequest(site: site, from: start, to: end, filters: filters, columns: selected)
        var scanStats = ScanStats()
        do {
            scanStats = try snapshot.scan(request) { b in
                for r in 0..<b.count {
                    if let limit, printed >= limit { throw Done() }
                    if format == "csv" { Self.csv(b, row: r, columns: selected, into: &buffer) } else {
                        Self.ndjson(b, row: r, columns: selected, into: &buffer)
                    }
                    printed += 1
                    flushBuffer()
                }
            }
        } catch is Done {
        } catch {
            throw failure("\(data): \(error)")
        }
        flushBuffer(true)
        if stats {
            let s = scanStats
            FileHandle.standardError.write(Data(("rows \(printed); parts \(s.parts) (\(s.partsSkipped) skipped); granules \(s.granules): "
                + "\(s.granulesRead) read, \(s.granulesSkippedByIndex) skipped by the index, \(s.granulesSkippedByBloom) by bloom filters; "
                + "\(s.bufferedRowsScanned) buffered rows scanned\n").utf8))
        }
    }

    static func ndjson(_ b: EventBatch, row r: Int, columns: [EventColumn], into out: inout [UInt8]) {
        JSONText.appendEvent(b, row: r, columns: columns, to: &out)
        out.append(UInt8(ascii: "\n"))
    }

    /// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled; null is empty.
    static func csv(_ b: EventBatch, row r: Int, columns: [EventColumn], into out: inout [UInt8]) {
        for (i, c) in columns.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            if c.kind == .int64 {
                let col = b[int: c]
                guard !col.isNull(r) else { continue }
                if c == .occurredAt || c == .receivedAt {
                    out.append(contentsOf: CivilTime.iso8601(ms: col.values[r]).utf8)
                } else {
                    out.append(contentsOf: String(col.values[r]).utf8)
                }
            } else {
                let col = b[string: c]
                guard !col.isNull(r) else { continue }
                col.withValue(r) { v in
                    if v.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }) {
                        out.append(UInt8(ascii: "\""))
                        for byte in v {
                            if byte == UInt8(ascii: "\"") { out.append(byte) }
                            out.append(byte)
                        }
                        out.append(UInt8(ascii: "\""))
                    } else {
                        out.append(contentsOf: v)
                    }
                }
            }
        }
        out.append(UInt8(ascii: "\n"))
    }
}
