import CLZ4
import CZstd
import Synchronization

/// Block compression codecs. The raw value is the codec id byte on disk: ids are never
/// reused (FORMAT.md, "Codec ids").
public enum Codec: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0
    case lz4 = 1
    case zstd = 2

    public var description: String {
        switch self {
        case .none: "none"
        case .lz4: "lz4"
        case .zstd: "zstd"
        }
    }

    /// zstd level for blocks no merge is expected to rewrite soon (merged raw parts of 2¹⁸ rows
    /// or more, parts from `tally merge`, merged rollup parts, session summaries). Level 3 compresses
    /// delta-encoded timestamps better than 1 or 9 (9.25x vs 8.27x vs 6.82x,
    /// ../shared/reference/swift-limits.md §3) at ~440 MB/s.
    public static let zstdLevel: Int32 = 3

    /// zstd level for the blocks of parts that merges will write again: a flush's raw parts,
    /// level-0 rollup parts, and merged raw parts below 2¹⁸ rows (`MergePolicy.fastCompressionRows`;
    /// a month that gets no more rows keeps such a part at this level until `tally merge`). Level 1 took ~5%
    /// less of a 1M-event `tally ingest`'s CPU than level 3 for 2% more bytes in those parts
    /// (41.8 → 42.5 bytes/event with merges off; BENCHMARKS.md, 2026-12-06, seventh session).
    /// Levels below 1 were no faster here and larger (47–54 bytes/event).
    public static let flushZstdLevel: Int32 = 1

    /// Compresses `src`, appending to `dst`. Returns the codec actually used: `.none` when
    /// compressing would not save at least 1/16 of the bytes (random bits, tiny blocks).
    ///
    /// Compression runs into a pooled scratch buffer with a reused zstd context, and only the
    /// compressed bytes are appended: creating a context per block and zero-filling a
    /// bound-sized output cost page faults and memsets on every one of the ~4,000 blocks and
    /// ~120 WAL records of a 1M-event ingest.
    @discardableResult
    public static func compress(_ src: UnsafeRawBufferPointer, codec: Codec, level: Int32 = zstdLevel,
                                into dst: inout [UInt8]) -> Codec {
        if codec == .none || src.isEmpty {
            dst.append(contentsOf: src)
            return .none
        }
        let scratch = CompressionScratch.take()
        defer { CompressionScratch.give(scratch) }
        let n: Int
        switch codec {
        case .none:
            preconditionFailure("handled above")
        case .zstd:
            let bound = ZSTD_compressBound(src.count)
            let out = scratch.output(capacity: bound)
            n = ZSTD_compressCCtx(scratch.zstdContext, out, bound, src.baseAddress, src.count, level)
            precondition(ZSTD_isError(n) == 0, "zstd compression failed: \(String(cString: ZSTD_getErrorName(n)))")
        case .lz4:
            let bound = Int(LZ4_compressBound(Int32(src.count)))
            let out = scratch.output(capacity: bound)
            let m = LZ4_compress_default(src.baseAddress?.assumingMemoryBound(to: CChar.self),
                                         out.assumingMemoryBound(to: CChar.self), Int32(src.count), Int32(bound))
            precondition(m > 0, "lz4 compression failed")
            n = Int(m)
        }
        if n > src.count - src.count / 16 {
            dst.append(contentsOf: src)
            return .none
        }
        dst.append(contentsOf: UnsafeRawBufferPointer(start: scratch.output(capacity: n), count: n))
        return codec
    }

    public struct DecompressionError: Error, CustomStringConvertible {
        public let codec: Codec
        public let message: String
        public var description: String { "\(codec) decompression failed: \(message)" }
    }

    /// `bytes` after what `dst` holds (most often nothing: then `bytes` becomes it, uncopied).
    /// Decompressing into zeros appended first (`repeatElement`) cost 6 % of a props.* query:
    /// the generic append wrote them one at a time.
    private static func append(_ bytes: [UInt8], to dst: inout [UInt8]) {
        if dst.isEmpty { dst = bytes } else { dst += bytes }
    }

    /// Decompresses `src` into exactly `rawLength` bytes appended to `dst`.
    public static func decompress(
        _ src: UnsafeRawBufferPointer, codec: Codec, rawLength: Int, into dst: inout [UInt8]
    ) throws(DecompressionError) {
        switch codec {
        case .none:
            guard src.count == rawLength else {
                throw DecompressionError(codec: codec, message: "stored \(src.count) bytes, expected \(rawLength)")
            }
            dst.append(contentsOf: src)
        case .zstd:
            var n = 0
            let context = DecompressionContext.take()
            defer { DecompressionContext.give(context) }
            let out = [UInt8](unsafeUninitializedCapacity: rawLength) { d, initialized in
                n = ZSTD_decompressDCtx(context.zstd, d.baseAddress, rawLength, src.baseAddress, src.count)
                initialized = ZSTD_isError(n) == 0 && n == rawLength ? rawLength : 0
            }
            if ZSTD_isError(n) != 0 || n != rawLength {
                let why = ZSTD_isError(n) != 0 ? String(cString: ZSTD_getErrorName(n)) : "got \(n) bytes"
                throw DecompressionError(codec: codec, message: "\(why), expected \(rawLength)")
            }
            append(out, to: &dst)
        case .lz4:
            var n: Int32 = 0
            let out = [UInt8](unsafeUninitializedCapacity: rawLength) { d, initialized in
                n = LZ4_decompress_safe(
                    src.baseAddress?.assumingMemoryBound(to: CChar.self),
                    UnsafeMutableRawPointer(d.baseAddress)?.assumingMemoryBound(to: CChar.self), Int32(src.count), Int32(rawLength))
                initialized = Int(n) == rawLength ? rawLength : 0
            }
            if Int(n) != rawLength {
                throw DecompressionError(codec: codec, message: "got \(n) bytes, expected \(rawLength)")
            }
            append(out, to: &dst)
        }
    }
}

extension Codec {
    /// The first `count` bytes (fewer if the frame holds fewer) a zstd frame decompresses to,
    /// without decompressing the rest: the head of a block whose tail is not needed yet.
    static func zstdPrefix(_ src: UnsafeRawBufferPointer, count: Int) throws(DecompressionError) -> [UInt8] {
        let context = DecompressionContext.take()
        defer { DecompressionContext.give(context) }
        ZSTD_DCtx_reset(context.zstd, ZSTD_reset_session_only)
        var failure: Int?
        let out = [UInt8](unsafeUninitializedCapacity: count) { d, initialized in
            var output = ZSTD_outBuffer(dst: d.baseAddress, size: count, pos: 0)
            var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
            // Frame after frame, as `ZSTD_decompressDCtx` reads them, until `count` bytes are out,
            // the input is used up, or a call makes no progress (a truncated frame).
            while output.pos < count {
                let before = (input.pos, output.pos)
                let r = ZSTD_decompressStream(context.zstd, &output, &input)
                if ZSTD_isError(r) != 0 {
                    failure = r
                    break
                }
                if (r == 0 && input.pos == input.size) || (input.pos, output.pos) == before { break }
            }
            initialized = output.pos
        }
        if let failure { throw DecompressionError(codec: .zstd, message: String(cString: ZSTD_getErrorName(failure))) }
        return out
    }
}

/// zstd compression of a payload handed over in pieces as it is made, so that the payload need
/// not be whole in memory: only its compressed bytes are. For payloads of many megabytes (a
/// month's rollup part): compressing one built whole held the payload, a compression buffer of
/// its size and two copies of the output at once (~45 MB at a 10M-event `tally ingest`'s peak,
/// heaptrack; BENCHMARKS.md, eleventh session). The output is a regular zstd frame (without the
/// content size in its header, which is not known up front); any zstd decoder reads it.
///
/// It has a context of its own rather than one from `CompressionScratch`'s pool: a streaming
/// context keeps window-sized buffers (~2 MB at level 3) that a pooled one would carry on.
struct ZstdStream: ~Copyable {
    private let context: OpaquePointer
    private let chunk: UnsafeMutableRawPointer
    private(set) var compressed: [UInt8] = []
    private(set) var rawLength = 0
    private static let chunkSize = 1 << 17

    init(level: Int32) {
        guard let c = ZSTD_createCCtx() else { preconditionFailure("ZSTD_createCCtx failed (out of memory)") }
        context = c
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        chunk = .allocate(byteCount: Self.chunkSize, alignment: 16)
    }

    deinit {
        ZSTD_freeCCtx(context)
        chunk.deallocate()
    }

    /// Compresses the next piece of the payload.
    mutating func feed(_ src: UnsafeRawBufferPointer) {
        guard !src.isEmpty else { return }
        rawLength += src.count
        var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
        while input.pos < input.size { step(&input, ZSTD_e_continue) }
    }

    /// Ends the frame; `compressed` then holds all of it.
    mutating func finish() {
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while step(&input, ZSTD_e_end) != 0 {}
    }

    /// One call of `ZSTD_compressStream2`, its output appended; returns what zstd has left to flush.
    @discardableResult
    private mutating func step(_ input: inout ZSTD_inBuffer, _ directive: ZSTD_EndDirective) -> Int {
        var output = ZSTD_outBuffer(dst: chunk, size: Self.chunkSize, pos: 0)
        let left = ZSTD_compressStream2(context, &output, &input, directive)
        precondition(ZSTD_isError(left) == 0, "zstd compression failed: \(String(cString: ZSTD_getErrorName(left)))")
        compressed.append(contentsOf: UnsafeRawBufferPointer(start: chunk, count: output.pos))
        return left
    }
}

extension Codec {
    /// `pieces` compressed one after the other through a `ZstdStream`: the frame.
    @_spi(Testing) public static func zstdStreamForTesting(_ pieces: [[UInt8]], level: Int32) -> (frame: [UInt8], rawLength: Int) {
        var z = ZstdStream(level: level)
        for p in pieces { p.withUnsafeBytes { z.feed($0) } }
        z.finish()
        return (z.compressed, z.rawLength)
    }
}

/// A zstd decompression context, reused across blocks from a small pool. `ZSTD_decompress`
/// allocates and initializes a context per call: 7–8 µs more per block than a reused one
/// (2 KB → 10.9 vs 3.6 µs, 16 KB → 25.1 vs 17.2 µs; C loop on this machine), paid on every
/// granule block a query, merge or session summary reads.
final class DecompressionContext: @unchecked Sendable {
    private static let pool = Mutex<[DecompressionContext]>([])
    let zstd: OpaquePointer

    private init() {
        guard let c = ZSTD_createDCtx() else { preconditionFailure("ZSTD_createDCtx failed (out of memory)") }
        zstd = c
    }

    deinit { ZSTD_freeDCtx(zstd) }

    static func take() -> DecompressionContext {
        pool.withLock { $0.popLast() } ?? DecompressionContext()
    }

    static func give(_ c: DecompressionContext) {
        pool.withLock { $0.append(c) }
    }
}

/// A zstd compression context and an output buffer, reused across blocks: one per thread
/// compressing at a time, kept in a small pool.
final class CompressionScratch: @unchecked Sendable {
    private static let pool = Mutex<[CompressionScratch]>([])
    /// Buffers larger than this are freed on return instead of pooled (bounds resident memory):
    /// part blocks fit, a WAL record's (~5 MB for 8,192 events) does not. With 8 MiB the pool
    /// held ~17 MB of WAL scratch (heaptrack), and peak RSS of `tally ingest` of 1M events was
    /// 256–288 MB against 237–261 with 1 MiB, at the same CPU time (3 alternated runs each).
    private static let keepLimit = 1 << 20

    let zstdContext: OpaquePointer
    private var buffer: UnsafeMutableRawPointer?
    private var capacity = 0

    private init() {
        guard let c = ZSTD_createCCtx() else { preconditionFailure("ZSTD_createCCtx failed (out of memory)") }
        zstdContext = c
    }

    deinit {
        ZSTD_freeCCtx(zstdContext)
        buffer?.deallocate()
    }

    static func take() -> CompressionScratch {
        pool.withLock { $0.popLast() } ?? CompressionScratch()
    }

    static func give(_ s: CompressionScratch) {
        if s.capacity > keepLimit {
            s.buffer?.deallocate()
            s.buffer = nil
            s.capacity = 0
        }
        pool.withLock { $0.append(s) }
    }

    /// At least `n` bytes of output space (contents undefined).
    func output(capacity n: Int) -> UnsafeMutableRawPointer {
        if n > capacity || buffer == nil {
            buffer?.deallocate()
            capacity = max(n, 64 << 10)
            buffer = .allocate(byteCount: capacity, alignment: 16)
        }
        return buffer!
    }
}
