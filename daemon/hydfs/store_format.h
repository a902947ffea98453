// Private to Store (store.cc, store_blobs.cc): the on-disk format of a node's HyDFS metadata,
// the LMDB keys and records that store.h's header comment lays out, and the layout rule every
// append's CRC list obeys. Pure functions over bytes; thread-safe.
//
// Records are MessagePack maps with string keys and a version "v" (readers reject other versions;
// new fields may be added, never renamed). Version 2:
//   file record:   {v, live: bool, gen, created_ms, creator: str, merged, count, size, digest,
//                   removed: [gen]}
//   append record: {v, id, client: str, seq, size, chunk_size, crcs: [uint32], wall_ms}
//   id record:     be64(position)
// `live` is false when only tombstones remain; `count` appends are stored under be64(gen), `size`
// is their bytes and `digest` their OrderDigest, kept up to date by every commit so that a head
// or a listing reads one record whatever the number of appends (version 1 had neither, and no
// id records: a head read every append).
// Decoding never throws: damaged bytes are Corruption.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/hydfs/types.h"
#include "shared/status.h"

namespace rs::hydfs {

// ---- names ----

std::string Hex16(uint64_t id);       // 16 lowercase hex digits: a blob's file name
std::string AppendName(uint64_t id);  // "append <hex>", for messages

// ---- layout of an append ----

// The number of chunks of an append of `size` bytes, or nullopt when the layout is impossible.
std::optional<uint64_t> ChunkCount(uint64_t size, uint32_t chunk_size);
// An append's CRC list must match its size and chunk size, or ChunkBytes() would lie.
Status CheckLayout(const AppendMeta& a);

// ---- keys ----

uint64_t GetBe64(std::string_view in);  // the first 8 bytes of `in`, big-endian
// The key prefix of generation `gen`'s appends: be64(gen).
std::string GenPrefix(uint64_t gen);
// be64(gen) ++ be64(position). Big-endian so that LMDB's byte order is the replica's append
// order.
std::string AppendKey(uint64_t gen, uint64_t position);
// be64(gen) ++ be64(append id): where an append of generation `gen` sits, found without a scan.
std::string IdKey(uint64_t gen, uint64_t append_id);
std::string EncodePosition(uint64_t position);
Result<uint64_t> DecodePosition(std::string_view bytes);

// ---- records ----

struct FileRecord {
  bool live = false;  // false: only tombstones remain
  FileMeta file;
  uint64_t merged = 0;
  uint64_t count = 0;             // appends stored under be64(file.gen)
  uint64_t size = 0;              // their bytes
  uint64_t digest = 0;            // OrderDigest(file.gen, those appends in order)
  std::vector<uint64_t> removed;  // tombstoned generations, oldest first
};

std::string EncodeFileRecord(const FileRecord& r);
std::string EncodeAppend(const AppendMeta& a);
// `name` is the record's key (the file name is not stored in the record).
Result<FileRecord> DecodeFileRecord(std::string_view bytes, const std::string& name);
// `what` names the record in error messages.
Result<AppendMeta> DecodeAppend(std::string_view bytes, const std::string& what);

}  // namespace rs::hydfs
