import Foundation

/// The write-ahead log: segments of framed batch records, made durable by group commit.
///
/// Appenders enqueue encoded records; one writer thread takes everything waiting, writes
/// it with one `write` and one `fdatasync`, then completes the records in LSN order. A
/// sync costs ~180 µs whether it carries 4 KiB or 64 KiB (swift-limits.md §5), so
/// concurrent appenders share it; the wait is bounded by one sync plus the records ahead.
final class WriteAheadLog: @unchecked Sendable {
    struct Record {
        let lsn: UInt64
        let batch: EventBatch
    }

    struct ReplayReport {
        var records = 0
        var segments = 0
        /// Torn or corrupt bytes cut from the end of the last segment.
        var truncatedBytes = 0
        var problems: [String] = []
    }

    private struct Pending {
        let lsn: UInt64
        let bytes: [UInt8]
        let done: @Sendable (Result<Void, TallyError>) -> Void
    }

    let fs: any FileSystem
    let directory: String
    private let condition = NSCondition()
    private var pending: [Pending] = []
    private var current: (any StoredFile)?
    private var currentFirstLSN: UInt64 = 0
    private var currentSize = 0
    /// First LSNs of all segments, oldest first.
    private var segments: [UInt64] = []
    /// The format version of the last segment replayed.
    private var lastSegmentVersion = WALFormat.version
    private var stopping = false
    /// Set by a flush: the next write starts a new segment, so the flushed one can be deleted.
    private var rotateRequested = false
    private var thread: Thread?
    private var failure: TallyError?
    /// Bytes written to the WAL since open, and group commits (for metrics and inspect).
    private(set) var syncs = 0

    init(fs: any FileSystem, directory: String) {
        self.fs = fs
        self.directory = directory
    }

    /// Reads every record of every segment, oldest first, truncating a torn tail of the
    /// last segment. Must run before `start`.
    func replay(_ body: (Record) throws(TallyError) -> Void) throws(TallyError) -> ReplayReport {
        try fs.createDirectory(directory)
        var report = ReplayReport()
        let names = try fs.list(directory)
        for name in names where name.hasSuffix(".tmp") { try fs.remove(directory + "/" + name) }
        segments = names.compactMap(WALFormat.parseFileName).sorted()
        for (k, first) in segments.enumerated() {
            let isLast = k == segments.count - 1
            let path = directory + "/" + WALFormat.fileName(firstLSN: first)
            let file = try fs.openForReading(path)
            let size = try file.size()
            let bytes = try file.read(at: 0, count: size)
            file.close()
            report.segments += 1
            var validEnd = 0
            var problem: String?
            let header = bytes.withUnsafeBytes { WALFormat.headerVersion($0) }
            let version = header ?? WALFormat.version
            if header != nil {
                // Written by a newer build: refused whole, never truncated as if torn. (An older
                // build reads no version: it would take version 2's lengths for end offsets and
                // truncate the segment; go back to one only after a clean close, which leaves no
                // segments.)
                guard version <= WALFormat.version else {
                    throw TallyError(.unsupportedVersion, "WAL segment \(path) has format version \(version); this build reads "
                                     + "versions \(WALFormat.versions.lowerBound)–\(WALFormat.versions.upperBound)")
                }
            }
            if isLast { lastSegmentVersion = version }
            bytes.withUnsafeBytes { b in
                guard b.count >= WALFormat.segmentHeaderSize else {
                    problem = "WAL segment \(path) is \(b.count) bytes, shorter than its header"
                    return
                }
                guard Array(b[0..<8]) == WALFormat.magic else {
                    problem = "WAL segment \(path) does not start with the WAL magic"
                    return
                }
                guard WALFormat.versions.contains(version) else {
                    problem = "WAL segment \(path) has format version \(version) in its header, which no build wrote (damaged)"
                    return
                }
                var offset = WALFormat.segmentHeaderSize
                validEnd = offset
                while offset < b.count {
                    guard b.count - offset >= WALFormat.recordHeaderSize else {
                        problem = "torn record header in \(path) at offset \(offset)"
                        return
                    }
                    let length = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                    let crc = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                    let end = offset + WALFormat.recordHeaderSize + length
                    guard length <= WALFormat.maxPayload, end <= b.count else {
                        problem = "torn record in \(path) at offset \(offset): length \(length) runs past the end"
                        return
                    }
                    let checked = UnsafeRawBufferPointer(rebasing: b[(offset + 8)..<end])
                    guard CRC32C.checksum(checked) == crc else {
                        problem = "checksum mismatch in \(path) record at offset \(offset)"
                        return
                    }
                    let lsn = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: offset + 9, as: UInt64.self))
                    let payload = UnsafeRawBufferPointer(rebasing: b[(offset + WALFormat.recordHeaderSize)..<end])
                    do {
                        let batch = try WALBatchCodec.decode(payload, version: version)
                        try body(Record(lsn: lsn, batch: batch))
                        report.records += 1
                    } catch {
                        problem = "malformed batch in \(path) record at offset \(offset): \(error)"
                        return
                    }
                    offset = end
                    validEnd = end
                }
            }
            if let problem {
                report.problems.append(problem)
                if isLast {
                    let w = try fs.openForWriting(path, truncate: false)
                    try w.truncate(to: max(validEnd, 0))
                    if validEnd < WALFormat.segmentHeaderSize {
                        try w.truncate(to: 0)
                        try w.append(WALFormat.segmentHeader())
                        lastSegmentVersion = WALFormat.version
                    }
                    try w.sync()
                    w.close()
                    report.truncatedBytes += size - max(validEnd, WALFormat.segmentHeaderSize)
                }
            }
        }
        return report
    }

    /// Opens the segment for new records (`nextLSN` is the first) and starts the writer.
    func start(nextLSN: UInt64) throws(TallyError) {
        // Records are appended to the last segment only if it has this build's version (a
        // segment's records all have its layout); else a new segment starts.
        if let last = segments.last, lastSegmentVersion == WALFormat.version {
            let path = directory + "/" + WALFormat.fileName(firstLSN: last)
            current = try fs.openForWriting(path, truncate: false)
            currentFirstLSN = last
            currentSize = try current!.size()
        } else {
            try openSegment(firstLSN: nextLSN)
        }
        let t = Thread { [weak self] in self?.run() }
        t.name = "tally-wal"
        thread = t
        t.start()
    }

    private func openSegment(firstLSN: UInt64) throws(TallyError) {
        let path = directory + "/" + WALFormat.fileName(firstLSN: firstLSN)
        let file = try fs.openForWriting(path, truncate: true)
        try file.append(WALFormat.segmentHeader())
        try file.sync()
        try fs.syncDirectory(directory)
        current?.close()
        current = file
        currentFirstLSN = firstLSN
        currentSize = WALFormat.segmentHeaderSize
        condition.lock()
        // An empty last segment of an older version has this name: it was just replaced.
        if segments.last != firstLSN { segments.append(firstLSN) }
        condition.unlock()
    }

    /// Enqueues a record; `done` runs on the writer thread once it is durable (or failed).
    /// Callers enqueue in LSN order.
    func append(lsn: UInt64, payload: [UInt8], done: @escaping @Sendable (Result<Void, TallyError>) -> Void) {
        var w = ByteWriter(capacity: payload.count + WALFormat.recordHeaderSize)
        WALFormat.frame(lsn: lsn, payload: payload, into: &w)
        condition.lock()
        if let failure {
            condition.unlock()
            done(.failure(failure))
            return
        }
        if stopping {
            condition.unlock()
            done(.failure(TallyError(.closed, "the write-ahead log is closed")))
            return
        }
        pending.append(Pending(lsn: lsn, bytes: w.bytes, done: done))
        condition.signal()
        condition.unlock()
    }

    private func run() {
        var lastGroup = 0
        while true {
            condition.lock()
            while pending.isEmpty && !stopping { condition.wait() }
            if pending.isEmpty && stopping {
                condition.unlock()
                return
            }
            // While small records of overlapping appenders arrive (the last sync carried several),
            // gather for up to `gatherWait` before syncing: a saturated HTTP server synced once
            // per 1.8 requests (~900 fdatasync/s, ~100 µs of kernel CPU each, 4.6 % of its CPU;
            // perf, BENCHMARKS.md, sixteenth session). A lone appender is never held, nor are
            // big records (a bulk load's 8,192 events, which few appenders send).
            if lastGroup >= 2 {
                let deadline = Date(timeIntervalSinceNow: Self.gatherWait)
                while pending.count < Self.gatherRecords && pending.reduce(0, { $0 + $1.bytes.count }) < Self.gatherBytes
                    && !stopping && condition.wait(until: deadline) {}
            }
            let group = pending
            lastGroup = group.count
            pending.removeAll(keepingCapacity: true)
            condition.unlock()

            let result: Result<Void, TallyError>
            do throws(TallyError) {
                try write(group)
                result = .success(())
            } catch {
                // A failed write or fsync leaves the log's state unknown (fsyncgate): refuse
                // every later append instead of acknowledging what may not be on disk.
                condition.lock()
                failure = error
                condition.unlock()
                result = .failure(error)
            }
            for p in group { p.done(result) }
        }
    }

    /// How long the writer gathers records while appenders overlap, and how many records or
    /// bytes end it.
    static let gatherWait: TimeInterval = 0.002
    static let gatherRecords = 32
    static let gatherBytes = 256 << 10

    private func write(_ group: [Pending]) throws(TallyError) {
        condition.lock()
        let rotate = rotateRequested
        rotateRequested = false
        condition.unlock()
        if currentSize >= WALFormat.segmentTargetSize || (rotate && currentSize > WALFormat.segmentHeaderSize) {
            try openSegment(firstLSN: group[0].lsn)
        }
        guard let file = current else { throw TallyError(.closed, "the write-ahead log is not open") }
        var total = 0
        for p in group { total += p.bytes.count }
        var buffer = [UInt8]()
        buffer.reserveCapacity(total)
        for p in group { buffer.append(contentsOf: p.bytes) }
        try file.append(buffer)
        try file.sync()
        currentSize += total
        condition.lock()
        syncs += 1
        condition.unlock()
    }

    /// Asks the writer to start a new segment with its next write (called when a flush
    /// begins, so that the segment holding the flushed records can be deleted after it).
    func requestRotation() {
        condition.lock()
        rotateRequested = true
        condition.unlock()
    }

    /// After `close`: deletes every segment (all records are in parts).
    func removeAllSegments() throws(TallyError) {
        condition.lock()
        let all = segments
        segments = []
        condition.unlock()
        for first in all { try fs.remove(directory + "/" + WALFormat.fileName(firstLSN: first)) }
        try fs.syncDirectory(directory)
    }

    /// Deletes whole segments whose records all have LSN ≤ `lsn` (they are in parts).
    func removeSegments(coveredUpTo lsn: UInt64) throws(TallyError) {
        condition.lock()
        var removable: [UInt64] = []
        for (k, first) in segments.enumerated() where k + 1 < segments.count {
            if segments[k + 1] - 1 <= lsn && first != currentFirstLSN { removable.append(first) }
        }
        segments.removeAll { removable.contains($0) }
        condition.unlock()
        for first in removable { try fs.remove(directory + "/" + WALFormat.fileName(firstLSN: first)) }
    }

    /// Segment files and their sizes.
    func segmentFiles() throws(TallyError) -> [(name: String, size: Int)] {
        var out: [(String, Int)] = []
        for name in try fs.list(directory) where WALFormat.parseFileName(name) != nil {
            let f = try fs.openForReading(directory + "/" + name)
            out.append((name, try f.size()))
            f.close()
        }
        return out
    }

    /// Waits for queued records to be written, then stops the writer.
    func close() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        while let t = thread, !t.isFinished { usleep(1000) }
        current?.close()
        current = nil
    }
}
