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

/// SplitMix64 as a `RandomNumberGenerator`: seeded, reproducible test data (a failure names
/// its seed).
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
