#include "daemon/membership/config.h"

#include <catch2/catch.hpp>

namespace rs::membership {

TEST_CASE("every key reads back what was set", "[membership][config]") {
  ClusterConfig c;
  LocalOptions l;
  REQUIRE(SetConfigValue(&c, &l, "protocol", "gossip").ok());
  REQUIRE(SetConfigValue(&c, &l, "suspicion", "off").ok());
  REQUIRE(SetConfigValue(&c, &l, "suspicion_timeout_ms", "2000").ok());
  REQUIRE(SetConfigValue(&c, &l, "drop_rate", "12.5").ok());
  CHECK(GetConfigValue(c, l, "protocol").value() == "gossip");
  CHECK(GetConfigValue(c, l, "suspicion").value() == "false");
  CHECK(GetConfigValue(c, l, "suspicion_timeout_ms").value() == "2000");
  CHECK(GetConfigValue(c, l, "drop_rate").value() == "12.5");
  for (const auto& key : ConfigKeys()) CHECK(GetConfigValue(c, l, key.name).ok());
}

TEST_CASE("bad values and unknown keys are refused and change nothing", "[membership][config]") {
  ClusterConfig c;
  LocalOptions l;
  ClusterConfig before = c;
  CHECK(SetConfigValue(&c, &l, "protocol", "carrier-pigeon").code() ==
        StatusCode::kInvalidArgument);
  CHECK(SetConfigValue(&c, &l, "drop_rate", "150").code() == StatusCode::kInvalidArgument);
  CHECK(SetConfigValue(&c, &l, "drop_rate", "nan").code() == StatusCode::kInvalidArgument);
  CHECK(SetConfigValue(&c, &l, "probe_interval_ms", "-5").code() == StatusCode::kInvalidArgument);
  CHECK(SetConfigValue(&c, &l, "probe_interval_ms", "12abc").code() ==
        StatusCode::kInvalidArgument);
  // A timeout longer than half the interval would leave no time for indirect probes.
  CHECK(SetConfigValue(&c, &l, "probe_timeout_ms", "200").code() == StatusCode::kInvalidArgument);
  CHECK(SetConfigValue(&c, &l, "no_such_key", "1").code() == StatusCode::kNotFound);
  CHECK(c.probe_timeout_ms == before.probe_timeout_ms);
  CHECK(c.protocol == before.protocol);
  CHECK(l.drop_rate == 0);
}

TEST_CASE("concurrent changes of different keys both survive a merge, in either order",
          "[membership][config]") {
  ClusterConfig base;
  StampAll(&base, "127.0.0.1:7001#1732150000123");
  LocalOptions l;
  ClusterConfig a = base, b = base;
  REQUIRE(SetConfigValue(&a, &l, "suspicion_timeout_ms", "2000").ok());
  a.stamps["suspicion_timeout_ms"] = MakeStamp(2, "127.0.0.1:7001#1732150000123");
  a.version = 2;
  REQUIRE(SetConfigValue(&b, &l, "probe_interval_ms", "500").ok());
  b.stamps["probe_interval_ms"] = MakeStamp(2, "127.0.0.1:7002#1732150000456");
  b.version = 2;
  ClusterConfig ab = a, ba = b;
  CHECK(MergeConfig(&ab, b));
  CHECK(MergeConfig(&ba, a));
  for (const ClusterConfig* c : {&ab, &ba}) {
    CHECK(c->suspicion_timeout_ms == 2000);
    CHECK(c->probe_interval_ms == 500);
  }
  CHECK(ab.Digest() == ba.Digest());
  CHECK_FALSE(MergeConfig(&ab, ba));  // nothing new: no change, no re-broadcast
}

TEST_CASE("concurrent changes of one key settle on the same winner everywhere",
          "[membership][config]") {
  ClusterConfig base;
  StampAll(&base, "127.0.0.1:7001#1732150000123");
  LocalOptions l;
  ClusterConfig a = base, b = base;
  REQUIRE(SetConfigValue(&a, &l, "protocol", "gossip").ok());
  a.stamps["protocol"] = MakeStamp(2, "127.0.0.1:7001#1732150000123");
  REQUIRE(SetConfigValue(&b, &l, "suspicion", "false").ok());
  REQUIRE(SetConfigValue(&b, &l, "protocol", "ping").ok());
  b.stamps["protocol"] = MakeStamp(2, "127.0.0.1:7002#1732150000456");
  ClusterConfig ab = a, ba = b;
  MergeConfig(&ab, b);
  MergeConfig(&ba, a);
  CHECK(ab.protocol == ba.protocol);
  CHECK(ab.Digest() == ba.Digest());
}

}  // namespace rs::membership
