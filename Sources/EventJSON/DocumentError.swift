/// A request body that cannot be read at all: not JSON, not the shape of a request, or too
/// many events. No event of it is stored.
public struct DocumentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure it is (a server maps `tooManyEvents` to 413, the others to 400).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let raw: UInt8
        private init(_ raw: UInt8) { self.raw = raw }

        /// The bytes are not valid JSON (RFC 8259), or not UTF-8, or nest too deep.
        public static let syntax = Code(1)
        /// Valid JSON, but not an event, an array of events or an envelope.
        public static let unexpectedShape = Code(2)
        /// More events than `IngestOptions.maxEventsPerBatch`.
        public static let tooManyEvents = Code(3)

        public var description: String {
            switch raw {
            case 1: "syntax"
            case 2: "unexpectedShape"
            default: "tooManyEvents"
            }
        }
    }

    public var code: Code
    /// Byte offset in the body where reading stopped.
    public var offset: Int
    public var message: String

    public init(code: Code, offset: Int, message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    init(_ error: JSONError) {
        let code: Code =
            switch error.problem {
            case .tooManyEvents: .tooManyEvents
            case .expectedObjectOrArray, .envelopeField: .unexpectedShape
            default: .syntax
            }
        self.init(code: code, offset: error.offset, message: error.message)
    }

    public var description: String { "\(message) at byte \(offset)" }
}
