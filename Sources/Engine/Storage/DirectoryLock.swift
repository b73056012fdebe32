#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An exclusive `flock` on `DIR/LOCK`, held while a store is open, so two processes never
/// write the same data directory. The kernel drops it when the process dies (kill -9 too).
final class DirectoryLock: @unchecked Sendable {
    private var fd: Int32

    init(directory: String) throws(TallyError) {
        let path = directory + "/LOCK"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TallyError(.io, "cannot open \(path)", cause: String(cString: strerror(errno))) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            Glibc.close(fd)
            throw TallyError(.resourceExhausted, "the data directory \(directory) is in use by another tally process (\(path) is locked)")
        }
        self.fd = fd
    }

    /// Releases the lock (idempotent; called once by `EventStore.close`).
    func release() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    deinit { release() }
}
