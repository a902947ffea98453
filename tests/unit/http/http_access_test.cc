// Who an HTTP request acts as (daemon/http/http_access.h).
#include "daemon/http/http_access.h"

#include <catch2/catch.hpp>

namespace rs::http {
namespace {

using security::HttpTokenClaims;
using security::Role;

TEST_CASE("http callers: loopback reads without a token; a token decides elsewhere", "[http]") {
  CHECK(IsLoopback("127.0.0.1"));
  CHECK(IsLoopback("127.8.9.10"));
  CHECK(IsLoopback("::1"));
  CHECK(IsLoopback("::ffff:127.0.0.1"));
  CHECK_FALSE(IsLoopback("10.0.0.1"));
  CHECK_FALSE(IsLoopback("::ffff:10.0.0.1"));
  CHECK_FALSE(IsLoopback("1270.0.0.1"));
  CHECK(RequestToken("Bearer abc", "q") == "abc");
  CHECK(RequestToken("", "q") == "q");
  CHECK(RequestToken("Basic abc", "") == "");

  int checked = 0;
  TokenChecker check = [&](std::string_view t) -> Result<HttpTokenClaims> {
    ++checked;
    if (t == "admin") return HttpTokenClaims{"k", Role::kAdmin, 9};
    return Status::PermissionDenied("token refused: expired");
  };
  auto loop = CallerRole("127.0.0.1", "", check);
  REQUIRE(loop.ok());
  CHECK(*loop == Role::kRead);
  auto far = CallerRole("10.1.2.3", "", check);
  REQUIRE_FALSE(far.ok());
  CHECK(far.status().message().find("token is needed") != std::string::npos);
  auto admin = CallerRole("10.1.2.3", "admin", check);
  REQUIRE(admin.ok());
  CHECK(*admin == Role::kAdmin);
  // A bad token is refused even on loopback (it does not fall back to read).
  CHECK_FALSE(CallerRole("127.0.0.1", "stale", check).ok());
  CHECK(checked == 2);
}

}  // namespace
}  // namespace rs::http
