#include "shared/wire/fields.h"

#include <cmath>
#include <limits>

namespace rs::wire {

const char* TypeName(msgpack::type::object_type type) {
  switch (type) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "bool";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return "integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "float";
    case msgpack::type::STR:
      return "str";
    case msgpack::type::BIN:
      return "bin";
    case msgpack::type::ARRAY:
      return "array";
    case msgpack::type::MAP:
      return "map";
    case msgpack::type::EXT:
      return "ext";
  }
  return "unknown";
}

bool ReadUint(const msgpack::object& o, uint64_t* out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  *out = o.via.u64;
  return true;
}

bool ReadInt(const msgpack::object& o, int64_t* out) {
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    *out = o.via.i64;
    return true;
  }
  if (o.type == msgpack::type::POSITIVE_INTEGER &&
      o.via.u64 <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    *out = static_cast<int64_t>(o.via.u64);
    return true;
  }
  return false;
}

bool ReadBool(const msgpack::object& o, bool* out) {
  if (o.type != msgpack::type::BOOLEAN) return false;
  *out = o.via.boolean;
  return true;
}

bool ReadDouble(const msgpack::object& o, double* out) {
  switch (o.type) {
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      if (!std::isfinite(o.via.f64)) return false;
      *out = o.via.f64;
      return true;
    case msgpack::type::POSITIVE_INTEGER:
      *out = static_cast<double>(o.via.u64);
      return true;
    case msgpack::type::NEGATIVE_INTEGER:
      *out = static_cast<double>(o.via.i64);
      return true;
    default:
      return false;
  }
}

bool ReadString(const msgpack::object& o, std::string* out) {
  if (o.type != msgpack::type::STR) return false;
  out->assign(o.via.str.ptr, o.via.str.size);
  return true;
}

const msgpack::object* MapGet(const msgpack::object& map, std::string_view key) {
  if (map.type != msgpack::type::MAP) return nullptr;
  for (uint32_t i = 0; i < map.via.map.size; ++i) {
    const msgpack::object& k = map.via.map.ptr[i].key;
    if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
      return &map.via.map.ptr[i].val;
    }
  }
  return nullptr;
}

FieldReader::FieldReader(const msgpack::object& map, std::string_view what)
    : map_(map), what_(what) {
  if (map.type != msgpack::type::MAP) status_ = Status::Corruption(what_ + " is not a map");
}

void FieldReader::Fail(std::string message) {
  if (status_.ok()) status_ = Status::Corruption(what_ + ": " + message);
}

const msgpack::object* FieldReader::Get(std::string_view key) const { return MapGet(map_, key); }

const msgpack::object* FieldReader::Need(std::string_view key) {
  if (!ok()) return nullptr;
  const msgpack::object* v = MapGet(map_, key);
  if (v == nullptr) Fail("missing field '" + std::string(key) + "'");
  return v;
}

uint64_t FieldReader::Uint(std::string_view key, uint64_t max) {
  const msgpack::object* v = Need(key);
  uint64_t out = 0;
  if (v != nullptr && (!ReadUint(*v, &out) || out > max)) {
    Fail("field '" + std::string(key) + "' is not an unsigned integer <= " + std::to_string(max));
    return 0;
  }
  return out;
}

int64_t FieldReader::Int(std::string_view key) {
  const msgpack::object* v = Need(key);
  int64_t out = 0;
  if (v != nullptr && !ReadInt(*v, &out))
    Fail("field '" + std::string(key) + "' is not an integer");
  return out;
}

bool FieldReader::Bool(std::string_view key) {
  const msgpack::object* v = Need(key);
  bool out = false;
  if (v != nullptr && !ReadBool(*v, &out)) Fail("field '" + std::string(key) + "' is not a bool");
  return out;
}

double FieldReader::Double(std::string_view key) {
  const msgpack::object* v = Need(key);
  double out = 0;
  if (v != nullptr && !ReadDouble(*v, &out))
    Fail("field '" + std::string(key) + "' is not a number");
  return out;
}

std::string FieldReader::Str(std::string_view key, size_t max_len) {
  const msgpack::object* v = Need(key);
  std::string out;
  if (v != nullptr && (!ReadString(*v, &out) || out.size() > max_len)) {
    Fail("field '" + std::string(key) + "' is not a string of at most " + std::to_string(max_len) +
         " bytes");
    return {};
  }
  return out;
}

const msgpack::object* FieldReader::Array(std::string_view key) {
  const msgpack::object* v = Need(key);
  if (v != nullptr && v->type != msgpack::type::ARRAY) {
    Fail("field '" + std::string(key) + "' is not an array");
    return nullptr;
  }
  return v;
}

const msgpack::object* FieldReader::Map(std::string_view key) {
  const msgpack::object* v = Need(key);
  if (v != nullptr && v->type != msgpack::type::MAP) {
    Fail("field '" + std::string(key) + "' is not a map");
    return nullptr;
  }
  return v;
}

uint64_t FieldReader::UintOr(std::string_view key, uint64_t fallback, uint64_t max) {
  if (!ok() || Get(key) == nullptr) return fallback;
  return Uint(key, max);
}

bool FieldReader::BoolOr(std::string_view key, bool fallback) {
  if (!ok() || Get(key) == nullptr) return fallback;
  return Bool(key);
}

std::string FieldReader::StrOr(std::string_view key, std::string fallback, size_t max_len) {
  if (!ok() || Get(key) == nullptr) return fallback;
  return Str(key, max_len);
}

}  // namespace rs::wire
