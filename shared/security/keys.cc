#include "shared/security/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace rs::security {
namespace {

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// Calls `line(number, text)` for each line of `text` that is not blank or a `#` comment, trimmed;
// the first error it returns ends the walk.
Status ForEachLine(std::string_view text,
                   const std::function<Status(int, const std::string&)>& line) {
  std::istringstream in{std::string(text)};
  std::string raw;
  int number = 0;
  while (std::getline(in, raw)) {
    ++number;
    std::string t = Trim(raw);
    if (t.empty() || t[0] == '#') continue;
    if (Status st = line(number, t); !st.ok()) return st;
  }
  return Status::Ok();
}

Status WriteWhole(const std::string& path, const std::string& text, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_WRONLY | O_CLOEXEC, mode);
  if (fd < 0) return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
  if (::fchmod(fd, mode) != 0) {
    ::close(fd);
    return Status::IOError("cannot chmod " + path + ": " + std::strerror(errno));
  }
  size_t off = 0;
  while (off < text.size()) {
    ssize_t w = ::write(fd, text.data() + off, text.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kNone:
      return "none";
    case Role::kRead:
      return "read";
    case Role::kAdmin:
      return "admin";
    case Role::kMember:
      return "member";
  }
  return "none";
}

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "read") return Role::kRead;
  if (name == "admin") return Role::kAdmin;
  if (name == "member") return Role::kMember;
  return std::nullopt;
}

Result<KeyPair> GenerateKeyPair() {
  char pub[41], sec[41];
  // A public key is typed on command lines (`rainctl keys add ROLE KEY NAME`), where one that
  // starts with '-' (a Z85 digit, 1 key in 85) reads as an option: draw again. That changes
  // nothing about the key's strength (the secret is what is drawn; ~1 % are skipped).
  do {
    if (zmq_curve_keypair(pub, sec) != 0) {
      return Status::Internal(std::string("cannot make a CURVE key pair: ") +
                              zmq_strerror(zmq_errno()));
    }
  } while (pub[0] == '-');
  return KeyPair{pub, sec};
}

bool IsKeyText(std::string_view z85) {
  if (z85.size() != 40) return false;
  std::string text(z85);
  uint8_t raw[32];
  return zmq_z85_decode(raw, text.c_str()) != nullptr;
}

Status WriteKeyFile(const std::string& path, const KeyFile& file, bool overwrite) {
  std::ostringstream out;
  out << "# RainStorm " << file.kind << " key. Secret: keep it mode 0600, never share it.\n"
      << "kind = " << file.kind << "\n"
      << "name = " << file.name << "\n"
      << "public = " << file.keys.public_key << "\n"
      << "secret = " << file.keys.secret_key << "\n";
  if (!file.cluster_public.empty()) out << "cluster = " << file.cluster_public << "\n";
  return WriteWhole(path, out.str(), O_CREAT | (overwrite ? O_TRUNC : O_EXCL), 0600);
}

Result<KeyFile> ReadKeyFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::NotFound("cannot open key file " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Status::IOError("cannot stat " + path);
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::FailedPrecondition("key file " + path + " has mode " + mode +
                                      ": a secret key must be readable by its owner only "
                                      "(chmod 600 " +
                                      path + ")");
  }
  std::string text;
  char buf[4096];
  ssize_t r;
  while ((r = ::read(fd, buf, sizeof(buf))) > 0 && text.size() < (1 << 16)) text.append(buf, r);
  ::close(fd);
  KeyFile file;
  Status parsed = ForEachLine(text, [&](int number, const std::string& t) {
    size_t eq = t.find('=');
    if (eq == std::string::npos) {
      return Status::Corruption(path + ":" + std::to_string(number) + ": expected key = value");
    }
    std::string k = Trim(t.substr(0, eq)), v = Trim(t.substr(eq + 1));
    if (k == "kind")
      file.kind = v;
    else if (k == "name")
      file.name = v;
    else if (k == "public")
      file.keys.public_key = v;
    else if (k == "secret")
      file.keys.secret_key = v;
    else if (k == "cluster")
      file.cluster_public = v;
    return Status::Ok();
  });
  if (!parsed.ok()) return parsed;
  if (!IsKeyText(file.keys.public_key) || !IsKeyText(file.keys.secret_key)) {
    return Status::Corruption(path + ": not a RainStorm key file (needs public and secret keys)");
  }
  if (!file.cluster_public.empty() && !IsKeyText(file.cluster_public)) {
    return Status::Corruption(path + ": bad cluster key");
  }
  return file;
}

Result<Keyring> Keyring::Parse(std::string_view text) {
  Keyring ring;
  Status parsed = ForEachLine(text, [&](int number, const std::string& t) {
    // <role> <active|revoked> <stamp> <public key> <name...>
    std::istringstream fields(t);
    std::string role, state, stamp, key;
    fields >> role >> state >> stamp >> key;
    std::string name;
    std::getline(fields, name);
    auto bad = [&](const std::string& why) {
      return Status::Corruption("keyring line " + std::to_string(number) + ": " + why);
    };
    auto r = ParseRole(role);
    if (!r) return bad("role must be member, admin or read, not '" + role + "'");
    if (state != "active" && state != "revoked") return bad("state must be active or revoked");
    if (stamp.empty() || stamp.find_first_not_of("0123456789") != std::string::npos) {
      return bad("bad stamp '" + stamp + "'");
    }
    if (!IsKeyText(key)) return bad("bad public key '" + key + "'");
    KeyEntry e{key, *r, state == "revoked", std::stoull(stamp), Trim(name)};
    KeyEntry& slot = ring.entries_[key];
    if (slot.public_key.empty() || e.stamp > slot.stamp || (e.stamp == slot.stamp && e.revoked)) {
      slot = e;
    }
    return Status::Ok();
  });
  if (!parsed.ok()) return parsed;
  return ring;
}

Result<Keyring> Keyring::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot open keyring " + path);
  std::stringstream text;
  text << in.rdbuf();
  auto ring = Parse(text.str());
  if (!ring.ok()) return Status::Corruption(path + ": " + ring.status().message());
  return ring;
}

std::string Keyring::Serialize() const {
  std::ostringstream out;
  out << "# RainStorm keyring: <role> <active|revoked> <stamp> <public key> <name>\n";
  for (const auto& [key, e] : entries_) {
    out << RoleName(e.role) << ' ' << (e.revoked ? "revoked" : "active") << ' ' << e.stamp << ' '
        << key << ' ' << e.name << '\n';
  }
  return out.str();
}

Status Keyring::Save(const std::string& path) const {
  // A name of this process's own: the nodes of a local cluster share one keys directory.
  static std::atomic<uint64_t> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(++counter);
  Status s = WriteWhole(tmp, Serialize(), O_CREAT | O_TRUNC, 0644);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status failed = Status::IOError("cannot rename " + tmp + ": " + std::strerror(errno));
    ::unlink(tmp.c_str());
    return failed;
  }
  return Status::Ok();
}

Role Keyring::RoleOf(const std::string& public_key) const {
  auto it = entries_.find(public_key);
  if (it == entries_.end() || it->second.revoked) return Role::kNone;
  return it->second.role;
}

void Keyring::Put(const std::string& public_key, Role role, const std::string& name,
                  uint64_t now_ms) {
  KeyEntry& e = entries_[public_key];
  uint64_t stamp = std::max(now_ms, e.stamp + 1);
  e = KeyEntry{public_key, role, false, stamp, name};
}

bool Keyring::Revoke(const std::string& key_or_name, uint64_t now_ms) {
  bool any = false;
  for (auto& [key, e] : entries_) {
    if (key != key_or_name && e.name != key_or_name) continue;
    e.stamp = std::max(now_ms, e.stamp + 1);
    e.revoked = true;
    any = true;
  }
  return any;
}

bool Keyring::Merge(const Keyring& other) {
  bool changed = false;
  for (const auto& [key, theirs] : other.entries_) {
    auto it = entries_.find(key);
    if (it == entries_.end() || theirs.stamp > it->second.stamp ||
        (theirs.stamp == it->second.stamp && theirs.revoked && !it->second.revoked)) {
      entries_[key] = theirs;
      changed = true;
    }
  }
  return changed;
}

Status MakeClusterKeys(const std::string& dir, uint64_t now_ms, bool overwrite) {
  std::error_code ec;
  std::filesystem::path d(dir);
  std::filesystem::create_directories(d, ec);
  if (ec || ::chmod(d.c_str(), 0700) != 0) return Status::IOError("cannot make " + dir);
  if (!overwrite && std::filesystem::exists(d / "cluster.key")) {
    return Status::AlreadyExists(dir + " already holds a cluster's keys");
  }
  for (const char* f : {"cluster.key", "node.key", "admin.key", "keyring"}) {
    std::filesystem::remove(d / f, ec);
  }
  auto make = [&](const std::string& kind, const std::string& name,
                  const std::string& cluster_public) -> Result<KeyFile> {
    auto pair = GenerateKeyPair();
    if (!pair.ok()) return pair.status();
    KeyFile file{kind, name, *pair, cluster_public};
    RS_RETURN_IF_ERROR(WriteKeyFile((d / (name + ".key")).string(), file));
    return file;
  };
  auto cluster = make("cluster", "cluster", "");
  if (!cluster.ok()) return cluster.status();
  auto node = make("member", "node", cluster->keys.public_key);
  if (!node.ok()) return node.status();
  auto admin = make("admin", "admin", cluster->keys.public_key);
  if (!admin.ok()) return admin.status();
  Keyring ring;
  ring.Put(node->keys.public_key, Role::kMember, "node", now_ms);
  ring.Put(admin->keys.public_key, Role::kAdmin, "admin", now_ms);
  return ring.Save((d / "keyring").string());
}

}  // namespace rs::security
