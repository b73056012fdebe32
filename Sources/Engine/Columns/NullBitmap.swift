/// One bit per row; a set bit means the row's value is null.
public struct NullBitmap: Sendable, Equatable {
    public private(set) var words: [UInt64] = []
    public private(set) var count: Int = 0
    public private(set) var nullCount: Int = 0

    public init() {}

    public init(words: [UInt64], count: Int) {
        precondition(words.count == (count + 63) / 64, "bitmap words do not match its count")
        self.words = words
        self.count = count
        nullCount = words.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    @inlinable public subscript(i: Int) -> Bool {
        (words[i >> 6] >> UInt64(i & 63)) & 1 == 1
    }

    public mutating func append(_ isNull: Bool) {
        if count & 63 == 0 { words.append(0) }
        if isNull {
            words[count >> 6] |= 1 << UInt64(count & 63)
            nullCount += 1
        }
        count += 1
    }

    public mutating func removeAll(keepingCapacity: Bool = false) {
        words.removeAll(keepingCapacity: keepingCapacity)
        count = 0
        nullCount = 0
    }
}
