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

    @Test("a WAL segment starts with TLYWAL01 and version 1, then a framed record")
    func walFraming() async throws {
        let dir = TemporaryDirectory()
        let (_, wal) = try await writeOnePart(dir)
        #expect(Array(wal[0..<16]) == Array("TLYWAL01".utf8) + [1, 0, 0, 0, 0, 0, 0, 0])
        let length = wal[16..<20].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(wal.count == 16 + 17 + length)
        #expect(wal[24] == 1)  // record type: event batch
        #expect(Array(wal[25..<33]) == [1, 0, 0, 0, 0, 0, 0, 0])  // LSN 1
        let crc = CRC32C.checksum(Array(wal[24...]))
        #expect(Array(wal[20..<24]) == withUnsafeBytes(of: crc.littleEndian) { Array($0) })
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
