// Checked reads from untrusted MessagePack objects. FieldReader reads named fields of a map and
// remembers the first problem, so decoders stay linear:
//   FieldReader r(body);  auto id = r.Str("id");  auto inc = r.Uint("inc");
//   if (!r.ok()) return r.status();
// Nothing here throws. Thread-compatible.
#pragma once

#include <cstdint>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"

namespace rs::wire {

// The MessagePack name of a type ("nil", "bool", "integer", "float", "str", "bin", "array",
// "map", "ext"), for error messages about hostile input.
const char* TypeName(msgpack::type::object_type type);

// Value readers: false when the object has another type or is out of range.
bool ReadUint(const msgpack::object& o, uint64_t* out);
bool ReadInt(const msgpack::object& o, int64_t* out);
bool ReadBool(const msgpack::object& o, bool* out);
bool ReadDouble(const msgpack::object& o, double* out);
bool ReadString(const msgpack::object& o, std::string* out);
// The value under `key` in a map with string keys; nullptr when absent or `map` is not a map.
const msgpack::object* MapGet(const msgpack::object& map, std::string_view key);

class FieldReader {
 public:
  // `what` names the structure in error messages ("ping", "member record").
  explicit FieldReader(const msgpack::object& map, std::string_view what = "message");

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // Required fields: record an error when missing or mistyped and return a zero value.
  uint64_t Uint(std::string_view key, uint64_t max = UINT64_MAX);
  int64_t Int(std::string_view key);
  bool Bool(std::string_view key);
  double Double(std::string_view key);
  std::string Str(std::string_view key, size_t max_len = 1u << 20);
  const msgpack::object* Array(std::string_view key);  // nullptr (and an error) unless an array
  const msgpack::object* Map(std::string_view key);    // nullptr (and an error) unless a map
  // Optional fields: the fallback when absent; an error when present but mistyped.
  uint64_t UintOr(std::string_view key, uint64_t fallback, uint64_t max = UINT64_MAX);
  bool BoolOr(std::string_view key, bool fallback);
  std::string StrOr(std::string_view key, std::string fallback, size_t max_len = 1u << 20);
  const msgpack::object* Get(std::string_view key) const;  // nullptr when absent

  void Fail(std::string message);  // record a caller-detected problem

 private:
  const msgpack::object* Need(std::string_view key);

  const msgpack::object& map_;
  std::string what_;
  Status status_;
};

}  // namespace rs::wire
