// Membership commands: list_mem, list_self, list_mem_ids, join, leave, display_suspects,
// display_protocol, switch, enable_sus, disable_sus, status_sus, drop, config get|set,
// members --watch, stats.
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "ctl/commands.h"
#include "ctl/output.h"
#include "shared/clock.h"
#include "shared/wire/fields.h"

namespace rs::ctl {
namespace {

void PrintMembers(const msgpack::object& payload) {
  std::string self = Str(payload, "self");
  const msgpack::object* members = wire::MapGet(payload, "members");
  if (members == nullptr || members->type != msgpack::type::ARRAY) return;
  std::printf("  %-32s %-8s %5s  %-16s  %s\n", "ID", "STATE", "INC", "RING_ID", "SINCE");
  std::map<std::string, int> counts;
  for (uint32_t i = 0; i < members->via.array.size; ++i) {
    const msgpack::object& m = members->via.array.ptr[i];
    std::string id = Str(m, "id"), state = Str(m, "state");
    ++counts[state];
    std::printf("%s %-32s %-8s %5" PRIu64 "  %-16s  %s\n", id == self ? "*" : " ", id.c_str(),
                state.c_str(), Uint(m, "incarnation"), Str(m, "ring_id").c_str(),
                FormatTime(Uint(m, "since_ms")).c_str());
  }
  std::printf("%u members (%d alive, %d suspect, %d failed, %d left); * = this node\n",
              members->via.array.size, counts["alive"], counts["suspect"], counts["failed"],
              counts["left"]);
}

void PrintEvent(const msgpack::object& e) {
  std::printf("%s %-8s %s inc=%" PRIu64 " %s\n", FormatTime(Uint(e, "time_ms")).c_str(),
              Str(e, "event").c_str(), Str(e, "member").c_str(), Uint(e, "incarnation"),
              Str(e, "detail").c_str());
}

int Watch(Context& ctx, bool history, double seconds) {
  uint64_t since = 0;
  if (!history) {  // skip what already happened
    while (true) {
      Outcome out = Command(ctx, "events", {{"since", std::to_string(since)}});
      if (!out.ok()) return Fail(ctx, out);
      const msgpack::object& events = out.reply.payload;
      if (events.type != msgpack::type::ARRAY || events.via.array.size == 0) break;
      since = Uint(events.via.array.ptr[events.via.array.size - 1], "seq");
      if (events.via.array.size < 1000) break;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto until = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  while (seconds <= 0 || Clock::now() < until) {
    Outcome out = Command(ctx, "events", {{"since", std::to_string(since)}});
    if (!out.ok()) return Fail(ctx, out);
    const msgpack::object& events = out.reply.payload;
    if (events.type == msgpack::type::ARRAY) {
      for (uint32_t i = 0; i < events.via.array.size; ++i) {
        const msgpack::object& e = events.via.array.ptr[i];
        since = std::max(since, Uint(e, "seq"));
        if (ctx.json) {
          PrintJson(e);
        } else {
          PrintEvent(e);
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return kExitOk;
}

}  // namespace

void AddMembershipCommands(CLI::App& app, Context& ctx, int* exit_code) {
  auto simple = [&](const char* name, const char* help, const char* cmd,
                    std::function<void(const msgpack::object&)> text) {
    app.add_subcommand(name, help)->callback([&ctx, exit_code, cmd, text] {
      *exit_code = Run(ctx, cmd, {}, text);
    });
  };
  simple("list_mem", "list the membership list of the node (all states)", "list_mem", PrintMembers);
  simple("list_mem_ids", "list alive and suspect members sorted by ring id", "list_mem_ids",
         PrintMembers);
  simple("display_suspects", "list members currently suspected", "display_suspects",
         [](const msgpack::object& p) {
           const msgpack::object* members = wire::MapGet(p, "members");
           if (members == nullptr || members->type != msgpack::type::ARRAY) return;
           for (uint32_t i = 0; i < members->via.array.size; ++i) {
             std::printf("%s\n", Str(members->via.array.ptr[i], "id").c_str());
           }
           std::printf("%u suspect(s)\n", members->via.array.size);
         });
  simple(
      "list_self", "show this node's id, state and ports", "list_self",
      [](const msgpack::object& p) {
        std::printf("id=%s state=%s in_cluster=%s pid=%s\n", Str(p, "id").c_str(),
                    Str(p, "state").c_str(), Str(p, "in_cluster").c_str(), Str(p, "pid").c_str());
        const msgpack::object* self = wire::MapGet(p, "self");
        if (self != nullptr && self->type == msgpack::type::MAP) {
          std::printf("ring_id=%s incarnation=%" PRIu64 "\n", Str(*self, "ring_id").c_str(),
                      Uint(*self, "incarnation"));
        }
        std::printf("data_dir=%s log=%s\n", Str(p, "data_dir").c_str(), Str(p, "log_file").c_str());
      });
  auto protocol = [](const msgpack::object& p) {
    std::printf("protocol=%s suspicion=%s config_version=%s\n", Str(p, "protocol").c_str(),
                Str(p, "suspicion").c_str(), Str(p, "config_version").c_str());
  };
  simple("display_protocol", "show the failure detector and suspicion setting", "display_protocol",
         protocol);
  simple("status_sus", "show whether suspicion is on", "status_sus", [](const msgpack::object& p) {
    std::printf("suspicion=%s\n", Str(p, "suspicion") == "true" ? "on" : "off");
  });
  auto ok = [](const char* what) {
    return [what](const msgpack::object&) { std::printf("%s\n", what); };
  };
  simple("enable_sus", "turn suspicion on, cluster-wide", "enable_sus", ok("suspicion on"));
  simple("disable_sus", "turn suspicion off, cluster-wide", "disable_sus", ok("suspicion off"));
  simple("leave", "leave the cluster gracefully (the node keeps running, out of the cluster)",
         "leave", ok("left"));
  simple("stats", "membership traffic counters of the node", "stats", [](const msgpack::object& p) {
    if (p.type != msgpack::type::MAP) return;
    for (uint32_t i = 0; i < p.via.map.size; ++i) {
      std::string k, v;
      uint64_t u = 0;
      (void)wire::ReadString(p.via.map.ptr[i].key, &k);
      if (wire::ReadUint(p.via.map.ptr[i].val, &u)) v = std::to_string(u);
      std::printf("%s=%s\n", k.c_str(), v.c_str());
    }
  });

  auto* sw = app.add_subcommand("switch", "switch failure detector and suspicion, cluster-wide");
  static std::string sw_protocol, sw_suspicion;
  sw->add_option("protocol", sw_protocol, "gossip or ping")
      ->required()
      ->check(CLI::IsMember({"gossip", "ping"}));
  sw->add_option("suspicion", sw_suspicion, "suspect or nosuspect")
      ->required()
      ->check(CLI::IsMember({"suspect", "nosuspect"}));
  sw->callback([&ctx, exit_code] {
    *exit_code =
        Run(ctx, "switch", {{"protocol", sw_protocol}, {"suspicion", sw_suspicion}},
            [](const msgpack::object&) {
              std::printf("switched to %s %s\n", sw_protocol.c_str(), sw_suspicion.c_str());
            });
  });

  auto* drop =
      app.add_subcommand("drop", "drop RATE % of received membership messages (this node)");
  static double drop_rate = 0;
  drop->add_option("rate", drop_rate, "percentage 0-100")
      ->required()
      ->check(CLI::Range(0.0, 100.0));
  drop->callback([&ctx, exit_code] {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", drop_rate);
    std::string rate = buf;
    *exit_code = Run(ctx, "drop", {{"rate", rate}}, [rate](const msgpack::object&) {
      std::printf("drop rate %s%%\n", rate.c_str());
    });
  });

  auto* join = app.add_subcommand("join", "join (or rejoin, as a new member) through a member");
  static std::string introducer;
  join->add_option("introducer", introducer,
                   "HOST:PORT of a member (default: the node's --introducer)");
  join->callback([&ctx, exit_code] {
    std::map<std::string, std::string> args;
    if (!introducer.empty()) args["introducer"] = introducer;
    *exit_code = Run(
        ctx, "join", args, [](const msgpack::object&) { std::printf("joined\n"); },
        std::max(ctx.timeout_ms, 10000));
  });

  auto* config = app.add_subcommand("config", "read or change membership settings");
  config->require_subcommand(1);
  auto* get = config->add_subcommand("get", "show settings (all, or one KEY)");
  static std::string get_key, set_key, set_value;
  get->add_option("key", get_key, "setting name");
  get->callback([&ctx, exit_code] {
    std::map<std::string, std::string> args;
    if (!get_key.empty()) args["key"] = get_key;
    *exit_code = Run(ctx, "config_get", args, [](const msgpack::object& p) {
      if (p.type != msgpack::type::ARRAY) return;
      for (uint32_t i = 0; i < p.via.array.size; ++i) {
        const msgpack::object& e = p.via.array.ptr[i];
        if (get_key.empty()) {
          std::printf("%-22s %-8s (%s) %s\n", Str(e, "key").c_str(), Str(e, "value").c_str(),
                      Str(e, "scope").c_str(), Str(e, "doc").c_str());
        } else {
          std::printf("%s\n", Str(e, "value").c_str());
        }
      }
    });
  });
  auto* set =
      config->add_subcommand("set", "change a setting (cluster-wide keys reach every node)");
  set->add_option("key", set_key, "setting name")->required();
  set->add_option("value", set_value, "new value")->required();
  set->callback([&ctx, exit_code] {
    *exit_code = Run(
        ctx, "config_set", {{"key", set_key}, {"value", set_value}},
        [](const msgpack::object&) { std::printf("%s=%s\n", set_key.c_str(), set_value.c_str()); });
  });

  auto* members = app.add_subcommand("members", "membership events");
  static bool watch = false, history = false;
  static double watch_for = 0;
  members->add_flag("--watch", watch, "stream membership events as they happen");
  members->add_flag("--history", history, "start with the events the node remembers");
  members->add_option("--for", watch_for, "stop after SECONDS (default: until interrupted)")
      ->check(CLI::Range(0.0, 1e9));
  members->callback([&ctx, exit_code] {
    if (!watch) {
      *exit_code = Run(ctx, "list_mem", {}, PrintMembers);
      return;
    }
    *exit_code = Watch(ctx, history, watch_for);
  });
}

}  // namespace rs::ctl
