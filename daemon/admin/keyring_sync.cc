#include "daemon/admin/keyring_sync.h"

#include <random>

#include "shared/clock.h"
#include "shared/logging.h"
#include "shared/transport/rpc.h"
#include "shared/transport/security.h"

namespace rs::admin {
namespace {

constexpr auto kSyncPeriod = std::chrono::seconds(2);
constexpr auto kCallDeadline = std::chrono::milliseconds(1000);
constexpr size_t kMaxKeyringBytes = 1 << 20;

std::shared_ptr<spdlog::logger> Log() { return Logger("security"); }

std::string ArgOf(const KeyringSync::Args& args, const char* key) {
  auto it = args.find(key);
  return it == args.end() ? "" : it->second;
}

wire::BodyWriter RingBody() {
  std::string text = transport::CurrentKeyring()->Serialize();
  return [text](wire::Packer& pk) { pk.pack(text); };
}

}  // namespace

void KeyringSync::Start() {
  if (!transport::SecurityEnabled()) return;
  thread_ = std::thread([this] { Run(); });
}

void KeyringSync::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void KeyringSync::Command(const std::string& cmd, const Args& args, const Reply& done) {
  if (!transport::SecurityEnabled()) {
    done(Status::FailedPrecondition("this node runs --insecure: it has no keyring"), {});
    return;
  }
  if (cmd == "keys.list") {
    done(Status::Ok(), RingBody());
    return;
  }
  security::Keyring change = *transport::CurrentKeyring();
  if (cmd == "keys.add") {
    auto role = security::ParseRole(ArgOf(args, "role"));
    std::string key = ArgOf(args, "public"), name = ArgOf(args, "name");
    if (!role || !security::IsKeyText(key) || name.empty()) {
      done(Status::InvalidArgument("keys.add needs role (member, admin, read), public and name"),
           {});
      return;
    }
    change.Put(key, *role, name, WallMillis());
  } else if (cmd == "keys.revoke") {
    if (!change.Revoke(ArgOf(args, "key"), WallMillis())) {
      done(Status::NotFound("no key '" + ArgOf(args, "key") + "' on the keyring"), {});
      return;
    }
  } else if (cmd == "keys.sync") {
    std::string text = ArgOf(args, "keyring");
    auto theirs = security::Keyring::Parse(text.substr(0, kMaxKeyringBytes));
    if (!theirs.ok()) {
      done(theirs.status(), {});
      return;
    }
    auto merged = transport::MergeKeyring(*theirs);
    if (!merged.ok()) {
      done(merged.status(), {});
      return;
    }
    if (*merged) Log()->info("event=keyring_merged from=sync");
    done(Status::Ok(), RingBody());
    return;
  } else {
    done(Status::InvalidArgument("unknown keys command '" + cmd + "'"), {});
    return;
  }
  auto merged = transport::MergeKeyring(change);
  if (!merged.ok()) {
    done(merged.status(), {});
    return;
  }
  Log()->info("event=keyring_changed cmd={} key={}", cmd,
              ArgOf(args, cmd == "keys.add" ? "public" : "key"));
  PushAll();
  done(Status::Ok(), {});
}

void KeyringSync::Exchange(const std::string& endpoint) {
  std::string mine = transport::CurrentKeyring()->Serialize();
  auto env = transport::CallOnce(
      endpoint, wire::MsgType::kAdminCommand,
      [&](wire::Packer& pk) {
        pk.pack_map(2);
        pk.pack("cmd");
        pk.pack("keys.sync");
        pk.pack("args");
        pk.pack_map(1);
        pk.pack("keyring");
        pk.pack(mine);
      },
      kCallDeadline);
  if (!env.ok()) return;  // unreachable now: the next round tries again
  auto payload = wire::ReplyPayload(*env);
  if (!payload.ok() || payload->type != msgpack::type::STR) return;
  std::string text;
  payload->convert(text);
  auto theirs = security::Keyring::Parse(text);
  if (!theirs.ok()) {
    Log()->warn("event=bad_keyring_reply from={} error=\"{}\"", endpoint,
                theirs.status().ToString());
    return;
  }
  auto merged = transport::MergeKeyring(*theirs);
  if (merged.ok() && *merged) Log()->info("event=keyring_merged from={}", endpoint);
}

void KeyringSync::Run() {
  std::mt19937_64 rng(std::random_device{}());
  for (;;) {
    bool all = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, kSyncPeriod, [this] { return stop_ || push_all_; });
      if (stop_) return;
      all = push_all_;
      push_all_ = false;
    }
    auto view = membership_->view();
    if (!view || !view->in_cluster) continue;
    std::vector<std::string> peers;
    for (const auto& m : view->members) {
      if (m.record.id == view->self) continue;
      if (m.record.state != membership::MemberState::kAlive &&
          m.record.state != membership::MemberState::kSuspect) {
        continue;
      }
      peers.push_back(m.record.id.address().TcpEndpoint());
    }
    if (peers.empty()) continue;
    if (all) {
      for (const auto& p : peers) Exchange(p);
    } else {
      Exchange(peers[rng() % peers.size()]);
    }
  }
}

}  // namespace rs::admin
