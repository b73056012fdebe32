/// An error from the property and API-key store, naming the property, key or file it is about.
public struct MetadataError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// A property id, name, timezone, origin or key reference that is not well-formed.
        public static let invalidArgument = Code(name: "invalidArgument")
        /// No property or key with that id.
        public static let notFound = Code(name: "notFound")
        /// A property with that id exists already.
        public static let alreadyExists = Code(name: "alreadyExists")
        /// A key prefix that matches more than one key.
        public static let ambiguous = Code(name: "ambiguous")
        /// SQLite could not open, read or write `meta.sqlite`.
        public static let database = Code(name: "database")
        public var description: String { name }
    }

    public let code: Code
    public let message: String
    /// What SQLite or the operating system said, if anything.
    public let cause: String?
    /// The input field the error is about (`id`, `name`, `timezone`, `origins`,
    /// `raw_retention_days`, ...), for API answers.
    public var field: String?

    public init(_ code: Code, _ message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// The same error, about `field`.
    func about(_ field: String) -> MetadataError {
        var e = self
        e.field = field
        return e
    }

    public var description: String {
        if let cause { return "\(message): \(cause)" }
        return message
    }
}
