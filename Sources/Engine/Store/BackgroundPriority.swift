import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The scheduling priority of a store's background work: the flusher and merger threads and
/// `BackgroundWorkers` lower theirs to nice 10 as they start (`lowerCallingThread`).
///
/// At the priority of the threads that answer requests, a flush or merge took the cores from
/// them for tens of milliseconds at a time: at 70k events/s offered, ack p99 55–187 ms against
/// 12–19 with background work niced (BENCHMARKS.md, seventeenth session). Background work now
/// gets what requests leave. When it falls behind, requests wait for room
/// (`EventStore.waitForRoom`), which hands it the cores.
public enum BackgroundPriority {
    static let lowered = Atomic<Bool>(true)

    /// The nice value of background threads (requests run at 0).
    static let nice: Int32 = 10

    /// Keeps background threads started from now on at the caller's priority. For a process
    /// that answers no requests, where niced flushes only fall behind its own ingest: `tally
    /// ingest` of 1M events took 341k–347k events/s at 218–245 MB peak RSS with them niced,
    /// against 348k–355k at 213–221 (3 alternated runs). Call before opening a store.
    public static func keepForeground() {
        lowered.store(false, ordering: .relaxed)
    }

    /// Sets the calling thread's nice value to `nice` (unless `keepForeground` was called). On
    /// Linux a thread has its own nice value; `setpriority(PRIO_PROCESS, 0, …)` sets the calling
    /// thread's. Raising it needs no privilege; lowering it back would, so it is set once.
    static func lowerCallingThread() {
        #if canImport(Glibc)
            guard lowered.load(ordering: .relaxed) else { return }
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
        #endif
    }
}
