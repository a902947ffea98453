#include "daemon/admin/access.h"

#include <array>

namespace rs::admin {
namespace {

constexpr std::array<std::string_view, 22> kReadCommands = {
    "status",           "list_self",  "list_mem",    "list_mem_ids",    "display_suspects",
    "display_protocol", "status_sus", "config_get",  "events",          "stats",
    "hydfs.get",        "hydfs.ls",   "hydfs.lsall", "hydfs.liststore", "hydfs.stats",
    "log.grep",         "log.follow", "job.list",    "job.status",      "job.tasks",
    "job.output",       "log.tail",
};

// Keyring exchange between nodes. (The stream engine's calls between daemons are typed
// messages of their own, daemon/stream/messages.h, registered with the member role.)
constexpr std::array<std::string_view, 1> kMemberCommands = {
    "keys.sync",
};

}  // namespace

security::Role RoleNeeded(std::string_view cmd) {
  for (std::string_view c : kReadCommands) {
    if (c == cmd) return security::Role::kRead;
  }
  for (std::string_view c : kMemberCommands) {
    if (c == cmd) return security::Role::kMember;
  }
  return security::Role::kAdmin;
}

}  // namespace rs::admin
