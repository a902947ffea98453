// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every HyDFS chunk.
// Crc32c uses the SSE4.2 crc32 instruction (three interleaved streams) when the CPU has it and a
// slice-by-8 table otherwise; both give identical values. Pure functions: safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rs {

// The CRC of `n` bytes at `data`, continuing from `crc` (the result for the preceding bytes, or 0
// to start): Crc32c(b, nb, Crc32c(a, na)) == Crc32c(a ++ b, na + nb).
uint32_t Crc32c(const void* data, size_t n, uint32_t crc = 0);

// The table-driven implementation, whatever the CPU; exposed for tests and benchmarks.
uint32_t Crc32cPortable(const void* data, size_t n, uint32_t crc = 0);

}  // namespace rs
