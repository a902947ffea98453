// Log commands: `grep` (a distributed grep over every node's log files, or over the logs the
// nodes shipped into HyDFS) and `logs --follow` (live lines from every node's log).
//
// Each node runs GNU grep (or tail -F) itself and streams the output back to rainctl's PULL
// socket over the data plane with a window (daemon/logquery/command_stream.h); rainctl prints
// each line prefixed by the node id, acknowledges it, and never holds more than the window.
// grep exit codes follow grep: 0 lines selected, 1 none, 2 an error (bad pattern, bad flags);
// plus 3 no node answered and 5 a partial result (some node down or silent past --timeout).
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/transfer.h"
#include "shared/clock.h"
#include "shared/transport/data_stream.h"
#include "shared/transport/sockets.h"
#include "shared/util/child.h"
#include "shared/wire/fields.h"

namespace rs::ctl {
namespace {

constexpr int kExitPartial = 5;
constexpr uint8_t kToolLane = 127;

volatile std::sig_atomic_t g_interrupted = 0;

struct GrepFlags {
  bool i = false, v = false, n = false, c = false, E = false, F = false, w = false;
  int max_count = -1;
  std::string pattern;
  std::string nodes;  // comma-separated ids or HOST:PORT
  std::string files;  // glob in each node's log dir
  bool hydfs = false;
  std::string Letters() const {
    std::string s;
    if (i) s += 'i';
    if (v) s += 'v';
    if (n) s += 'n';
    if (c) s += 'c';
    if (E) s += 'E';
    if (F) s += 'F';
    if (w) s += 'w';
    return s;
  }
};

// One node of a query: its stream, where to ack, what it said.
struct Peer {
  std::string id;       // member id
  std::string address;  // HOST:PORT of its control port
  uint64_t stream = 0;
  std::string ack_endpoint;
  std::unique_ptr<zmq::socket_t> push;
  bool started = false, ended = false, failed = false;
  std::string error;  // why it failed, or grep's stderr
  uint64_t selected = 0;
  int exit = 0;
  Clock::duration silent{0};  // time rainctl waited with nothing from this node
};

std::string Address(const std::string& id) {
  size_t hash = id.find('#');
  return hash == std::string::npos ? id : id.substr(0, hash);
}

// The members (ids) the node rainctl talks to lists as alive or suspected, and, with
// `with_failed`, those it declared failed but still lists (so a query names a node that died
// shortly before it instead of silently leaving it out).
Result<std::vector<std::string>> Members(const Context& ctx, bool with_failed) {
  Outcome out = Command(ctx, "list_mem");
  if (!out.ok()) return out.status;
  std::vector<std::string> ids;
  const msgpack::object* members = wire::MapGet(out.reply.payload, "members");
  if (members == nullptr || members->type != msgpack::type::ARRAY) return ids;
  for (uint32_t k = 0; k < members->via.array.size; ++k) {
    std::string state = Str(members->via.array.ptr[k], "state");
    if (state == "alive" || state == "suspect" || (with_failed && state == "failed")) {
      ids.push_back(Str(members->via.array.ptr[k], "id"));
    }
  }
  return ids;
}

// Members selected by --nodes (ids or HOST:PORT); unknown names are errors.
Result<std::vector<std::string>> Select(const std::vector<std::string>& members,
                                        const std::string& wanted) {
  if (wanted.empty()) return members;
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= wanted.size()) {
    size_t comma = wanted.find(',', start);
    std::string name =
        wanted.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!name.empty()) {
      std::string found;
      for (const auto& id : members) {
        if (id == name || Address(id) == Address(name)) found = id;
      }
      if (found.empty()) {
        // Not a member (down, or never was): still asked, so it is reported by name.
        found = name;
      }
      out.push_back(found);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// The data-plane end of a query: one PULL for every node's frames.
class Listener {
 public:
  Status Open(const std::string& node_address) {
    transport::SocketOptions o;
    o.recv_hwm = 4096;
    o.max_message_bytes = 64 << 20;
    auto s = transport::MakeSocket(zmq::socket_type::pull, o);
    if (!s.ok()) return s.status();
    pull_ = std::move(s.value());
    std::string host = node_address.substr(0, node_address.rfind(':'));
    std::string bind = host.rfind("127.", 0) == 0 || host == "localhost" ? "127.0.0.1" : "0.0.0.0";
    auto port = transport::Bind(pull_, bind, 0);
    if (!port.ok()) return port.status();
    endpoint_ = "tcp://" + (bind == "0.0.0.0" ? host : bind) + ":" + std::to_string(*port);
    return Status::Ok();
  }
  const std::string& endpoint() const { return endpoint_; }
  std::optional<transport::StreamMsg> Receive(int ms) {
    zmq::pollitem_t item{static_cast<void*>(pull_), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(ms));
    } catch (const zmq::error_t&) {
      return std::nullopt;
    }
    std::vector<zmq::message_t> parts;
    if (!(item.revents & ZMQ_POLLIN) || !transport::TryRecv(pull_, &parts) || parts.size() != 1) {
      return std::nullopt;
    }
    auto msg = transport::ParseStreamFrame(std::move(parts[0]));
    if (!msg.ok()) return std::nullopt;
    return std::move(msg.value());
  }

 private:
  zmq::socket_t pull_;
  std::string endpoint_;
};

// Starts `cmd` on every peer at once (one thread per peer, each bounded by the timeout).
void StartAll(const Context& ctx, const std::string& cmd, std::map<std::string, std::string> args,
              const std::string& endpoint, std::vector<Peer*>& peers) {
  std::vector<std::thread> threads;
  for (Peer* p : peers) {
    threads.emplace_back([&ctx, &cmd, args, &endpoint, p]() mutable {
      Context c = ctx;
      c.node = p->address;
      args["stream"] = std::to_string(p->stream);
      args["endpoint"] = endpoint;
      Outcome out = Command(c, cmd, args);
      if (!out.ok()) {
        p->failed = true;
        p->error = out.status.ToString();
        if (out.remote) p->exit = 2;  // the node refused the query (bad flags, no files...)
        return;
      }
      p->ack_endpoint = Str(out.reply.payload, "endpoint");
      transport::SocketOptions o;
      o.linger_ms = 200;
      auto s = transport::MakeSocket(zmq::socket_type::push, o);
      if (!s.ok() || !transport::Connect(s.value(), p->ack_endpoint).ok()) {
        p->failed = true;
        p->error = "cannot reach its data endpoint";
        return;
      }
      p->push = std::make_unique<zmq::socket_t>(std::move(s.value()));
      p->started = true;
    });
  }
  for (auto& t : threads) t.join();
}

void SendFrame(Peer& p, zmq::message_t frame) {
  if (p.push) transport::TrySend(*p.push, &frame, 1);
}

// Prints a chunk of lines from `p`, each prefixed by its node id.
void PrintLines(const Peer& p, std::string_view data, bool json) {
  size_t start = 0;
  std::string out;
  out.reserve(data.size() + 64 * 16);
  wire::Json doc = {{"node", p.id}, {"line", ""}};  // one per line: {"node","line"}
  while (start < data.size()) {
    size_t end = data.find('\n', start);
    if (end == std::string_view::npos) end = data.size();
    std::string_view line = data.substr(start, end - start);
    if (json) {
      doc["line"] = line;
      out += wire::DumpJson(doc);
      out += '\n';
    } else {
      out += p.id;
      out += ' ';
      out += line;
      out += '\n';
    }
    start = end + 1;
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

// The grep query over the nodes' own log files.
int GrepNodes(Context& ctx, const GrepFlags& f) {
  auto members = Members(ctx, /*with_failed=*/true);
  if (!members.ok()) return Fail(ctx, members.status(), kExitUnreachable);
  auto chosen = Select(*members, f.nodes);
  if (!chosen.ok()) return Fail(ctx, chosen.status(), kExitUsage);
  if (chosen->empty()) return Fail(ctx, Status::Unavailable("no node to ask"), kExitUnreachable);
  auto self = ResolveEndpoint(ctx);
  Listener listener;
  Status opened = listener.Open(self.ok() ? self->substr(6) : "127.0.0.1:0");
  if (!opened.ok()) return Fail(ctx, opened, kExitUnreachable);

  std::vector<std::unique_ptr<Peer>> owned;
  std::vector<Peer*> peers;
  std::map<uint64_t, Peer*> by_stream;
  for (const auto& id : *chosen) {
    auto p = std::make_unique<Peer>();
    p->id = id;
    p->address = Address(id);
    p->stream = transport::NewStreamId();
    by_stream[p->stream] = p.get();
    peers.push_back(p.get());
    owned.push_back(std::move(p));
  }
  std::map<std::string, std::string> args = {
      {"pattern", f.pattern}, {"flags", f.Letters()}, {"files", f.files}};
  if (f.max_count >= 0) args["max_count"] = std::to_string(f.max_count);
  StartAll(ctx, "log.grep", args, listener.endpoint(), peers);

  // A node's silence is counted only while rainctl itself waits with nothing queued: time spent
  // writing to a slow stdout (a pager, a full pipe) or waiting for another node's start is not
  // the node's fault. Every node sends a keepalive at least every 500 ms once acknowledged, and
  // every chunk is acknowledged as soon as it is read, so a live node is never silent long.
  auto idle = std::chrono::milliseconds(ctx.timeout_ms);
  for (;;) {
    bool open = false;
    for (Peer* p : peers) open |= p->started && !p->ended && !p->failed;
    if (!open || g_interrupted) break;
    auto waited_from = Clock::now();
    auto msg = listener.Receive(100);
    if (!msg) {
      auto waited = Clock::now() - waited_from;
      for (Peer* p : peers) {
        if (!p->started || p->ended || p->failed) continue;
        p->silent += waited;
        if (p->silent > idle) {
          p->failed = true;
          p->error = "no answer for " + std::to_string(ctx.timeout_ms) + " ms";
        }
      }
      continue;
    }
    auto it = by_stream.find(msg->stream);
    if (it == by_stream.end()) continue;
    Peer& p = *it->second;
    if (p.ended || p.failed) continue;
    p.silent = Clock::duration::zero();
    if (msg->kind == transport::StreamKind::kChunk) {
      SendFrame(p, transport::AckFrame(p.stream, msg->seq, kToolLane));  // before the slow part
      if (!msg->data.empty() && !f.c) PrintLines(p, msg->data, ctx.json);
    } else if (msg->kind == transport::StreamKind::kEnd) {
      p.ended = true;
      if (!msg->status.ok()) {
        p.failed = true;
        p.error = msg->status.ToString();
        continue;
      }
      int64_t exit = 0;
      if (const auto* e = wire::MapGet(msg->payload, "exit")) wire::ReadInt(*e, &exit);
      p.exit = static_cast<int>(exit);
      p.selected = Uint(msg->payload, "selected");
      p.error = Str(msg->payload, "stderr");
    }
  }
  std::fflush(stdout);
  // Stop whatever still runs (Ctrl-C, or a node that went silent).
  for (Peer* p : peers) {
    if (p->started && !p->ended) {
      SendFrame(*p, transport::EndFrame(p->stream, kToolLane, Status::Unavailable("stopped")));
    }
  }

  uint64_t total = 0;
  bool partial = false, error = false;
  std::string summary;
  for (Peer* p : peers) {
    total += p->selected;
    if (p->failed && p->exit != 2) {
      partial = true;
      std::fprintf(stderr, "rainctl: %s: NO RESULT: %s\n", p->id.c_str(), p->error.c_str());
    } else if (p->exit >= 2 || (p->failed && p->exit == 2)) {
      error = true;
      std::string msg = p->error;
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      std::fprintf(stderr, "rainctl: %s: %s\n", p->id.c_str(), msg.c_str());
    }
  }
  if (ctx.json) {
    wire::Json nodes = wire::Json::array();
    for (const Peer* p : peers) {
      bool answered = !(p->failed && p->exit != 2);
      nodes.push_back({{"node", p->id},
                       {"answered", answered},
                       {"selected", p->selected},
                       {"exit", p->exit},
                       {"error", answered && p->exit < 2 ? std::string() : p->error}});
    }
    PrintJsonLine({{"total", total}, {"partial", partial}, {"nodes", std::move(nodes)}});
  } else {
    FILE* where = f.c ? stdout : stderr;  // with -c the counts are the output
    for (Peer* p : peers) {
      bool answered = !(p->failed && p->exit != 2);
      if (answered && p->exit < 2) {
        std::fprintf(where, "%s %llu\n", p->id.c_str(),
                     static_cast<unsigned long long>(p->selected));
      }
    }
    std::fprintf(where, "total %llu%s\n", static_cast<unsigned long long>(total),
                 partial ? " (partial: some nodes did not answer)" : "");
  }
  bool any_answer = false;
  for (Peer* p : peers) any_answer |= !(p->failed && p->exit != 2);
  if (!any_answer) return kExitUnreachable;
  if (error) return kExitUsage;
  if (partial) return kExitPartial;
  return total > 0 ? 0 : 1;
}

// The grep query over the logs the nodes shipped into HyDFS (dead nodes' included): each
// logs/<node id> file is fetched to a temporary file and grepped here.
int GrepHydfs(Context& ctx, const GrepFlags& f) {
  Outcome out = Command(ctx, "hydfs.lsall", {{"prefix", "logs/"}});
  if (!out.ok()) return Fail(ctx, out);
  const msgpack::object* files = wire::MapGet(out.reply.payload, "files");
  std::vector<std::string> names;
  for (uint32_t k = 0; files && files->type == msgpack::type::ARRAY && k < files->via.array.size;
       ++k) {
    names.push_back(Str(files->via.array.ptr[k], "name"));
  }
  const char* tmpdir = std::getenv("TMPDIR");
  uint64_t total = 0;
  bool error = false, partial = false;
  for (const auto& name : names) {
    std::string id = name.substr(5);
    if (!f.nodes.empty()) {
      bool wanted = false;
      size_t start = 0;
      while (start <= f.nodes.size()) {
        size_t comma = f.nodes.find(',', start);
        std::string n =
            f.nodes.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        wanted |= n == id || Address(n) == Address(id);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      if (!wanted) continue;
    }
    std::string tmp =
        std::string(tmpdir ? tmpdir : "/tmp") + "/rainctl-grep-" + std::to_string(getpid());
    TransferOutcome t = Download(ctx, name, tmp, false, {});
    if (t.local_error || !t.outcome.ok()) {
      partial = true;
      std::fprintf(stderr, "rainctl: %s: NO RESULT: %s\n", id.c_str(),
                   t.outcome.status.ToString().c_str());
      continue;
    }
    std::vector<std::string> argv = {"grep", "-H", "--color=never", "--label=" + name};
    for (char c : f.Letters()) argv.push_back(std::string("-") + c);
    if (f.max_count >= 0) argv.push_back("-m" + std::to_string(f.max_count));
    argv.push_back("-e");
    argv.push_back(f.pattern);
    argv.push_back("-");
    // grep reads the fetched copy as its stdin, so its lines are labelled with the HyDFS name.
    Child grep;
    ChildOptions go;
    std::vector<std::string> cmd = {"sh", "-c", "f=$1; shift; exec \"$@\" < \"$f\"", "sh", tmp};
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    Status started = grep.Start(cmd, go);
    if (!started.ok()) {
      ::unlink(tmp.c_str());
      return Fail(ctx, started, kExitUsage);
    }
    Peer p;
    p.id = id;
    std::string pending, err;
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(grep.stdout_fd(), buf, sizeof(buf));
      if (n <= 0) break;
      pending.append(buf, static_cast<size_t>(n));
      size_t cut = pending.rfind('\n');
      if (cut == std::string::npos) continue;
      std::string_view lines(pending.data(), cut + 1);
      if (f.c) {
        size_t colon = lines.rfind(':', lines.size() - 2);
        total += std::strtoull(std::string(lines.substr(colon + 1)).c_str(), nullptr, 10);
        p.selected += std::strtoull(std::string(lines.substr(colon + 1)).c_str(), nullptr, 10);
      } else {
        PrintLines(p, lines, ctx.json);
        for (char c : lines) p.selected += c == '\n';
      }
      pending.erase(0, cut + 1);
    }
    for (;;) {
      ssize_t n = ::read(grep.stderr_fd(), buf, sizeof(buf));
      if (n <= 0) break;
      err.append(buf, static_cast<size_t>(n));
    }
    ChildExit e = grep.Wait();
    ::unlink(tmp.c_str());
    if (!f.c) total += p.selected;
    if (e.signaled || e.code >= 2) {
      error = true;
      std::fprintf(stderr, "rainctl: %s: %s", id.c_str(), err.c_str());
    } else if (f.c || !ctx.json) {
      std::fprintf(f.c ? stdout : stderr, "%s %llu\n", id.c_str(),
                   static_cast<unsigned long long>(p.selected));
    }
  }
  std::fprintf(f.c ? stdout : stderr, "total %llu%s\n", static_cast<unsigned long long>(total),
               partial ? " (partial)" : "");
  if (error) return kExitUsage;
  if (partial) return kExitPartial;
  return total > 0 ? 0 : 1;
}

void OnInterrupt(int) { g_interrupted = 1; }

// logs --follow: live lines from every node; new members are picked up, lost ones reported.
int Follow(Context& ctx, const GrepFlags& f, double for_seconds) {
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  auto self = ResolveEndpoint(ctx);
  Listener listener;
  Status opened = listener.Open(self.ok() ? self->substr(6) : "127.0.0.1:0");
  if (!opened.ok()) return Fail(ctx, opened, kExitUnreachable);
  std::vector<std::unique_ptr<Peer>> peers;
  std::map<uint64_t, Peer*> by_stream;
  std::set<std::string> known;
  auto until =
      for_seconds > 0
          ? Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(for_seconds * 1000))
          : TimePoint::max();
  auto next_refresh = Clock::now();
  auto idle = std::chrono::milliseconds(std::max(ctx.timeout_ms, 2000));
  std::map<std::string, std::string> args = {{"pattern", f.pattern}, {"flags", f.Letters()}};
  while (!g_interrupted && Clock::now() < until) {
    auto now = Clock::now();
    if (now >= next_refresh) {
      next_refresh = now + std::chrono::seconds(1);
      auto members = Members(ctx, /*with_failed=*/false);
      if (members.ok()) {
        auto chosen = Select(*members, f.nodes);
        std::vector<Peer*> fresh;
        for (const auto& id : chosen.ok() ? *chosen : std::vector<std::string>{}) {
          if (known.count(id)) continue;
          bool listed = false;
          for (const auto& m : *members) listed |= m == id;
          if (!listed) continue;  // a --nodes name that is not (yet) a member
          known.insert(id);
          auto p = std::make_unique<Peer>();
          p->id = id;
          p->address = Address(id);
          p->stream = transport::NewStreamId();
          by_stream[p->stream] = p.get();
          fresh.push_back(p.get());
          peers.push_back(std::move(p));
        }
        if (!fresh.empty()) {
          StartAll(ctx, "log.follow", args, listener.endpoint(), fresh);
          for (Peer* p : fresh) {
            std::fprintf(stderr, "rainctl: %s: %s\n", p->id.c_str(),
                         p->started ? "following" : ("cannot follow: " + p->error).c_str());
          }
        }
      }
    }
    auto waited_from = Clock::now();
    auto msg = listener.Receive(50);
    if (!msg) {
      auto waited = Clock::now() - waited_from;
      for (auto& p : peers) {
        if (!p->started || p->ended || p->failed) continue;
        p->silent += waited;
        if (p->silent > idle) {
          p->failed = true;
          std::fprintf(stderr, "rainctl: %s: LOST (no data or keepalive for %lld ms)\n",
                       p->id.c_str(), static_cast<long long>(ToMillis(idle)));
        }
      }
      continue;
    }
    auto it = by_stream.find(msg->stream);
    if (it == by_stream.end() || it->second->failed || it->second->ended) continue;
    Peer& p = *it->second;
    p.silent = Clock::duration::zero();
    if (msg->kind == transport::StreamKind::kChunk) {
      SendFrame(p, transport::AckFrame(p.stream, msg->seq, kToolLane));
      if (!msg->data.empty()) {
        PrintLines(p, msg->data, ctx.json);
        std::fflush(stdout);
      }
    } else if (msg->kind == transport::StreamKind::kEnd) {
      p.ended = true;
      std::fprintf(
          stderr, "rainctl: %s: follow ended: %s\n", p.id.c_str(),
          msg->status.ok() ? Str(msg->payload, "stderr").c_str() : msg->status.ToString().c_str());
    }
  }
  for (auto& p : peers) {
    if (p->started && !p->ended) {
      SendFrame(*p, transport::EndFrame(p->stream, kToolLane, Status::Unavailable("stopped")));
    }
  }
  return kExitOk;
}

}  // namespace

void AddLogCommands(CLI::App& app, Context& ctx, int* exit_code) {
  static GrepFlags f;
  auto* grep = app.add_subcommand(
      "grep", "search every node's log files with GNU grep (or, with --hydfs, the shipped logs)");
  grep->add_flag("-i", f.i, "ignore case");
  grep->add_flag("-v", f.v, "select non-matching lines");
  grep->add_flag("-n", f.n, "prefix line numbers");
  grep->add_flag("-c", f.c, "print counts only");
  grep->add_flag("-E", f.E, "extended regular expressions");
  grep->add_flag("-F", f.F, "fixed strings");
  grep->add_flag("-w", f.w, "match whole words");
  grep->add_option("-m", f.max_count, "stop after NUM selected lines per file")
      ->check(CLI::Range(0, 1 << 30));
  grep->add_option("--nodes", f.nodes, "comma-separated node ids or HOST:PORT (default: all)");
  grep->add_option("--files", f.files,
                   "GLOB of files in each node's log dir (default: raind.log and its rotations)");
  grep->add_flag("--hydfs", f.hydfs, "search the logs shipped into HyDFS (logs/<node id>)");
  grep->add_option("PATTERN", f.pattern, "the pattern")->required();
  grep->callback([&ctx, exit_code] {
    if (f.E && f.F) {
      std::fprintf(stderr, "rainctl: grep: -E and -F conflict\n");
      *exit_code = kExitUsage;
      return;
    }
    *exit_code = f.hydfs ? GrepHydfs(ctx, f) : GrepNodes(ctx, f);
  });

  static double for_seconds = 0;
  static bool follow = false;
  auto* logs = app.add_subcommand("logs", "live log lines from every node (logs --follow)");
  logs->add_flag("--follow,-f", follow, "follow the logs (required)")->required();
  logs->add_option("--nodes", f.nodes, "comma-separated node ids or HOST:PORT (default: all)");
  logs->add_option("--grep", f.pattern, "only lines matching PATTERN (GNU grep)");
  logs->add_flag("-i", f.i, "with --grep: ignore case");
  logs->add_flag("-E", f.E, "with --grep: extended regular expressions");
  logs->add_flag("-F", f.F, "with --grep: fixed strings");
  logs->add_flag("-w", f.w, "with --grep: whole words");
  logs->add_flag("-v", f.v, "with --grep: non-matching lines");
  logs->add_option("--for", for_seconds, "stop after S seconds (default: until Ctrl-C)")
      ->check(CLI::NonNegativeNumber);
  logs->callback([&ctx, exit_code] { *exit_code = Follow(ctx, f, for_seconds); });
}

}  // namespace rs::ctl
