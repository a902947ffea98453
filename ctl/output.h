// Reading reply payloads and printing them: shared by every rainctl command group.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <msgpack.hpp>
#include <string>

#include "ctl/client.h"
#include "shared/wire/json.h"

namespace rs::ctl {

// The field `key` of a payload map as text ("" when absent); numbers and booleans are printed.
std::string Str(const msgpack::object& map, const char* key);
uint64_t Uint(const msgpack::object& map, const char* key);
bool Bool(const msgpack::object& map, const char* key);
// The field `key` when it is an array, else nullptr.
const msgpack::object* ArrayField(const msgpack::object& map, const char* key);
std::string FormatTime(uint64_t wall_ms);  // local time, ISO 8601 with milliseconds
std::string FormatBytes(uint64_t bytes);   // "1.5 MiB"
// --json output: one compact JSON document per line on stdout (shared/wire/json.h).
void PrintJson(const msgpack::object& payload);  // the payload converted by wire::ToJson
void PrintJsonLine(const wire::Json& doc);

// Runs one command and prints its payload as JSON (--json) or with `text`; returns the exit code.
int Run(Context& ctx, const std::string& cmd, const std::map<std::string, std::string>& args,
        const std::function<void(const msgpack::object&)>& text, int timeout_ms = 0);

}  // namespace rs::ctl
