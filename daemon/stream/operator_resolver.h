// Where an operator name leads (README.md "Operators"): a path, or a built-in name looked up in
// $RAINSTORM_OPERATOR_PATH, beside raind's build tree (operators/builtin, operators/python), in
// the other operator_dirs, then in $PATH. Either way the executable, symlinks resolved, must lie
// under one of operator_dirs (README.md "Operator sandbox"). "hydfs:NAME" operators are fetched
// by the worker and never resolved here.
// Thread-safe (reads the environment and the file system only).
#pragma once

#include <string>
#include <vector>

#include "shared/status.h"

namespace rs::stream {

inline constexpr const char* kHydfsOperatorPrefix = "hydfs:";

// The operator_dirs entry standing for BuiltinOperatorDirs().
inline constexpr const char* kBuiltinOperatorDirs = "builtin";

// The directories of the built-in operators, most specific first: $RAINSTORM_OPERATOR_PATH,
// raind's build tree's operators/builtin and operators/python, the source tree's
// operators/python.
std::vector<std::string> BuiltinOperatorDirs();
// `operator_dirs` with "builtin" expanded, each made canonical (realpath); directories that do
// not exist are left out, duplicates too.
std::vector<std::string> AllowedOperatorDirs(const std::vector<std::string>& operator_dirs);

// The executable for `name`, canonical (symlinks resolved). NotFound with a message listing
// what was tried and the built-in names available; InvalidArgument, naming operator_dirs, when
// the executable lies outside every directory of `operator_dirs` (e.g. /bin/sh).
Result<std::string> ResolveOperator(const std::string& name,
                                    const std::vector<std::string>& operator_dirs);
// The built-in operator names found in the search directories (for messages and `--help`).
std::vector<std::string> BuiltinOperatorNames();

}  // namespace rs::stream
