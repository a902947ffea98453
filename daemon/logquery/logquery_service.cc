#include "daemon/logquery/logquery_service.h"

#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "daemon/logquery/log_tail.h"
#include "shared/logging.h"
#include "shared/transport/security.h"

namespace rs::logquery {
namespace {

std::string Arg(const LogQueryService::Args& args, const std::string& key) {
  auto it = args.find(key);
  return it == args.end() ? "" : it->second;
}

// The rotation index of "raind.N.log" (0 for raind.log itself, -1 for anything else).
int RotationIndex(const std::string& name, const std::string& log_name) {
  if (name == log_name) return 0;
  size_t dot = log_name.rfind('.');
  std::string stem = log_name.substr(0, dot),
              ext = dot == std::string::npos ? "" : log_name.substr(dot);
  if (name.size() <= stem.size() + ext.size() + 1 || name.rfind(stem + ".", 0) != 0 ||
      name.substr(name.size() - ext.size()) != ext) {
    return -1;
  }
  std::string mid = name.substr(stem.size() + 1, name.size() - stem.size() - 1 - ext.size());
  if (mid.empty() || mid.size() > 4 ||
      !std::all_of(mid.begin(), mid.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  return std::atoi(mid.c_str());
}

}  // namespace

Result<std::vector<std::string>> QueryFiles(const std::string& dir, const std::string& log_name,
                                            const std::string& pattern) {
  if (pattern.find('/') != std::string::npos) {
    return Status::InvalidArgument(
        "--files takes a pattern of names in the log directory, "
        "without '/'");
  }
  size_t dot = log_name.rfind('.');
  std::string g = pattern.empty() ? log_name.substr(0, dot) + ".*" +
                                        (dot == std::string::npos ? "" : log_name.substr(dot))
                                  : pattern;
  std::vector<std::string> names;
  auto add = [&](const std::string& one) {
    glob_t gl{};
    std::string full = dir + "/" + one;
    if (::glob(full.c_str(), 0, nullptr, &gl) == 0) {
      for (size_t i = 0; i < gl.gl_pathc; ++i) {
        std::string path = gl.gl_pathv[i];
        names.push_back(path.substr(dir.size() + 1));
      }
    }
    globfree(&gl);
  };
  add(g);
  if (pattern.empty()) {
    // Only the log and its numbered rotations, oldest first.
    names.erase(
        std::remove_if(names.begin(), names.end(),
                       [&](const std::string& n) { return RotationIndex(n, log_name) < 1; }),
        names.end());
    std::sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
      return RotationIndex(a, log_name) > RotationIndex(b, log_name);
    });
    if (::access((dir + "/" + log_name).c_str(), R_OK) == 0) names.push_back(log_name);
  } else {
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
  }
  if (names.empty()) {
    return Status::NotFound("no file in the log directory matches '" +
                            (pattern.empty() ? log_name : pattern) + "'");
  }
  return names;
}

LogQueryService::~LogQueryService() {
  std::map<uint64_t, std::shared_ptr<CommandStream>> queries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queries.swap(queries_);
  }
  for (auto& [id, q] : queries) q->Cancel();  // all at once; each is joined as it is destroyed
}

void LogQueryService::Command(const std::string& cmd, const Args& args, Reply done) {
  std::string flags = Arg(args, "flags");
  if (flags.find_first_not_of("ivncEFw") != std::string::npos) {
    done(Status::InvalidArgument("unknown grep flag in '" + flags + "' (allowed: ivncEFw)"), {});
    return;
  }
  if (flags.find('E') != std::string::npos && flags.find('F') != std::string::npos) {
    done(Status::InvalidArgument("-E and -F conflict"), {});
    return;
  }
  std::string max_count = Arg(args, "max_count");
  if (!max_count.empty() &&
      (max_count.size() > 18 || !std::all_of(max_count.begin(), max_count.end(),
                                             [](char c) { return c >= '0' && c <= '9'; }))) {
    done(Status::InvalidArgument("-m needs a number"), {});
    return;
  }
  if (cmd == "log.tail") {
    std::optional<uint64_t> from;
    std::string offset = Arg(args, "offset");
    if (!offset.empty()) {
      if (offset.size() > 18 ||
          !std::all_of(offset.begin(), offset.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        done(Status::InvalidArgument("offset must be a number"), {});
        return;
      }
      from = std::stoull(offset);
    }
    auto slice = TailLog(options_.log_dir + "/" + options_.log_name, from, Arg(args, "pattern"),
                         flags.find('i') != std::string::npos);
    if (!slice.ok()) {
      done(slice.status(), {});
      return;
    }
    done(Status::Ok(), [slice = std::move(*slice)](wire::Packer& pk) {
      pk.pack_map(4);
      pk.pack("next");
      pk.pack_uint64(slice.next);
      pk.pack("size");
      pk.pack_uint64(slice.size);
      pk.pack("restarted");
      pk.pack(slice.restarted);
      pk.pack("lines");
      pk.pack(slice.lines);
    });
    return;
  }
  std::vector<std::string> grep = {"grep", "-H", "--color=never"};
  for (char f : flags) grep.push_back(std::string("-") + f);
  if (!max_count.empty()) grep.push_back("-m" + max_count);
  bool count_mode = flags.find('c') != std::string::npos;

  if (cmd == "log.grep") {
    auto files = QueryFiles(options_.log_dir, options_.log_name, Arg(args, "files"));
    if (!files.ok()) {
      done(files.status(), {});
      return;
    }
    grep.push_back("-e");
    grep.push_back(Arg(args, "pattern"));
    grep.push_back("--");
    for (const auto& f : *files) grep.push_back(f);
    Status st = StartQuery(grep, count_mode, args, *files, done);
    if (!st.ok()) done(st, {});
    return;
  }
  if (cmd == "log.follow") {
    // tail -F follows the log across rotations; --pid ends it if raind dies; grep filters. It
    // starts at the log's size now, not at its end whenever tail gets to open it: every line
    // logged once the query is accepted is shown, however slowly the processes start.
    std::string pid = std::to_string(::getpid());
    struct stat log_stat;
    uint64_t from = 1;  // tail -c +N: from byte N, counted from 1
    std::string path = options_.log_dir + "/" + options_.log_name;
    if (::stat(path.c_str(), &log_stat) == 0) from = static_cast<uint64_t>(log_stat.st_size) + 1;
    std::string start = "+" + std::to_string(from);
    std::vector<std::string> argv;
    std::string pattern = Arg(args, "pattern");
    if (pattern.empty()) {
      argv = {"tail", "-c", start, "--pid=" + pid, "-F", "--", options_.log_name};
    } else {
      std::string script = "tail -c \"$4\" --pid=\"$1\" -F -- \"$2\" | exec grep --line-buffered";
      for (char f : flags) {
        if (f != 'c' && f != 'n') script += std::string(" -") + f;
      }
      script += " -e \"$3\"";
      argv = {"sh", "-c", script, "sh", pid, options_.log_name, pattern, start};
    }
    Status st = StartQuery(argv, false, args, {options_.log_name}, done);
    if (!st.ok()) done(st, {});
    return;
  }
  done(Status::InvalidArgument("unknown log command '" + cmd + "'"), {});
}

Status LogQueryService::StartQuery(std::vector<std::string> argv, bool count_mode, const Args& args,
                                   std::vector<std::string> files, Reply done) {
  CommandStreamOptions o;
  o.bind_host = options_.host;
  o.peer = Arg(args, "endpoint");
  o.peer_is_client = Arg(args, transport::kCallerArg) == transport::kCallerClient;
  o.count_mode = count_mode;
  char* end = nullptr;
  o.stream = std::strtoull(Arg(args, "stream").c_str(), &end, 10);
  if (o.peer.rfind("tcp://", 0) != 0 || o.stream == 0) {
    return Status::InvalidArgument("a query needs stream and endpoint");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = queries_.begin(); it != queries_.end();) {
      it = it->second->finished() ? queries_.erase(it) : std::next(it);
    }
    if (queries_.size() >= options_.max_queries) {
      return Status::Unavailable("too many queries running on this node (" +
                                 std::to_string(options_.max_queries) + ")");
    }
  }
  ChildOptions child;
  child.cwd = options_.log_dir;
  uint64_t stream = o.stream;
  Logger("logquery")
      ->info("event=query_start stream={} command={} files={}", stream, argv[0], files.size());
  auto started = CommandStream::Start(argv, child, o, [stream](const Status& st) {
    Logger("logquery")->info("event=query_done stream={} status=\"{}\"", stream, st.ToString());
  });
  if (!started.ok()) return started.status();
  std::string endpoint = (*started)->endpoint();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queries_[stream] = *started;
  }
  done(Status::Ok(), [endpoint, files](wire::Packer& pk) {
    pk.pack_map(2);
    pk.pack("endpoint");
    pk.pack(endpoint);
    pk.pack("files");
    pk.pack(files);
  });
  return Status::Ok();
}

}  // namespace rs::logquery
