#ifndef TALLY_C_FUZZER_DRIVER_H
#define TALLY_C_FUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer). Called from main.swift:
/// SwiftPM gives every executable target a `main` of its own, so libFuzzer's `main` is never
/// linked and the driver has to be started by hand.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
