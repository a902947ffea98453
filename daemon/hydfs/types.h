// Value types of HyDFS: a file's identity, its appends and its manifest (the ordered list of
// appends a replica holds). Plain data; thread-compatible. On-disk and wire layouts are in
// daemon/hydfs/README.md.
//
// A file is named by a flat string (slashes allowed). Each create makes a new generation `gen`
// (a random 64-bit number chosen by the creating client): an rm followed by a create of the same
// name is a different file, and stale copies of a removed generation are recognised by it.
// The content is the concatenation of the manifest's appends in order; the create's data is the
// first append (seq 0, possibly empty). An append is identified by (client, seq): `client` is the
// node id of the client node, `seq` counts that client's writes to this generation from 0.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shared/util/hash.h"

namespace rs::hydfs {

// Every chunk of an append but the last holds exactly `chunk_size` bytes.
struct AppendMeta {
  uint64_t id = 0;     // AppendId(gen, client, seq): unique across files and generations
  std::string client;  // node id of the writing client
  uint64_t seq = 0;    // the client's write number for this generation; the create is 0
  uint64_t size = 0;   // bytes
  uint32_t chunk_size = 0;
  std::vector<uint32_t> crcs;  // CRC32C of each chunk, in order; empty when size == 0
  uint64_t wall_ms = 0;        // when the client started it (shown to users, never used to order)

  uint32_t chunk_count() const { return static_cast<uint32_t>(crcs.size()); }
  uint32_t ChunkBytes(uint32_t index) const {  // size of chunk `index`
    uint64_t begin = uint64_t{index} * chunk_size;
    return static_cast<uint32_t>(std::min<uint64_t>(chunk_size, size - begin));
  }
};

struct FileMeta {
  std::string name;
  uint64_t gen = 0;
  uint64_t created_ms = 0;
  std::string creator;  // client node id
};

// A replica's copy of a file: appends in this replica's order. After a merge every replica
// holds the same order; `merged` counts the leading appends that a merge has fixed.
struct Manifest {
  FileMeta file;
  std::vector<AppendMeta> appends;
  uint64_t merged = 0;

  uint64_t size() const {
    uint64_t n = 0;
    for (const auto& a : appends) n += a.size;
    return n;
  }
};

// A line of `liststore` / `ls`: what one replica holds of one file, without the append list.
struct FileSummary {
  std::string name;
  uint64_t gen = 0;
  uint64_t size = 0;
  uint64_t appends = 0;
  uint64_t merged = 0;
  uint64_t digest = 0;  // OrderDigest(gen, appends): equal digests mean identical content order
};

// The id of append (client, seq) of generation `gen`. Part of the on-disk format: never change.
inline uint64_t AppendId(uint64_t gen, std::string_view client, uint64_t seq) {
  std::string key = std::to_string(gen) + "/" + std::string(client) + "/" + std::to_string(seq);
  return StableHash64(key);
}

// A digest of a file's content order: equal digests mean the same generation with the same
// appends in the same order (so byte-identical content, chunk CRCs included).
// A fold over the appends, so a store keeps it up to date one append at a time.
inline uint64_t OrderDigestStart(uint64_t gen) { return StableHash64(std::to_string(gen)); }
inline uint64_t OrderDigestStep(uint64_t digest, uint64_t append_id) {
  return StableHash64(std::to_string(digest) + ":" + std::to_string(append_id));
}
inline uint64_t OrderDigest(uint64_t gen, const std::vector<AppendMeta>& appends) {
  uint64_t h = OrderDigestStart(gen);
  for (const auto& a : appends) h = OrderDigestStep(h, a.id);
  return h;
}

// A file's content fixed at one moment (HydfsService::Snapshot): the first `appends` appends of
// its merged order, `size` bytes, `digest` = OrderDigest(gen, those appends). A job reads its
// input through one, so every task sees the same bytes whatever is appended meanwhile.
// One file of a cluster-wide listing (HydfsService::ListAll): its largest size among its
// holders, the nodes that hold it, and its version: the newest copy's generation, appends and
// order digest, and whether every holder has that same version.
struct ListedFile {
  std::string name;
  uint64_t size = 0;
  std::vector<std::string> stored_on;
  uint64_t gen = 0, appends = 0, digest = 0;
  bool in_sync = true;
};
struct Listing {
  std::vector<ListedFile> files;        // by name
  std::vector<std::string> unanswered;  // nodes that did not answer
};

struct FileSnapshot {
  uint64_t gen = 0;
  uint64_t appends = 0;
  uint64_t size = 0;
  uint64_t digest = 0;
};

}  // namespace rs::hydfs
