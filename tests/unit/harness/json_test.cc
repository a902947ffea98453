// The cluster tests' JSON reader (tests/harness/json.h): the typed reads the tests rely on, and
// documents written by rainctl's own writer (shared/wire/json.h) reading back exactly.
#include "tests/harness/json.h"

#include <catch2/catch.hpp>
#include <limits>

#include "shared/wire/json.h"

namespace rs::harness {
namespace {

Json Must(std::string_view text) {
  auto j = Json::Parse(text);
  INFO(text);
  REQUIRE(j.ok());
  return *j;
}

std::string Nested(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

}  // namespace

TEST_CASE("a document reads back with typed reads", "[harness][json]") {
  Json j = Must(R"({"s":"text","n":42,"f":1.5,"neg":-3,"t":true,"no":false,"z":null,)"
                R"("a":[1,"two",[3]],"o":{"k":"v"}})");
  CHECK(j.is_object());
  CHECK(j.type() == Json::Type::kObject);
  CHECK(j.size() == 9);
  CHECK(j["s"].Str() == "text");
  CHECK(j["n"].Uint() == 42);
  CHECK(j["n"].Double() == 42.0);
  CHECK(j["n"].Str() == "42");  // numbers read as their text
  CHECK(j["f"].Double() == 1.5);
  CHECK(j["f"].Str() == "1.5");
  CHECK(j["f"].Uint() == 1);
  CHECK(j["neg"].Uint() == 0);
  CHECK(j["neg"].Double() == -3.0);
  CHECK(j["neg"].Str() == "-3");
  CHECK(j["t"].Bool());
  CHECK(j["t"].Str() == "true");
  CHECK_FALSE(j["no"].Bool());
  CHECK(j["z"].is_null());
  CHECK(j.Has("z"));
  CHECK(j["z"].Str().empty());
  REQUIRE(j["a"].is_array());
  CHECK(j["a"].size() == 3);
  CHECK(j["a"][0].Uint() == 1);
  CHECK(j["a"][1].Str() == "two");
  CHECK(j["a"][2][0].Uint() == 3);
  CHECK(j["a"].items().size() == 3);
  CHECK(j["o"]["k"].Str() == "v");
  CHECK(j["o"].members().count("k") == 1);
}

TEST_CASE("other types read as zero values, absent members as one shared null", "[harness][json]") {
  Json j = Must(R"({"s":"7","b":true,"a":[1]})");
  CHECK(j["s"].Uint() == 0);  // a string that holds a number is still a string
  CHECK(j["s"].Double() == 0);
  CHECK_FALSE(j["s"].Bool());
  CHECK(j["b"].Uint() == 0);
  CHECK(j["a"].Str().empty());
  CHECK_FALSE(j.Has("missing"));
  CHECK(j["missing"].is_null());
  CHECK(&j["missing"] == &j["other"]["deeper"]);
  CHECK(j["a"][5].is_null());
  CHECK(j["a"]["key"].is_null());
  CHECK(j["s"][0].is_null());
  CHECK(j["s"].size() == 0);
}

TEST_CASE("integers keep every digit; floats read back as written", "[harness][json]") {
  Json j =
      Must(R"({"max":18446744073709551615,"big":18446744073709551616,"e":1e+16,"tiny":1e-05})");
  CHECK(j["max"].Uint() == std::numeric_limits<uint64_t>::max());
  CHECK(j["max"].Str() == "18446744073709551615");
  CHECK(j["big"].Uint() == 0);  // past uint64: a float
  CHECK(j["big"].Str() == "18446744073709551616");
  CHECK(j["e"].Uint() == 10000000000000000ULL);
  CHECK(j["e"].Str() == "1e+16");
  CHECK(j["tiny"].Uint() == 0);
  CHECK(j["tiny"].Double() == 1e-05);
}

TEST_CASE("escapes decode to UTF-8, surrogate pairs included", "[harness][json]") {
  Json j = Must(R"(["a\"b\\c\/d\n\t\r\b\f", "\u00e9\u20ac", "\ud83d\ude00", "caf\u00E9"])");
  CHECK(j[0].Str() == "a\"b\\c/d\n\t\r\b\f");
  CHECK(j[1].Str() == "\xc3\xa9\xe2\x82\xac");
  CHECK(j[2].Str() == "\xf0\x9f\x98\x80");
  CHECK(j[3].Str() == "caf\xc3\xa9");
}

TEST_CASE("a repeated key keeps its last value; members are sorted", "[harness][json]") {
  Json j = Must(R"({"b":1,"a":{"x":1},"b":[2],"a":"last"})");
  CHECK(j.size() == 2);
  CHECK(j["b"][0].Uint() == 2);
  CHECK(j["a"].Str() == "last");
  CHECK(j.members().begin()->first == "a");
}

TEST_CASE("surrounding whitespace is allowed, anything else is not", "[harness][json]") {
  CHECK(Must(" {\"a\":1}\r\n")["a"].Uint() == 1);
  CHECK(Must("7").Uint() == 7);
  CHECK(Must("\"x\"").Str() == "x");
  CHECK(Must("null").is_null());
  for (std::string_view bad :
       {"", " ", "{", "[1,]", "{\"a\"}", "{\"a\":1,}", "tru", "nul", "{} x", "{}{}", "[1 2]", "'a'",
        "\"unterminated", "\"\\x\"", "\"\\u12\"", "01", "{a:1}", "NaN", "\"tab\there\""}) {
    INFO(bad);
    auto j = Json::Parse(bad);
    REQUIRE_FALSE(j.ok());
    CHECK(j.status().code() == StatusCode::kCorruption);
    CHECK(j.status().message().rfind("json: ", 0) == 0);
  }
}

TEST_CASE("nesting is limited to 64 levels below the root", "[harness][json]") {
  CHECK(Must(Nested(65)).size() == 1);
  auto deep = Json::Parse(Nested(66));
  REQUIRE_FALSE(deep.ok());
  CHECK(deep.status().message() == "json: nesting too deep");
  CHECK_FALSE(Json::Parse(Nested(100000)).ok());
}

TEST_CASE("what rainctl's writer prints reads back exactly", "[harness][json]") {
  wire::Json doc = {{"job", "j-1"},
                    {"max", std::numeric_limits<uint64_t>::max()},
                    {"min", std::numeric_limits<int64_t>::min()},
                    {"rate", 0.1},
                    {"whole", 2.0},
                    {"ok", true},
                    {"none", nullptr},
                    {"bad", std::string("a\xff")},
                    {"nodes", wire::Json::array({{{"node", "n1"}, {"exit", 0}}})}};
  Json j = Must(wire::DumpJson(doc));
  CHECK(j["job"].Str() == "j-1");
  CHECK(j["max"].Uint() == std::numeric_limits<uint64_t>::max());
  CHECK(j["min"].Str() == "-9223372036854775808");
  CHECK(j["rate"].Double() == 0.1);
  CHECK(j["rate"].Str() == "0.1");
  CHECK(j["whole"].Uint() == 2);
  CHECK(j["whole"].Double() == 2.0);
  CHECK(j["ok"].Bool());
  CHECK(j["none"].is_null());
  CHECK(j["bad"].Str() == "a\xef\xbf\xbd");
  CHECK(j["nodes"][0]["node"].Str() == "n1");
  CHECK(j["nodes"][0]["exit"].Uint() == 0);
}

}  // namespace rs::harness
