@_spi(Testing) import Engine
import Foundation
import TallyTestSupport
import Testing

/// If a test here breaks, the storage format changed: bump the version and update FORMAT.md.
@Suite("On-disk format")
struct FormatTests {
    static let t0: Int64 = 1_785_542_400_000

    func writeOnePart(_ dir: TemporaryDirectory) async throws -> (part: [UInt8], wal: [UInt8]) {
        var o = StoreOptions(directory: dir.path)
        o.backgroundFlush = false
        o.clock = ManualClock(Self.t0)
        let store = try EventStore(options: o)
        _ = try await store.ingest(.of([EventRow(at: Self.t0, id: "e1")]))
        let walName = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/wal").first { $0.hasSuffix(".wal") }!
        let wal = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.path + "/wal/" + walName)))
        try store.close()
        let name = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/parts").first { $0.hasSuffix(".part") }!
        #expect(name == "202608_00000001_0.part")
        return (try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.path + "/parts/" + name))), wal)
    }

    @Test("a payload compressed in pieces (rollup parts) is one zstd frame that decompresses to the pieces joined")
    func zstdStream() throws {
        var rng = SeededRandom(state: 3)
        // Megabytes of half-compressible bytes (words from a small vocabulary and random bytes),
        // so that the output spans many of the stream's output chunks; pieces of every size.
        let words = (0..<64).map { _ in (0..<Int(3 + rng.next() % 9)).map { _ in UInt8(97 + rng.next() % 26) } }
        var all: [UInt8] = []
        while all.count < 3 << 20 {
            if rng.next() % 2 == 0 { all += words[Int(rng.next() % 64)] } else { all.append(UInt8(truncatingIfNeeded: rng.next())) }
        }
        var pieces: [[UInt8]] = [[]]
        var at = 0
        while at < all.count {
            let n = min(all.count - at, [0, 1, 7, 4096, 1 << 20, 1 << 21][Int(rng.next() % 6)])
            pieces.append(Array(all[at..<at + n]))
            at += n
        }
        for level in [Int32(1), 3] {
            let (frame, rawLength) = Codec.zstdStreamForTesting(pieces, level: level)
            #expect(rawLength == all.count)
            #expect(frame.count > 1 << 18 && frame.count < all.count)
            var out: [UInt8] = []
            try frame.withUnsafeBytes { try Codec.decompress($0, codec: .zstd, rawLength: all.count, into: &out) }
            #expect(out == all)
            var truncated: [UInt8] = []
            #expect(throws: Codec.DecompressionError.self) {
                try frame.dropLast(5).withUnsafeBytes { try Codec.decompress($0, codec: .zstd, rawLength: all.count, into: &truncated) }
            }
        }
        let (empty, emptyLength) = Codec.zstdStreamForTesting([[], []], level: 3)
        var out: [UInt8] = [1]
        try empty.withUnsafeBytes { try Codec.decompress($0, codec: .zstd, rawLength: 0, into: &out) }
        #expect(emptyLength == 0 && out == [1])
    }

    @Test("a part starts with TLYPART1 and version 2 and ends with a trailer and TLYPEND1")
    func partFraming() async throws {
        let dir = TemporaryDirectory()
        let (part, _) = try await writeOnePart(dir)
        #expect(Array(part[0..<16]) == Array("TLYPART1".utf8) + [2, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(part.suffix(8)) == Array("TLYPEND1".utf8))
        let trailer = Array(part.suffix(24))
        let footerOffset = trailer[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let footerLength = trailer[8..<12].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(footerOffset + footerLength == part.count - 24)
        let crc = trailer[12..<16].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        #expect(CRC32C.checksum(Array(part[footerOffset..<footerOffset + footerLength])) == crc)
        // The footer starts with the format version and the partition.
        #expect(Array(part[footerOffset..<footerOffset + 8]) == [2, 0, 0, 0] + [0x70, 0x17, 0x03, 0x00])  // version 2, partition 202608
    }

    @Test("the first block is event_id of granule 0 with a 16-byte header whose CRC covers header and payload")
    func blockHeader() async throws {
        let dir = TemporaryDirectory()
        let (part, _) = try await writeOnePart(dir)
        let h = Array(part[16..<32])
        #expect(h[0] == 0)  // codec none: a two-byte payload does not compress
        #expect(h[1] == 3)  // string-plain: "e1" is not a canonical identifier
        #expect(h[2] == 0 && h[3] == 0)
        #expect(Array(h[4..<12]) == [4, 0, 0, 0, 4, 0, 0, 0])  // raw 4 = stored 4: null flag, length 2, "e1"
        #expect(Array(part[32..<36]) == [0, 2, 0x65, 0x31])
        let crc = CRC32C.checksum(Array(h[0..<12]) + Array(part[32..<36]))
        #expect(Array(h[12..<16]) == withUnsafeBytes(of: crc.littleEndian) { Array($0) })
    }

    @Test("a WAL segment starts with TLYWAL01 and version 2, then a framed record")
    func walFraming() async throws {
        let dir = TemporaryDirectory()
        let (_, wal) = try await writeOnePart(dir)
        #expect(Array(wal[0..<16]) == Array("TLYWAL01".utf8) + [2, 0, 0, 0, 0, 0, 0, 0])
        let length = wal[16..<20].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(wal.count == 16 + 17 + length)
        #expect(wal[24] == 1)  // record type: event batch
        #expect(Array(wal[25..<33]) == [1, 0, 0, 0, 0, 0, 0, 0])  // LSN 1
        let crc = CRC32C.checksum(Array(wal[24...]))
        #expect(Array(wal[20..<24]) == withUnsafeBytes(of: crc.littleEndian) { Array($0) })
    }

    /// A WAL segment as version 1 wrote it: string columns as end offsets, the payload stored
    /// uncompressed (codec 0), one record per batch, LSNs from 1.
    static func version1Segment(_ batches: [EventBatch], version: UInt32 = 1) -> [UInt8] {
        var out = Array("TLYWAL01".utf8) + le(version) + le(UInt32(0))
        for (k, b) in batches.enumerated() {
            var raw: [UInt8] = []
            for c in EventColumn.allCases {
                if c.kind == .int64 {
                    for v in b[int: c].values { raw += le(UInt64(bitPattern: v)) }
                } else {
                    for e in b[string: c].ends { raw += le(e) }
                    raw += b[string: c].bytes
                }
                if c.isNullable {
                    var bits = [UInt8](repeating: 0, count: (b.count + 7) / 8)
                    for i in 0..<b.count where c.kind == .int64 ? b[int: c].isNull(i) : b[string: c].isNull(i) {
                        bits[i / 8] |= 1 << UInt8(i % 8)
                    }
                    raw += bits
                }
            }
            let payload = le(UInt32(b.count)) + [0] + le(UInt32(raw.count)) + raw
            let tail = [1] + le(UInt64(k + 1)) + payload
            out += le(UInt32(payload.count)) + le(CRC32C.checksum(tail)) + tail
        }
        return out
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    @Test("a WAL of version 1 (end offsets) replays; new records go to a new segment of version 2")
    func walVersion1() async throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.path + "/wal", withIntermediateDirectories: true)
        var rows = (0..<5).map { i in EventRow(site: "x.com", at: Self.t0 + Int64(i) * 1000, id: "old\(i)", path: "/ä\(i)") }
        rows[1].values[.pageTitle] = "Ünïcode title"
        rows[2].values[.utmSource] = ""
        let old = Self.version1Segment([EventBatch.of(Array(rows[0..<3])), EventBatch.of(Array(rows[3...]))])
        try Data(old).write(to: URL(fileURLWithPath: dir.path + "/wal/00000000000000000001.wal"))
        var o = StoreOptions(directory: dir.path)
        o.backgroundFlush = false
        o.clock = ManualClock(Self.t0)
        var store = try EventStore(options: o)
        #expect(try store.snapshot().count(ScanRequest(site: "x.com")).count == 5)
        var seen: [String] = []
        _ = try store.snapshot().scan(ScanRequest(site: "x.com", columns: [.eventID, .pagePath, .pageTitle, .utmSource])) { b in
            for i in 0..<b.count {
                seen.append([b[string: .eventID].string(at: i), b[string: .pagePath].string(at: i),
                             b[string: .pageTitle].string(at: i), b[string: .utmSource].string(at: i)].map { $0 ?? "nil" }.joined(separator: "|"))
            }
        }
        #expect(seen.sorted() == ["old0|/ä0|nil|nil", "old1|/ä1|Ünïcode title|nil", "old2|/ä2|nil|", "old3|/ä3|nil|nil", "old4|/ä4|nil|nil"])
        _ = try await store.ingest(.of([EventRow(site: "x.com", at: Self.t0 + 9000, id: "new")]))
        let segments = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/wal").sorted()
        #expect(segments == ["00000000000000000001.wal", "00000000000000000003.wal"])
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.path + "/wal/00000000000000000001.wal"))) == old)
        let new = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.path + "/wal/00000000000000000003.wal")))
        #expect(Array(new[8..<12]) == [2, 0, 0, 0])
        // Killed here (no close): both segments replay.
        try store.abandonForTesting()
        store = try EventStore(options: o)
        #expect(try store.snapshot().count(ScanRequest(site: "x.com")).count == 6)
        try store.close()
    }

    @Test("a WAL's damaged last segment is cut, never fatal: lengths past the record, a header of version 0, a version 1 segment with no records")
    func walDamagedHeaders() async throws {
        let rows = (0..<3).map { i in EventRow(site: "x.com", at: Self.t0 + Int64(i) * 1000, id: "r\(i)", path: "/ä\(i)") }
        // Version 2 framing around version 1 bytes: the end offsets read as lengths run past
        // the record; version 0: a header no build writes; version 1 with no record at all.
        let cases: [(String, [UInt8])] = [
            ("lengths", Self.version1Segment([EventBatch.of(rows)], version: 2)),
            ("version 0", Self.version1Segment([EventBatch.of(rows)], version: 0)),
            ("empty version 1", Self.version1Segment([], version: 1)),
        ]
        for (name, segment) in cases {
            let dir = TemporaryDirectory()
            try FileManager.default.createDirectory(atPath: dir.path + "/wal", withIntermediateDirectories: true)
            try Data(segment).write(to: URL(fileURLWithPath: dir.path + "/wal/00000000000000000001.wal"))
            var o = StoreOptions(directory: dir.path)
            o.backgroundFlush = false
            o.clock = ManualClock(Self.t0)
            var store = try EventStore(options: o)
            #expect(try store.snapshot().count(ScanRequest(site: "x.com")).count == 0, "\(name)")
            _ = try await store.ingest(.of([EventRow(site: "x.com", at: Self.t0, id: "new")]))
            let segments = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/wal").sorted()
            #expect(segments == ["00000000000000000001.wal"], "\(name)")
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.path + "/wal/" + segments[0])))
            #expect(Array(bytes[8..<12]) == [2, 0, 0, 0], "\(name)")
            try store.abandonForTesting()
            store = try EventStore(options: o)
            #expect(try store.snapshot().count(ScanRequest(site: "x.com")).count == 1, "\(name)")
            try store.close()
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/wal").isEmpty, "\(name)")
        }
    }

    @Test("a WAL segment of a newer version is refused with a message naming it and both versions, and left as it is")
    func walOtherVersion() throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.path + "/wal", withIntermediateDirectories: true)
        let segment = Self.version1Segment([EventBatch.of([EventRow(at: Self.t0, id: "a")])], version: 3)
        let path = dir.path + "/wal/00000000000000000001.wal"
        try Data(segment).write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try EventStore(options: StoreOptions(directory: dir.path))
        } throws: { error in
            "\(error)" == "WAL segment \(path) has format version 3; this build reads versions 1–2"
        }
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) == segment)
    }

    @Test("a part of another format version is refused with a message naming it and both versions")
    func otherVersion() async throws {
        let dir = TemporaryDirectory()
        _ = try await writeOnePart(dir)
        let path = dir.path + "/parts/202608_00000001_0.part"
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[8] = 3
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let inventory = try Inventory(directory: dir.path)
        #expect(inventory.parts.isEmpty)
        #expect(inventory.problems == ["part 202608_00000001_0.part has format version 3; this build reads versions 1–2"])
    }
}
