import Engine
import TallyTestSupport
import Testing

/// Replays a fixed list of values, cycling, so tests control the random bits exactly.
private struct ScriptedRandom: RandomNumberGenerator {
    var values: [UInt64]
    var index = 0
    mutating func next() -> UInt64 {
        defer { index = (index + 1) % values.count }
        return values[index]
    }
}

private func binary(_ ulid: String) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 16)
    let ok = Array(ulid.utf8).withUnsafeBytes { t in
        out.withUnsafeMutableBytes { IdentifierCodec.encode(t, form: .ulid, into: $0.baseAddress!) }
    }
    try #require(ok)
    return out
}

private func timestamp(_ ulid: String) throws -> Int64 {
    Int64(try binary(ulid)[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
}

@Suite("ULID generator")
struct ULIDTests {
    /// The ULID spec README's example timestamp (its ULID starts "01ARZ3NDEK").
    static let specMs: Int64 = 1_469_922_850_259

    @Test("generated ids are 26 canonical characters that detect as ULIDs")
    func canonicalForm() {
        var ids = ULIDGenerator(using: SeededRandom(state: 1))
        let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
        for i in 0..<1_000 {
            var text: [UInt8] = []
            ids.next(ms: Self.specMs + Int64(i / 10), into: &text)
            #expect(text.count == 26)
            #expect(text.allSatisfy(alphabet.contains))
            #expect(text[0] <= UInt8(ascii: "7"))
            #expect(text.withUnsafeBytes { IdentifierCodec.detect($0) } == .ulid)
        }
    }

    @Test("the first 10 characters encode the millisecond timestamp")
    func timestampIsEncoded() throws {
        // Zero random bits isolate the timestamp: the spec example's time, then 16 zeros.
        var ids = ULIDGenerator(using: ScriptedRandom(values: [0]))
        let id = ids.next(ms: Self.specMs)
        #expect(id == "01ARZ3NDEK0000000000000000")
        #expect(try timestamp(id) == Self.specMs)
        var max = ULIDGenerator(using: ScriptedRandom(values: [.max]))
        #expect(max.next(ms: ULIDGenerator<ScriptedRandom>.maxTimestamp) == "7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
    }

    @Test("ids from later milliseconds sort after earlier ones")
    func sortableByTime() throws {
        var ids = ULIDGenerator(using: SeededRandom(state: 2))
        var previous = ""
        for step in 0..<1_000 {
            let ms = Self.specMs + Int64(step) * 37
            let id = ids.next(ms: ms)
            #expect(id > previous)
            #expect(try timestamp(id) == ms)
            previous = id
        }
    }

    @Test("ids within one millisecond increase by one in the random part")
    func monotonicWithinMillisecond() throws {
        var ids = ULIDGenerator(using: SeededRandom(state: 3))
        let first = try binary(ids.next(ms: Self.specMs))
        var previous = first
        for _ in 0..<1_000 {
            let id = ids.next(ms: Self.specMs)
            let next = try binary(id)
            #expect(next.lexicographicallyPrecedes(previous) == false && next != previous)
            #expect(next[0..<6] == first[0..<6])
            // The low 64 bits grow by exactly one (a carry past them is tested below).
            let lo = { (b: [UInt8]) in b[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
            #expect(lo(next) == lo(previous) &+ 1)
            previous = next
        }
    }

    @Test("an increment that carries out of the low 64 bits reaches the top 16 random bits")
    func incrementCarries() throws {
        // First draw feeds the top 16 random bits, the second the low 64.
        var ids = ULIDGenerator(using: ScriptedRandom(values: [0x1234, .max]))
        let a = try binary(ids.next(ms: 1))
        let b = try binary(ids.next(ms: 1))
        #expect(a == [0, 0, 0, 0, 0, 1, 0x12, 0x34] + [UInt8](repeating: 0xFF, count: 8))
        #expect(b == [0, 0, 0, 0, 0, 1, 0x12, 0x35] + [UInt8](repeating: 0, count: 8))
    }

    @Test("when all 80 random bits are used up within a millisecond the next id moves to the next millisecond")
    func exhaustedRandomPartMovesOn() throws {
        var ids = ULIDGenerator(using: ScriptedRandom(values: [.max]))
        let a = ids.next(ms: 5)
        let b = ids.next(ms: 5)
        #expect(try timestamp(a) == 5)
        #expect(try timestamp(b) == 6)
        #expect(b > a)
    }

    @Test("a clock stepping back does not break the order")
    func clockSteppingBack() throws {
        var ids = ULIDGenerator(using: SeededRandom(state: 4))
        let a = ids.next(ms: 1_000)
        let b = ids.next(ms: 999)
        #expect(b > a)
        #expect(try timestamp(b) == 1_000)
        let c = ids.next(ms: 1_001)
        #expect(c > b)
        #expect(try timestamp(c) == 1_001)
    }

    @Test("the default generator uses the system random source")
    func systemRandom() {
        var ids = ULIDGenerator()
        let a = ids.next(ms: Self.specMs)
        let b = ids.next(ms: Self.specMs)
        #expect(a.hasPrefix("01ARZ3NDEK") && b.hasPrefix("01ARZ3NDEK"))
        #expect(b > a)
    }
}
