#include "daemon/stream/local_inbox.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <unordered_map>

namespace rs::stream {
namespace {

std::mutex registry_mu;
std::unordered_map<std::string, std::weak_ptr<LocalInbox>>& Registry() {
  static auto* r = new std::unordered_map<std::string, std::weak_ptr<LocalInbox>>();
  return *r;
}

}  // namespace

std::shared_ptr<LocalInbox> LocalInbox::Register(const std::string& endpoint, size_t capacity) {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return nullptr;
  std::shared_ptr<LocalInbox> inbox(new LocalInbox(endpoint, capacity, fd));
  std::lock_guard<std::mutex> lock(registry_mu);
  Registry()[endpoint] = inbox;
  return inbox;
}

std::shared_ptr<LocalInbox> LocalInbox::Find(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(registry_mu);
  auto it = Registry().find(endpoint);
  if (it == Registry().end()) return nullptr;
  auto inbox = it->second.lock();
  if (!inbox) Registry().erase(it);
  return inbox;
}

LocalInbox::~LocalInbox() {
  Close();
  ::close(fd_);
}

void LocalInbox::Close() {
  {
    std::lock_guard<std::mutex> lock(registry_mu);
    auto it = Registry().find(endpoint_);
    // Only our own entry: a later inbox may have taken the endpoint (a port reused).
    if (it != Registry().end()) {
      auto current = it->second.lock();
      if (!current || current.get() == this) Registry().erase(it);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  frames_.clear();
}

void LocalInbox::Signal() {
  uint64_t one = 1;
  ssize_t w = ::write(fd_, &one, sizeof(one));
  (void)w;  // the counter cannot overflow here: a reader clears it
}

bool LocalInbox::Push(const std::string& frame) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || frames_.size() >= capacity_) return false;
    was_empty = frames_.empty();
    frames_.push_back(frame);
  }
  if (was_empty) Signal();  // the receiver clears the fd before it takes, so none is missed
  return true;
}

size_t LocalInbox::Take(std::deque<std::string>* out, size_t max) {
  uint64_t count;
  ssize_t r = ::read(fd_, &count, sizeof(count));  // clear first: a push after this signals again
  (void)r;
  size_t n = 0;
  bool more;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (n < max && !frames_.empty()) {
      out->push_back(std::move(frames_.front()));
      frames_.pop_front();
      ++n;
    }
    more = !frames_.empty();
  }
  if (more) Signal();
  return n;
}

}  // namespace rs::stream
