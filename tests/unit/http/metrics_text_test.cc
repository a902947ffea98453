// The Prometheus text format as daemon/http/metrics_text.h writes it.
#include "daemon/http/metrics_text.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

namespace rs::http {
namespace {

TEST_CASE("metrics text: families, labels and values as the exposition format writes them",
          "[http]") {
  MetricsText m;
  m.Family("rainstorm_x_total", "counter", "Things\\counted\nhere.");
  m.Sample("rainstorm_x_total", {{"job", "j1"}, {"path", "a\"b\\c\nd"}}, 42);
  m.Sample("rainstorm_x_total", 0.25);
  CHECK(m.text() ==
        "# HELP rainstorm_x_total Things\\\\counted\\nhere.\n"
        "# TYPE rainstorm_x_total counter\n"
        "rainstorm_x_total{job=\"j1\",path=\"a\\\"b\\\\c\\nd\"} 42\n"
        "rainstorm_x_total 0.25\n");
  CHECK(FormatValue(1e15) == "1000000000000000");
  CHECK(FormatValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(FormatValue(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(FormatValue(std::nan("")) == "NaN");
  CHECK(FormatValue(-3) == "-3");
}

}  // namespace
}  // namespace rs::http
