#include "daemon/http/http_access.h"

namespace rs::http {

bool IsLoopback(std::string_view a) {
  if (a.rfind("::ffff:", 0) == 0) a.remove_prefix(7);
  return a == "::1" || a.rfind("127.", 0) == 0;
}

std::string RequestToken(std::string_view authorization, std::string_view query_token) {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() > kBearer.size() && authorization.rfind(kBearer, 0) == 0) {
    return std::string(authorization.substr(kBearer.size()));
  }
  return std::string(query_token);
}

Result<security::Role> CallerRole(std::string_view remote_addr, const std::string& token,
                                  const TokenChecker& check) {
  if (!token.empty()) {
    auto claims = check(token);
    if (!claims.ok()) return claims.status();
    return claims->role;
  }
  if (IsLoopback(remote_addr)) return security::Role::kRead;
  return Status::PermissionDenied(
      "a client token is needed from " + std::string(remote_addr) +
      " (rainctl keys token prints one; send it as 'Authorization: Bearer TOKEN')");
}

}  // namespace rs::http
