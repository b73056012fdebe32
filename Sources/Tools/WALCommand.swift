import ArgumentParser
import Engine
import Foundation

/// `tally wal`: the write-ahead log's segments and records.
struct WALCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal",
        abstract: "List WAL segments and records: offset, size, LSN, events, checksum state.",
        discussion: """
            Read-only and safe beside a running server (its current segment may end in a record being
            written, shown as a torn tail). Exits 1 when a segment other than the last has a problem.

            Examples:
              tally wal --data ./data
              tally wal --data ./data --records
              tally wal --data ./data --json
            """
    )

    @Option(help: "The data directory.")
    var data: String = "./data"

    @Flag(help: "List every record, not only segment totals.")
    var records = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let segments: [WALScan.Segment]
        do { segments = try WALScan.segments(directory: data) } catch { throw failure("\(data): \(error)") }
        if json {
            let list: [[String: Any]] = segments.map { s in
                var o: [String: Any] = ["name": s.name, "bytes": s.bytes, "first_lsn": s.firstLSN, "events": s.events,
                                        "records": s.records.count]
                if let p = s.problem { o["problem"] = p; o["problem_offset"] = s.problemOffset ?? 0 }
                if records {
                    o["record_list"] = s.records.map { ["offset": $0.offset, "size": $0.size, "lsn": $0.lsn, "events": $0.events] }
                }
                return o
            }
            let d = try JSONSerialization.data(withJSONObject: ["segments": list], options: [.sortedKeys])
            print(String(decoding: d, as: UTF8.self))
        } else if segments.isEmpty {
            print("no WAL segments in \(data)/wal")
        } else {
            for s in segments {
                let state = s.problem.map { "\($0) at offset \(s.problemOffset ?? 0)" } ?? "all checksums ok"
                print("\(s.name)  \(InspectReport.size(s.bytes))  \(QueryCommand.grouped(Int64(s.records.count))) records  "
                    + "\(QueryCommand.grouped(Int64(s.events))) events  \(state)")
                if records {
                    for r in s.records {
                        print("  offset \(r.offset)  size \(r.size)  lsn \(r.lsn)  events \(r.events)  crc ok")
                    }
                }
            }
        }
        if segments.dropLast().contains(where: { $0.problem != nil }) {
            for s in segments.dropLast() where s.problem != nil {
                FileHandle.standardError.write(Data("tally: \(data)/wal/\(s.name): \(s.problem!) at offset \(s.problemOffset ?? 0)\n".utf8))
            }
            throw ExitCode(1)
        }
    }
}
