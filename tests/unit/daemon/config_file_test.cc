#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "daemon/node.h"

namespace rs {

TEST_CASE("the shipped example config file parses to the defaults", "[daemon][config]") {
  std::ifstream in(std::string(RS_SOURCE_ROOT) + "/daemon/raind.conf.example");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  NodeOptions options;
  NodeOptions defaults;
  REQUIRE(ApplyConfigText(text.str(), "raind.conf.example", &options).ok());
  CHECK(options.host == defaults.host);
  CHECK(options.port == 0);
  CHECK(options.membership.cluster.probe_interval_ms ==
        defaults.membership.cluster.probe_interval_ms);
  CHECK(options.membership.cluster.suspicion == defaults.membership.cluster.suspicion);
  CHECK(options.membership.local.join_timeout_ms == defaults.membership.local.join_timeout_ms);
}

TEST_CASE("config file errors name the file and line and change nothing after them",
          "[daemon][config]") {
  NodeOptions options;
  Status st = ApplyConfigText("port = 7001\n# fine\nprobe_interval_ms = 10\n", "my.conf", &options);
  REQUIRE_FALSE(st.ok());
  CHECK(st.message().find("my.conf:3") != std::string::npos);
  CHECK(ApplyConfigText("no equals sign here\n", "x.conf", &options).code() ==
        StatusCode::kInvalidArgument);
  CHECK(ApplyConfigText("introducer = not-an-address\n", "x.conf", &options).code() ==
        StatusCode::kInvalidArgument);
  CHECK(ApplyConfigText("unknown_key = 1\n", "x.conf", &options).code() == StatusCode::kNotFound);
  CHECK(ApplyConfigText("port = 70000\n", "x.conf", &options).code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("values may carry trailing comments and spaces", "[daemon][config]") {
  NodeOptions options;
  REQUIRE(ApplyConfigText("  suspicion_timeout_ms =  2500   # longer\r\nprotocol=gossip\n", "x",
                          &options)
              .ok());
  CHECK(options.membership.cluster.suspicion_timeout_ms == 2500);
  CHECK(options.membership.cluster.protocol == membership::Protocol::kGossip);
}

}  // namespace rs
