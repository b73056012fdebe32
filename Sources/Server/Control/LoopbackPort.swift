import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A loopback port for a `tally serve` child: `tally bench ingest --spawn` and the tests that
/// start servers. A random port could be one another process holds (the child then exits).
public enum LoopbackPort {
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// A port nothing listens on now: bind port 0, read the port, close.
    public static func free() throws(Unavailable) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Unavailable(description: "cannot create a socket to find a free port (errno \(errno))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(fd, p, length) == 0 && getsockname(fd, p, &length) == 0
            }
        }
        guard bound else { throw Unavailable(description: "cannot bind a socket to find a free port (errno \(errno))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
