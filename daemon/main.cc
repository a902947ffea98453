// raind: the RainStorm node daemon. Flags -> NodeOptions -> Node.
//   raind --port 7001 --data-dir /tmp/n1                      # found a cluster
//   raind --port 7002 --data-dir /tmp/n2 --introducer 127.0.0.1:7001
// Exit codes: 0 after a graceful leave (SIGTERM/SIGINT), 1 on a startup error (bad flags,
// unbindable port, unreadable config), 2 when the join fails.
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "daemon/membership/config.h"
#include "daemon/node.h"
#include "shared/util/malloc_tuning.h"

int main(int argc, char** argv) {
  rs::TuneMallocForStreams();
  // Block the shutdown signals before any thread starts; Node::RunUntilSignal waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Stream tasks open a socket per peer task: use every file descriptor the hard limit allows.
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  CLI::App app{"raind: RainStorm node daemon (membership; HyDFS and the stream engine to come)"};
  std::string host = "127.0.0.1", data_dir = "./raind-data", introducer, config_file,
              log_level = "info";
  int port = 0, swim_port = 0, gossip_port = 0;
  std::vector<std::string> sets;
  app.add_option("--host", host, "address to bind and advertise")->capture_default_str();
  app.add_option("--port", port, "control port (0: the OS picks)")->check(CLI::Range(0, 65535));
  app.add_option("--swim-port", swim_port, "ping-ack port (0: the OS picks)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--gossip-port", gossip_port, "gossip PUB port (0: the OS picks)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--data-dir", data_dir, "data dir (ready file, log)")->capture_default_str();
  app.add_option("--introducer", introducer, "HOST:PORT of any member to join through");
  app.add_option("--config", config_file, "config file of 'key = value' lines")
      ->check(CLI::ExistingFile);
  app.add_option("--set", sets, "KEY=VALUE override, repeatable (see rainctl config get)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  std::string keys_dir;
  bool insecure = false;
  app.add_option("--keys-dir", keys_dir,
                 "cluster.key, node.key and keyring (default DATA_DIR/keys)");
  app.add_flag("--insecure", insecure, "plain text, no keys: anyone who reaches the ports owns it");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 1;
  }

  rs::NodeOptions options;
  rs::Status st;
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      std::fprintf(stderr, "raind: cannot read %s\n", config_file.c_str());
      return 1;
    }
    st = rs::ApplyConfigText(text.str(), config_file, &options);
  }
  // Flags given on the command line override the file.
  auto flag = [&](const char* name, const std::string& key, const std::string& value) {
    if (st.ok() && app.count(name) > 0) st = rs::ApplyConfigEntry(key, value, &options);
  };
  flag("--host", "host", host);
  flag("--port", "port", std::to_string(port));
  flag("--swim-port", "swim_port", std::to_string(swim_port));
  flag("--gossip-port", "gossip_port", std::to_string(gossip_port));
  flag("--data-dir", "data_dir", data_dir);
  flag("--introducer", "introducer", introducer);
  flag("--log-level", "log_level", log_level);
  flag("--keys-dir", "keys_dir", keys_dir);
  flag("--insecure", "insecure", "true");
  for (const auto& kv : sets) {
    if (!st.ok()) break;
    size_t eq = kv.find('=');
    if (eq == std::string::npos) {
      st = rs::Status::InvalidArgument("--set wants KEY=VALUE, got '" + kv + "'");
    } else {
      st = rs::ApplyConfigEntry(kv.substr(0, eq), kv.substr(eq + 1), &options);
    }
  }
  if (st.ok()) st = rs::membership::ValidateConfig(options.membership.cluster);
  if (!st.ok()) {
    std::fprintf(stderr, "raind: %s\n", st.ToString().c_str());
    return 1;
  }

  rs::Node node(options);
  st = node.Start();
  if (!st.ok()) {
    std::fprintf(stderr, "raind: %s\n", st.ToString().c_str());
    bool join_failed =
        !options.introducer.empty() &&
        (st.code() == rs::StatusCode::kUnavailable || st.code() == rs::StatusCode::kTimeout ||
         st.code() == rs::StatusCode::kFailedPrecondition ||
         st.code() == rs::StatusCode::kAlreadyExists);
    return join_failed ? 2 : 1;
  }
  return node.RunUntilSignal();
}
