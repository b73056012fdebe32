import Foundation

/// Runs blocking work (a child process, sockets, seconds of CPU) on a thread of its own and
/// awaits it. Swift concurrency has one thread per core (two here): a test that blocks one of
/// them starves the in-process HTTP servers of other suites into read timeouts.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
        let thread = Thread {
            do { done.resume(returning: try body()) } catch { done.resume(throwing: error) }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
}
