#include "shared/wire/json.h"

#include <cmath>
#include <cstdio>

namespace rs::wire {
namespace {

constexpr int kMaxDepth = 64;

std::string Hex(const char* p, uint32_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (uint32_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(p[i]);
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

Json Convert(const msgpack::object& o, int depth) {
  if (depth > kMaxDepth) return nullptr;
  switch (o.type) {
    case msgpack::type::NIL:
      return nullptr;
    case msgpack::type::BOOLEAN:
      return o.via.boolean;
    case msgpack::type::POSITIVE_INTEGER:
      return o.via.u64;
    case msgpack::type::NEGATIVE_INTEGER:
      return o.via.i64;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      if (!std::isfinite(o.via.f64)) return nullptr;
      return o.via.f64;
    case msgpack::type::STR:
      return std::string(o.via.str.ptr, o.via.str.size);
    case msgpack::type::BIN:
      return Hex(o.via.bin.ptr, o.via.bin.size);
    case msgpack::type::EXT:  // ptr[0] is the ext type, data() the `size` data bytes
      return o.via.ext.ptr == nullptr ? std::string() : Hex(o.via.ext.data(), o.via.ext.size);
    case msgpack::type::ARRAY: {
      Json a = Json::array();
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        a.push_back(Convert(o.via.array.ptr[i], depth + 1));
      }
      return a;
    }
    case msgpack::type::MAP: {
      Json m = Json::object();
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        const msgpack::object& k = o.via.map.ptr[i].key;
        std::string key = k.type == msgpack::type::STR ? std::string(k.via.str.ptr, k.via.str.size)
                                                       : DumpJson(Convert(k, depth + 1));
        m[key] = Convert(o.via.map.ptr[i].val, depth + 1);
      }
      return m;
    }
  }
  return nullptr;
}

}  // namespace

Json ToJson(const msgpack::object& o) { return Convert(o, 0); }

std::string DumpJson(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace rs::wire
