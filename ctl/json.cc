#include "ctl/json.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace rs::ctl {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

namespace {

void Append(const msgpack::object& o, std::string* out, int depth) {
  if (depth > 64) {
    *out += "null";
    return;
  }
  char buf[64];
  switch (o.type) {
    case msgpack::type::NIL:
      *out += "null";
      break;
    case msgpack::type::BOOLEAN:
      *out += o.via.boolean ? "true" : "false";
      break;
    case msgpack::type::POSITIVE_INTEGER:
      std::snprintf(buf, sizeof(buf), "%" PRIu64, o.via.u64);
      *out += buf;
      break;
    case msgpack::type::NEGATIVE_INTEGER:
      std::snprintf(buf, sizeof(buf), "%" PRId64, o.via.i64);
      *out += buf;
      break;
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      if (std::isfinite(o.via.f64)) {
        std::snprintf(buf, sizeof(buf), "%.17g", o.via.f64);
        *out += buf;
      } else {
        *out += "null";
      }
      break;
    case msgpack::type::STR:
      *out += JsonString(std::string(o.via.str.ptr, o.via.str.size));
      break;
    case msgpack::type::BIN:
    case msgpack::type::EXT: {
      std::string hex;
      const char* p = o.type == msgpack::type::BIN ? o.via.bin.ptr : o.via.ext.ptr;
      uint32_t n = o.type == msgpack::type::BIN ? o.via.bin.size : o.via.ext.size;
      for (uint32_t i = 0; i < n; ++i) {
        std::snprintf(buf, sizeof(buf), "%02x", static_cast<unsigned char>(p[i]));
        hex += buf;
      }
      *out += JsonString(hex);
      break;
    }
    case msgpack::type::ARRAY:
      *out += "[";
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        if (i) *out += ",";
        Append(o.via.array.ptr[i], out, depth + 1);
      }
      *out += "]";
      break;
    case msgpack::type::MAP:
      *out += "{";
      for (uint32_t i = 0; i < o.via.map.size; ++i) {
        if (i) *out += ",";
        const msgpack::object& k = o.via.map.ptr[i].key;
        if (k.type == msgpack::type::STR) {
          Append(k, out, depth + 1);
        } else {
          std::string key;
          Append(k, &key, depth + 1);
          *out += JsonString(key);
        }
        *out += ":";
        Append(o.via.map.ptr[i].val, out, depth + 1);
      }
      *out += "}";
      break;
  }
}

}  // namespace

std::string ToJson(const msgpack::object& o) {
  std::string out;
  Append(o, &out, 0);
  return out;
}

}  // namespace rs::ctl
