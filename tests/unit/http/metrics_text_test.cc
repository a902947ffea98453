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

TEST_CASE("metrics text: a histogram has cumulative buckets, +Inf, sum and count", "[http]") {
  Histogram h;
  h.ObserveMicros(300);       // 0.0003 s: the first bucket (le 0.0005)
  h.ObserveMicros(500);       // exactly on a bound: that bucket
  h.ObserveMicros(20000);     // 0.02 s: le 0.025
  h.ObserveMicros(90000000);  // 90 s: only +Inf
  HistogramSnapshot snap = h.Take();
  REQUIRE(snap.Count() == 4);
  CHECK(snap.sum_seconds == Approx(90.0208));
  CHECK(snap.Quantile(0.5) == 0.0005);
  CHECK(snap.Quantile(0.75) == 0.025);
  CHECK(snap.Quantile(1.0) == 60);  // +Inf answers the last finite bound
  MetricsText m;
  m.Family("rainstorm_y_seconds", "histogram", "Y.");
  m.Histogram("rainstorm_y_seconds", {{"kind", "get"}}, snap);
  const std::string& t = m.text();
  CHECK(t.find("rainstorm_y_seconds_bucket{kind=\"get\",le=\"0.0005\"} 2\n") != std::string::npos);
  CHECK(t.find("rainstorm_y_seconds_bucket{kind=\"get\",le=\"0.01\"} 2\n") != std::string::npos);
  CHECK(t.find("rainstorm_y_seconds_bucket{kind=\"get\",le=\"0.025\"} 3\n") != std::string::npos);
  CHECK(t.find("rainstorm_y_seconds_bucket{kind=\"get\",le=\"60\"} 3\n") != std::string::npos);
  CHECK(t.find("rainstorm_y_seconds_bucket{kind=\"get\",le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(t.find("rainstorm_y_seconds_count{kind=\"get\"} 4\n") != std::string::npos);
  CHECK(t.find("rainstorm_y_seconds_sum{kind=\"get\"} 90.0208\n") != std::string::npos);

  MetricsText empty;
  empty.Histogram("rainstorm_z_seconds", {}, Histogram().Take());
  CHECK(empty.text().find("rainstorm_z_seconds_bucket{le=\"+Inf\"} 0\n") != std::string::npos);
  CHECK(empty.text().find("rainstorm_z_seconds_count 0\n") != std::string::npos);

  HistogramSnapshot sum;
  sum.Add(snap);
  sum.Add(snap);
  CHECK(sum.Count() == 8);
  CHECK(sum.Quantile(0.5) == 0.0005);
}

}  // namespace
}  // namespace rs::http
