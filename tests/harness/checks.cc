#include "tests/harness/checks.h"

#include <algorithm>

namespace rs::harness {

CommandResult Ctl(const RaindProcess& node, const std::vector<std::string>& args,
                  Clock::duration timeout) {
  std::vector<std::string> full = {"--node", node.ControlAddress()};
  full.insert(full.end(), args.begin(), args.end());
  return RunCtl(full, timeout);
}

bool AllReportProtocol(const std::vector<RaindProcess*>& nodes, const std::string& protocol,
                       bool suspicion, std::string* why) {
  for (RaindProcess* n : nodes) {
    auto p = DisplayProtocol(n->ControlAddress());
    if (!p.ok()) {
      *why = n->name() + ": " + p.status().ToString();
      return false;
    }
    if (p->protocol != protocol || p->suspicion != suspicion) {
      *why = n->name() + " reports protocol=" + p->protocol +
             " suspicion=" + (p->suspicion ? "true" : "false") +
             " config_version=" + std::to_string(p->config_version);
      return false;
    }
  }
  why->clear();
  return true;
}

std::vector<std::string> EventsAbout(const std::vector<RaindProcess*>& observers,
                                     const std::vector<std::string>& ids,
                                     const std::set<std::string>& kinds) {
  std::vector<std::string> out;
  for (RaindProcess* o : observers) {
    auto events = History(o->ControlAddress());
    if (!events.ok()) {
      out.push_back(o->name() + ": unreachable: " + events.status().ToString());
      continue;
    }
    for (const EventInfo& e : *events) {
      if (!kinds.count(e.event)) continue;
      if (std::find(ids.begin(), ids.end(), e.member) == ids.end()) continue;
      out.push_back(o->name() + ": " + e.event + " " + e.member + " (" + e.detail + ")");
    }
  }
  return out;
}

std::string SelfId(const RaindProcess& node) {
  auto j = CtlJson(node.ControlAddress(), {"list_self"});
  return j.ok() ? (*j)["id"].Str() : "";
}

std::string Join(const std::vector<std::string>& lines, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) out += sep;
    out += lines[i];
  }
  return out;
}

}  // namespace rs::harness
