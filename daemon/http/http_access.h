// Who an HTTP request acts as (daemon/http/README.md "Access"): a request with a client token
// (shared/security/http_token.h; `Authorization: Bearer TOKEN`, or `?token=TOKEN` for a page
// opened in a browser) acts with its key's role; one without a token acts as `read` when it comes
// from loopback, and is refused from anywhere else. Commands check the role as they do for
// rainctl (daemon/admin/access.h). Pure.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "shared/security/http_token.h"
#include "shared/status.h"

namespace rs::http {

bool IsLoopback(std::string_view remote_addr);  // 127.0.0.0/8, ::1, ::ffff:127.x.y.z

// The token of a request: the bearer token of `authorization`, else `query_token`; empty when
// neither names one.
std::string RequestToken(std::string_view authorization, std::string_view query_token);

using TokenChecker = std::function<Result<security::HttpTokenClaims>(std::string_view token)>;

// The role the request acts with, or why it is refused (PermissionDenied: answer 401).
Result<security::Role> CallerRole(std::string_view remote_addr, const std::string& token,
                                  const TokenChecker& check);

}  // namespace rs::http
