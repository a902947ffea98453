// main() of the partition tests: they need network namespaces (root, iproute2, nftables). Where
// those cannot be made the binary says why and exits 77, which meson reports as SKIP.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <iostream>

#include "tests/harness/netns.h"

int main(int argc, char** argv) {
  rs::Status supported = rs::harness::Network::Supported();
  if (!supported.ok()) {
    std::cerr << "SKIP: the partition tests need network namespaces: " << supported.ToString()
              << "\n";
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
