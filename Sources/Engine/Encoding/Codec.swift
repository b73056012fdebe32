import CLZ4
import CZstd

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

    /// zstd level for part blocks. Level 3 compresses delta-encoded timestamps better than
    /// 1 or 9 (9.25x vs 8.27x vs 6.82x, ../shared/reference/swift-limits.md §3) at ~440 MB/s.
    public static let zstdLevel: Int32 = 3

    /// Compresses `src`, appending to `dst`. Returns the codec actually used: `.none` when
    /// compressing would not save at least 1/16 of the bytes (random bits, tiny blocks).
    @discardableResult
    public static func compress(_ src: UnsafeRawBufferPointer, codec: Codec, into dst: inout [UInt8]) -> Codec {
        let start = dst.count
        switch codec {
        case .none:
            dst.append(contentsOf: src)
            return .none
        case .zstd:
            let bound = ZSTD_compressBound(src.count)
            dst.append(contentsOf: repeatElement(0, count: bound))
            let n = dst.withUnsafeMutableBytes { d in
                ZSTD_compress(d.baseAddress! + start, bound, src.baseAddress, src.count, zstdLevel)
            }
            precondition(ZSTD_isError(n) == 0, "zstd compression failed: \(String(cString: ZSTD_getErrorName(n)))")
            dst.removeLast(bound - n)
        case .lz4:
            let bound = Int(LZ4_compressBound(Int32(src.count)))
            dst.append(contentsOf: repeatElement(0, count: bound))
            let n = dst.withUnsafeMutableBytes { d in
                LZ4_compress_default(
                    src.baseAddress?.assumingMemoryBound(to: CChar.self),
                    (d.baseAddress! + start).assumingMemoryBound(to: CChar.self), Int32(src.count), Int32(bound))
            }
            precondition(n > 0 || src.count == 0, "lz4 compression failed")
            dst.removeLast(bound - Int(n))
        }
        if dst.count - start > src.count - src.count / 16 {
            dst.removeLast(dst.count - start)
            dst.append(contentsOf: src)
            return .none
        }
        return codec
    }

    public struct DecompressionError: Error, CustomStringConvertible {
        public let codec: Codec
        public let message: String
        public var description: String { "\(codec) decompression failed: \(message)" }
    }

    /// Decompresses `src` into exactly `rawLength` bytes appended to `dst`.
    public static func decompress(
        _ src: UnsafeRawBufferPointer, codec: Codec, rawLength: Int, into dst: inout [UInt8]
    ) throws(DecompressionError) {
        let start = dst.count
        switch codec {
        case .none:
            guard src.count == rawLength else {
                throw DecompressionError(codec: codec, message: "stored \(src.count) bytes, expected \(rawLength)")
            }
            dst.append(contentsOf: src)
        case .zstd:
            dst.append(contentsOf: repeatElement(0, count: rawLength))
            let n = dst.withUnsafeMutableBytes { d in
                ZSTD_decompress(d.baseAddress! + start, rawLength, src.baseAddress, src.count)
            }
            if ZSTD_isError(n) != 0 || n != rawLength {
                dst.removeLast(rawLength)
                let why = ZSTD_isError(n) != 0 ? String(cString: ZSTD_getErrorName(n)) : "got \(n) bytes"
                throw DecompressionError(codec: codec, message: "\(why), expected \(rawLength)")
            }
        case .lz4:
            dst.append(contentsOf: repeatElement(0, count: rawLength))
            let n = dst.withUnsafeMutableBytes { d in
                LZ4_decompress_safe(
                    src.baseAddress?.assumingMemoryBound(to: CChar.self),
                    (d.baseAddress! + start).assumingMemoryBound(to: CChar.self), Int32(src.count), Int32(rawLength))
            }
            if Int(n) != rawLength {
                dst.removeLast(rawLength)
                throw DecompressionError(codec: codec, message: "got \(n) bytes, expected \(rawLength)")
            }
        }
    }
}
