#include "tests/harness/ctl.h"

#include <mutex>
#include <sstream>

#include "tests/harness/cluster.h"
#include "tests/harness/raind_process.h"

namespace rs::harness {
namespace {

std::string FirstLine(const std::string& text) {
  size_t nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl);
}

Status CommandStatus(const std::vector<std::string>& args, const CommandResult& r) {
  std::string what;
  for (const auto& a : args) what += " " + a;
  std::string msg = "rainctl" + what + ": " + (r.timed_out ? "timed out, " : "") +
                    r.status.ToString() + ": " + FirstLine(r.err);
  return r.code() == 3 ? Status::Unavailable(msg) : Status::Internal(msg);
}

std::mutex g_routes_mu;
std::map<std::string, std::vector<std::string>>& Routes() {
  static std::map<std::string, std::vector<std::string>> routes;  // guarded by g_routes_mu
  return routes;
}

}  // namespace

void RouteCtlHost(const std::string& host, std::vector<std::string> prefix) {
  std::lock_guard lock(g_routes_mu);
  Routes()[host] = std::move(prefix);
}

void UnrouteCtlHost(const std::string& host) {
  std::lock_guard lock(g_routes_mu);
  Routes().erase(host);
}

std::vector<std::string> CtlPrefixFor(const std::vector<std::string>& args) {
  std::string node;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--node") node = args[i + 1];
  }
  // HOST:PORT or a member id HOST:PORT#ms.
  std::string host = node.substr(0, node.find('#'));
  host = host.substr(0, host.rfind(':'));
  std::lock_guard lock(g_routes_mu);
  auto it = Routes().find(host);
  return it == Routes().end() ? std::vector<std::string>{} : it->second;
}

CommandResult RunCtl(const std::vector<std::string>& args, Clock::duration timeout) {
  auto binary = RainctlBinary();
  if (!binary.ok()) {
    CommandResult r;
    r.status.code = 127;
    r.err = binary.status().ToString();
    return r;
  }
  TestKeysDir();  // sets $RAIN_KEY
  std::vector<std::string> argv = CtlPrefixFor(args);
  argv.push_back(*binary);
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

Status StartCtl(const std::vector<std::string>& args, Subprocess* process) {
  auto binary = RainctlBinary();
  if (!binary.ok()) return binary.status();
  TestKeysDir();  // sets $RAIN_KEY
  std::vector<std::string> argv = CtlPrefixFor(args);
  argv.push_back(*binary);
  argv.insert(argv.end(), args.begin(), args.end());
  return process->Start(argv);
}

Result<Json> CtlJson(const std::string& node, const std::vector<std::string>& args) {
  std::vector<std::string> full = {"--node", node, "--json", "--timeout", "3000"};
  full.insert(full.end(), args.begin(), args.end());
  CommandResult r = RunCtl(full);
  if (r.code() != 0) return CommandStatus(full, r);
  auto json = Json::Parse(FirstLine(r.out));
  if (!json.ok())
    return Status::Corruption("rainctl printed bad JSON (" + json.status().message() +
                              "): " + r.out);
  return json;
}

std::string MemberList::StateOf(const std::string& id) const {
  auto it = members.find(id);
  return it == members.end() ? "absent" : it->second.state;
}

std::string MemberList::ToString() const {
  std::ostringstream s;
  s << "[at " << self << (in_cluster ? "" : " (not in cluster)") << ":";
  for (const auto& [id, m] : members) s << " " << id << "=" << m.state;
  s << "]";
  return s.str();
}

Result<MemberList> ListMem(const std::string& node) {
  auto json = CtlJson(node, {"list_mem"});
  if (!json.ok()) return json.status();
  const Json& j = *json;
  if (!j["members"].is_array()) return Status::Corruption("list_mem: no members array");
  MemberList list;
  list.self = j["self"].Str();
  list.in_cluster = j["in_cluster"].Bool();
  for (const Json& m : j["members"].items()) {
    MemberInfo info{m["id"].Str(), m["state"].Str(), m["incarnation"].Uint()};
    if (info.id.empty() || info.state.empty()) {
      return Status::Corruption("list_mem: member without id or state");
    }
    list.members[info.id] = info;
  }
  return list;
}

Result<ProtocolInfo> DisplayProtocol(const std::string& node) {
  auto json = CtlJson(node, {"display_protocol"});
  if (!json.ok()) return json.status();
  const Json& j = *json;
  if (!j.Has("protocol") || !j.Has("suspicion")) {
    return Status::Corruption("display_protocol: missing fields");
  }
  return ProtocolInfo{j["protocol"].Str(), j["suspicion"].Bool(), j["config_version"].Uint()};
}

Result<std::string> ConfigGet(const std::string& node, const std::string& key) {
  std::vector<std::string> args = {"--node", node, "--timeout", "3000", "config", "get", key};
  CommandResult r = RunCtl(args);
  if (r.code() != 0) return CommandStatus(args, r);
  return FirstLine(r.out);
}

Result<std::vector<EventInfo>> ParseEvents(const std::string& json_lines) {
  std::vector<EventInfo> events;
  std::istringstream in(json_lines);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = Json::Parse(line);
    if (!j.ok()) return Status::Corruption("event line is not JSON: " + line);
    events.push_back(EventInfo{(*j)["seq"].Uint(), (*j)["event"].Str(), (*j)["member"].Str(),
                               (*j)["detail"].Str()});
  }
  return events;
}

Result<std::vector<EventInfo>> History(const std::string& node, double seconds) {
  std::vector<std::string> args = {
      "--node",  node,      "--json",    "--timeout", "3000",
      "members", "--watch", "--history", "--for",     std::to_string(seconds)};
  CommandResult r = RunCtl(args);
  if (r.code() != 0) return CommandStatus(args, r);
  return ParseEvents(r.out);
}

Result<Json> Stats(const std::string& node) { return CtlJson(node, {"stats"}); }

}  // namespace rs::harness
