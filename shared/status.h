// Status and Result<T>: the error currency of RainStorm (modelled on leveldb's Status).
// A Status is a code plus a one-line message. Remote failures cross the wire as [code, message]
// so rainctl can print exactly what went wrong. Value types; safe to copy between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace rs {

enum class StatusCode : uint8_t {
  kOk = 0,
  kNotFound = 1,
  kAlreadyExists = 2,
  kInvalidArgument = 3,
  kCorruption = 4,
  kIOError = 5,
  kTimeout = 6,
  kUnavailable = 7,
  kFailedPrecondition = 8,
  kInternal = 9,
  kUnimplemented = 10,
  kPermissionDenied = 11,  // the caller's key lacks the role the request needs
};

// Stable lowercase names; used in logs, JSON output and FORMAT.md.
std::string_view StatusCodeName(StatusCode code);
// Maps a wire integer back to a code; unknown values become kInternal.
StatusCode StatusCodeFromWire(int64_t value);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status InvalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status Timeout(std::string m) { return {StatusCode::kTimeout, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "timeout: no reply from 127.0.0.1:7001 within 2000 ms"; "ok" when ok.
  std::string ToString() const;

  bool operator==(const Status& other) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) v_ = Status::Internal("Result built from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace rs

// Propagates a non-ok Status from an expression returning Status.
#define RS_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::rs::Status rs_status_ = (expr);        \
    if (!rs_status_.ok()) return rs_status_; \
  } while (0)

// Bugs are not statuses: log to stderr and abort.
#define RS_CHECK(cond)                                                   \
  do {                                                                   \
    if (!(cond)) ::rs::internal::CheckFailed(#cond, __FILE__, __LINE__); \
  } while (0)

namespace rs::internal {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line);
}  // namespace rs::internal
