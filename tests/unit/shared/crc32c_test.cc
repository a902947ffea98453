#include "shared/util/crc32c.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace rs {
namespace {

std::vector<uint8_t> RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

}  // namespace

TEST_CASE("crc32c matches the published check values", "[crc32c]") {
  const std::string check = "123456789";
  CHECK(Crc32c(check.data(), check.size()) == 0xE3069283u);
  CHECK(Crc32cPortable(check.data(), check.size()) == 0xE3069283u);
  CHECK(Crc32c("", 0) == 0u);

  // RFC 3720 (iSCSI) appendix B.4 vectors.
  std::vector<uint8_t> zeros(32, 0x00), ones(32, 0xff), inc(32), dec(32);
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<uint8_t>(i);
    dec[i] = static_cast<uint8_t>(31 - i);
  }
  CHECK(Crc32c(zeros.data(), 32) == 0x8A9136AAu);
  CHECK(Crc32c(ones.data(), 32) == 0x62A8AB43u);
  CHECK(Crc32c(inc.data(), 32) == 0x46DD794Eu);
  CHECK(Crc32c(dec.data(), 32) == 0x113FDB5Cu);
  CHECK(Crc32cPortable(zeros.data(), 32) == 0x8A9136AAu);
  CHECK(Crc32cPortable(dec.data(), 32) == 0x113FDB5Cu);
}

TEST_CASE("crc32c extends over split buffers", "[crc32c]") {
  auto data = RandomBytes(100000, 1);
  uint32_t whole = Crc32c(data.data(), data.size());
  for (size_t split : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{767}, size_t{768},
                       size_t{24575}, size_t{24576}, size_t{50001}, data.size()}) {
    INFO("split at " << split);
    uint32_t first = Crc32c(data.data(), split);
    CHECK(Crc32c(data.data() + split, data.size() - split, first) == whole);
    uint32_t pfirst = Crc32cPortable(data.data(), split);
    CHECK(Crc32cPortable(data.data() + split, data.size() - split, pfirst) == whole);
  }
  // Byte by byte.
  uint32_t crc = 0;
  for (size_t i = 0; i < 1000; ++i) crc = Crc32c(&data[i], 1, crc);
  CHECK(crc == Crc32c(data.data(), 1000));
}

TEST_CASE("hardware and portable crc32c agree on every length and alignment", "[crc32c]") {
  // Long enough to take the 3 x 8 KiB and 3 x 256 B interleaved paths and their tails.
  auto data = RandomBytes(3 * 8192 * 2 + 3 * 256 + 64, 2);
  std::mt19937_64 rng(3);
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 1024; ++n) lengths.push_back(n);
  for (size_t n : {size_t{3 * 256 - 1}, size_t{3 * 8192 - 1}, size_t{3 * 8192},
                   size_t{3 * 8192 + 1}, size_t{3 * 8192 * 2 + 3 * 256 + 7}}) {
    lengths.push_back(n);
  }
  for (int i = 0; i < 200; ++i) lengths.push_back(rng() % (data.size() - 8));
  for (size_t n : lengths) {
    for (size_t offset = 0; offset < 8; ++offset) {
      if (offset + n > data.size()) continue;
      uint32_t seed = static_cast<uint32_t>(rng());
      INFO("length " << n << " offset " << offset);
      REQUIRE(Crc32c(data.data() + offset, n, seed) ==
              Crc32cPortable(data.data() + offset, n, seed));
    }
  }
}

TEST_CASE("crc32c detects a single flipped bit", "[crc32c]") {
  auto data = RandomBytes(4096, 4);
  uint32_t before = Crc32c(data.data(), data.size());
  data[1234] ^= 0x10;
  CHECK(Crc32c(data.data(), data.size()) != before);
}

}  // namespace rs
