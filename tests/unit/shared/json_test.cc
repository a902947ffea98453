// MessagePack -> JSON (shared/wire/json.h): every MessagePack type, the odd cases (non-string
// map keys, NaN, nesting past the limit) and invalid UTF-8, pinned by their JSON text.
#include "shared/wire/json.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>

#include "shared/wire/envelope.h"

namespace rs::wire {
namespace {

template <typename F>
Json Convert(F pack) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pack(pk);
  msgpack::object_handle oh = msgpack::unpack(buf.data(), buf.size());
  return ToJson(oh.get());
}

template <typename F>
std::string Text(F pack) {
  return DumpJson(Convert(pack));
}

std::string Nested(int levels, const std::string& inner) {
  return std::string(levels, '[') + inner + std::string(levels, ']');
}

}  // namespace

TEST_CASE("nil and booleans become null, true and false", "[wire][json]") {
  CHECK(Text([](Packer& pk) { pk.pack_nil(); }) == "null");
  CHECK(Text([](Packer& pk) { pk.pack(true); }) == "true");
  CHECK(Text([](Packer& pk) { pk.pack(false); }) == "false");
}

TEST_CASE("integers keep every digit, up to uint64 max and down to int64 min", "[wire][json]") {
  CHECK(Text([](Packer& pk) { pk.pack(0); }) == "0");
  CHECK(Text([](Packer& pk) { pk.pack(42); }) == "42");
  CHECK(Text([](Packer& pk) { pk.pack(-7); }) == "-7");
  CHECK(Text([](Packer& pk) { pk.pack(std::numeric_limits<int64_t>::min()); }) ==
        "-9223372036854775808");
  Json max = Convert([](Packer& pk) { pk.pack(std::numeric_limits<uint64_t>::max()); });
  CHECK(max.is_number_unsigned());
  CHECK(max.get<uint64_t>() == std::numeric_limits<uint64_t>::max());
  CHECK(DumpJson(max) == "18446744073709551615");
}

TEST_CASE("floats are numbers; NaN and infinities become null", "[wire][json]") {
  CHECK(Text([](Packer& pk) { pk.pack(1.5); }) == "1.5");
  CHECK(Text([](Packer& pk) { pk.pack(0.1); }) == "0.1");
  // msgpack-c packs a whole double as an integer; a float64 that holds one stays a float.
  CHECK(Text([](Packer& pk) { pk.pack(2.0); }) == "2");
  CHECK(Text([](Packer& pk) { pk.pack(-3.0); }) == "-3");
  const char float64_two[] = "\xcb\x40\x00\x00\x00\x00\x00\x00\x00";
  msgpack::object_handle two = msgpack::unpack(float64_two, 9);
  CHECK(DumpJson(ToJson(two.get())) == "2.0");
  CHECK(Text([](Packer& pk) { pk.pack(-0.25f); }) == "-0.25");
  Json f = Convert([](Packer& pk) { pk.pack(1234.5); });
  CHECK(f.is_number_float());
  CHECK(f.get<double>() == 1234.5);
  CHECK(Text([](Packer& pk) { pk.pack(std::nan("")); }) == "null");
  CHECK(Text([](Packer& pk) { pk.pack(std::numeric_limits<double>::infinity()); }) == "null");
  CHECK(Text([](Packer& pk) { pk.pack(-std::numeric_limits<float>::infinity()); }) == "null");
}

TEST_CASE("strings are escaped; UTF-8 passes through", "[wire][json]") {
  CHECK(Text([](Packer& pk) { pk.pack(std::string("plain")); }) == "\"plain\"");
  CHECK(Text([](Packer& pk) { pk.pack(std::string("a\"b\\c\nd\te\x01")); }) ==
        "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
  CHECK(Text([](Packer& pk) { pk.pack(std::string("h\xc3\xa9llo \xe2\x82\xac")); }) ==
        "\"h\xc3\xa9llo \xe2\x82\xac\"");
  CHECK(Text([](Packer& pk) { pk.pack(std::string()); }) == "\"\"");
}

TEST_CASE("binary and ext data become lowercase hex strings", "[wire][json]") {
  CHECK(Text([](Packer& pk) {
          pk.pack_bin(3);
          pk.pack_bin_body("\x00\xff\x10", 3);
        }) == "\"00ff10\"");
  CHECK(Text([](Packer& pk) { pk.pack_bin(0); }) == "\"\"");
  // The ext type byte is not part of the data.
  CHECK(Text([](Packer& pk) {
          pk.pack_ext(2, 5);
          pk.pack_ext_body("\x01\xab", 2);
        }) == "\"01ab\"");
  CHECK(Text([](Packer& pk) {
          pk.pack_ext(4, -1);
          pk.pack_ext_body("\xde\xad\xbe\xef", 4);
        }) == "\"deadbeef\"");
}

TEST_CASE("arrays and maps nest, and maps keep the payload's order", "[wire][json]") {
  CHECK(Text([](Packer& pk) { pk.pack_array(0); }) == "[]");
  CHECK(Text([](Packer& pk) { pk.pack_map(0); }) == "{}");
  CHECK(Text([](Packer& pk) {
          pk.pack_array(3);
          pk.pack(1);
          pk.pack(std::string("a"));
          pk.pack_array(2);
          pk.pack(true);
          pk.pack_nil();
        }) == "[1,\"a\",[true,null]]");
  CHECK(Text([](Packer& pk) {
          pk.pack_map(3);
          pk.pack(std::string("zeta"));
          pk.pack(1);
          pk.pack(std::string("alpha"));
          pk.pack_map(1);
          pk.pack(std::string("x"));
          pk.pack(-2);
          pk.pack(std::string("mid"));
          pk.pack_array(1);
          pk.pack(std::string("y"));
        }) == "{\"zeta\":1,\"alpha\":{\"x\":-2},\"mid\":[\"y\"]}");
}

TEST_CASE("map keys that are not strings become their JSON text", "[wire][json]") {
  CHECK(Text([](Packer& pk) {
          pk.pack_map(6);
          pk.pack(1);
          pk.pack(std::string("int"));
          pk.pack(-3);
          pk.pack(std::string("neg"));
          pk.pack(true);
          pk.pack(std::string("bool"));
          pk.pack_nil();
          pk.pack(0);
          pk.pack_array(2);
          pk.pack(1);
          pk.pack(2);
          pk.pack(std::string("array"));
          pk.pack_bin(1);
          pk.pack_bin_body("\x0a", 1);
          pk.pack(std::string("bin"));
        }) ==
        "{\"1\":\"int\",\"-3\":\"neg\",\"true\":\"bool\",\"null\":0,\"[1,2]\":\"array\","
        "\"\\\"0a\\\"\":\"bin\"}");
}

TEST_CASE("values nested deeper than 64 levels become null", "[wire][json]") {
  auto nest = [](int levels) {
    return [levels](Packer& pk) {
      for (int i = 0; i < levels; ++i) pk.pack_array(1);
      pk.pack(7);
    };
  };
  CHECK(Text(nest(64)) == Nested(64, "7"));
  CHECK(Text(nest(65)) == Nested(65, "null"));
  CHECK(Text(nest(10000)) == Nested(65, "null"));
  // Maps count the same way.
  CHECK(Text([](Packer& pk) {
          for (int i = 0; i < 65; ++i) {
            pk.pack_map(1);
            pk.pack(std::string("k"));
          }
          pk.pack(1);
        }) == [] {
    std::string out;
    for (int i = 0; i < 65; ++i) out += "{\"k\":";
    return out + "null" + std::string(65, '}');
  }());
}

TEST_CASE("invalid UTF-8 is replaced by U+FFFD, never thrown", "[wire][json]") {
  const std::string fffd = "\xef\xbf\xbd";
  CHECK(DumpJson(Json(std::string("a\xff"
                                  "b"))) == "\"a" + fffd + "b\"");
  CHECK(DumpJson(Json(std::string("cut \xe2\x82"))) == "\"cut " + fffd + "\"");
  std::string bad = "k\xc3";
  Json from_wire = Convert([&](Packer& pk) {
    pk.pack_map(1);
    pk.pack(bad);
    pk.pack_array(1);
    pk.pack(bad);
  });
  std::string text;
  CHECK_NOTHROW(text = DumpJson(from_wire));
  CHECK(text == "{\"k" + fffd + "\":[\"k" + fffd + "\"]}");
}

}  // namespace rs::wire
