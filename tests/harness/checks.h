// Catch2 assertions and cluster-wide queries shared by the cluster tests. Include this (it
// brings eventually.h and cluster.h) from a test file.
#pragma once

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/harness/cluster.h"
#include "tests/harness/ctl.h"
#include "tests/harness/eventually.h"

// Requires an ok rs::Status (or a Result's .status()), printing it otherwise.
#define REQUIRE_OK(expr)                        \
  do {                                          \
    ::rs::Status rs_st_ = (expr);               \
    INFO(#expr << " -> " << rs_st_.ToString()); \
    REQUIRE(rs_st_.ok());                       \
  } while (0)

// Requires a rainctl run (a CommandResult) to end with `code`, printing its output otherwise.
#define REQUIRE_EXIT(result, expected_code)   \
  do {                                        \
    const auto& rs_r_ = (result);             \
    INFO("rainctl: " << rs_r_.Describe());    \
    REQUIRE(rs_r_.code() == (expected_code)); \
  } while (0)

namespace rs::harness {

// `rainctl --node <node> args...`.
CommandResult Ctl(const RaindProcess& node, const std::vector<std::string>& args,
                  Clock::duration timeout = kCtlTimeout);

// Every node reports this detector and suspicion setting (display_protocol).
bool AllReportProtocol(const std::vector<RaindProcess*>& nodes, const std::string& protocol,
                       bool suspicion, std::string* why);

// Events (of the given kinds) about any of `ids` in the histories of `observers`, one line each
// ("node2: fail 127.0.0.1:...#... (suspicion timed out, by ...)"). Unreachable observers add an
// "unreachable" line, so a caller that expects none notices.
std::vector<std::string> EventsAbout(const std::vector<RaindProcess*>& observers,
                                     const std::vector<std::string>& ids,
                                     const std::set<std::string>& kinds);

// The id a node reports for itself (list_self), "" when it does not answer.
std::string SelfId(const RaindProcess& node);

std::string Join(const std::vector<std::string>& lines, const std::string& sep = "\n");

}  // namespace rs::harness
