#!/usr/bin/env bash
# The RainStorm demo: starts 5 nodes in a temporary cluster dir, lists them, stores a file in
# HyDFS, SIGKILLs one of the file's replicas, shows every survivor detecting it (detection times
# from the survivors' logs), reads the file back intact and waits for its re-replication; then runs
# the two stream applications on the traffic-signs sample (datasets/), App 1 attached (its output
# streams to the terminal) and App 2 rate-limited with list_tasks while it runs, checks both
# against an independent computation (python3 csv), and takes the cluster down.
#   scripts/demo.sh [BUILD]      (BUILD: build dir, default build/ at the repo root)
# Cleans up (cluster down, temp dir removed) on any exit.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR
readonly NODES=5
readonly DETECT_TIMEOUT_S=15
readonly REPAIR_TIMEOUT_S=30
readonly HYDFS_FILE=demo/sensor-readings.csv

build=${1:-build}
if [[ $build != /* && ! -d $build ]]; then build=$SCRIPT_DIR/../$build; fi
rainctl=$build/ctl/rainctl
[[ -x $rainctl && -x $build/daemon/raind ]] || {
  echo "demo.sh: no raind/rainctl in $build (build first: make)" >&2
  exit 1
}

RAIN_CLUSTER_DIR=$(mktemp -d /tmp/rainstorm-demo.XXXXXX)
# Searchable by others: a root raind runs operators as operator_user, which must reach their
# task dirs below the data dirs (daemon/stream/README.md "Operator sandbox").
chmod 711 "$RAIN_CLUSTER_DIR"
export RAIN_CLUSTER_DIR RAIN_BUILD=$build
cluster() { "$SCRIPT_DIR/cluster.sh" "$@" --dir "$RAIN_CLUSTER_DIR"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  cluster down >/dev/null 2>&1 || true
  rm -rf "$RAIN_CLUSTER_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section() { printf '\n=== %s ===\n' "$*"; }
field() { sed -n "s/^$2=//p" "$RAIN_CLUSTER_DIR/$1/ready.last"; }
now_ms() { date +%s%3N; }
# Log timestamps (2026-11-21T02:34:29.297, local time) -> ms since the epoch.
log_ms() { date -d "$1" +%s%3N; }

section "1. Start $NODES nodes (node1 founds the cluster, the others join through it)"
cluster up "$NODES"

section "2. Membership list as node1 sees it (rainctl list_mem)"
"$rainctl" list_mem
echo
"$rainctl" display_protocol

section "3. Store a file in HyDFS (3 replicas on the consistent-hash ring)"
sample=$RAIN_CLUSTER_DIR/sensor-readings.csv
{
  echo "sensor,reading,unit"
  for ((i = 0; i < 20000; i++)); do echo "s$((i % 97)),$((i * 7919 % 1000)),mV"; done
} >"$sample"
"$rainctl" create "$sample" "$HYDFS_FILE"
"$rainctl" ls "$HYDFS_FILE"
# The victim: the file's first replica that is not node1 (rainctl talks to node1).
node_of() {
  for ((i = 1; i <= NODES; i++)); do
    [[ $(field "node$i" id) == "$1" ]] && { echo "node$i"; return; }
  done
}
VICTIM=
for id in $("$rainctl" --json ls "$HYDFS_FILE" |
  python3 -c 'import json,sys; print(" ".join(r["node"] for r in json.load(sys.stdin)["replicas"]))'); do
  n=$(node_of "$id")
  if [[ $n != node1 ]]; then VICTIM=$n; break; fi
done

victim_id=$(field "$VICTIM" id)
section "4. SIGKILL $VICTIM ($victim_id), a replica of $HYDFS_FILE"
victim_pid=$(cat "$RAIN_CLUSTER_DIR/$VICTIM/pid")
kill_ms=$(now_ms)
kill -KILL "$victim_pid"
echo "sent SIGKILL to pid $victim_pid at $(date -d "@${kill_ms:0:10}.${kill_ms:10}" +%H:%M:%S.%3N)"

survivors=()
for ((i = 1; i <= NODES; i++)); do [[ node$i != "$VICTIM" ]] && survivors+=("node$i"); done

section "5. Every survivor detects the failure"
# Wait on the fact (every survivor logged event=fail for the victim), not a fixed sleep.
deadline=$((SECONDS + DETECT_TIMEOUT_S))
for n in "${survivors[@]}"; do
  until grep -q "event=fail member=$victim_id " "$RAIN_CLUSTER_DIR/$n/raind.log"; do
    if ((SECONDS >= deadline)); then
      echo "demo.sh: $n did not detect the failure in ${DETECT_TIMEOUT_S}s" >&2
      exit 1
    fi
    sleep 0.1
  done
done
printf '%-6s %-8s %-12s %-12s %s\n' NODE VIEW SUSPECT_AT FAILED_AT HOW
for n in "${survivors[@]}"; do
  log=$RAIN_CLUSTER_DIR/$n/raind.log
  view=$("$rainctl" --node "$(field "$n" host):$(field "$n" port)" list_mem |
    awk -v id="$victim_id" '$1 == id || $2 == id { print ($1 == "*") ? $3 : $2 }')
  fail_line=$(grep -m1 "event=fail member=$victim_id " "$log")
  suspect_line=$(grep -m1 "event=suspect member=$victim_id " "$log" || true)
  fail_at="+$(($(log_ms "${fail_line%% *}") - kill_ms)) ms"
  suspect_at=-
  [[ -n $suspect_line ]] && suspect_at="+$(($(log_ms "${suspect_line%% *}") - kill_ms)) ms"
  how=$(sed -n 's/.*detail="\([^"]*\)".*/\1/p' <<<"$fail_line")
  printf '%-6s %-8s %-12s %-12s %s\n' "$n" "${view:-gone}" "$suspect_at" "$fail_at" "$how"
done
echo "(times: log timestamp of the survivor's suspect/fail event minus the kill time, 1 ms resolution)"

section "6. Membership list after the failure (node1)"
"$rainctl" list_mem

section "7. The file is intact, and re-replicated onto the new successor"
"$rainctl" get "$HYDFS_FILE" "$RAIN_CLUSTER_DIR/readback.csv"
cmp "$sample" "$RAIN_CLUSTER_DIR/readback.csv" && echo "byte-identical to the original"
deadline=$((SECONDS + REPAIR_TIMEOUT_S))
until "$rainctl" --json ls "$HYDFS_FILE" | python3 -c '
import json, sys
reps = json.load(sys.stdin)["replicas"]
sys.exit(0 if len(reps) == 3 and all(r["has_copy"] for r in reps)
         and len({r["version"] for r in reps}) == 1 else 1)'; do
  if ((SECONDS >= deadline)); then
    echo "demo.sh: $HYDFS_FILE was not re-replicated in ${REPAIR_TIMEOUT_S}s" >&2
    exit 1
  fi
  sleep 0.2
done
echo "re-replicated $(($(now_ms) - kill_ms)) ms after the kill:"
"$rainctl" ls "$HYDFS_FILE"

section "8. Stream engine: store the traffic-signs sample (200 rows of the Champaign export)"
signs=$SCRIPT_DIR/../datasets/traffic_signs_sample.csv
"$rainctl" create "$signs" demo/signs.csv

# The independent computation: python3's csv module, line by line as the sources read.
expect() {
  python3 - "$signs" "$@" <<'PY'
import csv, collections, sys
path, app, arg = sys.argv[1:4]
lines = open(path, encoding="utf-8-sig", newline="").read().splitlines()
header = next(csv.reader([lines[0]]))
def out(fields):
    def q(f):
        return '"' + f.replace('"', '""') + '"' if any(c in f for c in ',"\r\n') or f[:1] in " \t" or f[-1:] in " \t" else f
    return ",".join(q(f) for f in fields)
counts = collections.Counter()
for line in lines[1:]:
    row = next(csv.reader([line]))
    col = lambda name: row[header.index(name)] if header.index(name) < len(row) else ""
    if app == "app1" and arg in line:
        print(out([col("OBJECTID"), col("Sign_Type")]))
    elif app == "app2" and col("Sign_Post") == arg:
        counts[col("Category")] += 1
if app == "app2":
    for k, n in sorted(counts.items()):
        print(out([k, str(n)]))
PY
}

section "9. App 1: lines containing 'Parking' -> OBJECTID,Sign_Type (3 tasks per stage, exactly-once)"
echo "\$ rainctl RainStorm 2 3 grep Parking select OBJECTID,Sign_Type demo/signs.csv demo/app1.out true false 0 0 0"
"$rainctl" RainStorm 2 3 grep Parking select OBJECTID,Sign_Type demo/signs.csv demo/app1.out \
  true false 0 0 0 >"$RAIN_CLUSTER_DIR/app1.console"
head -n 8 "$RAIN_CLUSTER_DIR/app1.console"
echo "... ($(wc -l <"$RAIN_CLUSTER_DIR/app1.console") lines on the console)"
"$rainctl" cat demo/app1.out | sort >"$RAIN_CLUSTER_DIR/app1.hydfs"
expect app1 Parking | sort >"$RAIN_CLUSTER_DIR/app1.expected"
sort "$RAIN_CLUSTER_DIR/app1.console" | cmp -s - "$RAIN_CLUSTER_DIR/app1.expected" &&
  cmp -s "$RAIN_CLUSTER_DIR/app1.hydfs" "$RAIN_CLUSTER_DIR/app1.expected" &&
  echo "console and HyDFS demo/app1.out both equal the independent computation" || {
  echo "demo.sh: App 1 output differs from the independent computation" >&2
  exit 1
}

section "10. App 2: Sign_Post = 'Punched Telespar' -> running count by Category (rate 100 tuples/s)"
job=$("$rainctl" --json job submit --stage "grep -x --column Sign_Post 'Punched Telespar'" \
  --stage "count Category" --tasks 3 --src demo/signs.csv --dest demo/app2.out --rate 100 \
  --detach | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"])')
echo "submitted $job (detached); its tasks while it runs:"
sleep 1
"$rainctl" list_tasks --job "$job"
until "$rainctl" --json job status "$job" |
  python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["state"] in ("done","failed","cancelled") else 1)'; do
  sleep 0.2
done
"$rainctl" job status "$job"
echo "last update per category in demo/app2.out:"
"$rainctl" cat demo/app2.out | python3 -c '
import csv, sys
last = {}
for row in csv.reader(sys.stdin):
    last[row[0]] = int(row[1])
for k in sorted(last):
    print(f"{k},{last[k]}")' | tee "$RAIN_CLUSTER_DIR/app2.final"
expect app2 "Punched Telespar" | cmp -s - "$RAIN_CLUSTER_DIR/app2.final" &&
  echo "final counts equal the independent computation" || {
  echo "demo.sh: App 2 counts differ from the independent computation" >&2
  exit 1
}

section "11. Take the cluster down"
cluster down
