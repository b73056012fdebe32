/// One cell of a result: dimension values and metric values.
public enum QueryValue: Hashable, Sendable, Comparable, CustomStringConvertible {
    case null
    case int(Int64)
    case double(Double)
    case string(String)

    public var description: String {
        switch self {
        case .null: "null"
        case .int(let v): String(v)
        case .double(let v): String(v)
        case .string(let s): s
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let v): Double(v)
        case .double(let v): v
        default: nil
        }
    }

    /// null < numbers < strings; numbers by value, strings by UTF-8 bytes.
    public static func < (a: QueryValue, b: QueryValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return false
        case (.null, _): return true
        case (_, .null): return false
        case (.string(let x), .string(let y)): return ByteOrder.compare(x, y) < 0
        case (.string, _): return false
        case (_, .string): return true
        default: return a.doubleValue! < b.doubleValue!
        }
    }
}

/// Where an answer came from.
public enum QuerySource: String, Sendable {
    case raw, rollup, mixed
    /// Session queries: the parts' session summaries (and the buffer's rows).
    case sessionSummaries = "session_summaries"
}

/// The answer to a query: rows keyed by dimension then metric names, in order.
public struct QueryResult: Sendable {
    /// Dimension names, then metric names.
    public var columns: [String]
    public var rows: [[QueryValue]]
    /// Rows before limit/offset.
    public var totalRows: Int
    public var source: QuerySource
    public var rowsScanned: Int
    public var stats: ScanStats

    /// The rows as [name: value] dictionaries.
    public var objects: [[String: QueryValue]] {
        rows.map { Dictionary(uniqueKeysWithValues: zip(columns, $0)) }
    }
}

/// Limits that stop a runaway query with an error instead of exhausting the server.
public struct QueryBudget: Sendable {
    /// Wall time after which the query stops (checked between granules).
    public var milliseconds: Int
    /// Most distinct groups held in memory.
    public var maxGroups: Int
    /// Summarized sessions a session question holds before it hands over and drops those that
    /// are whole (`SessionExecutor`); more only while none is.
    public var sessionWindow: Int

    public init(milliseconds: Int = 30_000, maxGroups: Int = 1_000_000, sessionWindow: Int = 65_536) {
        self.milliseconds = milliseconds
        self.maxGroups = maxGroups
        self.sessionWindow = max(1, sessionWindow)
    }
}
