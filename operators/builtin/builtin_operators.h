// The built-in operators (identity, grep, select, count) as Operator classes, built from their
// command-line arguments, plus the shared main() of the rainop-* executables. Argument syntax is
// checked when an operator is made (at startup); column names are resolved at hello, against the
// job's csv_header. An operator instance is single-threaded (one Session drives it).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "operators/builtin/operator_sdk.h"

namespace rs::op {

// Usage texts, printed by --help.
extern const char kIdentityUsage[];
extern const char kGrepUsage[];
extern const char kSelectUsage[];
extern const char kCountUsage[];

// Factories: InvalidArgument (one line, without the program name) for bad arguments.
// `args` excludes argv[0].
Result<std::unique_ptr<Operator>> MakeIdentity(const std::vector<std::string>& args);
Result<std::unique_ptr<Operator>> MakeGrep(const std::vector<std::string>& args);
Result<std::unique_ptr<Operator>> MakeSelect(const std::vector<std::string>& args);
Result<std::unique_ptr<Operator>> MakeCount(const std::vector<std::string>& args);

using OperatorFactory = Result<std::unique_ptr<Operator>> (*)(const std::vector<std::string>&);

// The whole main() of a rainop-* executable: --help/-h (before any "--") prints `usage` and
// returns 0; bad arguments print "<program>: <reason> (see --help)" and return 2; otherwise
// RunOperator.
int OperatorMain(int argc, char** argv, std::string_view program, const char* usage,
                 OperatorFactory make);

}  // namespace rs::op
