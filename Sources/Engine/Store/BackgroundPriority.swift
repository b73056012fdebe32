#if canImport(Glibc)
    import Glibc
#endif

/// Lowers the calling thread's scheduling priority to `backgroundNice`: the store's flusher
/// and merger threads and `BackgroundWorkers` call it as they start. (On Linux a thread has
/// its own nice value; `setpriority(PRIO_PROCESS, 0, …)` sets the calling thread's. Raising
/// a nice value needs no privilege; lowering it back would, so it is set once.)
///
/// At the priority of the threads that answer requests, a flush or merge took the cores from
/// them for tens of milliseconds at a time: at 100k events/s offered, ack p90 97–237 ms and
/// p99 169–342 ms against 11–25 and 35–81 with background work niced (BENCHMARKS.md,
/// seventeenth session). Background work now gets what requests leave. When it falls behind,
/// the buffer reaches its bound and requests wait for room (`EventStore.waitForRoom`), which
/// hands it the cores.
func lowerBackgroundPriority() {
    #if canImport(Glibc)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, backgroundNice)
    #endif
}

/// The nice value of background threads (requests run at 0).
let backgroundNice: Int32 = 10
