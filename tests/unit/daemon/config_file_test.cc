#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

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
  const stream::SandboxOptions& s = options.stream.sandbox;
  const stream::SandboxOptions& d = defaults.stream.sandbox;
  CHECK(s.user == d.user);
  CHECK(s.dirs == d.dirs);
  CHECK(s.max_memory_mb == d.max_memory_mb);
  CHECK(s.max_file_mb == d.max_file_mb);
  CHECK(s.max_files == d.max_files);
  CHECK(s.max_procs == d.max_procs);
  CHECK(options.http.bind == defaults.http.bind);
  CHECK(options.http.port == 0);
}

TEST_CASE("http keys: a port and an address (off loopback checked at start)", "[daemon][config]") {
  NodeOptions o;
  REQUIRE(ApplyConfigText("http_port = 9100\nhttp_bind = 127.0.0.2\n", "x", &o).ok());
  CHECK(o.http.port == 9100);
  CHECK(o.http.bind == "127.0.0.2");
  REQUIRE(ApplyConfigEntry("http_bind", "0.0.0.0", &o).ok());
  CHECK(o.http.bind == "0.0.0.0");
  for (const char* bind : {"", "10.0.0.1:80", "a b"}) {
    INFO(bind);
    CHECK(ApplyConfigEntry("http_bind", bind, &o).code() == StatusCode::kInvalidArgument);
  }
  CHECK_FALSE(ApplyConfigEntry("http_port", "70000", &o).ok());
}

TEST_CASE("the operator sandbox keys parse, and bad values are refused", "[daemon][config]") {
  NodeOptions o;
  REQUIRE(ApplyConfigText("operator_user = ops\n"
                          "operator_dirs = builtin, /opt/ops ,,/srv/ops/\n"
                          "operator_max_memory_mb = 0\n"
                          "operator_max_file_mb = 10\n"
                          "operator_max_files = 64\n"
                          "operator_max_procs = 32\n",
                          "x", &o)
              .ok());
  const stream::SandboxOptions& s = o.stream.sandbox;
  CHECK(s.user == "ops");
  CHECK(s.dirs == std::vector<std::string>{"builtin", "/opt/ops", "/srv/ops/"});
  CHECK(s.max_memory_mb == 0);
  CHECK(s.max_file_mb == 10);
  CHECK(s.max_files == 64);
  CHECK(s.max_procs == 32);
  REQUIRE(ApplyConfigEntry("operator_dirs", "", &o).ok());
  CHECK(o.stream.sandbox.dirs.empty());  // only hydfs: operators
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"operator_dirs", "relative/ops"},
                                                        {"operator_user", ""},
                                                        {"operator_max_memory_mb", "8"},
                                                        {"operator_max_files", "3"},
                                                        {"operator_max_procs", "-1"},
                                                        {"operator_max_file_mb", "lots"},
                                                        {"operator_nonsense", "1"}}) {
    CAPTURE(key, value);
    CHECK(ApplyConfigEntry(key, value, &o).code() == StatusCode::kInvalidArgument);
  }
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
