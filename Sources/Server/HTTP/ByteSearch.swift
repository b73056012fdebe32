#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Substring search over UTF-8 bytes. With Foundation imported, `String.contains(String)`
/// resolves to NSString's `range(of:)`, which on Linux converts both strings to UTF-16 first:
/// classifying one user agent against the ~100 bot, browser and OS rules took ~55% of the
/// server's CPU under `tally bench ingest` (perf, see BENCHMARKS.md).
enum ByteSearch {
    /// Whether `needle`'s UTF-8 bytes occur in `haystack` (an empty needle always does).
    @inline(__always)
    static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: String) -> Bool {
        var needle = needle
        return needle.withUTF8 { contains(haystack, UnsafeRawBufferPointer($0)) }
    }

    /// Whether `needle` occurs in `haystack`: memchr for its first byte, memcmp for the rest
    /// (memmem is a GNU extension Glibc's module map does not export).
    static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: UnsafeRawBufferPointer) -> Bool {
        guard let n = needle.baseAddress, !needle.isEmpty else { return true }
        guard let h = haystack.baseAddress, haystack.count >= needle.count else { return false }
        let first = Int32(needle[0])
        let lastStart = haystack.count - needle.count
        var i = 0
        while i <= lastStart {
            guard let p = memchr(h + i, first, lastStart - i + 1) else { return false }
            if memcmp(p, n, needle.count) == 0 { return true }
            i = UnsafeRawPointer(p) - h + 1
        }
        return false
    }
}
