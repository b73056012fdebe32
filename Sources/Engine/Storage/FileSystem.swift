import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The one seam all engine file I/O goes through, so tests can inject a failing fsync,
/// a short write or a torn tail (STYLE.md §5).
public protocol FileSystem: Sendable {
    func openForReading(_ path: String) throws(TallyError) -> any StoredFile
    /// Opens (creating if needed) for appending writes.
    func openForWriting(_ path: String, truncate: Bool) throws(TallyError) -> any StoredFile
    func rename(_ from: String, to: String) throws(TallyError)
    func remove(_ path: String) throws(TallyError)
    func list(_ directory: String) throws(TallyError) -> [String]
    func createDirectory(_ path: String) throws(TallyError)
    /// fsync of a directory, making renames and creations in it durable.
    func syncDirectory(_ path: String) throws(TallyError)
    func exists(_ path: String) -> Bool
    /// Makes `new` a second name of the file `existing` (a hard link); false when the file
    /// system cannot (another device, no such file): the caller copies instead.
    func hardLink(_ existing: String, to new: String) -> Bool
}

public protocol StoredFile: AnyObject, Sendable {
    var path: String { get }
    func size() throws(TallyError) -> Int
    /// Reads exactly `count` bytes at `offset` (fewer only at end of file).
    func read(at offset: Int, count: Int) throws(TallyError) -> [UInt8]
    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(TallyError) -> Int
    /// Appends all of `bytes` at the end of the file.
    func append(_ bytes: UnsafeRawBufferPointer) throws(TallyError)
    /// fdatasync.
    func sync() throws(TallyError)
    func truncate(to size: Int) throws(TallyError)
    func close()
}

extension StoredFile {
    public func append(_ bytes: [UInt8]) throws(TallyError) {
        try bytes.withBytes { (b) throws(TallyError) in try append(b) }
    }
}

/// POSIX files through swift-system.
extension FileSystem {
    /// Replaces the small file `directory/name` whole: written to `name.tmp`, fsynced, renamed,
    /// the directory fsynced (coverage marks, dropped-partition marks).
    func writeAtomically(_ bytes: [UInt8], name: String, in directory: String) throws(TallyError) {
        let path = directory + "/" + name
        let f = try openForWriting(path + PartFormat.temporarySuffix, truncate: true)
        do throws(TallyError) {
            try f.append(bytes)
            try f.sync()
        } catch {
            f.close()
            throw error
        }
        f.close()
        try rename(path + PartFormat.temporarySuffix, to: path)
        try syncDirectory(directory)
    }
}

public struct PosixFileSystem: FileSystem {
    public init() {}

    static func ioError(_ what: String, _ path: String, _ error: any Error) -> TallyError {
        TallyError(.io, "\(what) \(path)", cause: "\(error)")
    }

    public func openForReading(_ path: String) throws(TallyError) -> any StoredFile {
        do {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
            return PosixFile(fd: fd, path: path)
        } catch { throw Self.ioError("cannot open", path, error) }
    }

    public func openForWriting(_ path: String, truncate: Bool) throws(TallyError) -> any StoredFile {
        do {
            var options: FileDescriptor.OpenOptions = [.create, .closeOnExec, .append]
            if truncate { options.insert(.truncate) }
            let fd = try FileDescriptor.open(
                FilePath(path), .readWrite, options: options, permissions: [.ownerReadWrite, .groupRead, .otherRead])
            return PosixFile(fd: fd, path: path)
        } catch { throw Self.ioError("cannot create", path, error) }
    }

    public func rename(_ from: String, to: String) throws(TallyError) {
        if Glibc.rename(from, to) != 0 { throw Self.ioError("cannot rename \(from) to", to, Errno(rawValue: errno)) }
    }

    public func remove(_ path: String) throws(TallyError) {
        if unlink(path) != 0 && errno != ENOENT { throw Self.ioError("cannot remove", path, Errno(rawValue: errno)) }
    }

    public func list(_ directory: String) throws(TallyError) -> [String] {
        guard let dir = opendir(directory) else {
            throw Self.ioError("cannot list", directory, Errno(rawValue: errno))
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func createDirectory(_ path: String) throws(TallyError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw Self.ioError("cannot create directory", current, Errno(rawValue: errno))
            }
        }
    }

    public func syncDirectory(_ path: String) throws(TallyError) {
        do {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.directory, .closeOnExec])
            defer { try? fd.close() }
            if fsync(fd.rawValue) != 0 { throw Errno(rawValue: errno) }
        } catch { throw Self.ioError("cannot sync directory", path, error) }
    }

    public func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public func hardLink(_ existing: String, to new: String) -> Bool {
        Glibc.link(existing, new) == 0
    }
}

final class PosixFile: StoredFile, @unchecked Sendable {
    let fd: FileDescriptor
    let path: String
    private var closed = false

    init(fd: FileDescriptor, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close() }

    func size() throws(TallyError) -> Int {
        var st = stat()
        if fstat(fd.rawValue, &st) != 0 { throw PosixFileSystem.ioError("cannot stat", path, Errno(rawValue: errno)) }
        return Int(st.st_size)
    }

    func read(at offset: Int, count: Int) throws(TallyError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = try out.withMutableBytes { (b) throws(TallyError) in try read(at: offset, into: b) }
        if n < count { out.removeLast(count - n) }
        return out
    }

    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(TallyError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd.rawValue, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw PosixFileSystem.ioError("cannot read at offset \(offset + done) of", path, Errno(rawValue: errno))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(TallyError) {
        var done = 0
        while done < bytes.count {
            let n = write(fd.rawValue, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw PosixFileSystem.ioError("cannot write", path, Errno(rawValue: errno))
            }
            done += n
        }
    }

    func sync() throws(TallyError) {
        if fdatasync(fd.rawValue) != 0 { throw PosixFileSystem.ioError("cannot fdatasync", path, Errno(rawValue: errno)) }
    }

    func truncate(to size: Int) throws(TallyError) {
        if ftruncate(fd.rawValue, off_t(size)) != 0 {
            throw PosixFileSystem.ioError("cannot truncate", path, Errno(rawValue: errno))
        }
    }

    func close() {
        if !closed {
            closed = true
            try? fd.close()
        }
    }
}
