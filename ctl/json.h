// MessagePack -> JSON text for `rainctl --json`. Maps with non-string keys get stringified
// keys; binary data becomes base64-free hex strings. Never throws.
#pragma once

#include <msgpack.hpp>
#include <string>

namespace rs::ctl {

std::string ToJson(const msgpack::object& o);
std::string JsonString(const std::string& s);  // a quoted, escaped JSON string

}  // namespace rs::ctl
