#include "shared/transport/security.h"

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "shared/logging.h"
#include "shared/util/thread_name.h"
#include "shared/transport/sockets.h"

namespace rs::transport {
namespace {

// The ZAP endpoint libzmq asks (RFC 27), and how often the handler looks at the keyring file.
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
// The ZAP domains of a node's server sockets: any key on the keyring, or members only (the
// gossip PUB: what it says is for members' ears).
constexpr const char* kDomain = "rainstorm";
constexpr const char* kMembersOnlyDomain = "rainstorm-members";
constexpr auto kReloadEvery = std::chrono::milliseconds(500);
constexpr auto kRefusalLogEvery = std::chrono::minutes(1);

struct State {
  SecuritySettings settings;
  bool installed = false;
  std::mutex mu;  // guards ring and the keyring file
  std::shared_ptr<const Keyring> ring = std::make_shared<Keyring>();
  std::atomic<uint64_t> refused{0}, dropped{0};
  std::atomic<bool> stopping{false};
  std::thread zap;  // the ZAP handler: stopped and joined at exit (StopZap)
};

State& S() {
  static State* state = new State();  // never destroyed: sockets may outlive main
  return *state;
}

constexpr auto kZapPollEvery = std::chrono::milliseconds(100);  // how soon it sees StopZap

std::shared_ptr<spdlog::logger> Log() { return Logger("security"); }

struct FileStamp {
  int64_t mtime_ns = -1;
  int64_t size = -1;
  bool operator==(const FileStamp&) const = default;
};

FileStamp StampOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          static_cast<int64_t>(st.st_size)};
}

// Reloads the keyring file when it changed; a bad file keeps the keyring in force.
void ReloadIfChanged(FileStamp* seen) {
  State& s = S();
  FileStamp now = StampOf(s.settings.keyring_path);
  if (now == *seen) return;
  *seen = now;
  auto ring = Keyring::Load(s.settings.keyring_path);
  if (!ring.ok()) {
    Log()->error("event=keyring_unreadable error=\"{}\" keeping=previous",
                 ring.status().ToString());
    return;
  }
  // Merged, never replaced: changes only ever add entries or newer stamps, so a file written
  // by another node sharing it (a local cluster) cannot undo a revocation this node knows.
  std::lock_guard<std::mutex> lock(s.mu);
  auto merged = std::make_shared<Keyring>(*s.ring);
  if (!merged->Merge(*ring)) return;
  std::atomic_store(&s.ring, std::shared_ptr<const Keyring>(std::move(merged)));
  Log()->info("event=keyring_loaded keys={}", s.ring->entries().size());
}

std::string Z85(const zmq::message_t& raw) {
  if (raw.size() != 32) return "";
  char text[41];
  if (zmq_z85_encode(text, static_cast<const uint8_t*>(raw.data()), 32) == nullptr) return "";
  return text;
}

// Answers ZAP requests: 200 with the key as user id for a key on the keyring (a member's key in
// the members-only domain), else 400.
void ZapLoop(zmq::socket_t rep) {
  SetThreadName("zap");
  std::map<std::string, std::chrono::steady_clock::time_point> last_logged;
  FileStamp seen = StampOf(S().settings.keyring_path);
  auto next_reload = std::chrono::steady_clock::now() + kReloadEvery;
  std::vector<zmq::message_t> parts;
  for (;;) {
    zmq::pollitem_t item{static_cast<void*>(rep), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, kZapPollEvery);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
    }
    if (S().stopping.load()) return;
    auto now = std::chrono::steady_clock::now();
    if (now >= next_reload) {
      ReloadIfChanged(&seen);
      next_reload = now + kReloadEvery;
    }
    if (!(item.revents & ZMQ_POLLIN) || !TryRecv(rep, &parts)) continue;
    auto part = [&](size_t i) { return i < parts.size() ? parts[i].to_string() : std::string(); };
    std::string version = part(0), request_id = part(1), domain = part(2), address = part(3),
                mechanism = part(5);
    std::string key = mechanism == "CURVE" && parts.size() >= 7 ? Z85(parts[6]) : "";
    Role role = key.empty() ? Role::kNone : CurrentKeyring()->RoleOf(key);
    if (domain == kMembersOnlyDomain && role != Role::kMember) role = Role::kNone;
    bool ok = role != Role::kNone;
    Log()->debug("event=zap address={} domain={} mechanism={} key={} role={}", address, domain,
                 mechanism, key, security::RoleName(role));
    if (!ok) {
      S().refused.fetch_add(1, std::memory_order_relaxed);
      auto& last = last_logged[address];
      if (last.time_since_epoch().count() == 0 || now - last >= kRefusalLogEvery) {
        last = now;
        Log()->warn(
            "event=refused_handshake address={} domain={} mechanism={} key={} refused_total={}",
            address, domain, mechanism, key.empty() ? "-" : key, S().refused.load());
      }
      if (last_logged.size() > 10000) last_logged.clear();
    }
    std::string status = ok ? "200" : "400";
    std::string text = ok ? "OK" : "key not on the keyring";
    zmq::message_t reply[6] = {zmq::message_t(version.data(), version.size()),
                               zmq::message_t(request_id.data(), request_id.size()),
                               zmq::message_t(status.data(), status.size()),
                               zmq::message_t(text.data(), text.size()),
                               zmq::message_t(ok ? key.data() : "", ok ? key.size() : 0),
                               zmq::message_t()};
    TrySend(rep, reply, 6);
  }
}

// At exit: the ZAP thread ends (within kZapPollEvery) before the statics it uses are destroyed.
void StopZap() {
  State& s = S();
  s.stopping.store(true);
  if (s.zap.joinable()) s.zap.join();
}

}  // namespace

Status InstallSecurity(SecuritySettings settings) {
  State& s = S();
  if (s.installed) return Status::FailedPrecondition("security is already installed");
  s.settings = std::move(settings);
  s.installed = true;
  if (s.settings.insecure) return Status::Ok();
  if (!zmq_has("curve")) {
    s.installed = false;
    return Status::FailedPrecondition("this libzmq has no CURVE support (built without libsodium)");
  }
  if (!s.settings.node) return Status::Ok();
  auto ring = Keyring::Load(s.settings.keyring_path);
  if (!ring.ok()) return ring.status();
  std::atomic_store(&s.ring,
                    std::shared_ptr<const Keyring>(std::make_shared<Keyring>(std::move(*ring))));
  SocketOptions o;
  o.heartbeat_ivl_ms = 0;
  o.linger_ms = 0;
  auto rep = MakeSocket(zmq::socket_type::rep, o);
  if (!rep.ok()) return rep.status();
  try {
    rep->bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    return Status::IOError(std::string("cannot start the ZAP handler: ") + e.what());
  }
  // The thread logs and reads statics: it must end before they are destroyed at exit. Handlers
  // and static destructors run in reverse order, so the logger is made first.
  Log();
  s.zap = std::thread(ZapLoop, std::move(rep.value()));
  std::atexit(StopZap);
  return Status::Ok();
}

bool SecurityEnabled() { return S().installed && !S().settings.insecure; }

void ApplyCurve(zmq::socket_t& socket, zmq::socket_type type, bool to_client) {
  if (!SecurityEnabled()) return;
  const SecuritySettings& st = S().settings;
  if (type == zmq::socket_type::rep || type == zmq::socket_type::req ||
      type == zmq::socket_type::pair) {
    return;  // inproc only (ZAP, monitors): no handshake there
  }
  bool publishes = type == zmq::socket_type::pub || type == zmq::socket_type::xpub;
  bool binds = publishes || type == zmq::socket_type::router || type == zmq::socket_type::pull;
  bool server = st.node && (binds || to_client);
  if (server) {
    socket.set(zmq::sockopt::curve_server, 1);
    socket.set(zmq::sockopt::curve_secretkey, st.cluster_secret);
    socket.set(zmq::sockopt::zap_domain, publishes ? kMembersOnlyDomain : kDomain);
  } else {
    socket.set(zmq::sockopt::curve_serverkey, st.cluster_public);
    socket.set(zmq::sockopt::curve_publickey, st.self.public_key);
    socket.set(zmq::sockopt::curve_secretkey, st.self.secret_key);
  }
}

Role SenderRole(zmq::socket_t& socket, const zmq::message_t& msg) {
  if (!SecurityEnabled()) return Role::kMember;
  int server = 0;
  try {
    server = socket.get(zmq::sockopt::curve_server);
  } catch (const zmq::error_t&) {
    return Role::kNone;
  }
  if (!server) return Role::kMember;  // the peer proved the cluster key
  const char* key = zmq_msg_gets(msg.handle(), "User-Id");
  if (key == nullptr) {
    Log()->debug("event=no_user_id errno={} size={}", zmq_errno(), msg.size());
    return Role::kNone;
  }
  Role role = CurrentKeyring()->RoleOf(key);
  if (role == Role::kNone) {
    S().dropped.fetch_add(1, std::memory_order_relaxed);
    Log()->debug("event=dropped_message key={}", key);
  }
  return role;
}

std::shared_ptr<const Keyring> CurrentKeyring() { return std::atomic_load(&S().ring); }

std::string ClusterSecret() { return SecurityEnabled() ? S().settings.cluster_secret : ""; }

Result<bool> MergeKeyring(const Keyring& update) {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  auto merged = std::make_shared<Keyring>(*s.ring);
  if (!merged->Merge(update)) return false;
  if (!s.settings.keyring_path.empty()) {
    Status saved = merged->Save(s.settings.keyring_path);
    if (!saved.ok()) return saved;
  }
  std::atomic_store(&s.ring, std::shared_ptr<const Keyring>(std::move(merged)));
  Log()->info("event=keyring_changed keys={}", s.ring->entries().size());
  return true;
}

SecurityCounters security_counters() {
  return {S().refused.load(std::memory_order_relaxed), S().dropped.load(std::memory_order_relaxed)};
}

}  // namespace rs::transport
