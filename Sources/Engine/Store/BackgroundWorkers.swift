import Foundation

/// Threads of their own for the CPU-bound pieces of flushes and merges (`parallelMap`), at
/// background priority (`BackgroundPriority`).
///
/// `parallelMap` used Dispatch's `concurrentPerform`, whose helpers are the global queue's
/// worker threads, the same ones Swift concurrency runs tasks on: while a flush's or merge's
/// pieces (a column's gather or encoding, a rollup, tens of milliseconds each) held them, the
/// tasks of HTTP requests waited, an ingest's acknowledgement among them. At 100k events/s
/// offered, 700 of 15,000 requests spent over 30 ms between handing their record to the WAL
/// and being answered, while no fsync took over 16 ms (BENCHMARKS.md, seventeenth session).
///
/// Workers take the oldest job's next item: a flush's items can wait behind a merge's.
final class BackgroundWorkers: @unchecked Sendable {
    /// One thread fewer than the machine has cores: the caller of `perform` works too.
    static let shared = BackgroundWorkers(threads: max(QueryCores.available - 1, 1))

    private final class Job {
        let count: Int
        let body: @Sendable (Int) -> Void
        /// The next index to hand out, and how many have returned (under `condition`).
        var next = 0
        var finished = 0

        init(count: Int, body: @escaping @Sendable (Int) -> Void) {
            self.count = count
            self.body = body
        }
    }

    private let condition = NSCondition()
    /// Jobs with indices not yet handed out, oldest first (under `condition`).
    private var jobs: [Job] = []

    private init(threads: Int) {
        for i in 0..<threads {
            let t = Thread { [unowned self] in
                BackgroundPriority.lowerCallingThread()
                self.work()
            }
            t.name = "tally-worker-\(i)"
            t.start()
        }
    }

    /// Takes `job`'s next index; the last one takes the job off `jobs` (under `condition`).
    private func take(_ job: Job) -> Int {
        let i = job.next
        job.next += 1
        if job.next == job.count { jobs.removeAll { $0 === job } }
        return i
    }

    private func work() {
        condition.lock()
        while true {
            while jobs.isEmpty { condition.wait() }
            let job = jobs[0]
            let i = take(job)
            condition.unlock()
            job.body(i)
            condition.lock()
            job.finished += 1
            if job.finished == job.count { condition.broadcast() }
        }
    }

    /// Calls `body` for every index in 0..<count, on the calling thread and the workers, and
    /// returns when all calls have returned. The caller takes indices too, so a job finishes
    /// even when every worker is busy with others (or with a job this one is part of).
    func perform(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        if count <= 1 {
            if count == 1 { body(0) }
            return
        }
        let job = Job(count: count, body: body)
        condition.lock()
        jobs.append(job)
        condition.broadcast()
        while job.next < job.count {
            // Its own job's indices, even if older jobs wait: they have callers of their own.
            let i = take(job)
            condition.unlock()
            body(i)
            condition.lock()
            job.finished += 1
        }
        while job.finished < job.count { condition.wait() }
        condition.unlock()
    }
}
