#include "shared/stream/key_groups.h"

#include <algorithm>
#include <msgpack.hpp>

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
    return Status::InvalidArgument("a key group table needs 1 to " +
                                   std::to_string(kMaxKeyGroups) + " groups, not " +
                                   std::to_string(owners.size()));
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

}  // namespace rs::stream
