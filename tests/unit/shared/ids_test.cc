#include "shared/ids.h"

#include <catch2/catch.hpp>

#include "shared/util/hash.h"

namespace rs {

TEST_CASE("a node id prints host, port and a 13-digit start time and parses back", "[ids]") {
  NodeId id("127.0.0.1", 7001, 1732150000123ULL);
  CHECK(id.str() == "127.0.0.1:7001#1732150000123");
  auto parsed = NodeId::Parse(id.str());
  REQUIRE(parsed.ok());
  CHECK(*parsed == id);
  CHECK(parsed->port() == 7001);
  CHECK(parsed->start_ms() == 1732150000123ULL);
  CHECK(parsed->address().ToString() == "127.0.0.1:7001");
}

TEST_CASE("node ids are prefix-free so they can be subscription topics", "[ids]") {
  NodeId a("127.0.0.1", 700, 1732150000123ULL);
  NodeId b("127.0.0.1", 7001, 1732150000123ULL);
  CHECK(b.str().rfind(a.str(), 0) != 0);
  CHECK(a.str().rfind(b.str(), 0) != 0);
}

TEST_CASE("malformed node ids and addresses are rejected, not crashed on", "[ids]") {
  for (const char* bad :
       {"", "#", "127.0.0.1#1732150000123", "127.0.0.1:0#1732150000123",
        "127.0.0.1:70000#1732150000123", "127.0.0.1:7001#12", "127.0.0.1:7001#17321500001234",
        "127.0.0.1:7001#17321500001x3", "bad host:7001#1732150000123", ":7001#1732150000123"}) {
    CHECK_FALSE(NodeId::Parse(bad).ok());
  }
  CHECK_FALSE(HostPort::Parse("localhost").ok());
  CHECK_FALSE(HostPort::Parse("localhost:").ok());
  CHECK_FALSE(HostPort::Parse("localhost:-1").ok());
  CHECK_FALSE(HostPort::Parse("localhost:0").ok());
  CHECK(HostPort::Parse("localhost:0", /*allow_zero=*/true).ok());
  CHECK(HostPort::Parse("localhost:65535").ok());
}

TEST_CASE("the stable hash is pinned: ring ids must not change between releases", "[ids]") {
  // Golden values: changing StableHash64 would move every file on the ring.
  // Values computed independently (FNV-1a 64 then the splitmix64 finalizer, in Python).
  CHECK(StableHash64("") == 0xf52a15e9a9b5e89bULL);
  CHECK(StableHash64("127.0.0.1:7001#1732150000123") == 0xc32f52b015e31722ULL);
  CHECK(StableHash64("127.0.0.1:7001#1732150000123") !=
        StableHash64("127.0.0.1:7002#1732150000123"));
}

}  // namespace rs
