#include "daemon/stream/dedup_log.h"

namespace rs::stream {
namespace {

std::string Key(uint64_t i) {
  std::string k(8, '\0');
  for (int b = 7; b >= 0; --b, i >>= 8) k[static_cast<size_t>(b)] = static_cast<char>(i & 0xff);
  return k;
}

uint64_t FromKey(std::string_view k) {
  uint64_t v = 0;
  for (char c : k) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

}  // namespace

Result<std::unique_ptr<DedupLog>> DedupLog::Open(const std::string& dir) {
  storage::LmdbOptions o;
  o.map_size = 64ull << 30;  // address space only; the file grows as records are written
  o.max_dbs = 2;
  o.durable = false;
  auto env = storage::LmdbEnv::Open(dir, o);
  if (!env.ok()) return env.status();
  auto dbi = (*env)->OpenDb("log");
  if (!dbi.ok()) return dbi.status();
  std::unique_ptr<DedupLog> log(new DedupLog(std::move(*env), *dbi));
  // Continue numbering after what is there (a task restarted in place).
  auto txn = storage::LmdbTxn::BeginRead(*log->env_);
  if (!txn.ok()) return txn.status();
  bool first = true;
  RS_RETURN_IF_ERROR(txn->ScanPrefix(log->dbi_, "", [&](std::string_view k, std::string_view) {
    uint64_t i = FromKey(k);
    if (first) log->first_ = i;
    first = false;
    log->next_ = i + 1;
    return true;
  }));
  return log;
}

Result<uint64_t> DedupLog::Append(std::string_view record) {
  auto txn = storage::LmdbTxn::BeginWrite(*env_);
  if (!txn.ok()) return txn.status();
  uint64_t i = next_;
  RS_RETURN_IF_ERROR(txn->Put(dbi_, Key(i), record));
  RS_RETURN_IF_ERROR(txn->Commit());
  ++next_;
  bytes_ += record.size();
  return i;
}

Status DedupLog::TrimBefore(uint64_t index) {
  if (index <= first_) return Status::Ok();
  auto txn = storage::LmdbTxn::BeginWrite(*env_);
  if (!txn.ok()) return txn.status();
  for (uint64_t i = first_; i < index && i < next_; ++i) {
    Status s = txn->Del(dbi_, Key(i));
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  }
  RS_RETURN_IF_ERROR(txn->Commit());
  first_ = std::min(index, next_);
  return Status::Ok();
}

Status DedupLog::ForEach(const std::function<void(uint64_t, std::string_view)>& fn) const {
  auto txn = storage::LmdbTxn::BeginRead(*env_);
  if (!txn.ok()) return txn.status();
  return txn->ScanPrefix(dbi_, "", [&](std::string_view k, std::string_view v) {
    fn(FromKey(k), v);
    return true;
  });
}

}  // namespace rs::stream
