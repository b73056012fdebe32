#ifndef TALLY_CRC32C_H
#define TALLY_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every Tally
/// WAL record, part block and footer. `crc` is the running value (0 to start); the
/// function applies the usual pre/post inversion, so
/// tally_crc32c(tally_crc32c(0, a), b) == tally_crc32c(0, a ++ b).
uint32_t tally_crc32c(uint32_t crc, const void *data, size_t length);

#endif
