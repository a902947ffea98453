// Stable 64-bit hashing for ring placement and compact ids. The value is part of the wire and
// on-disk formats (ring ids are gossiped and printed), so never change the function.
#pragma once

#include <cstdint>
#include <string_view>

namespace rs {

// FNV-1a over the bytes, then the splitmix64 finalizer to spread nearby inputs over the ring.
constexpr uint64_t StableHash64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

}  // namespace rs
