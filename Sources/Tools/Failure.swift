import ArgumentParser
import Foundation

/// Prints one line naming the file or directory and what is wrong, and exits with status 1
/// (argument-parser's `ValidationError` would add usage text that is not the problem).
func failure(_ message: String) -> ExitCode {
    FileHandle.standardError.write("tally: \(message)\n".data(using: .utf8)!)
    return ExitCode(1)
}
