import Engine
import Foundation
import Synchronization

/// A fresh directory under the system's temporary directory, removed when dropped.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "tally") {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/\(label)-\(UInt64.random(in: 0...UInt64.max))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A clock tests move by hand.
public final class ManualClock: TallyClock {
    private let now: Mutex<Int64>

    public init(_ start: Int64 = 1_790_000_000_000) { now = Mutex(start) }

    public func nowMillis() -> Int64 { now.withLock { $0 } }

    public func advance(_ ms: Int64) { now.withLock { $0 += ms } }
}
