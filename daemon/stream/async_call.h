// The completion of an asynchronous HyDFS call, polled by a task's loop: the call's callback
// (on a HyDFS thread) fills it, the loop reads it without blocking.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "shared/status.h"

namespace rs::stream {

class AsyncCall {
 public:
  static std::shared_ptr<AsyncCall> Make() { return std::make_shared<AsyncCall>(); }
  // The callback to hand the call; it keeps this alive.
  static std::function<void(Status)> Callback(const std::shared_ptr<AsyncCall>& c) {
    return [c](Status s) { c->Complete(std::move(s)); };
  }
  void Complete(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    status_ = std::move(s);
  }
  // True once the call completed; its outcome in *status.
  bool Done(Status* status) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (!done_) return false;
    *status = status_;
    return true;
  }

 private:
  mutable std::mutex mu_;
  bool done_ = false;
  Status status_;
};

}  // namespace rs::stream
