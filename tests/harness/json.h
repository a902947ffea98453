// A JSON document tree for reading `rainctl --json` output in cluster tests. nlohmann-json
// (Debian's nlohmann-json3-dev) parses; this tree keeps numbers as their literal text, read as
// uint64/double on demand, so a uint64 up to 2^64-1 reads back exactly and Str() of a number is
// its text. Parse() never throws; a malformed document, or one nested deeper than 64 levels,
// yields a Corruption status. Value type; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"

namespace rs::harness {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  static Result<Json> Parse(std::string_view text);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_object() const { return type_ == Type::kObject; }
  bool is_array() const { return type_ == Type::kArray; }

  // Typed reads; a value of another type reads as the zero value.
  bool Bool() const { return type_ == Type::kBool && bool_; }
  uint64_t Uint() const;  // a float's integer part; 0 when negative or past uint64
  double Double() const;
  // The string value; numbers and booleans read as their text, so "port" works either way.
  std::string Str() const;

  // Object member (a shared null value when absent or not an object).
  const Json& operator[](std::string_view key) const;
  bool Has(std::string_view key) const;
  // Array element (null when out of range or not an array).
  const Json& operator[](size_t index) const;
  size_t size() const;  // elements of an array or members of an object
  const std::vector<Json>& items() const { return array_; }
  const std::map<std::string, Json, std::less<>>& members() const { return object_; }

 private:
  friend class JsonBuilder;
  Type type_ = Type::kNull;
  bool bool_ = false;
  std::string text_;  // string value, or the number's literal
  std::vector<Json> array_;
  std::map<std::string, Json, std::less<>> object_;
};

}  // namespace rs::harness
