#!/usr/bin/env python3
"""Recovery benchmark: the 3-stage job of bench_stream.py (grep action == click -> select user ->
count by user), exactly-once on, at half its maximum rate; in each trial the node hosting a
stateful (count) task is SIGKILLed about 1 s into the job.

Per trial, and as median and max:
  detection   the leader's `event=fail member=<killed node>` log line minus the kill time
  resumed     the first output line of the killed task's users (those it counts: the users
              whose key group, StableHash64 of the user mod 128, the task owns: groups g with
              g * tasks // 128 == its index) after the kill, minus the kill time
  90 %        the end of the first 500 ms window, after output resumed, in which the killed
              task's users' output rate is back to 90 % of its rate in the second before the
              kill, minus the kill time
  lost, dup   output lines missing from / extra to the independent computation (Python's
              running count per user, each `user,count` exactly once)
Targets (issue 6): output resumes within 2 s and throughput is back to 90 % within 5 s; zero lost
and zero duplicated results in every trial.

  python3 scripts/bench_recovery.py [--build build] [--trials 20] [--events 2000000]
"""

import argparse
import collections
import datetime
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (  # noqa: E402
    JsonCtl, build_dir, log, machine_line, positive, print_table, start_cluster)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENTS_NAME = "events"
KILL_AFTER_S = 1.0


KEY_GROUPS = 128  # a job's default key groups (shared/stream/key_groups.h)


def stable_hash64(data: bytes) -> int:
    """shared/util/hash.h StableHash64: FNV-1a then the splitmix64 finalizer."""
    mask = (1 << 64) - 1
    h = 0xcbf29ce484222325
    for c in data:
        h ^= c
        h = (h * 0x100000001b3) & mask
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & mask
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & mask
    h ^= h >> 31
    return h


def log_time(line):
    """Wall-clock seconds of a raind log line (local time, ms resolution)."""
    stamp = line.split(" ", 1)[0]
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").timestamp()


class RecoveryBench(JsonCtl):
    def __init__(self, args):
        self.args = args
        self.build = build_dir(REPO, args.build)
        self.rainctl_bin = os.path.join(self.build, "ctl", "rainctl")
        self.raind = os.path.join(self.build, "daemon", "raind")
        self.gen_events = os.path.join(self.build, "tests", "bench", "gen_events")
        for exe in (self.rainctl_bin, self.raind, self.gen_events):
            if not os.access(exe, os.X_OK):
                sys.exit(f"bench_recovery.py: no executable {exe} (build first)")
        self.root = tempfile.mkdtemp(prefix="rainstorm-bench-recovery.", dir="/tmp")
        # Searchable by others: a root raind runs operators as operator_user, which must reach
        # their task dirs below the data dirs (daemon/stream/README.md "Operator sandbox").
        os.chmod(self.root, 0o711)
        self.events_path = os.path.join(self.root, "events.csv")
        self.cluster = None
        self.last_error = None
        self.children = []  # RaindCluster registers its processes here

    def expected(self):
        counts = collections.Counter()
        want = collections.Counter()
        with open(self.events_path) as f:
            for line in f:
                parts = line.rstrip("\n").split(",")
                if len(parts) > 2 and parts[2] == "click":
                    counts[parts[1]] += 1
                    want[f"{parts[1]},{counts[parts[1]]}"] += 1
        return want

    def job_argv(self, dest, rate):
        argv = [self.rainctl_bin, "--node", self.cluster.nodes[0].addr, "job", "submit",
                "--stage", "grep -x --column 2 click", "--stage", "select 1",
                "--stage", "count 0", "--tasks", str(self.args.tasks), "--src", EVENTS_NAME,
                "--dest", dest]
        if rate:
            argv += ["--rate", str(int(rate))]
        return argv

    def max_rate(self):
        reply = self.rainctl(self.cluster.nodes[0], *self.job_argv("max-rate", 0)[3:],
                             "--detach", check=True)
        job = reply["job"]
        while True:
            st = self.rainctl(self.cluster.nodes[0], "job", "status", job, check=True)
            if st["state"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.1)
        if st["state"] != "done":
            raise RuntimeError(f"the max-rate job {st['state']}: {st.get('reason')}")
        return self.args.events / (st["elapsed_ms"] / 1000)

    def trial(self, i, rate, want):
        leader = self.cluster.nodes[0]
        dest = f"out-{i}"
        proc = subprocess.Popen(self.job_argv(dest, rate), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        arrivals = []  # (wall time, line)

        def read():
            for line in proc.stdout:
                arrivals.append((time.time(), line.rstrip("\n")))
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.time() + 30
        while not arrivals and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(KILL_AFTER_S)
        jobs = self.rainctl(leader, "job", "list") or {}
        job = [j for j in jobs.get("jobs", []) if j.get("dest") == dest][0]["job"]
        tasks = self.rainctl(leader, "job", "tasks", job)["tasks"]
        counts = [t for t in tasks if t["stage"] == 3]
        victim_task = counts[i % len(counts)]
        victim = next(n for n in self.cluster.alive_nodes()
                      if victim_task["node"].startswith(n.addr + "#"))
        kill_at = time.time()
        os.kill(victim.pid, signal.SIGKILL)
        victim.proc.wait()
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        # Detection: the leader declares the victim failed.
        detection = None
        with open(os.path.join(leader.dir, "raind.log")) as f:
            for line in f:
                if "event=fail member=" + victim_task["node"] in line:
                    detection = log_time(line) - kill_at
                    break
        owned = victim_task["task"]
        mine = [(t, l) for t, l in arrivals
                if (stable_hash64(l.split(",", 1)[0].encode()) % KEY_GROUPS) * self.args.tasks
                // KEY_GROUPS == owned]
        # Lines already in flight at the kill still arrive: output resumes with the first line
        # of the victim's users after the failure was detected.
        since = kill_at + (detection or 0)
        resumed = next((t - kill_at for t, l in mine if t > since), None)
        # Throughput of the killed task's partition (its users' lines): back to 90 % of its
        # rate in the second before the kill, over 500 ms windows after the output resumed.
        before = sum(1 for t, _ in mine if kill_at - 1.0 <= t < kill_at)
        back = None
        times = [t for t, _ in mine if t > kill_at]
        w = 0.5
        start = kill_at + (resumed or 0)
        while times and start + w <= times[-1] + 1e-9:
            n = sum(1 for t in times if start <= t < start + w)
            if before > 0 and n / w >= 0.9 * before:
                back = start + w - kill_at
                break
            start += 0.05
        got = collections.Counter(l for _, l in arrivals)
        lost = sum((want - got).values())
        dup = sum((got - want).values())
        # The victim comes back as a new member for the next trial.
        self.cluster.restart(victim)
        self.cluster.wait_converged()
        return {"trial": i + 1, "node": victim.name, "task": f"3.{owned}",
                "detection": detection, "resumed": resumed, "back90": back,
                "lost": lost, "dup": dup, "exit": proc.returncode}

    def run(self):
        a = self.args
        self.machine_before = machine_line(self.root)
        log(self.machine_before)
        log(f"generating {a.events:,} events")
        subprocess.run([self.gen_events, "--lines", str(a.events), "--out", self.events_path],
                       check=True)
        want = self.expected()
        self.cluster, _ = start_cluster(self, "cluster", os.path.join(self.root, "cluster"),
                                        a.nodes, ["log_ship_interval_ms=0"])
        time.sleep(0.5)
        self.rainctl(self.cluster.nodes[0], "create", self.events_path, EVENTS_NAME,
                     timeout_ms=600000, check=True)
        top = self.max_rate()
        rate = top / 2
        log(f"max rate {top:,.0f} tuples/s; trials at {rate:,.0f}")
        rows = []
        for i in range(a.trials):
            r = self.trial(i, rate, want)
            log(f"trial {r['trial']}: killed {r['node']} (task {r['task']}): detection "
                f"{fmt(r['detection'])} s, resumed {fmt(r['resumed'])} s, 90 % "
                f"{fmt(r['back90'])} s, lost {r['lost']}, dup {r['dup']}, exit {r['exit']}")
            rows.append(r)
        self.report(rows, top, rate)

    def report(self, rows, top, rate):
        a = self.args
        print(f"## Recovery benchmark ({datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC)\n")
        print(f"command: python3 scripts/bench_recovery.py --trials {a.trials} --events "
              f"{a.events}\n{a.nodes} nodes, {a.tasks} tasks per stage, exactly-once; max rate "
              f"{top:,.0f} tuples/s, trials at {rate:,.0f}; SIGKILL of the node of a count "
              f"task {KILL_AFTER_S:.0f} s into the job")
        load = os.getloadavg()
        print(f"before the run: {self.machine_before}\nload average at the end: "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
        header = ["trial", "killed", "task", "detection s", "resumed s", "90 % s", "lost", "dup"]
        table = []
        for r in rows:
            table.append([str(r["trial"]), r["node"], r["task"], fmt(r["detection"]),
                          fmt(r["resumed"]), fmt(r["back90"]), str(r["lost"]), str(r["dup"])])
        for name, f in (("median", statistics.median), ("max", max)):
            vals = {k: [r[k] for r in rows if r[k] is not None]
                    for k in ("detection", "resumed", "back90")}
            table.append([name, "", "", *(fmt(f(v)) if v else "-" for v in vals.values()),
                          str(f([r["lost"] for r in rows])), str(f([r["dup"] for r in rows]))])
        print_table("Trials (seconds after the SIGKILL)", header, table)
        res = [r["resumed"] for r in rows]
        back = [r["back90"] for r in rows]
        ok = lambda b: "PASS" if b else "MISS"  # noqa: E731
        print_table("Targets", ["target", "measured", "verdict"], [
            ["output resumes within 2 s (every trial)",
             f"max {fmt(max((x for x in res if x is not None), default=None))} s",
             ok(all(x is not None and x <= 2 for x in res))],
            ["throughput back to 90 % within 5 s (every trial)",
             f"max {fmt(max((x for x in back if x is not None), default=None))} s",
             ok(all(x is not None and x <= 5 for x in back))],
            ["zero lost results, every trial", str(sum(r["lost"] for r in rows)),
             ok(all(r["lost"] == 0 for r in rows))],
            ["zero duplicated results, every trial", str(sum(r["dup"] for r in rows)),
             ok(all(r["dup"] == 0 for r in rows))],
        ])

    def cleanup(self):
        if self.cluster:
            self.cluster.down()
        if self.args.keep:
            log(f"kept data dirs in {self.root}")
        else:
            subprocess.run(["rm", "-rf", self.root])


def fmt(v):
    return "-" if v is None else f"{v:.2f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build")
    p.add_argument("--trials", type=positive, default=20)
    p.add_argument("--events", type=positive, default=2000000)
    p.add_argument("--nodes", type=positive, default=6)
    p.add_argument("--tasks", type=positive, default=2)
    p.add_argument("--keep", action="store_true", help="keep the data dirs (logs)")
    args = p.parse_args()
    bench = RecoveryBench(args)
    try:
        bench.run()
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
