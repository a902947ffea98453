#include "daemon/hydfs/legacy.h"

#include "shared/logging.h"

namespace rs::hydfs {

namespace {

// One pass: moves the blobs of the live copy's appends the legacy copy lacks, merges the orders,
// and removes the live copy unless an append was committed to it meanwhile (FailedPrecondition:
// the caller runs another pass, which moves that one too).
Status QuarantineOnce(Store& live, Store& legacy, const std::string& name, QuarantineResult* out) {
  auto m = live.GetManifest(name);
  if (!m.ok()) return m.status();
  std::vector<AppendMeta> order;
  std::set<uint64_t> ids;
  auto old = legacy.GetManifest(name);
  if (old.ok() && old->file.gen == m->file.gen) {
    for (const auto& a : old->appends) {
      if (ids.insert(a.id).second) order.push_back(a);
    }
  }
  for (const auto& a : m->appends) {
    if (ids.count(a.id)) continue;
    if (a.size > 0) {
      Status moved = live.MoveBlobTo(legacy, a.id);
      if (!moved.ok()) {
        // A blob missing here was lost already (the manifest named it: corruption); the
        // replicas hold it, and this copy cannot hand it over.
        Logger("hydfs")->warn("event=legacy_blob_missing file={} append={:016x} error=\"{}\"", name,
                              a.id, moved.ToString());
        if (out) ++out->appends_lost;
        continue;
      }
      if (out) out->bytes += a.size;
    }
    ids.insert(a.id);
    order.push_back(a);
  }
  RS_RETURN_IF_ERROR(legacy.SetOrder(m->file, order, 0, /*replace_other_gen=*/true));
  // Its blobs are in the legacy store now: Remove finds none to delete.
  return live.Remove(name, m->file.gen, /*tombstone=*/false, m->appends.size());
}

}  // namespace

Status QuarantineFile(Store& live, Store& legacy, const std::string& name, QuarantineResult* out) {
  Status st;
  for (int pass = 0; pass < 5; ++pass) {
    st = QuarantineOnce(live, legacy, name, out);
    if (st.code() != StatusCode::kFailedPrecondition) break;
  }
  if (st.ok() && out) ++out->files;
  return st;
}

QuarantineResult QuarantineAll(Store& live, Store& legacy) {
  QuarantineResult r;
  for (const auto& f : live.List()) {
    Status st = QuarantineFile(live, legacy, f.name, &r);
    if (!st.ok()) {
      Logger("hydfs")->error("event=legacy_move_failed file={} error=\"{}\"", f.name,
                             st.ToString());
    }
  }
  return r;
}

uint64_t CountLacking(const std::optional<Manifest>& copy, uint64_t gen,
                      const std::vector<uint64_t>& ids) {
  if (!copy || copy->file.gen != gen) return ids.size();
  std::set<uint64_t> has;
  for (const auto& a : copy->appends) has.insert(a.id);
  uint64_t n = 0;
  for (uint64_t id : ids) n += has.count(id) ? 0 : 1;
  return n;
}

std::vector<uint64_t> AppendIds(const Manifest& m) {
  std::vector<uint64_t> ids;
  ids.reserve(m.appends.size());
  for (const auto& a : m.appends) ids.push_back(a.id);
  return ids;
}

}  // namespace rs::hydfs
