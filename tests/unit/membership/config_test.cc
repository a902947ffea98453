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

TEST_CASE("config stamps order versions and break ties by origin", "[membership][config]") {
  ClusterConfig a, b;
  a.version = 2;
  a.origin = "127.0.0.1:7001#1732150000123";
  b.version = 3;
  b.origin = "127.0.0.1:7001#1732150000123";
  CHECK(b.Stamp() > a.Stamp());
  b.version = 2;
  b.origin = "127.0.0.1:7002#1732150000123";
  CHECK(a.Stamp() != b.Stamp());
}

}  // namespace rs::membership
