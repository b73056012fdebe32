/// An error a user reads: what went wrong, naming the thing and the place.
public struct TallyError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let corruption = Code(name: "corruption")
        public static let io = Code(name: "io")
        public static let invalidArgument = Code(name: "invalidArgument")
        public static let notFound = Code(name: "notFound")
        public static let unsupportedVersion = Code(name: "unsupportedVersion")
        public static let resourceExhausted = Code(name: "resourceExhausted")
        public static let closed = Code(name: "closed")
        public var description: String { name }
    }

    public let code: Code
    public let message: String
    /// What the operating system or a library said, if anything.
    public let cause: String?

    public init(_ code: Code, _ message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message): \(cause)" }
        return message
    }

    static func corruption(_ message: String, cause: String? = nil) -> TallyError {
        TallyError(.corruption, message, cause: cause)
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` that keeps a typed `TallyError` (the standard one rethrows `any Error`).
    @inlinable func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(TallyError) -> R) throws(TallyError) -> R {
        let r: Result<R, TallyError> = withUnsafeBytes { b in Result { () throws(TallyError) in try body(b) } }
        return try r.get()
    }

    @inlinable mutating func withMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws(TallyError) -> R)
        throws(TallyError) -> R
    {
        let r: Result<R, TallyError> = withUnsafeMutableBytes { b in Result { () throws(TallyError) in try body(b) } }
        return try r.get()
    }
}
