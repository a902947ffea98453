// rainop-select: see kSelectUsage in operators/builtin/builtin_operators.cc.
#include "operators/builtin/builtin_operators.h"

int main(int argc, char** argv) {
  return rs::op::OperatorMain(argc, argv, "rainop-select", rs::op::kSelectUsage,
                              rs::op::MakeSelect);
}
