// KeyringSync: a node's keys.* console commands, and the spreading of keyring changes to every
// member without a restart (serf's keyring, in the shape of SWIM's push-pull):
//   - keys.add / keys.revoke (admin) change this node's keyring, then push it to every alive
//     member at once;
//   - keys.sync (member) merges the caller's keyring and answers with ours, so one exchange
//     brings both sides level;
//   - every kSyncPeriod the node also exchanges with one random member (anti-entropy), so a node
//     that missed a push (down, cut off) catches up within seconds.
// Keyrings merge by entry stamps (shared/security/keys.h), so order and repetition do not
// matter. The calls run on the sync's own thread (blocking, each with a deadline), never on the
// admin or membership loops.
// Thread-safety: Command() from any thread; Start/Stop from the owner.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/membership/membership_service.h"
#include "shared/wire/envelope.h"

namespace rs::admin {

class KeyringSync {
 public:
  using Args = std::map<std::string, std::string>;
  using Reply = std::function<void(Status, wire::BodyWriter)>;

  explicit KeyringSync(membership::MembershipService* membership) : membership_(membership) {}
  ~KeyringSync() { Stop(); }

  void Start();
  void Stop();
  // keys.list, keys.add, keys.revoke, keys.sync; `done` may run on another thread.
  void Command(const std::string& cmd, const Args& args, const Reply& done);

 private:
  void Run();
  void Exchange(const std::string& endpoint);
  void PushAll() {
    std::lock_guard<std::mutex> lock(mu_);
    push_all_ = true;
    cv_.notify_one();
  }

  membership::MembershipService* membership_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool push_all_ = false, stop_ = false;
};

}  // namespace rs::admin
