// HyDFS commands: create, append, get, cat, getfromreplica, merge, ls, liststore, rm,
// multiappend, multicreate, hydfs-stats. LOCAL may be "-" for stdin (create, append) or stdout
// (get, getfromreplica).
#include <cinttypes>
#include <cstdio>
#include <thread>
#include <vector>

#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/transfer.h"
#include "shared/wire/fields.h"

namespace rs::ctl {
namespace {

// NODE arguments: HOST:PORT of a node's control port, or a member id (HOST:PORT#ms).
std::string NodeAddress(const std::string& node) {
  size_t hash = node.find('#');
  return hash == std::string::npos ? node : node.substr(0, hash);
}

int Finish(const Context& ctx, const TransferOutcome& t,
           const std::function<void(const msgpack::object&)>& text) {
  if (t.local_error) return Fail(ctx, t.outcome.status, kExitLocalFile);
  if (!t.outcome.ok()) return Fail(ctx, t.outcome);
  if (ctx.json) {
    PrintJson(t.outcome.reply.payload);
  } else if (text) {
    text(t.outcome.reply.payload);
  }
  return kExitOk;
}

void PrintWrite(const msgpack::object& p, const char* verb) {
  const msgpack::object* on = wire::MapGet(p, "stored_on");
  uint32_t n = on && on->type == msgpack::type::ARRAY ? on->via.array.size : 0;
  std::printf("%s %s: %s on %u of %" PRIu64 " replicas in %.1f ms\n", verb, Str(p, "file").c_str(),
              FormatBytes(Uint(p, "bytes")).c_str(), n, Uint(p, "replicas"),
              static_cast<double>(Uint(p, "elapsed_us")) / 1000);
}

void PrintCorruption(const msgpack::object& p) {
  const msgpack::object* c = wire::MapGet(p, "corrupt");
  if (c == nullptr || c->type != msgpack::type::ARRAY) return;
  for (uint32_t i = 0; i < c->via.array.size; ++i) {
    std::string what;
    wire::ReadString(c->via.array.ptr[i], &what);
    std::fprintf(stderr,
                 "rainctl: warning: corrupt replica data was detected and read "
                 "elsewhere: %s\n",
                 what.c_str());
  }
}

// Runs one transfer per (node, local) pair at the same time and reports each.
int Multi(Context& ctx, const std::string& cmd, const std::string& name,
          const std::vector<std::string>& rest) {
  if (rest.size() < 2 || rest.size() % 2 != 0) {
    std::fprintf(stderr, "rainctl: expected NODE... followed by as many LOCAL files\n");
    return kExitUsage;
  }
  size_t n = rest.size() / 2;
  std::vector<TransferOutcome> results(n);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      Context c = ctx;
      c.node = NodeAddress(rest[i]);
      results[i] = Upload(c, cmd, name, rest[n + i], {});
    });
  }
  for (auto& t : threads) t.join();
  int code = kExitOk;
  wire::Json docs = wire::Json::array();
  for (size_t i = 0; i < n; ++i) {
    const TransferOutcome& r = results[i];
    bool ok = !r.local_error && r.outcome.ok();
    if (ctx.json) {
      docs.push_back({{"node", rest[i]},
                      {"local", rest[n + i]},
                      {"ok", ok},
                      {"error", ok ? std::string() : r.outcome.status.message()}});
    } else if (ok) {
      std::printf("%s: ok (%s)\n", rest[i].c_str(), rest[n + i].c_str());
    } else {
      std::printf("%s: FAILED (%s): %s\n", rest[i].c_str(), rest[n + i].c_str(),
                  r.outcome.status.ToString().c_str());
    }
    if (!ok) {
      int c = r.local_error      ? kExitLocalFile
              : r.outcome.remote ? kExitRemoteError
                                 : kExitUnreachable;
      if (code == kExitOk) code = c;
    }
  }
  if (ctx.json) PrintJsonLine(docs);
  return code;
}

}  // namespace

void AddHydfsCommands(CLI::App& app, Context& ctx, int* exit_code) {
  auto* create = app.add_subcommand("create", "copy LOCAL into a new HyDFS file");
  static std::string local, hydfs, node;
  create->add_option("LOCAL", local, "local file, or - for stdin")->required();
  create->add_option("HYDFS", hydfs, "HyDFS file name")->required();
  create->callback([&ctx, exit_code] {
    *exit_code = Finish(ctx, Upload(ctx, "hydfs.create", hydfs, local, {true, "create " + hydfs}),
                        [](const msgpack::object& p) { PrintWrite(p, "created"); });
  });

  auto* append = app.add_subcommand("append", "append LOCAL to an existing HyDFS file");
  append->add_option("LOCAL", local, "local file, or - for stdin")->required();
  append->add_option("HYDFS", hydfs, "HyDFS file name")->required();
  append->callback([&ctx, exit_code] {
    *exit_code = Finish(ctx, Upload(ctx, "hydfs.append", hydfs, local, {true, "append " + hydfs}),
                        [](const msgpack::object& p) { PrintWrite(p, "appended to"); });
  });

  auto* get = app.add_subcommand("get", "copy a HyDFS file (every completed append) to LOCAL");
  get->add_option("HYDFS", hydfs, "HyDFS file name")->required();
  get->add_option("LOCAL", local, "local file, or - for stdout")->required();
  get->callback([&ctx, exit_code] {
    *exit_code = Finish(ctx, Download(ctx, hydfs, local, false, {local != "-", "get " + hydfs}),
                        [](const msgpack::object& p) {
                          PrintCorruption(p);
                          if (local == "-") return;
                          std::printf("got %s: %s%s in %.1f ms\n", Str(p, "file").c_str(),
                                      FormatBytes(Uint(p, "bytes")).c_str(),
                                      Bool(p, "cached") ? " (from the cache)" : "",
                                      static_cast<double>(Uint(p, "elapsed_us")) / 1000);
                        });
  });

  auto* cat = app.add_subcommand("cat", "print a HyDFS file on stdout");
  cat->add_option("HYDFS", hydfs, "HyDFS file name")->required();
  cat->callback([&ctx, exit_code] {
    Context c = ctx;
    c.json = false;  // the file is the output
    *exit_code = Finish(c, Download(c, hydfs, "-", false, {}), PrintCorruption);
  });

  auto* gfr = app.add_subcommand("getfromreplica",
                                 "copy NODE's own replica of a HyDFS file (its local order)");
  gfr->add_option("NODE", node, "HOST:PORT or member id of a replica")->required();
  gfr->add_option("HYDFS", hydfs, "HyDFS file name")->required();
  gfr->add_option("LOCAL", local, "local file, or - for stdout")->required();
  gfr->callback([&ctx, exit_code] {
    Context c = ctx;
    c.node = NodeAddress(node);
    *exit_code = Finish(c, Download(c, hydfs, local, true, {local != "-", "get " + hydfs}),
                        [](const msgpack::object& p) {
                          if (local == "-") return;
                          std::printf("got %s from %s: %s (version %s)\n", Str(p, "file").c_str(),
                                      node.c_str(), FormatBytes(Uint(p, "bytes")).c_str(),
                                      Str(p, "version").c_str());
                        });
  });

  auto* merge = app.add_subcommand("merge", "make every replica of a HyDFS file identical");
  merge->add_option("HYDFS", hydfs, "HyDFS file name")->required();
  merge->callback([&ctx, exit_code] {
    *exit_code = Run(
        ctx, "hydfs.merge", {{"name", hydfs}},
        [](const msgpack::object& p) {
          if (Uint(p, "replicas_changed") == 0) {
            std::printf("merged %s: replicas already identical, no data moved\n",
                        Str(p, "file").c_str());
          } else {
            std::printf("merged %s: %" PRIu64 " replicas updated, %s moved, %" PRIu64 " ms\n",
                        Str(p, "file").c_str(), Uint(p, "replicas_changed"),
                        FormatBytes(Uint(p, "moved_bytes")).c_str(), Uint(p, "elapsed_ms"));
          }
        },
        std::max(ctx.timeout_ms, 120000));
  });

  auto* ls = app.add_subcommand(
      "ls", "without a name: every file; NAME: its replicas; PREFIX/: the files under it");
  static std::string ls_name;
  ls->add_option("HYDFS", ls_name, "file name, or a prefix ending in /");
  ls->callback([&ctx, exit_code] {
    if (!ls_name.empty() && ls_name.back() != '/') {
      *exit_code = Run(ctx, "hydfs.ls", {{"name", ls_name}}, [](const msgpack::object& p) {
        std::printf("%s  file_id=%s  size=%s  version=%s\n", Str(p, "name").c_str(),
                    Str(p, "file_id").c_str(), FormatBytes(Uint(p, "size")).c_str(),
                    Str(p, "version").c_str());
        const msgpack::object* reps = wire::MapGet(p, "replicas");
        if (reps == nullptr || reps->type != msgpack::type::ARRAY) return;
        for (uint32_t i = 0; i < reps->via.array.size; ++i) {
          const msgpack::object& r = reps->via.array.ptr[i];
          std::string state = !Bool(r, "answered") ? "no answer"
                              : !Bool(r, "has_copy")
                                  ? "no copy yet"
                                  : FormatBytes(Uint(r, "size")) + ", " + Str(r, "appends") +
                                        " appends, version " + Str(r, "version");
          std::printf("  replica %u  %-32s ring_id=%s  %s\n", i + 1, Str(r, "node").c_str(),
                      Str(r, "ring_id").c_str(), state.c_str());
        }
      });
      return;
    }
    *exit_code = Run(ctx, "hydfs.lsall", {{"prefix", ls_name}}, [](const msgpack::object& p) {
      const msgpack::object* files = wire::MapGet(p, "files");
      uint32_t n = files && files->type == msgpack::type::ARRAY ? files->via.array.size : 0;
      for (uint32_t i = 0; i < n; ++i) {
        const msgpack::object& f = files->via.array.ptr[i];
        const msgpack::object* on = wire::MapGet(f, "stored_on");
        std::string holders;
        for (uint32_t k = 0; on && on->type == msgpack::type::ARRAY && k < on->via.array.size;
             ++k) {
          std::string id;
          wire::ReadString(on->via.array.ptr[k], &id);
          holders += (k ? "," : "") + id;
        }
        std::printf("%-40s %s  %10s  %s\n", Str(f, "name").c_str(), Str(f, "file_id").c_str(),
                    FormatBytes(Uint(f, "size")).c_str(), holders.c_str());
      }
      std::printf("%u files\n", n);
      const msgpack::object* un = wire::MapGet(p, "unanswered");
      if (un && un->type == msgpack::type::ARRAY && un->via.array.size > 0) {
        std::fprintf(stderr, "rainctl: warning: %u node(s) did not answer\n", un->via.array.size);
      }
    });
  });

  auto* liststore = app.add_subcommand("liststore", "files stored on this node, and its ring id");
  liststore->callback([&ctx, exit_code] {
    *exit_code = Run(ctx, "hydfs.liststore", {}, [](const msgpack::object& p) {
      std::printf("node %s  ring_id=%s  stored=%s\n", Str(p, "node").c_str(),
                  Str(p, "ring_id").c_str(), FormatBytes(Uint(p, "used_bytes")).c_str());
      const msgpack::object* files = wire::MapGet(p, "files");
      uint32_t n = files && files->type == msgpack::type::ARRAY ? files->via.array.size : 0;
      for (uint32_t i = 0; i < n; ++i) {
        const msgpack::object& f = files->via.array.ptr[i];
        std::printf("  %-40s file_id=%s  %10s  %s appends  version %s\n", Str(f, "name").c_str(),
                    Str(f, "file_id").c_str(), FormatBytes(Uint(f, "size")).c_str(),
                    Str(f, "appends").c_str(), Str(f, "version").c_str());
      }
      std::printf("%u files\n", n);
    });
  });

  auto* rm = app.add_subcommand("rm", "remove a HyDFS file");
  rm->add_option("HYDFS", hydfs, "HyDFS file name")->required();
  rm->callback([&ctx, exit_code] {
    *exit_code = Run(ctx, "hydfs.rm", {{"name", hydfs}}, [](const msgpack::object& p) {
      std::printf("removed %s from %s replicas\n", Str(p, "file").c_str(),
                  Str(p, "replicas_removed").c_str());
    });
  });

  static std::vector<std::string> rest;
  auto* multiappend = app.add_subcommand(
      "multiappend", "append LOCALi through NODEi, all at the same time: HYDFS NODE... LOCAL...");
  multiappend->add_option("HYDFS", hydfs, "HyDFS file name")->required();
  multiappend->add_option("ARGS", rest, "NODE... then as many LOCAL files")->required();
  multiappend->callback(
      [&ctx, exit_code] { *exit_code = Multi(ctx, "hydfs.append", hydfs, rest); });

  auto* multicreate = app.add_subcommand(
      "multicreate",
      "create HYDFS from LOCALi through NODEi, all at the same time (exactly one wins)");
  multicreate->add_option("HYDFS", hydfs, "HyDFS file name")->required();
  multicreate->add_option("ARGS", rest, "NODE... then as many LOCAL files")->required();
  multicreate->callback(
      [&ctx, exit_code] { *exit_code = Multi(ctx, "hydfs.create", hydfs, rest); });

  auto* stats = app.add_subcommand("hydfs-stats", "this node's HyDFS counters");
  stats->callback([&ctx, exit_code] {
    *exit_code = Run(ctx, "hydfs.stats", {}, [](const msgpack::object& p) {
      if (p.type != msgpack::type::MAP) return;
      for (uint32_t i = 0; i < p.via.map.size; ++i) {
        std::string k;
        wire::ReadString(p.via.map.ptr[i].key, &k);
        std::printf("%-24s %s\n", k.c_str(), Str(p, k.c_str()).c_str());
      }
    });
  });
}

}  // namespace rs::ctl
