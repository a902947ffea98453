#include "shared/util/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace rs {
namespace {

constexpr uint32_t kPoly = 0x82F63B78;  // reflected Castagnoli polynomial

// ---- portable: slice-by-8 ----

using SliceTables = std::array<std::array<uint32_t, 256>, 8>;

constexpr SliceTables MakeSliceTables() {
  SliceTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
  return t;
}

constexpr SliceTables kSlice = MakeSliceTables();

uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

// Works on the raw CRC register (no pre/post inversion).
uint32_t PortableRaw(uint32_t crc, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint64_t v = LoadLe64(p) ^ crc;
    crc = kSlice[7][v & 0xff] ^ kSlice[6][(v >> 8) & 0xff] ^ kSlice[5][(v >> 16) & 0xff] ^
          kSlice[4][(v >> 24) & 0xff] ^ kSlice[3][(v >> 32) & 0xff] ^ kSlice[2][(v >> 40) & 0xff] ^
          kSlice[1][(v >> 48) & 0xff] ^ kSlice[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ kSlice[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)

// ---- hardware: three interleaved crc32 streams ----
// The crc32 instruction has a latency of 3 cycles and a throughput of 1, so three independent
// streams over adjacent blocks run ~3x faster than one. The partial CRCs are then combined: the
// register of stream A, advanced over the `len` zero bytes that stream B covered, XORed with B's
// register (CRC is linear over GF(2)). "Advance over len zeros" is a 32x32 bit matrix, applied
// byte-wise through four 256-entry tables built once (M. Adler's construction).

constexpr size_t kLong = 8192;  // bytes per stream in the main loop
constexpr size_t kShort = 256;  // bytes per stream for the tail

using ShiftTable = std::array<std::array<uint32_t, 256>, 4>;

uint32_t Gf2MatrixTimes(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  for (; vec != 0; vec >>= 1, ++mat) {
    if (vec & 1) sum ^= *mat;
  }
  return sum;
}

void Gf2MatrixSquare(uint32_t* square, const uint32_t* mat) {
  for (int n = 0; n < 32; ++n) square[n] = Gf2MatrixTimes(mat, mat[n]);
}

// The operator that advances a CRC register over `len` zero bytes; `len` a power of two.
ShiftTable MakeShiftTable(size_t len) {
  uint32_t odd[32], even[32];
  odd[0] = kPoly;  // one zero bit
  for (int n = 1; n < 32; ++n) odd[n] = 1u << (n - 1);
  Gf2MatrixSquare(even, odd);  // two zero bits
  Gf2MatrixSquare(odd, even);  // four zero bits
  const uint32_t* op = nullptr;
  // Each square doubles the count: 8 bits (1 byte), 2 bytes, 4 bytes, ... until len is reached.
  while (true) {
    Gf2MatrixSquare(even, odd);
    len >>= 1;
    if (len == 0) {
      op = even;
      break;
    }
    Gf2MatrixSquare(odd, even);
    len >>= 1;
    if (len == 0) {
      op = odd;
      break;
    }
  }
  ShiftTable t{};
  for (uint32_t n = 0; n < 256; ++n) {
    for (int b = 0; b < 4; ++b) t[b][n] = Gf2MatrixTimes(op, n << (8 * b));
  }
  return t;
}

struct ShiftTables {
  ShiftTable long_shift = MakeShiftTable(kLong);
  ShiftTable short_shift = MakeShiftTable(kShort);
};

const ShiftTables& Shifts() {
  static const ShiftTables tables;  // built once, thread-safe (magic static)
  return tables;
}

uint32_t Shift(const ShiftTable& t, uint32_t crc) {
  return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
}

// Three streams of `block` bytes each from `p`; returns the combined register.
__attribute__((target("sse4.2"))) inline uint64_t Crc3Way(uint64_t crc0, const uint8_t* p,
                                                          size_t block, const ShiftTable& shift) {
  uint64_t crc1 = 0, crc2 = 0;
  const uint8_t* end = p + block;
  for (; p < end; p += 8) {
    uint64_t a, b, c;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + block, 8);
    std::memcpy(&c, p + 2 * block, 8);
    crc0 = _mm_crc32_u64(crc0, a);
    crc1 = _mm_crc32_u64(crc1, b);
    crc2 = _mm_crc32_u64(crc2, c);
  }
  crc0 = Shift(shift, static_cast<uint32_t>(crc0)) ^ crc1;
  return Shift(shift, static_cast<uint32_t>(crc0)) ^ crc2;
}

__attribute__((target("sse4.2"))) uint32_t HardwareRaw(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  // Align to 8 bytes so the 64-bit loads never straddle a cache line.
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  if (n >= 3 * kShort) {
    const ShiftTables& shifts = Shifts();
    for (; n >= 3 * kLong; p += 3 * kLong, n -= 3 * kLong) {
      c = Crc3Way(c, p, kLong, shifts.long_shift);
    }
    for (; n >= 3 * kShort; p += 3 * kShort, n -= 3 * kShort) {
      c = Crc3Way(c, p, kShort, shifts.short_shift);
    }
  }
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  while (n-- > 0) c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  return static_cast<uint32_t>(c);
}

#endif  // __x86_64__

using RawFn = uint32_t (*)(uint32_t, const uint8_t*, size_t);

RawFn PickImplementation() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return HardwareRaw;
#endif
  return PortableRaw;
}

}  // namespace

uint32_t Crc32c(const void* data, size_t n, uint32_t crc) {
  static const RawFn impl = PickImplementation();
  return ~impl(~crc, static_cast<const uint8_t*>(data), n);
}

uint32_t Crc32cPortable(const void* data, size_t n, uint32_t crc) {
  return ~PortableRaw(~crc, static_cast<const uint8_t*>(data), n);
}

}  // namespace rs
