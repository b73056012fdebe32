import ArgumentParser
import Engine
import Foundation
import Server

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a data directory holds: partitions, parts, bytes per column, the WAL.",
        discussion: """
            Read-only: opens part files and WAL segments without replaying or locking anything,
            so it is safe while `tally serve` runs on the same directory.

            Examples:
              tally inspect --data ./data
              tally inspect --data ./data --json | jq .total_rows
              tally inspect --data ./data 202611_00000042_0.part
              tally inspect --data ./data 202611_00000043_0.rpart   # a rollup part: rows, dictionaries, sketch sizes
            """
    )

    @Argument(help: "A part to show in detail (a path, or a file name in DIR/parts), or a rollup part (.rpart, a path or a name in DIR/rollups/*/).")
    var part: String?

    @Option(help: "The data directory.")
    var data: String = "./data"

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(help: "The server's dedupe window in hours (its dedupe_window_hours), for the dedupe line. (default: $TALLY_DEDUPE_WINDOW_HOURS, else 168)")
    var dedupeWindowHours: Int?

    func run() throws {
        if let part {
            // One part in detail: a rollup part, or a raw part (a path, or a name in DIR/parts).
            let (object, text): ([String: Any], String)
            if part.hasSuffix(".rpart") {
                let report = try RollupPartReport(part, data: data)
                (object, text) = (report.json, report.text)
            } else {
                let report = try PartReport(path: part.contains("/") ? part : data + "/parts/" + part)
                (object, text) = (report.json, report.text)
            }
            if json {
                let d = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: d, as: UTF8.self))
            } else {
                print(text)
            }
            return
        }
        let inventory: Inventory
        do { inventory = try Inventory(directory: data) } catch { throw failure("\(data): \(error)") }
        var filtered: [FilteredEventCount] = []
        var retention = 90
        if FileManager.default.fileExists(atPath: data + "/" + MetadataStore.fileName) {
            do {
                let metadata = try MetadataStore(directory: data, createIfMissing: false)
                filtered = try metadata.filteredEvents()
                retention = try metadata.listProperties().map(\.rawRetentionDays).max() ?? retention
            } catch {
                throw failure(error.description)
            }
        }
        let walEvents: Int
        do { walEvents = try WALScan.segments(directory: data).reduce(0) { $0 + $1.events } } catch {
            throw failure("\(data): \(error)")
        }
        let hours = dedupeWindowHours ?? ProcessInfo.processInfo.environment["TALLY_DEDUPE_WINDOW_HOURS"].flatMap { Int($0) } ?? 168
        guard hours > 0 && hours <= 1_000_000 else { throw failure("--dedupe-window-hours \(hours): must be 1 to 1,000,000") }
        let window = Int64(hours) * 3_600_000
        let dedupeEvents: Int
        do { dedupeEvents = try inventory.eventsReceived(since: SystemClock().nowMillis() - window) + walEvents } catch {
            throw failure("\(data): \(error)")
        }
        var report = InspectReport(inventory, filtered: filtered, rawRetentionDays: retention, walEvents: walEvents)
        report.dedupe = (hours, dedupeEvents)
        print(json ? report.json : report.text)
        for p in inventory.problems { FileHandle.standardError.write("problem: \(p)\n".data(using: .utf8)!) }
        if !inventory.problems.isEmpty { throw ExitCode(1) }
    }
}

struct InspectReport {
    struct ColumnTotal {
        var stored = 0
        var raw = 0
    }

    let inventory: Inventory
    let totalRows: Int
    let partBytes: Int
    let walBytes: Int
    let columns: [(EventColumn, ColumnTotal)]
    /// Events the server filtered as bots, per property, UTC day and reason.
    let filtered: [FilteredEventCount]

    /// The longest raw retention of the properties: a partition may be dropped once its last
    /// day is older than this.
    let rawRetentionDays: Int
    /// Events in the WAL, not yet in a part.
    let walEvents: Int
    /// The dedupe window (hours) and the event ids a writer keeps in it (parts and WAL).
    var dedupe: (hours: Int, events: Int)?

    /// Memory and disk of the dedupe index for `n` keys (FORMAT.md, "Dedupe"): the newest keys in
    /// hash tables (16 shards, each sealed into a run file at `StoreOptions.dedupeSealKeys` keys;
    /// 8-byte slots at most 3/4 full, ~16 bytes a key), every sealed key 8 bytes on disk behind
    /// a Bloom filter of 10 bits a key in memory. (Until the tenth session this said 16 bytes of
    /// memory a key, as when every key was in a hash table.)
    static func dedupeBytes(_ n: Int) -> (memory: Int, disk: Int) {
        let inTables = min(n, 16 * StoreOptions(directory: "").dedupeSealKeys)
        return (inTables * 16 + (n - inTables) * 10 / 8, (n - inTables) * 8)
    }

    init(_ inventory: Inventory, filtered: [FilteredEventCount] = [], rawRetentionDays: Int = 90, walEvents: Int = 0) {
        self.inventory = inventory
        self.filtered = filtered
        self.rawRetentionDays = rawRetentionDays
        self.walEvents = walEvents
        totalRows = inventory.parts.reduce(0) { $0 + $1.rows }
        partBytes = inventory.parts.reduce(0) { $0 + $1.fileSize }
        walBytes = inventory.walSegments.reduce(0) { $0 + $1.size }
        var totals: [EventColumn: ColumnTotal] = [:]
        for p in inventory.parts {
            for c in p.footer.columns {
                totals[c.column, default: ColumnTotal()].stored += c.storedBytes
                totals[c.column, default: ColumnTotal()].raw += c.rawBytes
            }
        }
        columns = totals.sorted { $0.value.stored > $1.value.stored }
    }

    var totalBytes: Int { partBytes + walBytes }

    var text: String {
        var out: [String] = []
        for (partition, parts) in inventory.partitions.sorted(by: { $0.key < $1.key }) {
            let rows = parts.reduce(0) { $0 + $1.rows }
            let bytes = parts.reduce(0) { $0 + $1.fileSize }
            let minT = parts.map(\.footer.minTime).min()!
            let maxT = parts.map(\.footer.maxTime).max()!
            out.append("partition \(partition): \(parts.count) parts, \(Self.grouped(rows)) rows, \(Self.size(bytes)), "
                + "\(CivilTime.iso8601(ms: minT)) .. \(CivilTime.iso8601(ms: maxT)), TTL expiry \(ttlExpiry(partition))")
            for p in parts.sorted(by: { $0.number < $1.number }) {
                let summaries = p.sessionSummaries.map {
                    "  session summaries \($0.chunks.reduce(0) { $0 + $1.sessions }) in \(Self.size($0.fileSize))"
                } ?? "  no session summaries yet"
                out.append("  \(p.name)  rows \(Self.grouped(p.rows))  granules \(p.footer.granules.count)  \(Self.size(p.fileSize))"
                    + "  level \(p.footer.level)  wal lsn \(p.footer.walLSN)" + summaries)
            }
        }
        if !columns.isEmpty {
            out.append("")
            out.append(Self.pad("column", 18) + Self.lpad("stored bytes", 14) + Self.lpad("raw bytes", 14) + Self.lpad("ratio", 8)
                + Self.lpad("B/event", 9))
            for (c, t) in columns {
                let ratio = t.stored > 0 ? Double(t.raw) / Double(t.stored) : 0
                let per = totalRows > 0 ? Double(t.stored) / Double(totalRows) : 0
                out.append(Self.pad(c.name, 18) + Self.lpad(Self.grouped(t.stored), 14) + Self.lpad(Self.grouped(t.raw), 14)
                    + Self.lpad(String(format: "%.2f", ratio), 8) + Self.lpad(String(format: "%.2f", per), 9))
            }
        }
        if !filtered.isEmpty {
            out.append("")
            out.append("bots filtered by the server (not stored), by property and reason:")
            var byProperty: [String: [String: Int]] = [:]
            var days: [String: (String, String)] = [:]
            for f in filtered {
                byProperty[f.propertyID, default: [:]][f.reason, default: 0] += f.events
                let span = days[f.propertyID] ?? (f.day, f.day)
                days[f.propertyID] = (min(span.0, f.day), max(span.1, f.day))
            }
            for (property, reasons) in byProperty.sorted(by: { $0.key < $1.key }) {
                let list = reasons.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                let span = days[property]!
                out.append("  \(property): \(reasons.values.reduce(0, +)) events (\(list)), \(span.0) .. \(span.1)")
            }
        }
        if !inventory.rollups.isEmpty {
            out.append("")
            out.append("rollups (daily, per site and local day):")
            for (name, parts) in inventory.rollups.sorted(by: { $0.key < $1.key }) {
                let bytes = parts.reduce(0) { $0 + $1.fileSize }
                let months = Set(parts.map(\.partition)).sorted()
                let span = months.isEmpty ? "" : ", months \(months.first!)..\(months.last!)"
                let per = totalRows > 0 ? String(format: "%.2f", Double(bytes) / Double(totalRows)) : "-"
                out.append("  \(Self.pad(name, 10)) \(parts.count) parts, \(Self.grouped(parts.reduce(0) { $0 + $1.rows })) rows, "
                    + "\(Self.size(bytes)) (\(per) bytes per raw event), sketches \(Self.size(parts.reduce(0) { $0 + ((try? $1.sketchByteCount()) ?? 0) })) "
                    + "before compression\(span)")
            }
        }
        out.append("")
        out.append("wal: \(inventory.walSegments.count) segments, \(Self.size(walBytes)), \(Self.grouped(walEvents)) events not yet in a part")
        if let dedupe {
            let bytes = Self.dedupeBytes(dedupe.events)
            out.append("dedupe window: \(dedupe.hours) h, up to \(QueryCommand.grouped(Int64(dedupe.events))) event ids a writer keeps "
                + "(about \(Self.size(bytes.memory)) of memory, \(Self.size(bytes.disk)) on disk)")
        }
        let per = totalRows > 0 ? String(format: "%.2f", Double(partBytes) / Double(totalRows)) : "-"
        out.append("total: \(Self.grouped(totalRows)) rows in \(inventory.parts.count) parts, \(Self.size(partBytes)) in parts"
            + " (\(per) bytes/event), \(Self.size(totalBytes)) on disk")
        return out.joined(separator: "\n")
    }

    var json: String {
        let partitions: [[String: Any]] = inventory.partitions.sorted(by: { $0.key < $1.key }).map { partition, parts in
            [
                "partition": partition.description,
                "rows": parts.reduce(0) { $0 + $1.rows },
                "bytes": parts.reduce(0) { $0 + $1.fileSize },
                "min_time": CivilTime.iso8601(ms: parts.map(\.footer.minTime).min()!),
                "max_time": CivilTime.iso8601(ms: parts.map(\.footer.maxTime).max()!),
                "ttl_expiry": ttlExpiry(partition),
                "parts": parts.sorted(by: { $0.number < $1.number }).map { p in
                    [
                        "name": p.name, "rows": p.rows, "granules": p.footer.granules.count, "bytes": p.fileSize,
                        "level": p.footer.level, "wal_lsn": p.footer.walLSN,
                        "session_summaries": p.sessionSummaries.map {
                            ["sessions": $0.chunks.reduce(0) { $0 + $1.sessions }, "bytes": $0.fileSize, "blocks": $0.chunks.count,
                             "event_types": $0.hasTypes] as [String: Any]
                        } ?? NSNull(),
                    ] as [String: Any]
                },
            ]
        }
        let object: [String: Any] = [
            "total_rows": totalRows,
            "total_bytes": totalBytes,
            "part_bytes": partBytes,
            "bytes_per_event": totalRows > 0 ? Double(partBytes) / Double(totalRows) : 0,
            "partitions": partitions,
            "columns": columns.map { c, t in
                ["name": c.name, "stored_bytes": t.stored, "raw_bytes": t.raw] as [String: Any]
            },
            "wal": [
                "segments": inventory.walSegments.map { ["name": $0.name, "bytes": $0.size] as [String: Any] },
                "bytes": walBytes,
                "unflushed_events": walEvents,
            ] as [String: Any],
            "raw_retention_days": rawRetentionDays,
            "dedupe_window": dedupe.map { d -> [String: Any] in
                let bytes = Self.dedupeBytes(d.events)
                return ["hours": d.hours, "event_ids": d.events, "approx_bytes": bytes.memory, "approx_disk_bytes": bytes.disk]
            }
                ?? NSNull(),
            "rollups": inventory.rollups.sorted(by: { $0.key < $1.key }).map { name, parts in
                [
                    "name": name, "parts": parts.count, "rows": parts.reduce(0) { $0 + $1.rows },
                    "bytes": parts.reduce(0) { $0 + $1.fileSize },
                    "sketch_bytes": parts.reduce(0) { $0 + ((try? $1.sketchByteCount()) ?? 0) },
                    "months": Set(parts.map(\.partition)).sorted().map(\.description),
                ] as [String: Any]
            },
            "problems": inventory.problems,
            "filtered_bots": filtered.map { f in
                ["property_id": f.propertyID, "day": f.day, "reason": f.reason, "events": f.events] as [String: Any]
            },
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        return String(decoding: data, as: UTF8.self)
    }

    /// The day the partition's last day passes the raw retention (YYYY-MM-DD, UTC).
    func ttlExpiry(_ partition: Partition) -> String {
        let lastDay = CivilTime.day(ms: partition.range.upperBound - 1)
        return QueryDimension.TimeBucket.day.label(lastDay + Int64(rawRetentionDays) + 1, .utc).description
    }

    static func grouped(_ n: Int) -> String { QueryCommand.grouped(Int64(n)) }

    static func size(_ n: Int) -> String {
        if n >= 1 << 30 { return String(format: "%.2f GiB", Double(n) / Double(1 << 30)) }
        if n >= 1 << 20 { return String(format: "%.2f MiB", Double(n) / Double(1 << 20)) }
        if n >= 1 << 10 { return String(format: "%.1f KiB", Double(n) / Double(1 << 10)) }
        return "\(n) B"
    }

    static func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(1, n - s.count)) }
    static func lpad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(1, n - s.count)) + s }
}
