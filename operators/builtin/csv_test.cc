#include "shared/util/csv.h"

#include <catch2/catch.hpp>
#include <random>

namespace rs::op {
namespace {

using Fields = std::vector<std::string>;

// The first line of the real Champaign traffic-signs export, BOM included.
const std::string kChampaignHeader =
    "\xEF\xBB\xBFX,Y,OBJECTID,Sign_Type,Size_,Supplement,Sign_Post,Year_Insta,Category,Notes,"
    "MUTCD,Ownership,FACILITYID,Schools,Location_Adjusted,Replacement_Zone,Sign_Text,Set_ID,"
    "FieldVerifiedDate,GlobalID";

}  // namespace

TEST_CASE("csv splits plain fields on commas", "[operators]") {
  CHECK(ParseCsvLine("a,b,c") == Fields{"a", "b", "c"});
  CHECK(ParseCsvLine("one") == Fields{"one"});
  CHECK(ParseCsvLine(" a , b ") == Fields{" a ", " b "});
}

TEST_CASE("csv keeps empty fields, including a trailing one", "[operators]") {
  CHECK(ParseCsvLine("") == Fields{""});
  CHECK(ParseCsvLine(",") == Fields{"", ""});
  CHECK(ParseCsvLine("a,,c") == Fields{"a", "", "c"});
  CHECK(ParseCsvLine("a,b,") == Fields{"a", "b", ""});
  CHECK(ParseCsvLine(",,,") == Fields{"", "", "", ""});
}

TEST_CASE("csv quoted fields hold commas and doubled quotes", "[operators]") {
  CHECK(ParseCsvLine("\"a,b\",c") == Fields{"a,b", "c"});
  CHECK(ParseCsvLine("\"say \"\"hi\"\"\",x") == Fields{"say \"hi\"", "x"});
  CHECK(ParseCsvLine("\"\"") == Fields{""});
  CHECK(ParseCsvLine("\"\"\"\"") == Fields{"\""});
  CHECK(ParseCsvLine("x,\"\"") == Fields{"x", ""});
  CHECK(ParseCsvLine("\"line\nbreak\",2") == Fields{"line\nbreak", "2"});
  // A real row: 16" X 42" is written "16"" X 42""".
  CHECK(ParseCsvLine("1,Streetname - Mast Arm,\"16\"\" X 42\"\"\", ,D3-1") ==
        Fields{"1", "Streetname - Mast Arm", "16\" X 42\"", " ", "D3-1"});
}

TEST_CASE("csv ignores one trailing line end", "[operators]") {
  CHECK(ParseCsvLine("a,b\n") == Fields{"a", "b"});
  CHECK(ParseCsvLine("a,b\r\n") == Fields{"a", "b"});
  CHECK(ParseCsvLine("a,\"b\"\r") == Fields{"a", "b"});
}

TEST_CASE("csv reads malformed quoting leniently", "[operators]") {
  CHECK(ParseCsvLine("a\"b,c") == Fields{"a\"b", "c"});
  CHECK(ParseCsvLine("\"ab\"cd,e") == Fields{"abcd", "e"});
  CHECK(ParseCsvLine("\"unterminated,x") == Fields{"unterminated,x"});
  CHECK(ParseCsvLine("\"") == Fields{""});
}

TEST_CASE("csv parsing reuses the caller's field vector", "[operators]") {
  Fields f;
  ParseCsvLine("a,b,c,d", &f);
  CHECK(f.size() == 4);
  ParseCsvLine("x,y", &f);
  CHECK(f == Fields{"x", "y"});
}

TEST_CASE("csv formatting quotes only the fields that need it", "[operators]") {
  CHECK(FormatCsvLine({"a", "b"}) == "a,b");
  CHECK(FormatCsvLine({"a,b", "c"}) == "\"a,b\",c");
  CHECK(FormatCsvLine({"say \"hi\""}) == "\"say \"\"hi\"\"\"");
  CHECK(FormatCsvLine({"two\nlines"}) == "\"two\nlines\"");
  CHECK(FormatCsvLine({"cr\r"}) == "\"cr\r\"");
  CHECK(FormatCsvLine({" lead", "trail ", "in side"}) == "\" lead\",\"trail \",in side");
  CHECK(FormatCsvLine({"", "", ""}) == ",,");
  CHECK(FormatCsvLine({}) == "");
}

TEST_CASE("csv format then parse gives the fields back", "[operators]") {
  const std::vector<Fields> cases = {
      {"a"},
      {"", ""},
      {"a,b", "\"q\"", " s "},
      {"x\ny", "\r\n"},
      {"\"", ",", ""},
      {"16\" X 42\"", "", "D3-1"},
  };
  for (const auto& fields : cases) CHECK(ParseCsvLine(FormatCsvLine(fields)) == fields);

  std::mt19937 rng(7);
  const std::string alphabet = "ab ,\"\r\n\t";
  for (int round = 0; round < 2000; ++round) {
    Fields fields(1 + rng() % 5);
    for (auto& f : fields) {
      size_t len = rng() % 6;
      for (size_t i = 0; i < len; ++i) f += alphabet[rng() % alphabet.size()];
    }
    INFO("line: " << FormatCsvLine(fields));
    REQUIRE(ParseCsvLine(FormatCsvLine(fields)) == fields);
  }
}

TEST_CASE("the csv header loses its byte order mark", "[operators]") {
  Fields names = ParseCsvHeader(kChampaignHeader);
  REQUIRE(names.size() == 20);
  CHECK(names[0] == "X");
  CHECK(names[2] == "OBJECTID");
  CHECK(names[3] == "Sign_Type");
  CHECK(names[19] == "GlobalID");
  CHECK(IsCsvHeaderLine(kChampaignHeader, kChampaignHeader));
  CHECK(IsCsvHeaderLine(kChampaignHeader.substr(3), kChampaignHeader));
  CHECK(IsCsvHeaderLine(kChampaignHeader + "\r\n", kChampaignHeader));
  CHECK_FALSE(IsCsvHeaderLine("1,2,3", kChampaignHeader));
}

TEST_CASE("column arguments take indexes, inclusive ranges and names", "[operators]") {
  auto resolve = [](std::string_view text, std::optional<std::string> header = std::nullopt) {
    Result<ColumnSpec> spec = ParseColumnSpec(text);
    REQUIRE(spec.ok());
    Result<std::vector<size_t>> cols = ResolveColumns(*spec, header);
    REQUIRE(cols.ok());
    return *cols;
  };
  using Cols = std::vector<size_t>;
  CHECK(resolve("0,3") == Cols{0, 3});
  CHECK(resolve("3,0") == Cols{3, 0});
  CHECK(resolve("0-2") == Cols{0, 1, 2});
  CHECK(resolve("5-5,1,1") == Cols{5, 1, 1});
  CHECK(resolve(" 1 , 2 - 3 ") == Cols{1, 2, 3});
  CHECK(resolve("OBJECTID,Sign_Type", kChampaignHeader) == Cols{2, 3});
  CHECK(resolve("X", kChampaignHeader) == Cols{0});  // the BOM is not part of the name
  CHECK(resolve("Sign_Type,0-1,GlobalID", kChampaignHeader) == Cols{3, 0, 1, 19});
  CHECK(resolve("\"a,b\",c", std::string("c,\"a,b\"")) == Cols{1, 0});
  CHECK(resolve("2", kChampaignHeader) == Cols{2});
}

TEST_CASE("bad column arguments fail with a clear reason", "[operators]") {
  auto syntax_error = [](std::string_view text) {
    Result<ColumnSpec> spec = ParseColumnSpec(text);
    REQUIRE_FALSE(spec.ok());
    CHECK(spec.status().code() == StatusCode::kInvalidArgument);
    return spec.status().message();
  };
  CHECK_THAT(syntax_error(""), Catch::Contains("empty"));
  CHECK_THAT(syntax_error("1,,2"), Catch::Contains("empty column"));
  CHECK_THAT(syntax_error("3-1"), Catch::Contains("descending"));
  CHECK_THAT(syntax_error("1-2-3"), Catch::Contains("bad column range"));
  CHECK_THAT(syntax_error("-1"), Catch::Contains("bad column range"));
  CHECK_THAT(syntax_error("99999999999999999999999"), Catch::Contains("too large"));

  auto resolve_error = [](std::string_view text, std::optional<std::string> header) {
    Result<ColumnSpec> spec = ParseColumnSpec(text);
    REQUIRE(spec.ok());
    Result<std::vector<size_t>> cols = ResolveColumns(*spec, header);
    REQUIRE_FALSE(cols.ok());
    return cols.status().message();
  };
  std::string unknown = resolve_error("Sign_Typo", kChampaignHeader);
  CHECK_THAT(unknown, Catch::Contains("unknown column 'Sign_Typo'"));
  CHECK_THAT(unknown, Catch::Contains("OBJECTID"));
  CHECK_THAT(resolve_error("OBJECTID", std::nullopt), Catch::Contains("no CSV header"));
  CHECK_THAT(resolve_error("0-1048576,0-1048576", std::nullopt), Catch::Contains("too many"));
}

}  // namespace rs::op
