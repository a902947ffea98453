// Where an operator name leads (README.md "Operators"): a path, or a built-in name looked up in
// $RAINSTORM_OPERATOR_PATH, beside raind's build tree (operators/builtin, operators/python), then
// in $PATH. "hydfs:NAME" operators are fetched by the worker and never resolved here.
// Thread-safe (reads the environment and the file system only).
#pragma once

#include <string>
#include <vector>

#include "shared/status.h"

namespace rs::stream {

inline constexpr const char* kHydfsOperatorPrefix = "hydfs:";

// The executable for `name`, or NotFound with a message listing what was tried and the
// built-in names available.
Result<std::string> ResolveOperator(const std::string& name);
// The built-in operator names found in the search directories (for messages and `--help`).
std::vector<std::string> BuiltinOperatorNames();

}  // namespace rs::stream
