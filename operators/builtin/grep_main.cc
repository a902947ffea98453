// rainop-grep: see kGrepUsage in operators/builtin/builtin_operators.cc.
#include "operators/builtin/builtin_operators.h"

int main(int argc, char** argv) {
  return rs::op::OperatorMain(argc, argv, "rainop-grep", rs::op::kGrepUsage, rs::op::MakeGrep);
}
