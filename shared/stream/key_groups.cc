#include "shared/stream/key_groups.h"

#include <algorithm>
#include <msgpack.hpp>
#include <optional>

namespace rs::stream {

KeyGroupMap KeyGroupMap::Even(uint32_t groups, uint32_t tasks) {
  KeyGroupMap m;
  m.tasks_ = tasks;
  m.owners_.resize(groups);
  for (uint32_t g = 0; g < groups; ++g) {
    m.owners_[g] = static_cast<uint32_t>(uint64_t{g} * tasks / groups);
  }
  return m;
}

Result<KeyGroupMap> KeyGroupMap::FromOwners(std::vector<uint32_t> owners, uint32_t tasks) {
  if (owners.empty() || owners.size() > kMaxKeyGroups) {
    return Status::InvalidArgument("a key group table needs 1 to " + std::to_string(kMaxKeyGroups) +
                                   " groups, not " + std::to_string(owners.size()));
  }
  if (tasks == 0 || tasks > owners.size()) {
    return Status::InvalidArgument(std::to_string(tasks) + " tasks cannot share " +
                                   std::to_string(owners.size()) + " key groups");
  }
  std::vector<bool> seen(tasks, false);
  for (size_t g = 0; g < owners.size(); ++g) {
    if (owners[g] >= tasks) {
      return Status::InvalidArgument("key group " + std::to_string(g) + " names task " +
                                     std::to_string(owners[g]) + " of " + std::to_string(tasks));
    }
    seen[owners[g]] = true;
  }
  for (uint32_t t = 0; t < tasks; ++t) {
    if (!seen[t]) {
      return Status::InvalidArgument("task " + std::to_string(t) + " owns no key group");
    }
  }
  KeyGroupMap m;
  m.owners_ = std::move(owners);
  m.tasks_ = tasks;
  return m;
}

std::vector<uint32_t> KeyGroupMap::GroupsOf(uint32_t task) const {
  std::vector<uint32_t> out;
  for (uint32_t g = 0; g < owners_.size(); ++g) {
    if (owners_[g] == task) out.push_back(g);
  }
  return out;
}

KeyGroupMap KeyGroupMap::Rescaled(uint32_t tasks) const {
  uint32_t groups = this->groups();
  tasks = std::clamp<uint32_t>(tasks, 1, std::max<uint32_t>(groups, 1));
  std::vector<std::vector<uint32_t>> held(tasks);
  std::vector<uint32_t> pool;  // groups that move
  for (uint32_t g = 0; g < groups; ++g) {
    if (owners_[g] < tasks) {
      held[owners_[g]].push_back(g);
    } else {
      pool.push_back(g);
    }
  }
  // Shares: groups / tasks each, one more for the `extra` tasks holding the most now.
  uint32_t base = groups / tasks, extra = groups % tasks;
  std::vector<uint32_t> order(tasks);
  for (uint32_t t = 0; t < tasks; ++t) order[t] = t;
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return held[a].size() > held[b].size(); });
  std::vector<uint32_t> share(tasks, base);
  for (uint32_t i = 0; i < extra; ++i) share[order[i]] = base + 1;
  for (uint32_t t = 0; t < tasks; ++t) {
    while (held[t].size() > share[t]) {
      pool.push_back(held[t].back());
      held[t].pop_back();
    }
  }
  std::sort(pool.begin(), pool.end());
  size_t next = 0;
  KeyGroupMap m;
  m.tasks_ = tasks;
  m.owners_ = owners_;
  for (uint32_t t = 0; t < tasks; ++t) {
    for (uint32_t g : held[t]) m.owners_[g] = t;
    for (size_t n = held[t].size(); n < share[t]; ++n) m.owners_[pool[next++]] = t;
  }
  return m;
}

std::string KeyGroupMap::FormatGroups(const std::vector<uint32_t>& groups) {
  std::string s;
  for (size_t i = 0; i < groups.size();) {
    size_t j = i;
    while (j + 1 < groups.size() && groups[j + 1] == groups[j] + 1) ++j;
    if (!s.empty()) s += ',';
    s += std::to_string(groups[i]);
    if (j > i) s += "-" + std::to_string(groups[j]);
    i = j + 1;
  }
  return s;
}

Result<std::map<uint32_t, std::string>> SplitKeyedState(std::string_view state) {
  std::map<uint32_t, std::string> out;
  msgpack::object_handle oh;
  try {
    // No container can claim more elements than there are bytes (msgpack-cxx allocates for
    // the claim up front).
    size_t off = 0;
    size_t n = std::max<size_t>(state.size(), 1);
    oh = msgpack::unpack(state.data(), state.size(), off, nullptr, nullptr,
                         msgpack::unpack_limit(n, n, n, n, n, 64));
    if (off != state.size()) return Status::Corruption("trailing bytes after a keyed state");
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("undecodable keyed state: ") + e.what());
  }
  const msgpack::object& o = oh.get();
  if (o.type == msgpack::type::NIL) return out;
  if (o.type != msgpack::type::MAP) {
    return Status::Corruption("a keyed state is not a map of key group -> state");
  }
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const msgpack::object_kv& kv = o.via.map.ptr[i];
    if (kv.key.type != msgpack::type::POSITIVE_INTEGER || kv.key.via.u64 >= kMaxKeyGroups) {
      return Status::Corruption("a keyed state's entry " + std::to_string(i) +
                                " is not keyed by a key group number");
    }
    auto g = static_cast<uint32_t>(kv.key.via.u64);
    if (out.count(g) != 0) {
      return Status::Corruption("a keyed state holds key group " + std::to_string(g) + " twice");
    }
    msgpack::sbuffer b;
    msgpack::pack(b, kv.val);
    out.emplace(g, std::string(b.data(), b.size()));
  }
  return out;
}

std::string JoinKeyedState(const std::map<uint32_t, std::string>& groups) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_map(static_cast<uint32_t>(groups.size()));
  for (const auto& [g, st] : groups) {
    pk.pack_uint32(g);
    b.write(st.data(), st.size());
  }
  return std::string(b.data(), b.size());
}

namespace {

// One keyed state decoded, bounded like SplitKeyedState.
Result<msgpack::object_handle> UnpackKeyedState(std::string_view state) {
  msgpack::object_handle oh;
  try {
    size_t off = 0;
    size_t n = std::max<size_t>(state.size(), 1);
    oh = msgpack::unpack(state.data(), state.size(), off, nullptr, nullptr,
                         msgpack::unpack_limit(n, n, n, n, n, 64));
    if (off != state.size()) return Status::Corruption("trailing bytes after a keyed state");
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("undecodable keyed state: ") + e.what());
  }
  const msgpack::object& o = oh.get();
  if (o.type != msgpack::type::NIL && o.type != msgpack::type::MAP) {
    return Status::Corruption("a keyed state is not a map of key group -> state");
  }
  return oh;
}

std::optional<std::string_view> EntryBytes(const msgpack::object& o) {
  if (o.type == msgpack::type::STR) return std::string_view(o.via.str.ptr, o.via.str.size);
  if (o.type == msgpack::type::BIN) return std::string_view(o.via.bin.ptr, o.via.bin.size);
  return std::nullopt;
}

}  // namespace

Result<std::string> ApplyKeyedStateChanges(std::string_view full,
                                           const std::vector<std::string_view>& changes) {
  struct Entry {
    const msgpack::object* key;
    const msgpack::object* value;
  };
  // group -> entry bytes -> the objects (in `held`, alive until the result is packed).
  std::map<uint32_t, std::map<std::string_view, Entry>> groups;
  std::vector<msgpack::object_handle> held;
  held.reserve(changes.size() + 1);
  for (size_t n = 0; n <= changes.size(); ++n) {
    auto oh = UnpackKeyedState(n == 0 ? full : changes[n - 1]);
    if (!oh.ok()) return oh.status();
    held.push_back(std::move(*oh));
    const msgpack::object& o = held.back().get();
    if (o.type == msgpack::type::NIL) continue;
    const std::string what = n == 0 ? "the full state" : "change " + std::to_string(n);
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const msgpack::object_kv& kv = o.via.map.ptr[i];
      if (kv.key.type != msgpack::type::POSITIVE_INTEGER || kv.key.via.u64 >= kMaxKeyGroups) {
        return Status::Corruption(what + ": entry " + std::to_string(i) +
                                  " is not keyed by a key group number");
      }
      auto g = static_cast<uint32_t>(kv.key.via.u64);
      if (kv.val.type == msgpack::type::NIL) continue;
      if (kv.val.type != msgpack::type::MAP) {
        return Status::Corruption(what + ": the state of key group " + std::to_string(g) +
                                  " is not a map");
      }
      auto& entries = groups[g];
      for (uint32_t j = 0; j < kv.val.via.map.size; ++j) {
        const msgpack::object_kv& e = kv.val.via.map.ptr[j];
        auto bytes = EntryBytes(e.key);
        if (!bytes) {
          return Status::Corruption(what + ": an entry of key group " + std::to_string(g) +
                                    " is not keyed by str or bin");
        }
        if (e.val.type == msgpack::type::NIL) {
          entries.erase(*bytes);
        } else {
          entries[*bytes] = Entry{&e.key, &e.val};
        }
      }
    }
  }
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  uint32_t used = 0;
  for (const auto& [g, entries] : groups) used += entries.empty() ? 0 : 1;
  pk.pack_map(used);
  for (const auto& [g, entries] : groups) {
    if (entries.empty()) continue;
    pk.pack_uint32(g);
    pk.pack_map(static_cast<uint32_t>(entries.size()));
    for (const auto& [bytes, e] : entries) {
      pk.pack(*e.key);
      pk.pack(*e.value);
    }
  }
  return std::string(b.data(), b.size());
}

}  // namespace rs::stream
