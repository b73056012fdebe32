import CFuzzerDriver

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// libFuzzer's own `main` is not linked (SwiftPM defines `main` for the target), so start its
// driver here with the command line and the entry point in EventReaderFuzz.swift.
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, eventReaderFuzz))
