#include "shared/stream/input_order.h"

#include <msgpack.hpp>

#include "shared/wire/fields.h"

namespace rs::stream {

void OrderLog::Restore(uint64_t next) {
  sent_ = next;
  unsent_.clear();
  sealed_ = 0;
}

void OrderLog::Record(uint32_t upstream, const std::vector<TupleRef>& tuples) {
  for (size_t i = 0; i < tuples.size(); ++i) {
    // The last tuple of a stretch of one origin ends (or extends) a run.
    if (i + 1 < tuples.size() && tuples[i + 1].origin == tuples[i].origin) continue;
    const TupleRef& r = tuples[i];
    if (unsent_.size() <= sealed_ || unsent_.back().upstream != upstream ||
        unsent_.back().origin != r.origin) {
      unsent_.push_back(OrderRun{upstream, r.origin, {}});
    }
    unsent_.back().last_id.assign(r.id.data(), r.id.size());
  }
}

void OrderLog::Replayed() {
  // Replayed runs come before anything recorded anew (the replay ends first).
  ++sent_;
}

OrderRuns OrderLog::TakeUnsent() {
  OrderRuns r;
  r.first = sent_;
  r.runs = std::move(unsent_);
  unsent_.clear();
  sealed_ = 0;
  sent_ += r.runs.size();
  return r;
}

bool OrderKeeper::Add(const OrderRuns& in) {
  if (in.runs.empty()) return true;
  uint64_t end = base_ + runs_.size();
  bool contiguous = in.first <= end;
  if (!contiguous) {
    runs_.clear();
    base_ = in.first;
    end = base_;
  }
  for (size_t i = 0; i < in.runs.size(); ++i) {
    uint64_t index = in.first + i;
    if (index < base_) continue;  // already covered by a durable checkpoint
    if (index < end) {
      runs_[index - base_] = in.runs[i];
    } else {
      runs_.push_back(in.runs[i]);
      ++end;
    }
  }
  return contiguous;
}

void OrderKeeper::Trim(uint64_t index) {
  while (base_ < index && !runs_.empty()) {
    runs_.pop_front();
    ++base_;
  }
  if (runs_.empty() && base_ < index) base_ = index;
}

OrderRuns OrderKeeper::All() const {
  OrderRuns r;
  r.first = base_;
  r.runs.assign(runs_.begin(), runs_.end());
  return r;
}

std::string EncodeOrderRuns(const OrderRuns& runs) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(2);
  pk.pack_uint64(runs.first);
  pk.pack_array(static_cast<uint32_t>(runs.runs.size()));
  for (const auto& r : runs.runs) {
    pk.pack_array(3);
    pk.pack_uint32(r.upstream);
    pk.pack_uint64(r.origin);
    pk.pack_bin(static_cast<uint32_t>(r.last_id.size()));
    pk.pack_bin_body(r.last_id.data(), static_cast<uint32_t>(r.last_id.size()));
  }
  return std::string(buf.data(), buf.size());
}

Result<OrderRuns> DecodeOrderRuns(std::string_view bytes) {
  msgpack::object_handle oh;
  try {
    std::size_t off = 0;
    oh = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr,
                         msgpack::unpack_limit(2 * kMaxUndurableRuns + 16, 0, 0, 4096, 0, 4));
    if (off != bytes.size()) return Status::Corruption("trailing bytes after an order log");
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("undecodable order log: ") + e.what());
  }
  const msgpack::object& o = oh.get();
  OrderRuns out;
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 2 ||
      !wire::ReadUint(o.via.array.ptr[0], &out.first) ||
      o.via.array.ptr[1].type != msgpack::type::ARRAY) {
    return Status::Corruption("an order log is not [first, runs]");
  }
  const msgpack::object& list = o.via.array.ptr[1];
  out.runs.reserve(list.via.array.size);
  for (uint32_t i = 0; i < list.via.array.size; ++i) {
    const msgpack::object& e = list.via.array.ptr[i];
    OrderRun r;
    uint64_t upstream = 0;
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 3 ||
        !wire::ReadUint(e.via.array.ptr[0], &upstream) || upstream > UINT32_MAX ||
        !wire::ReadUint(e.via.array.ptr[1], &r.origin) ||
        e.via.array.ptr[2].type != msgpack::type::BIN) {
      return Status::Corruption("run " + std::to_string(i) + " of an order log is malformed");
    }
    r.upstream = static_cast<uint32_t>(upstream);
    r.last_id.assign(e.via.array.ptr[2].via.bin.ptr, e.via.array.ptr[2].via.bin.size);
    out.runs.push_back(std::move(r));
  }
  return out;
}

}  // namespace rs::stream
