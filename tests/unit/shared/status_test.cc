#include "shared/status.h"

#include <catch2/catch.hpp>

namespace rs {

TEST_CASE("a default status is ok and prints ok", "[status]") {
  Status s;
  CHECK(s.ok());
  CHECK(s.ToString() == "ok");
}

TEST_CASE("an error status prints its code name and message", "[status]") {
  Status s = Status::Timeout("no reply from 127.0.0.1:7001 within 50 ms");
  CHECK_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kTimeout);
  CHECK(s.ToString() == "timeout: no reply from 127.0.0.1:7001 within 50 ms");
}

TEST_CASE("status codes survive the wire and unknown codes become internal", "[status]") {
  for (int c = 0; c <= static_cast<int>(StatusCode::kUnimplemented); ++c) {
    CHECK(static_cast<int>(StatusCodeFromWire(c)) == c);
  }
  CHECK(StatusCodeFromWire(200) == StatusCode::kInternal);
  CHECK(StatusCodeFromWire(-1) == StatusCode::kInternal);
}

TEST_CASE("a result holds either a value or an error", "[status]") {
  Result<int> good(42);
  REQUIRE(good.ok());
  CHECK(*good == 42);
  Result<int> bad(Status::NotFound("nope"));
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kNotFound);
  Result<int> misuse(Status::Ok());  // an ok status carries no value: that is a bug, reported
  CHECK_FALSE(misuse.ok());
  CHECK(misuse.status().code() == StatusCode::kInternal);
}

}  // namespace rs
