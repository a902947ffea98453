// MessagePack encodings of HyDFS values on the wire (control RPC bodies; layouts in README.md).
// Decoders never throw and check every field. Thread-safe (pure functions).
#pragma once

#include <msgpack.hpp>

#include "daemon/hydfs/types.h"
#include "shared/status.h"
#include "shared/wire/envelope.h"

namespace rs::hydfs {

void PackAppend(wire::Packer& pk, const AppendMeta& a);
Result<AppendMeta> ReadAppend(const msgpack::object& o);
void PackFile(wire::Packer& pk, const FileMeta& f);
Result<FileMeta> ReadFile(const msgpack::object& o);
void PackManifest(wire::Packer& pk, const Manifest& m);
Result<Manifest> ReadManifest(const msgpack::object& o);
void PackSummary(wire::Packer& pk, const FileSummary& s);
Result<FileSummary> ReadSummary(const msgpack::object& o);

// Names: 1..1024 bytes, valid UTF-8 is not required but NUL, newline and leading/trailing
// whitespace are refused, as are "." and ".." path segments (so names map safely to local
// paths in tools).
Status ValidateName(const std::string& name);

}  // namespace rs::hydfs
