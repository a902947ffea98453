#include "daemon/hydfs/store_format.h"

#include <cstdio>
#include <msgpack.hpp>

#include "shared/wire/fields.h"

namespace rs::hydfs {
namespace {

constexpr uint64_t kRecordVersion = 2;  // "v" of every LMDB record

void PutBe64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

using Packer = msgpack::packer<msgpack::sbuffer>;

template <typename T>
void PackField(Packer& pk, std::string_view key, const T& value) {
  pk.pack_str(static_cast<uint32_t>(key.size()));
  pk.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
  pk.pack(value);
}

// Unpacks one object that must fill `bytes`. msgpack-cxx throws on malformed input; the
// exception stops here (the store's records could be damaged on disk).
Status Unpack(std::string_view bytes, const std::string& what, msgpack::object_handle* out) {
  try {
    size_t offset = 0;
    msgpack::unpack_limit limit(/*array=*/1u << 24, /*map=*/64, /*str=*/1u << 20, /*bin=*/1u << 20,
                                /*ext=*/1u << 20, /*depth=*/4);
    *out = msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
    if (offset != bytes.size()) return Status::Corruption(what + ": trailing bytes");
  } catch (const std::exception& e) {
    return Status::Corruption(what + ": undecodable: " + e.what());
  }
  return Status::Ok();
}

Status CheckVersion(wire::FieldReader& r) {
  uint64_t v = r.Uint("v");
  if (r.ok() && v != kRecordVersion) r.Fail("unsupported record version " + std::to_string(v));
  return r.status();
}

}  // namespace

// ---- names ----

std::string Hex16(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

std::string AppendName(uint64_t id) { return "append " + Hex16(id); }

// ---- layout of an append ----

std::optional<uint64_t> ChunkCount(uint64_t size, uint32_t chunk_size) {
  if (size == 0) return 0;
  if (chunk_size == 0) return std::nullopt;
  uint64_t n = (size + chunk_size - 1) / chunk_size;
  if (n > UINT32_MAX) return std::nullopt;
  return n;
}

Status CheckLayout(const AppendMeta& a) {
  auto n = ChunkCount(a.size, a.chunk_size);
  if (!n || *n != a.crcs.size()) {
    return Status::InvalidArgument(AppendName(a.id) + ": " + std::to_string(a.crcs.size()) +
                                   " chunk CRCs do not fit size " + std::to_string(a.size) +
                                   " with chunk size " + std::to_string(a.chunk_size));
  }
  return Status::Ok();
}

// ---- keys ----

uint64_t GetBe64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string GenPrefix(uint64_t gen) {
  std::string key;
  PutBe64(&key, gen);
  return key;
}

std::string AppendKey(uint64_t gen, uint64_t position) {
  std::string key = GenPrefix(gen);
  PutBe64(&key, position);
  return key;
}

std::string IdKey(uint64_t gen, uint64_t append_id) { return AppendKey(gen, append_id); }

std::string EncodePosition(uint64_t position) {
  std::string out;
  PutBe64(&out, position);
  return out;
}

Result<uint64_t> DecodePosition(std::string_view bytes) {
  if (bytes.size() != 8) return Status::Corruption("an id record is not 8 bytes");
  return GetBe64(bytes);
}

// ---- records ----

std::string EncodeFileRecord(const FileRecord& r) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(10);
  PackField(pk, "v", kRecordVersion);
  PackField(pk, "live", r.live);
  PackField(pk, "gen", r.file.gen);
  PackField(pk, "created_ms", r.file.created_ms);
  PackField(pk, "creator", r.file.creator);
  PackField(pk, "merged", r.merged);
  PackField(pk, "count", r.count);
  PackField(pk, "size", r.size);
  PackField(pk, "digest", r.digest);
  PackField(pk, "removed", r.removed);
  return std::string(buf.data(), buf.size());
}

std::string EncodeAppend(const AppendMeta& a) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(8);
  PackField(pk, "v", kRecordVersion);
  PackField(pk, "id", a.id);
  PackField(pk, "client", a.client);
  PackField(pk, "seq", a.seq);
  PackField(pk, "size", a.size);
  PackField(pk, "chunk_size", a.chunk_size);
  PackField(pk, "crcs", a.crcs);
  PackField(pk, "wall_ms", a.wall_ms);
  return std::string(buf.data(), buf.size());
}

Result<FileRecord> DecodeFileRecord(std::string_view bytes, const std::string& name) {
  std::string what = "file record of '" + name + "'";
  msgpack::object_handle h;
  RS_RETURN_IF_ERROR(Unpack(bytes, what, &h));
  wire::FieldReader r(h.get(), what);
  RS_RETURN_IF_ERROR(CheckVersion(r));
  FileRecord rec;
  rec.live = r.Bool("live");
  rec.file.name = name;
  rec.file.gen = r.Uint("gen");
  rec.file.created_ms = r.Uint("created_ms");
  rec.file.creator = r.Str("creator");
  rec.merged = r.Uint("merged");
  rec.count = r.Uint("count");
  rec.size = r.Uint("size");
  rec.digest = r.Uint("digest");
  const msgpack::object* removed = r.Array("removed");
  if (!r.ok()) return r.status();
  for (uint32_t i = 0; i < removed->via.array.size; ++i) {
    uint64_t g = 0;
    if (!wire::ReadUint(removed->via.array.ptr[i], &g)) {
      return Status::Corruption(what + ": a removed generation is not an unsigned integer");
    }
    rec.removed.push_back(g);
  }
  if (rec.merged > rec.count) return Status::Corruption(what + ": merged exceeds the count");
  return rec;
}

Result<AppendMeta> DecodeAppend(std::string_view bytes, const std::string& what) {
  msgpack::object_handle h;
  RS_RETURN_IF_ERROR(Unpack(bytes, what, &h));
  wire::FieldReader r(h.get(), what);
  RS_RETURN_IF_ERROR(CheckVersion(r));
  AppendMeta a;
  a.id = r.Uint("id");
  a.client = r.Str("client");
  a.seq = r.Uint("seq");
  a.size = r.Uint("size");
  a.chunk_size = static_cast<uint32_t>(r.Uint("chunk_size", UINT32_MAX));
  a.wall_ms = r.Uint("wall_ms");
  const msgpack::object* crcs = r.Array("crcs");
  if (!r.ok()) return r.status();
  a.crcs.reserve(crcs->via.array.size);
  for (uint32_t i = 0; i < crcs->via.array.size; ++i) {
    uint64_t c = 0;
    if (!wire::ReadUint(crcs->via.array.ptr[i], &c) || c > UINT32_MAX) {
      return Status::Corruption(what + ": a chunk CRC is not a uint32");
    }
    a.crcs.push_back(static_cast<uint32_t>(c));
  }
  if (!CheckLayout(a).ok()) return Status::Corruption(what + ": " + CheckLayout(a).message());
  return a;
}

}  // namespace rs::hydfs
