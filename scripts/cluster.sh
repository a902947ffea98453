#!/usr/bin/env bash
# A local RainStorm cluster on 127.0.0.1, one raind per data dir D/node1 ... D/nodeN.
#
#   cluster.sh up N [--set KEY=VALUE ...]   start N nodes (node1 founds, the rest join through it)
#                   [--insecure]             plain text, no keys (by default D/keys holds the
#                                            cluster's keys, made on first use; rainctl finds
#                                            D/keys/admin.key when D is the default dir)
#   cluster.sh down                         SIGTERM every node, SIGKILL leftovers after a deadline
#   cluster.sh status                       pid, running?, id, control address, members seen
#   cluster.sh kill NODE                    SIGKILL one node (NODE: 3 or node3)
#   cluster.sh stop NODE                    SIGTERM one node (graceful leave) and wait for it
#   cluster.sh start NODE [--set K=V ...]   restart a node in its dir as a NEW member
#
# Every command takes --dir D (default $RAIN_CLUSTER_DIR, else /tmp/rainstorm-$(id -u)) and
# --build B (default $RAIN_BUILD, else build/ at the repo root; raind and rainctl come from B).
# Ports come from the OS (port 0) and are read back from each node's ready file; `start` tries the
# node's previous control port first. Daemons run in their own sessions and outlive this script.
# Only processes whose command line names a data dir of D are ever signalled.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$SCRIPT_DIR")
readonly SCRIPT_DIR REPO_ROOT
readonly UP_TIMEOUT_S=${RAIN_UP_TIMEOUT:-20}      # all nodes ready and alive everywhere
readonly STOP_TIMEOUT_S=${RAIN_STOP_TIMEOUT:-5}   # SIGTERM -> exit, before SIGKILL

usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

# --- options ------------------------------------------------------------------------------------

cluster_dir=${RAIN_CLUSTER_DIR:-/tmp/rainstorm-$(id -u)}
build_dir=${RAIN_BUILD:-}
sets=()
args=()
insecure=0

parse_args() {
  while (($#)); do
    case $1 in
      --dir) (($# >= 2)) || usage; cluster_dir=$2; shift 2 ;;
      --dir=*) cluster_dir=${1#--dir=}; shift ;;
      --build) (($# >= 2)) || usage; build_dir=$2; shift 2 ;;
      --build=*) build_dir=${1#--build=}; shift ;;
      --set) (($# >= 2)) || usage; [[ $2 == *=* ]] || die "--set wants KEY=VALUE, got '$2'"
        sets+=("$2"); shift 2 ;;
      --set=*) sets+=("${1#--set=}"); shift ;;
      --insecure) insecure=1; shift ;;
      -h|--help) usage ;;
      -*) die "unknown option '$1' (see cluster.sh --help)" ;;
      *) args+=("$1"); shift ;;
    esac
  done
  mkdir -p "$cluster_dir" 2>/dev/null || die "cannot create cluster dir $cluster_dir"
  cluster_dir=$(cd "$cluster_dir" && pwd)
  set_ctl_auth
}

# Resolves raind/rainctl; a relative --build is tried against the cwd, then the repo root.
find_binaries() {
  local b=${build_dir:-build}
  if [[ $b != /* && ! -d $b ]]; then b=$REPO_ROOT/$b; fi
  raind=$b/daemon/raind
  rainctl=$b/ctl/rainctl
  [[ -x $raind ]] || die "no raind at $raind (build first: ninja -C $b, or pass --build)"
  [[ -x $rainctl ]] || die "no rainctl at $rainctl"
}

# --- node bookkeeping ---------------------------------------------------------------------------

# "3" or "node3" -> "node3".
node_name() {
  local n=${1#node}
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "bad node '$1': want an index like 3 or node3"
  echo "node$n"
}

# The node dirs of the cluster, in index order.
node_names() {
  local d
  for d in "$cluster_dir"/node*; do
    [[ -d $d && $(basename "$d") =~ ^node[0-9]+$ ]] && basename "$d"
  done | sort -V
}

# ready_field NODE KEY: a value from NODE's ready file, empty if absent. raind removes its ready
# file when it exits gracefully; ready.last (a copy taken once it was ready) keeps the last values.
ready_field() {
  local f=$cluster_dir/$1/ready
  [[ -f $f ]] || return 0
  sed -n "s/^$2=//p" "$f" | head -n1
}

last_field() {
  local f=$cluster_dir/$1/ready.last
  [[ -f $f ]] || return 0
  sed -n "s/^$2=//p" "$f" | head -n1
}

# The pid of the last raind started for NODE (pid file written at launch; the ready file agrees).
node_pid() {
  local f=$cluster_dir/$1/pid
  if [[ -f $f ]]; then cat "$f"; fi
}

# True when PID is a live raind whose data dir is NODE's (guards against pid reuse).
is_running() {
  local pid=$1 node=$2 cmd
  [[ -n $pid ]] || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmd == *raind*"--data-dir $cluster_dir/$node "* ]]
}

node_running() {
  is_running "$(node_pid "$1")" "$1"
}

control_addr() {
  local host port
  host=$(ready_field "$1" host)
  port=$(ready_field "$1" port)
  if [[ -n $port ]]; then echo "${host:-127.0.0.1}:$port"; fi
}

# member_view ADDR: ADDR's own current id on the first line (a node expelled by a false failure
# rejoins under a new id), then the ids it lists as alive; fails when ADDR does not answer.
member_view() {
  local json
  json=$("$rainctl" "${ctl_auth[@]}" --node "$1" --timeout 1000 --json list_mem 2>/dev/null) ||
    return 1
  python3 -c '
import json, sys
view = json.loads(sys.argv[1])
print(view["self"] if view.get("in_cluster") else "-")
for m in view.get("members", []):
    if m.get("state") == "alive":
        print(m["id"])' "$json"
}

# --- starting nodes -----------------------------------------------------------------------------

# launch NODE PORT [INTRODUCER]: starts raind in its own session, records its pid. Returns at once.
launch() {
  local node=$1 port=$2 introducer=${3:-} dir=$cluster_dir/$1
  local argv=("$raind" --host 127.0.0.1 --port "$port" --data-dir "$dir")
  if [[ -n $introducer ]]; then argv+=(--introducer "$introducer"); fi
  local kv
  for kv in ${saved_sets[@]+"${saved_sets[@]}"} ${sets[@]+"${sets[@]}"}; do argv+=(--set "$kv"); done
  mkdir -p "$dir"
  rm -f "$dir/ready"
  # setsid: the daemon gets its own session, so it survives this script and the terminal.
  setsid "${argv[@]}" >>"$dir/raind.out" 2>&1 </dev/null &
  echo $! >"$dir/pid"
}

# wait_ready NODE: until NODE's ready file names its pid; fails if the process dies first.
wait_ready() {
  local node=$1 pid deadline=$((SECONDS + UP_TIMEOUT_S))
  pid=$(node_pid "$node")
  while ((SECONDS < deadline)); do
    if [[ $(ready_field "$node" pid) == "$pid" ]]; then
      cp "$cluster_dir/$node/ready" "$cluster_dir/$node/ready.last"
      return 0
    fi
    if ! is_running "$pid" "$node"; then
      echo "cluster.sh: $node (pid $pid) exited before it was ready:" >&2
      tail -n 3 "$cluster_dir/$node/raind.out" | sed 's/^/  /' >&2
      return 1
    fi
    sleep 0.05
  done
  echo "cluster.sh: $node (pid $pid) not ready after ${UP_TIMEOUT_S}s" >&2
  return 1
}

# wait_members NODE...: until every listed node lists every listed node's current id as alive.
wait_members() {
  local nodes=("$@") n deadline=$((SECONDS + UP_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    local ok=1 views=() want=() id
    for n in "${nodes[@]}"; do
      views+=("$(member_view "$(control_addr "$n")")") || { ok=0; break; }
      want+=("$(head -n1 <<<"${views[-1]}")")
    done
    if ((ok)); then
      for view in "${views[@]}"; do
        for id in "${want[@]}"; do
          tail -n +2 <<<"$view" | grep -qxF -- "$id" || { ok=0; break 2; }
        done
      done
      ((ok)) && return 0
    fi
    sleep 0.1
  done
  echo "cluster.sh: membership did not converge within ${UP_TIMEOUT_S}s:" >&2
  local count
  for n in "${nodes[@]}"; do
    count=$(member_view "$(control_addr "$n")" | tail -n +2 | grep -c . || true)
    echo "  $n sees $count of ${#nodes[@]} alive" >&2
  done
  return 1
}

# Settings given to `up` are remembered so `start` brings a node back with the same ones.
load_saved_sets() {
  saved_sets=()
  local f=$cluster_dir/sets
  if [[ -f $f ]]; then mapfile -t saved_sets < <(grep . "$f" || true); fi
  set_ctl_auth
}

# How this script's own rainctl calls authenticate: the cluster's admin key, or --insecure.
ctl_auth=()
set_ctl_auth() {
  if grep -qx 'insecure=true' "$cluster_dir/sets" 2>/dev/null; then
    ctl_auth=(--insecure)
  else
    ctl_auth=(--key "$cluster_dir/keys/admin.key")
  fi
}

# The cluster's keys live in D/keys and are kept across `up`s (the admin key stays valid).
ensure_keys() {
  if ((insecure)); then
    echo "cluster.sh: warning: --insecure: the cluster runs in plain text, without keys" >&2
    return 0
  fi
  if [[ ! -f $cluster_dir/keys/cluster.key ]]; then
    "$rainctl" keys init "$cluster_dir/keys" >/dev/null || die "cannot make keys in $cluster_dir/keys"
  fi
}

print_table() {
  printf '%-7s %-8s %-8s %-22s %-34s %s\n' NODE PID RUNNING CONTROL ID MEMBERS
  local n pid running members addr seen
  for n in $(node_names); do
    pid=$(node_pid "$n")
    addr=$(control_addr "$n")
    members=-
    if node_running "$n"; then
      running=yes
      if [[ -n $addr ]] && seen=$(member_view "$addr"); then
        members="$(tail -n +2 <<<"$seen" | grep -c . || true) alive"
      else
        members="no answer"
      fi
    else
      running=no
    fi
    printf '%-7s %-8s %-8s %-22s %-34s %s\n' "$n" "${pid:--}" "$running" "${addr:--}" \
      "$(last_field "$n" id)" "$members"
  done
}

# --- commands -----------------------------------------------------------------------------------

cmd_up() {
  if ! (($# == 1)) || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
    die "usage: cluster.sh up N [--dir D] [--build B] [--set K=V ...]"
  fi
  local count=$1 n
  find_binaries
  for n in $(node_names); do
    if node_running "$n"; then
      die "a cluster is already up in $cluster_dir ($n, pid $(node_pid "$n")); run 'cluster.sh down' first"
    fi
  done
  # A fresh cluster: old node dirs (logs of a previous run) would mix into this one.
  for n in $(node_names); do rm -rf "${cluster_dir:?}/$n"; done
  ensure_keys
  : >"$cluster_dir/sets"
  if ((insecure)); then
    echo "insecure=true" >>"$cluster_dir/sets"
  else
    echo "keys_dir=$cluster_dir/keys" >>"$cluster_dir/sets"
  fi
  if ((${#sets[@]})); then printf '%s\n' "${sets[@]}" >>"$cluster_dir/sets"; fi
  load_saved_sets
  sets=()  # now in saved_sets

  local nodes=(node1) introducer i
  launch node1 0
  wait_ready node1 || abort_up "node1 failed to start" node1
  introducer=$(control_addr node1)
  for ((i = 2; i <= count; i++)); do
    launch "node$i" 0 "$introducer"
    nodes+=("node$i")
  done
  for n in "${nodes[@]:1}"; do
    wait_ready "$n" || abort_up "$n failed to start" "${nodes[@]}"
  done
  wait_members "${nodes[@]}" || abort_up "cluster did not form" "${nodes[@]}"
  echo "cluster of $count up in $cluster_dir"
  if ((!insecure)); then
    echo "keys in $cluster_dir/keys; rainctl uses admin.key there (or give --key / \$RAIN_KEY)"
  fi
  print_table
}

# abort_up MESSAGE NODE...: a failed `up` takes down what it started, keeping the logs.
abort_up() {
  local message=$1
  shift
  terminate "$@" >/dev/null 2>&1 || true
  die "$message; stopped the nodes started (logs in $cluster_dir/node*/)"
}

# terminate NODE...: SIGTERM the nodes, SIGKILL any still running after the deadline.
terminate() {
  local nodes=("$@") n pid
  for n in "${nodes[@]}"; do
    pid=$(node_pid "$n")
    if is_running "$pid" "$n"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  local deadline=$((SECONDS + STOP_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    local left=0
    for n in "${nodes[@]}"; do node_running "$n" && left=1; done
    ((left)) || return 0
    sleep 0.05
  done
  for n in "${nodes[@]}"; do
    pid=$(node_pid "$n")
    if is_running "$pid" "$n"; then
      echo "cluster.sh: $n (pid $pid) still running after ${STOP_TIMEOUT_S}s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait_gone "${nodes[@]}"
}

# wait_gone NODE...: until none of the nodes' processes exists (SIGKILL is not instant).
wait_gone() {
  local n deadline=$((SECONDS + 5))
  while ((SECONDS < deadline)); do
    local left=0
    for n in "$@"; do node_running "$n" && left=1; done
    ((left)) || return 0
    sleep 0.02
  done
  die "processes still present after SIGKILL: $*"
}

cmd_down() {
  (($# == 0)) || die "usage: cluster.sh down [--dir D]"
  local nodes=() n
  for n in $(node_names); do node_running "$n" && nodes+=("$n"); done
  if ((${#nodes[@]} == 0)); then
    echo "no node running in $cluster_dir"
    return 0
  fi
  terminate "${nodes[@]}"
  echo "stopped ${#nodes[@]} node(s) in $cluster_dir"
}

cmd_status() {
  (($# == 0)) || die "usage: cluster.sh status [--dir D] [--build B]"
  [[ -n $(node_names) ]] || die "no cluster in $cluster_dir"
  find_binaries
  print_table
}

cmd_kill() {
  (($# == 1)) || die "usage: cluster.sh kill NODE"
  local n pid
  n=$(node_name "$1")
  pid=$(node_pid "$n")
  node_running "$n" || die "$n is not running"
  kill -KILL "$pid"
  wait_gone "$n"
  echo "$n (pid $pid, id $(ready_field "$n" id)) killed"
}

cmd_stop() {
  (($# == 1)) || die "usage: cluster.sh stop NODE"
  local n
  n=$(node_name "$1")
  node_running "$n" || die "$n is not running"
  terminate "$n"
  echo "$n stopped"
}

cmd_start() {
  (($# == 1)) || die "usage: cluster.sh start NODE [--set K=V ...]"
  local n other introducer="" old_port
  n=$(node_name "$1")
  find_binaries
  node_running "$n" && die "$n is already running (pid $(node_pid "$n"))"
  for other in $(node_names); do
    if [[ $other != "$n" ]] && node_running "$other"; then
      introducer=$(control_addr "$other")
      break
    fi
  done
  [[ -n $introducer ]] || die "no alive node to join through in $cluster_dir (use 'cluster.sh up')"
  load_saved_sets
  old_port=$(last_field "$n" port)
  # The previous control port may have been taken meanwhile: then let the OS pick one.
  local err
  launch "$n" "${old_port:-0}" "$introducer"
  if ! err=$(wait_ready "$n" 2>&1); then
    if [[ -z $old_port || $err != *"Address already in use"* ]]; then
      echo "$err" >&2
      die "$n failed to start"
    fi
    echo "cluster.sh: port $old_port taken, $n gets a port the OS picks" >&2
    launch "$n" 0 "$introducer"
    wait_ready "$n" || die "$n failed to start"
  fi
  local alive=()
  for other in $(node_names); do node_running "$other" && alive+=("$other"); done
  wait_members "${alive[@]}" || die "$n started (pid $(node_pid "$n")) but membership did not converge"
  echo "$n started as a new member: id $(ready_field "$n" id) control $(control_addr "$n")"
}

main() {
  (($# >= 1)) || usage
  local cmd=$1
  shift
  parse_args "$@"
  set -- ${args[@]+"${args[@]}"}
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    kill) cmd_kill "$@" ;;
    stop) cmd_stop "$@" ;;
    start) cmd_start "$@" ;;
    -h|--help|help) usage ;;
    *) die "unknown command '$cmd' (up, down, status, kill, stop, start)" ;;
  esac
}

main "$@"
