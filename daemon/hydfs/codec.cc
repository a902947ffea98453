#include "daemon/hydfs/codec.h"

#include <cctype>

#include "shared/wire/fields.h"

namespace rs::hydfs {

void PackAppend(wire::Packer& pk, const AppendMeta& a) {
  pk.pack_map(7);
  pk.pack("id");
  pk.pack_uint64(a.id);
  pk.pack("client");
  pk.pack(a.client);
  pk.pack("seq");
  pk.pack_uint64(a.seq);
  pk.pack("size");
  pk.pack_uint64(a.size);
  pk.pack("chunk_size");
  pk.pack_uint32(a.chunk_size);
  pk.pack("crcs");
  pk.pack_array(static_cast<uint32_t>(a.crcs.size()));
  for (uint32_t crc : a.crcs) pk.pack_uint32(crc);
  pk.pack("wall_ms");
  pk.pack_uint64(a.wall_ms);
}

Result<AppendMeta> ReadAppend(const msgpack::object& o) {
  wire::FieldReader r(o, "append");
  AppendMeta a;
  a.id = r.Uint("id");
  a.client = r.Str("client", 256);
  a.seq = r.Uint("seq");
  a.size = r.Uint("size", 1ull << 50);
  a.chunk_size = static_cast<uint32_t>(r.Uint("chunk_size", 64u << 20));
  a.wall_ms = r.UintOr("wall_ms", 0);
  const msgpack::object* crcs = r.Array("crcs");
  if (!r.ok()) return r.status();
  for (uint32_t i = 0; i < crcs->via.array.size; ++i) {
    uint64_t crc = 0;
    if (!wire::ReadUint(crcs->via.array.ptr[i], &crc) || crc > UINT32_MAX) {
      return Status::Corruption("append: bad crc");
    }
    a.crcs.push_back(static_cast<uint32_t>(crc));
  }
  uint64_t chunks = a.chunk_size == 0 ? 0 : (a.size + a.chunk_size - 1) / a.chunk_size;
  if ((a.size > 0 && a.chunk_size == 0) || chunks != a.crcs.size()) {
    return Status::Corruption("append: size, chunk size and crc count disagree");
  }
  return a;
}

void PackFile(wire::Packer& pk, const FileMeta& f) {
  pk.pack_map(4);
  pk.pack("name");
  pk.pack(f.name);
  pk.pack("gen");
  pk.pack_uint64(f.gen);
  pk.pack("created_ms");
  pk.pack_uint64(f.created_ms);
  pk.pack("creator");
  pk.pack(f.creator);
}

Result<FileMeta> ReadFile(const msgpack::object& o) {
  wire::FieldReader r(o, "file");
  FileMeta f;
  f.name = r.Str("name", 1024);
  f.gen = r.Uint("gen");
  f.created_ms = r.UintOr("created_ms", 0);
  f.creator = r.StrOr("creator", "", 256);
  if (!r.ok()) return r.status();
  RS_RETURN_IF_ERROR(ValidateName(f.name));
  return f;
}

void PackManifest(wire::Packer& pk, const Manifest& m) {
  pk.pack_map(3);
  pk.pack("file");
  PackFile(pk, m.file);
  pk.pack("merged");
  pk.pack_uint64(m.merged);
  pk.pack("appends");
  pk.pack_array(static_cast<uint32_t>(m.appends.size()));
  for (const auto& a : m.appends) PackAppend(pk, a);
}

Result<Manifest> ReadManifest(const msgpack::object& o) {
  wire::FieldReader r(o, "manifest");
  Manifest m;
  const msgpack::object* file = r.Map("file");
  m.merged = r.UintOr("merged", 0);
  const msgpack::object* appends = r.Array("appends");
  if (!r.ok()) return r.status();
  auto f = ReadFile(*file);
  if (!f.ok()) return f.status();
  m.file = std::move(f.value());
  for (uint32_t i = 0; i < appends->via.array.size; ++i) {
    auto a = ReadAppend(appends->via.array.ptr[i]);
    if (!a.ok()) return a.status();
    m.appends.push_back(std::move(a.value()));
  }
  return m;
}

void PackSummary(wire::Packer& pk, const FileSummary& s) {
  pk.pack_map(6);
  pk.pack("name");
  pk.pack(s.name);
  pk.pack("gen");
  pk.pack_uint64(s.gen);
  pk.pack("size");
  pk.pack_uint64(s.size);
  pk.pack("appends");
  pk.pack_uint64(s.appends);
  pk.pack("merged");
  pk.pack_uint64(s.merged);
  pk.pack("digest");
  pk.pack_uint64(s.digest);
}

Result<FileSummary> ReadSummary(const msgpack::object& o) {
  wire::FieldReader r(o, "summary");
  FileSummary s;
  s.name = r.Str("name", 1024);
  s.gen = r.Uint("gen");
  s.size = r.Uint("size");
  s.appends = r.Uint("appends");
  s.merged = r.UintOr("merged", 0);
  s.digest = r.Uint("digest");
  if (!r.ok()) return r.status();
  return s;
}

Status ValidateName(const std::string& name) {
  if (name.empty()) return Status::InvalidArgument("empty file name");
  if (name.size() > 1024) return Status::InvalidArgument("file name longer than 1024 bytes");
  for (char c : name) {
    if (c == '\0' || c == '\n' || c == '\r') {
      return Status::InvalidArgument("file name contains a NUL or newline character");
    }
  }
  if (std::isspace(static_cast<unsigned char>(name.front())) ||
      std::isspace(static_cast<unsigned char>(name.back()))) {
    return Status::InvalidArgument("file name '" + name + "' starts or ends with whitespace");
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t slash = name.find('/', start);
    std::string seg =
        name.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (seg.empty()) {
      return Status::InvalidArgument("file name '" + name +
                                     "' has an empty segment (a leading, trailing or double '/')");
    }
    if (seg == "." || seg == "..") {
      return Status::InvalidArgument("file name '" + name + "' has a '.' or '..' segment");
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

}  // namespace rs::hydfs
