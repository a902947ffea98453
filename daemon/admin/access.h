// Which client role each console command needs (rainctl's kAdminCommand). Read commands look;
// everything else changes the cluster and needs an admin key; the commands nodes send each other
// (the stream engine's task control) need a member key. Unknown commands need admin, so a new
// command is closed until it is listed here.
#pragma once

#include <string_view>

#include "shared/security/keys.h"

namespace rs::admin {

security::Role RoleNeeded(std::string_view cmd);

}  // namespace rs::admin
