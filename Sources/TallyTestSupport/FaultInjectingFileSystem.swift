import Engine
import Foundation

/// The POSIX file system with failures injected where `fails` says so: a store's writes, renames,
/// removals and hard links as a full disk, a lost permission or another device would refuse them.
/// While `armed`, `fails` is asked, one call at a time, before each such operation; it may keep
/// state of its own.
public final class FaultInjectingFileSystem: FileSystem, @unchecked Sendable {
    public enum Operation {
        case openForWriting(String)
        case rename(from: String, to: String)
        case remove(String)
        case hardLink(existing: String, new: String)
    }

    private let posix = PosixFileSystem()
    private let lock = NSLock()
    private let fails: (Operation) -> Bool
    private var _armed: Bool

    public init(armed: Bool = true, fails: @escaping (Operation) -> Bool) {
        _armed = armed
        self.fails = fails
    }

    public var armed: Bool {
        get { lock.withLock { _armed } }
        set { lock.withLock { _armed = newValue } }
    }

    private func failing(_ op: Operation) -> Bool { lock.withLock { _armed && fails(op) } }

    private func check(_ op: Operation) throws(TallyError) {
        if failing(op) { throw TallyError(.io, "injected: \(op)") }
    }

    public func openForReading(_ path: String) throws(TallyError) -> any StoredFile { try posix.openForReading(path) }
    public func openForWriting(_ path: String, truncate: Bool) throws(TallyError) -> any StoredFile {
        try check(.openForWriting(path))
        return try posix.openForWriting(path, truncate: truncate)
    }
    public func rename(_ from: String, to: String) throws(TallyError) {
        try check(.rename(from: from, to: to))
        try posix.rename(from, to: to)
    }
    public func remove(_ path: String) throws(TallyError) {
        try check(.remove(path))
        try posix.remove(path)
    }
    public func list(_ directory: String) throws(TallyError) -> [String] { try posix.list(directory) }
    public func createDirectory(_ path: String) throws(TallyError) { try posix.createDirectory(path) }
    public func syncDirectory(_ path: String) throws(TallyError) { try posix.syncDirectory(path) }
    public func exists(_ path: String) -> Bool { posix.exists(path) }
    public func hardLink(_ existing: String, to new: String) -> Bool {
        if failing(.hardLink(existing: existing, new: new)) { return false }
        return posix.hardLink(existing, to: new)
    }
}
