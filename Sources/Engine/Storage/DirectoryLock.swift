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
        // A process being spawned by this one holds a copy of every descriptor until it execs
        // (O_CLOEXEC closes them only then), so a lock this process released a moment ago can
        // look held for that window — seen once in the test suite, where tests spawn `tally`
        // children while others reopen stores. Retried for up to a second; another process
        // holding the lock still gets the error, a second later.
        var attempts = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let err = errno
            if err == EINTR { continue }
            guard err == EWOULDBLOCK, attempts < 20 else {
                Glibc.close(fd)
                throw TallyError(.resourceExhausted, "the data directory \(directory) is in use by another tally process (\(path) is locked)")
            }
            attempts += 1
            usleep(50_000)
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
