import Engine
import Foundation

/// `tally inspect PART`: one part in detail.
struct PartReport {
    let part: Part
    let bytes: [UInt8]

    init(path: String) throws {
        let name = String(path.split(separator: "/").last ?? "")
        guard let number = Self.number(name) else { throw failure("\(path): not a part file (NNNNNN_NNNNNNNN_L.part)") }
        do { part = try Part.openForInspection(path: path, name: name, number: number) } catch {
            throw failure("\(path): \(error.message)")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw failure("\(path): cannot read") }
        bytes = [UInt8](data)
    }

    static func number(_ name: String) -> Int? {
        let fields = name.replacingOccurrences(of: ".part", with: "").split(separator: "_")
        return fields.count == 3 && name.hasSuffix(".part") ? Int(fields[1]) : nil
    }

    /// Codec and encoding bytes of a block's header (bytes 0 and 1).
    func header(_ ref: BlockRef) -> (codec: String, encoding: String) {
        guard ref.length > 0, ref.offset + 2 <= bytes.count else { return ("-", "-") }
        let codec = Codec(rawValue: bytes[ref.offset]).map(\.description) ?? "?\(bytes[ref.offset])"
        let encoding = ColumnEncoding(rawValue: bytes[ref.offset + 1]).map(\.description) ?? "?\(bytes[ref.offset + 1])"
        return (codec, encoding)
    }

    struct Column {
        var name: String
        var kind: String
        var encodings: [String: Int]
        var codecs: [String: Int]
        var stored: Int
        var raw: Int
        var dictionarySize: Int
        var nulls: Int
    }

    var columns: [Column] {
        part.footer.columns.map { c in
            var encodings: [String: Int] = [:]
            var codecs: [String: Int] = [:]
            for ref in c.granules {
                let h = header(ref)
                encodings[h.encoding, default: 0] += 1
                codecs[h.codec, default: 0] += 1
            }
            let kind: String = switch c.column.kind {
            case .int64: "int64"
            case .string: "string"
            case .lowCardinality: "low-cardinality string"
            case .identifier: "identifier"
            }
            return Column(name: c.column.name, kind: kind + (c.column.isNullable ? ", nullable" : ""), encodings: encodings,
                          codecs: codecs, stored: c.storedBytes, raw: c.rawBytes, dictionarySize: c.dictionarySize,
                          nulls: c.nullCount)
        }
    }

    struct Bloom {
        var column: String
        var granule: Int
        var bits: Int
        var falsePositiveRate: Double
    }

    /// Bloom filters: size and the false-positive rate expected for the granule's rows.
    var blooms: [Bloom] {
        var out: [Bloom] = []
        for (g, meta) in part.footer.granules.enumerated() {
            for (k, column) in Part.bloomFilterColumns.enumerated() where k < meta.blooms.count {
                let bits = (try? part.bloomFilterBits(column, granule: g)).flatMap { $0 } ?? 0
                // Split-block filter with 8 bits set per key: fpr ≈ (1 - e^(-8n/m))^8, n ≤ rows.
                let n = Double(meta.rows)
                let fpr = bits > 0 ? pow(1 - exp(-8 * n / Double(bits)), 8) : 1
                out.append(Bloom(column: column.name, granule: g, bits: bits, falsePositiveRate: fpr))
            }
        }
        return out
    }

    func site(_ code: UInt32) -> String { Int(code) < part.sites.count ? part.sites.string(at: Int(code)) ?? "" : "?\(code)" }
    func type(_ code: UInt32) -> String {
        Int(code) < part.eventTypes.count ? part.eventTypes.string(at: Int(code)) ?? "" : "?\(code)"
    }

    var text: String {
        let f = part.footer
        var out: [String] = []
        out.append("part \(part.name): partition \(f.partition), level \(f.level), \(QueryCommand.grouped(Int64(f.rows))) rows in "
            + "\(f.granules.count) granules of up to \(f.granuleRows), \(InspectReport.size(part.fileSize)), wal lsn \(f.walLSN)")
        out.append("time: \(CivilTime.iso8601(ms: f.minTime)) .. \(CivilTime.iso8601(ms: f.maxTime))")
        if let first = f.granules.first, let last = f.granules.last {
            out.append("sort key: (\(site(first.firstSite)), day \(first.firstDay), \(type(first.firstType))) .. "
                + "(\(site(last.lastSite)), day \(last.lastDay), \(type(last.lastType)))")
        }
        out.append("sites: \(part.sites.count), event types: \(part.eventTypes.count)")
        out.append("")
        out.append(InspectReport.pad("column", 18) + InspectReport.pad("kind", 34) + InspectReport.pad("encoding", 26)
            + InspectReport.pad("codec", 10) + InspectReport.lpad("stored", 11) + InspectReport.lpad("raw", 11)
            + InspectReport.lpad("ratio", 7) + InspectReport.lpad("dict", 7) + InspectReport.lpad("nulls", 9))
        for c in columns {
            let enc = c.encodings.sorted { $0.value > $1.value }.map(\.key).joined(separator: "+")
            let codec = c.codecs.sorted { $0.value > $1.value }.map(\.key).joined(separator: "+")
            out.append(InspectReport.pad(c.name, 18) + InspectReport.pad(c.kind, 34) + InspectReport.pad(enc, 26)
                + InspectReport.pad(codec, 10) + InspectReport.lpad(String(c.stored), 11) + InspectReport.lpad(String(c.raw), 11)
                + InspectReport.lpad(String(format: "%.2f", c.stored > 0 ? Double(c.raw) / Double(c.stored) : 0), 7)
                + InspectReport.lpad(c.dictionarySize > 0 ? String(c.dictionarySize) : "-", 7)
                + InspectReport.lpad(String(c.nulls), 9))
        }
        out.append("")
        out.append("primary index (granule: rows, first row, time, site codes, days, type codes):")
        for (g, m) in f.granules.enumerated() {
            out.append("  \(g): \(m.rows) rows from \(m.firstRow), \(CivilTime.iso8601(ms: m.minTime)) .. \(CivilTime.iso8601(ms: m.maxTime)), "
                + "sites \(m.firstSite)..\(m.lastSite), days \(m.firstDay)..\(m.lastDay), types \(m.firstType)..\(m.lastType)")
        }
        let b = blooms
        if !b.isEmpty {
            out.append("")
            out.append("bloom filters (split-block, 8 bits set per key):")
            for column in Part.bloomFilterColumns.map(\.name) {
                let of = b.filter { $0.column == column }
                guard !of.isEmpty else { continue }
                let bits = of.reduce(0) { $0 + $1.bits }
                let fpr = of.reduce(0) { $0 + $1.falsePositiveRate } / Double(of.count)
                out.append("  \(column): \(of.count) filters, \(InspectReport.size(bits / 8)) in all, "
                    + String(format: "estimated false-positive rate %.4f%% at full granules", fpr * 100))
            }
        }
        out.append("")
        if let s = part.sessionSummaries {
            let sessions = s.chunks.reduce(0) { $0 + $1.sessions }
            out.append("session summaries (\(s.name)): \(sessions) sessions in \(s.chunks.count) blocks, "
                + "\(InspectReport.size(s.fileSize))" + (s.hasTypes ? "" : ", no event types (more than 64 in the part)"))
            for (site, chunks) in Dictionary(grouping: s.chunks, by: \.site).sorted(by: { $0.key < $1.key }) {
                out.append("  \(site): \(chunks.reduce(0) { $0 + $1.sessions }) sessions, starts "
                    + "\(CivilTime.iso8601(ms: chunks.map(\.minStart).min()!)) .. \(CivilTime.iso8601(ms: chunks.map(\.maxStart).max()!))")
            }
        } else {
            out.append("session summaries: none yet (session questions read this part's rows)")
        }
        return out.joined(separator: "\n")
    }

    var json: [String: Any] {
        let f = part.footer
        return [
            "part": part.name, "partition": f.partition.description, "level": f.level, "rows": f.rows,
            "granules": f.granules.count, "granule_rows": f.granuleRows, "bytes": part.fileSize, "wal_lsn": f.walLSN,
            "min_time": CivilTime.iso8601(ms: f.minTime), "max_time": CivilTime.iso8601(ms: f.maxTime),
            "columns": columns.map { c in
                [
                    "name": c.name, "kind": c.kind, "encodings": c.encodings, "codecs": c.codecs, "stored_bytes": c.stored,
                    "raw_bytes": c.raw, "dictionary_size": c.dictionarySize, "null_count": c.nulls,
                ] as [String: Any]
            },
            "primary_index": f.granules.map { m in
                [
                    "rows": m.rows, "first_row": m.firstRow, "min_time": m.minTime, "max_time": m.maxTime,
                    "first_site": site(m.firstSite), "last_site": site(m.lastSite), "first_day": m.firstDay,
                    "last_day": m.lastDay, "first_type": type(m.firstType), "last_type": type(m.lastType),
                ] as [String: Any]
            },
            "bloom_filters": blooms.map { ["column": $0.column, "granule": $0.granule, "bits": $0.bits,
                                            "false_positive_rate": $0.falsePositiveRate] as [String: Any] },
            "session_summaries": part.sessionSummaries.map { s in
                [
                    "file": s.name, "bytes": s.fileSize, "event_types": s.hasTypes,
                    "blocks": s.chunks.map { c in
                        ["site": c.site, "sessions": c.sessions, "bytes": c.block.length, "offset": c.block.offset,
                         "min_start": CivilTime.iso8601(ms: c.minStart), "max_start": CivilTime.iso8601(ms: c.maxStart)]
                            as [String: Any]
                    },
                ] as [String: Any]
            } ?? NSNull(),
        ]
    }
}

/// `tally inspect NAME.rpart`: one rollup part — its rows, key dictionaries, sites and zones,
/// provenance, and the sizes of its sketches.
struct RollupPartReport {
    let path: String
    let inspection: RollupPartInspection

    /// `part` is a path, or a file name looked up under DIR/rollups/*/.
    init(_ part: String, data: String) throws {
        var path = part
        if !part.contains("/") {
            let root = data + "/rollups"
            let rollups = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            guard let found = rollups.sorted().map({ root + "/" + $0 + "/" + part })
                .first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw failure("\(part): no such rollup part under \(root)/*/")
            }
            path = found
        }
        self.path = path
        do { inspection = try RollupPart.open(path: path).inspection() } catch { throw failure("\(error)") }
    }

    static func day(_ d: Int32?) -> String { d.map { String(CivilTime.iso8601(ms: Int64($0) * 86_400_000).prefix(10)) } ?? "-" }

    var text: String {
        let i = inspection
        let g = InspectReport.grouped, size = InspectReport.size
        let days = "days \(Self.day(i.firstDay)) .. \(Self.day(i.lastDay))"
        let header = "rollup \(i.rollup), local month \(i.month), level \(i.level), \(g(i.rows)) rows, \(size(i.fileBytes)), "
            + days + ", \(g(Int(i.events))) events"
        var provenance = "holds raw parts up to number \(i.coverage)"
        if !i.sources.isEmpty {
            provenance += "; replaced rollup parts " + i.sources.map(String.init).joined(separator: ", ")
        }
        if let merged = i.correctsPart {
            provenance += "; a correction for merged raw part \(merged) of " + i.correctedInputs.map(String.init).joined(separator: ", ")
        }
        let types: String = i.sketchTypes.map { $0.joined(separator: ", ") } ?? "every event type"
        var sketches = "sketches for " + types + ": \(g(i.sketchedRows)) rows, visitors \(size(i.visitorSketchBytes)), "
        sketches += "sessions \(size(i.sessionSketchBytes))"
        if let r = i.rowSketchBytes { sketches += ", per row \(r.min) / \(r.median) / \(r.max) bytes (min / median / max)" }
        var out: [String] = ["rollup part \(path)", header, provenance, sketches, ""]
        out.append(InspectReport.pad("key column", 20) + InspectReport.lpad("distinct values", 16))
        for c in i.columns { out.append(InspectReport.pad(c.name, 20) + InspectReport.lpad(g(c.distinct), 16)) }
        out.append("")
        out.append(InspectReport.pad("site", 20) + InspectReport.lpad("rows", 12) + "  time zone of its days")
        for s in i.sites {
            out.append(InspectReport.pad(s.site, 20) + InspectReport.lpad(g(s.rows), 12) + "  " + (s.zone.isEmpty ? "(several)" : s.zone))
        }
        return out.joined(separator: "\n")
    }

    var json: [String: Any] {
        let i = inspection
        var object: [String: Any] = [
            "path": path, "rollup": i.rollup, "month": i.month.description, "level": i.level, "rows": i.rows,
            "bytes": i.fileBytes, "events": i.events, "first_day": Self.day(i.firstDay), "last_day": Self.day(i.lastDay),
            "coverage": i.coverage, "sources": i.sources,
            "columns": i.columns.map { ["name": $0.name, "distinct": $0.distinct] as [String: Any] },
            "sketch_types": i.sketchTypes as Any? ?? NSNull(),
            "sketched_rows": i.sketchedRows, "visitor_sketch_bytes": i.visitorSketchBytes,
            "session_sketch_bytes": i.sessionSketchBytes,
            "sites": i.sites.map { ["site": $0.site, "rows": $0.rows, "zone": $0.zone] as [String: Any] },
        ]
        if let r = i.rowSketchBytes { object["row_sketch_bytes"] = ["min": r.min, "median": r.median, "max": r.max] }
        if let c = i.correctsPart { object["corrects_part"] = ["merged": c, "inputs": i.correctedInputs] as [String: Any] }
        return object
    }
}
