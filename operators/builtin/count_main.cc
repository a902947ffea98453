// rainop-count: see kCountUsage in operators/builtin/builtin_operators.cc.
#include "operators/builtin/builtin_operators.h"

int main(int argc, char** argv) {
  return rs::op::OperatorMain(argc, argv, "rainop-count", rs::op::kCountUsage, rs::op::MakeCount);
}
