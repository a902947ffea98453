// MessagePack -> JSON, on nlohmann-json (Debian's nlohmann-json3-dev): `rainctl --json` and the
// HTTP console's API turn the same command payloads into the same JSON. Map keys that are not
// strings become their JSON text; binary and ext data become hex strings; NaN and infinities,
// and anything nested deeper than 64 levels, become null. Never throws.
#pragma once

#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace rs::wire {

using Json = nlohmann::ordered_json;  // members keep the payload's order

Json ToJson(const msgpack::object& o);
// Compact JSON text; invalid UTF-8 in a string is replaced (U+FFFD), never thrown.
std::string DumpJson(const Json& j);

}  // namespace rs::wire
