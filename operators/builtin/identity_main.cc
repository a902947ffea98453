// rainop-identity: see kIdentityUsage in operators/builtin/builtin_operators.cc.
#include "operators/builtin/builtin_operators.h"

int main(int argc, char** argv) {
  return rs::op::OperatorMain(argc, argv, "rainop-identity", rs::op::kIdentityUsage,
                              rs::op::MakeIdentity);
}
