import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Whole lines of an NDJSON input, a chunk at a time. A regular file is memory-mapped (reading
/// it with read(2) cost ~8% of `tally ingest`'s CPU in copies) and the pages of chunks already
/// decoded are dropped, so resident memory stays at a chunk; a pipe is read into a buffer.
final class LineSource {
    private let fd: Int32
    private var mapped: UnsafeRawBufferPointer?
    private var offset = 0
    private var dropped = 0
    private var carry: [UInt8] = []
    private var lines = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var eof = false

    init?(path: String) {
        fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        var st = stat()
        if fd != 0, fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > 0 {
            let size = Int(st.st_size)
            if let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED {
                madvise(p, size, MADV_SEQUENTIAL)
                mapped = UnsafeRawBufferPointer(start: p, count: size)
            }
        }
    }

    deinit {
        if let mapped { munmap(UnsafeMutableRawPointer(mutating: mapped.baseAddress), mapped.count) }
        if fd > 0 { close(fd) }
        lines.deallocate()
    }

    /// The next run of whole lines of about `size` bytes (the last may lack its newline),
    /// valid until the next call; nil at the end.
    func next(size: Int) throws -> UnsafeRawBufferPointer? {
        if let mapped { return nextMapped(mapped, size: size) }
        return try nextRead(size: size)
    }

    private func nextMapped(_ m: UnsafeRawBufferPointer, size: Int) -> UnsafeRawBufferPointer? {
        // Pages before this chunk were decoded (batches copy what they keep): let them go.
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let releasable = (offset / page) * page
        if releasable > dropped {
            madvise(UnsafeMutableRawPointer(mutating: m.baseAddress! + dropped), releasable - dropped, MADV_DONTNEED)
            dropped = releasable
        }
        guard offset < m.count else { return nil }
        var end = min(m.count, offset + size)
        if end < m.count {
            // Extend to the end of the line that straddles the boundary.
            if let nl = memchr(m.baseAddress! + end, Int32(UInt8(ascii: "\n")), m.count - end) {
                end = m.baseAddress!.distance(to: UnsafeRawPointer(nl)) + 1
            } else {
                end = m.count
            }
        }
        let chunk = UnsafeRawBufferPointer(rebasing: m[offset..<end])
        offset = end
        return chunk
    }

    private func nextRead(size: Int) throws -> UnsafeRawBufferPointer? {
        carry.removeFirst(offset)
        offset = 0
        while !eof {
            var buffer = [UInt8](repeating: 0, count: size)
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, size) }
            if n < 0 {
                if errno == EINTR { continue }
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            if n == 0 { eof = true } else { carry.append(contentsOf: buffer[0..<n]) }
            if carry.lastIndex(of: UInt8(ascii: "\n")) != nil { break }
        }
        guard !carry.isEmpty else { return nil }
        let cut = eof ? carry.count : (carry.lastIndex(of: UInt8(ascii: "\n")) ?? carry.count - 1) + 1
        offset = cut
        // A copy the caller may hold until the next call (the array's storage may move).
        lines.deallocate()
        lines = .allocate(byteCount: cut, alignment: 1)
        carry.withUnsafeBytes { lines.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<cut])) }
        return UnsafeRawBufferPointer(lines)
    }
}
