#include "ctl/output.h"

#include <cstdio>
#include <ctime>

#include "shared/wire/fields.h"

namespace rs::ctl {

std::string Str(const msgpack::object& map, const char* key) {
  const msgpack::object* v = wire::MapGet(map, key);
  std::string out;
  if (v != nullptr && !wire::ReadString(*v, &out)) {
    uint64_t u = 0;
    bool b = false;
    if (wire::ReadUint(*v, &u)) return std::to_string(u);
    if (wire::ReadBool(*v, &b)) return b ? "true" : "false";
  }
  return out;
}

uint64_t Uint(const msgpack::object& map, const char* key) {
  const msgpack::object* v = wire::MapGet(map, key);
  uint64_t out = 0;
  if (v != nullptr) (void)wire::ReadUint(*v, &out);
  return out;
}

bool Bool(const msgpack::object& map, const char* key) {
  const msgpack::object* v = wire::MapGet(map, key);
  bool out = false;
  if (v != nullptr) (void)wire::ReadBool(*v, &out);
  return out;
}

const msgpack::object* ArrayField(const msgpack::object& map, const char* key) {
  const msgpack::object* v = wire::MapGet(map, key);
  return v != nullptr && v->type == msgpack::type::ARRAY ? v : nullptr;
}

std::string FormatTime(uint64_t wall_ms) {
  std::time_t secs = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof(out), "%s.%03u", buf, static_cast<unsigned>(wall_ms % 1000));
  return out;
}

std::string FormatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  }
  return buf;
}

void PrintJson(const msgpack::object& payload) { PrintJsonLine(wire::ToJson(payload)); }

void PrintJsonLine(const wire::Json& doc) { std::printf("%s\n", wire::DumpJson(doc).c_str()); }

int Run(Context& ctx, const std::string& cmd, const std::map<std::string, std::string>& args,
        const std::function<void(const msgpack::object&)>& text, int timeout_ms) {
  Outcome out = Command(ctx, cmd, args, timeout_ms);
  if (!out.ok()) return Fail(ctx, out);
  if (ctx.json) {
    PrintJson(out.reply.payload);
  } else if (text) {
    text(out.reply.payload);
  }
  return kExitOk;
}

}  // namespace rs::ctl
