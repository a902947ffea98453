#!/usr/bin/env python3
"""Distributed log query benchmark: `rainctl grep` over N nodes beside one local GNU grep.

Starts a local cluster with scripts/cluster.sh (log shipping off) in a temporary dir under /tmp,
writes a generated log of --size-mib MiB into every node's data dir as bench.log, and times the
same searches both ways in one run. The dir and the cluster are removed at the end (also on
Ctrl-C or an error). Progress goes to stderr, result tables to stdout.

  python3 scripts/bench_grep.py --build build              # 4 nodes x 100 MiB, 5 rounds (~20 s)
  python3 scripts/bench_grep.py --build build --runs 9 --size-mib 200

What is measured, and how (MiB = 2^20 bytes; times are wall-clock seconds of one process):
  data        bench.log per node: log-like lines (timestamp, level, module, event=..., key=value
              fields), different per node (seeded). A rare pattern (`quorum_lost`) is on 30-80
              lines per node; a frequent one (`event=replica_ack`) on ~25 % of the lines.
  page cache  every file is read once before the runs, so both sides read from memory.
  local       one `grep -H --color=never -e PAT -- node1/bench.log ... nodeN/bench.log` over all
              the nodes' files, run in the cluster dir. Its stdout goes into a pipe read by this
              script (bytes and newlines counted), never to /dev/null: GNU grep stops at the first
              match when its output is /dev/null.
  distributed `rainctl --node <node1> grep --files bench.log PAT`, timed as a process from its
              start to its exit; its stdout goes through the same counting pipe, its stderr (the
              per-node counts and `total N`) to a file. Same again with -c (both sides).
  fixed cost  the same query over a one-line file per node (`--files tiny.log`): what a query
              costs before any data (process start, list_mem, a request to every node, streams).
  rates       "raw" = stdout bytes / time. "line" = the selected lines alone (newline included)
              / time: the local grep's `nodeK/bench.log:` prefixes and rainctl's `<node id>
              bench.log:` prefixes are subtracted, so both sides count the same bytes and the
              ratio of line rates is local time / distributed time.
  CPU         client = user+sys of the timed process (wait4); nodes = user+sys of every raind
              plus its reaped children (the greps), from /proc/<pid>/stat, before and after.
  correctness every distributed run's total and line bytes must equal the local run's (and -c:
              the local -c sum). Once, untimed: the frequent pattern's rainctl output is split by
              node id and each node's lines are compared (SHA-256) with a local grep of that
              node's file.
  runs        --runs rounds; each round runs every query once, local and distributed
              alternating which goes first. Medians of the rounds are reported.
"""

import argparse
import concurrent.futures
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import CLK_TCK, log, print_table  # noqa: E402
from bench_hydfs import MIB, fmt, med  # noqa: E402

# Targets from the issue, printed beside the measurements.
TARGET_RARE_OF_LOCAL = 1.2     # rare-pattern query time <= 1.2 x the local grep's time
TARGET_RARE_S = 1.0            # and under 1 s
TARGET_FREQ_RATE_OF_LOCAL = 0.5  # frequent pattern: line rate >= 50 % of the local grep's

MIN_FREE_BYTES = 2 * 10**9

RARE = "quorum_lost"
FREQUENT = "event=replica_ack"
LOG_NAME = "bench.log"
TINY_NAME = "tiny.log"

# --- the generated log --------------------------------------------------------------------------

LEVELS = ["INFO"] * 14 + ["DEBUG"] * 4 + ["WARN"] * 2 + ["ERROR"]
MODULES = {
    "membership": ["ping_sent", "ack_recv", "suspect", "refute", "gossip_merge", "push_pull"],
    "hydfs": ["chunk_write", "chunk_read", "replica_nack", "commit", "cache_hit", "cache_miss"],
    "transport": ["connect", "disconnect", "frame_sent", "frame_recv", "window_full"],
    "engine": ["tuple_in", "tuple_out", "checkpoint", "operator_start", "batch_flush"],
    "admin": ["request", "reply", "config_get"],
}
KEYS = ["file", "bytes", "seq", "elapsed_us", "member", "lane", "stream", "op", "attempt"]
WORDS = ["slow", "peer", "retry", "queue", "deadline", "buffer", "flush", "late", "stale"]


def _body(r, kind):
    """One log line without its timestamp. kind: 'frequent', 'rare' or 'other'."""
    if kind == "frequent":
        level, mod, ev = r.choice(LEVELS), "hydfs", "replica_ack"
    elif kind == "rare":
        level, mod, ev = "ERROR", "hydfs", RARE
    else:
        level = r.choice(LEVELS)
        mod = r.choice(list(MODULES))
        ev = r.choice(MODULES[mod])
    f = [f"{level:<5} {mod} event={ev}",
         f"node=10.0.{r.randrange(4)}.{r.randrange(1, 255)}:{7000 + r.randrange(100)}",
         f"req={r.getrandbits(32):08x}"]
    if kind == "rare":
        f.append(f"file=data/orders-{r.randrange(10000)}.csv acked=1 wanted=2")
    for _ in range(r.randrange(1, 5)):
        key = r.choice(KEYS)
        if key == "file":
            v = f"data/{r.choice(['orders', 'clicks', 'trips', 'events'])}-{r.randrange(10000)}.csv"
        elif key in ("member", "stream"):
            v = f"{r.getrandbits(64):016x}"
        elif key == "op":
            v = r.choice(["create", "append", "get", "merge", "rm"])
        else:
            v = str(r.randrange(1 << r.randrange(4, 24)))
        f.append(f"{key}={v}")
    if r.random() < 0.1:
        f.append('msg="' + " ".join(r.choice(WORDS) for _ in range(r.randrange(2, 7))) + '"')
    return " ".join(f) + "\n"


def generate_log(path, size, seed, frequent_fraction):
    """Writes about `size` bytes of whole log lines to path; returns (bytes, lines, rare lines).
    Lines are drawn from a per-node pool of 20000 bodies behind increasing timestamps, in blocks
    of 70000 lines, so 100 MiB takes about a second."""
    r = random.Random(seed)
    pool_n = 20000
    n_freq = int(pool_n * frequent_fraction)
    pool = [_body(r, "frequent" if i < n_freq else "other") for i in range(pool_n)]
    rare_pool = [_body(r, "rare") for _ in range(100)]
    day = f"2026-11-{1 + seed % 28:02d}"
    secs = [f"{day}T{h:02d}:{m:02d}:{s:02d}." for h in range(24) for m in range(60)
            for s in range(60)]
    millis = [f"{i:03d} " for i in range(1000)]
    t = r.randrange(86400 * 1000 // 2)
    block_lines = 70000
    est_lines = size // 128 + 1
    rare_at = sorted(r.sample(range(est_lines), min(est_lines, r.randrange(30, 81))))
    written = lines = rare = 0
    line_no = 0
    with open(path, "w") as out:
        while written < size:
            bodies = r.choices(pool, k=block_lines)
            while rare_at and rare_at[0] < line_no + block_lines:
                bodies[rare_at.pop(0) - line_no] = r.choice(rare_pool)
            steps = r.choices((0, 1, 2), k=block_lines)
            parts = []
            for body, step in zip(bodies, steps):
                t += step
                parts.append(secs[(t // 1000) % 86400])
                parts.append(millis[t % 1000])
                parts.append(body)
            text = "".join(parts)
            if written + len(text) > size:
                text = text[:text.rfind("\n", 0, size - written) + 1]
                if not text:
                    break
            out.write(text)
            written += len(text)
            lines += text.count("\n")
            rare += text.count(RARE)
            line_no += block_lines
    return written, lines, rare


# --- processes ----------------------------------------------------------------------------------

def node_cpu_ticks(pid):
    """utime + stime + cutime + cstime of pid (its reaped children included), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15])  # fields 14-17 of proc(5)
    except (OSError, IndexError, ValueError):
        return None


class Node:
    def __init__(self, name, data_dir):
        self.name = name
        self.dir = data_dir
        with open(os.path.join(data_dir, "ready")) as f:
            kv = dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l)
        self.id = kv["id"]
        self.addr = f"{kv.get('host', '127.0.0.1')}:{kv['port']}"
        self.pid = int(kv["pid"])


class GrepBench:
    def __init__(self, args):
        self.args = args
        here = os.path.dirname(os.path.abspath(__file__))
        build = args.build
        if not os.path.isabs(build) and not os.path.isdir(build):
            build = os.path.join(here, "..", build)
        self.build = os.path.abspath(build)
        self.cluster_sh = os.path.join(here, "cluster.sh")
        self.rainctl_bin = os.path.join(self.build, "ctl", "rainctl")
        for b in (os.path.join(self.build, "daemon", "raind"), self.rainctl_bin):
            if not os.access(b, os.X_OK):
                sys.exit(f"bench_grep.py: no executable {b} (build first: ninja -C {self.build}, "
                         "or pass --build)")
        if not shutil.which("grep"):
            sys.exit("bench_grep.py: no grep on PATH")
        need = max(MIN_FREE_BYTES, int(2.5 * args.nodes * args.size))
        free = shutil.disk_usage(args.tmp).free
        if free < need:
            sys.exit(f"bench_grep.py: only {free / 1e9:.1f} GB free in {args.tmp}; the run needs "
                     f"{need / 1e9:.1f} GB ({args.nodes} logs of {args.size // MIB} MiB and a "
                     "copy of the frequent pattern's output)")
        self.root = tempfile.mkdtemp(prefix="rainstorm-bench-grep.", dir=args.tmp)
        self.cdir = os.path.join(self.root, "cluster")
        self.children = []
        self.cluster_started = False
        self.nodes = []
        self.results = {}   # query key -> list of run dicts
        self.problems = []  # correctness failures, printed with the targets
        self.notes = []

    # --- cluster ----------------------------------------------------------------------------

    def cluster(self, *cmd, check=True):
        argv = [self.cluster_sh] + list(cmd) + ["--dir", self.cdir, "--build", self.build]
        r = subprocess.run(argv, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"cluster.sh {' '.join(cmd)} exited {r.returncode}: "
                               f"{(r.stderr or r.stdout).strip()}")
        return r

    def start_cluster(self):
        a = self.args
        sets = ["log_ship_interval_ms=0"] + list(a.set)
        log(f"cluster: starting {a.nodes} nodes ({', '.join(sets)})")
        self.cluster_started = True
        cmd = ["up", str(a.nodes)]
        for kv in sets:
            cmd += ["--set", kv]
        self.cluster(*cmd)
        os.environ["RAIN_KEY"] = os.path.join(self.cdir, "keys", "admin.key")  # made by `up`
        self.nodes = [Node(f"node{i}", os.path.join(self.cdir, f"node{i}"))
                      for i in range(1, a.nodes + 1)]
        log("cluster: up (" + ", ".join(f"{n.name} {n.addr}" for n in self.nodes) + ")")

    def stop_cluster(self):
        if self.cluster_started:
            r = self.cluster("down", check=False)
            if r.returncode != 0:
                log(f"cluster.sh down: {(r.stderr or r.stdout).strip()}")
            self.cluster_started = False

    # --- data -------------------------------------------------------------------------------

    def make_logs(self):
        a = self.args
        log(f"data: generating {a.nodes} x {a.size // MIB} MiB of log lines")
        started = time.monotonic()
        paths = [os.path.join(n.dir, LOG_NAME) for n in self.nodes]
        with concurrent.futures.ProcessPoolExecutor(max_workers=min(a.nodes, os.cpu_count()
                                                                    or 1)) as pool:
            futures = [pool.submit(generate_log, p, a.size, a.seed + i, a.frequent_fraction)
                       for i, p in enumerate(paths)]
            made = [f.result() for f in futures]
        for n in self.nodes:
            with open(os.path.join(n.dir, TINY_NAME), "w") as f:
                f.write("2026-11-01T00:00:00.000 INFO  admin event=request req=00000000\n")
        self.gen_s = time.monotonic() - started
        self.data = []
        for n, (size, lines, rare) in zip(self.nodes, made):
            freq = self.local_count(FREQUENT, [os.path.join(n.name, LOG_NAME)])
            self.data.append({"node": n.name, "bytes": size, "lines": lines, "rare": rare,
                              "frequent": freq})
        log(f"data: {sum(d['bytes'] for d in self.data) / MIB:.0f} MiB, "
            f"{sum(d['lines'] for d in self.data)} lines in {self.gen_s:.1f} s")

    def warm_cache(self):
        started = time.monotonic()
        total = 0
        for n in self.nodes:
            with open(os.path.join(n.dir, LOG_NAME), "rb", buffering=0) as f:
                while True:
                    chunk = f.read(4 * MIB)
                    if not chunk:
                        break
                    total += len(chunk)
        log(f"page cache: read {total / MIB:.0f} MiB in {time.monotonic() - started:.2f} s")

    def local_count(self, pattern, files):
        r = subprocess.run(["grep", "-c", "-e", pattern, "--"] + files, cwd=self.cdir,
                           capture_output=True, text=True)
        if r.returncode > 1:
            raise RuntimeError(f"grep -c {pattern}: {r.stderr.strip()}")
        return sum(int(line.rsplit(":", 1)[-1]) for line in r.stdout.splitlines() if line)

    # --- one timed process ------------------------------------------------------------------

    def timed(self, argv, keep=False):
        """Runs argv in the cluster dir with stdout read here through a pipe. Returns a dict:
        seconds (start to exit), out_bytes, out_lines, stdout (with keep), stderr, rc,
        client_cpu (user+sys s), node_cpu (s, every raind and its reaped greps)."""
        err_path = os.path.join(self.root, "timed.err")
        before = [node_cpu_ticks(n.pid) for n in self.nodes]
        with open(err_path, "wb") as err:
            start = time.monotonic()
            p = subprocess.Popen(argv, cwd=self.cdir, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=err)
            self.children.append(p)
            fd = p.stdout.fileno()
            out_bytes = out_lines = 0
            kept = []
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                out_bytes += len(chunk)
                out_lines += chunk.count(b"\n")
                if keep:
                    kept.append(chunk)
            _, status, usage = os.wait4(p.pid, 0)
            seconds = time.monotonic() - start
            p.returncode = os.waitstatus_to_exitcode(status)
            p.stdout.close()
        after = [node_cpu_ticks(n.pid) for n in self.nodes]
        node_cpu = None
        if None not in before and None not in after:
            node_cpu = (sum(after) - sum(before)) / CLK_TCK
        with open(err_path, encoding="utf-8", errors="replace") as f:
            stderr = f.read()
        return {"seconds": seconds, "out_bytes": out_bytes, "out_lines": out_lines,
                "stdout": b"".join(kept).decode(errors="replace") if keep else "",
                "stderr": stderr, "rc": p.returncode,
                "client_cpu": usage.ru_utime + usage.ru_stime, "node_cpu": node_cpu}

    # --- the two sides ----------------------------------------------------------------------

    def run_dist(self, pattern, count, name=LOG_NAME):
        argv = [self.rainctl_bin, "--node", self.nodes[0].addr, "--timeout",
                str(self.args.timeout_ms), "grep"] + (["-c"] if count else []) + \
               ["--files", name, pattern]
        r = self.timed(argv, keep=count)
        if r["rc"] not in (0, 1):
            raise RuntimeError(f"rainctl grep {pattern} exited {r['rc']}: {r['stderr'].strip()}")
        # Per-node counts and the total: on stderr, or on stdout with -c.
        summary = r["stdout"] if count else r["stderr"]
        per_node, total = {}, None
        for line in summary.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "total":
                total = int(parts[1])
            elif len(parts) == 2 and parts[1].isdigit():
                per_node[parts[0]] = int(parts[1])
        if total is None or len(per_node) != len(self.nodes):
            raise RuntimeError(f"rainctl grep {pattern}: unexpected summary: {summary.strip()!r}")
        r["selected"] = total
        r["per_node"] = per_node
        if count:
            r["line_bytes"] = None
        else:
            # Every line is "<node id> <name>:<line>\n".
            r["line_bytes"] = r["out_bytes"] - sum(c * (len(i) + 1 + len(name) + 1)
                                                   for i, c in per_node.items())
        return r

    # --- rounds -----------------------------------------------------------------------------

    QUERIES = [  # key, pattern, -c, file
        ("rare", RARE, False, LOG_NAME),
        ("frequent", FREQUENT, False, LOG_NAME),
        ("rare -c", RARE, True, LOG_NAME),
        ("frequent -c", FREQUENT, True, LOG_NAME),
        ("fixed cost", RARE, False, TINY_NAME),
    ]

    def run_rounds(self):
        a = self.args
        # The local prefix counts do not change between rounds: count once.
        self.prefix_cache = {}
        for rnd in range(1, a.runs + 1):
            for key, pattern, count, name in self.QUERIES:
                order = ("local", "distributed") if rnd % 2 else ("distributed", "local")
                got = {}
                for side in order:
                    if side == "local":
                        got[side] = self.run_local(pattern, count, name)
                    else:
                        got[side] = self.run_dist(pattern, count, name)
                loc, dist = got["local"], got["distributed"]
                ok = loc["selected"] == dist["selected"] and (
                    count or (dist["out_lines"] == dist["selected"]
                              and loc["line_bytes"] == dist["line_bytes"]))
                if not ok:
                    self.problems.append(
                        f"round {rnd}, {key}: local selected {loc['selected']} line bytes "
                        f"{loc['line_bytes']}, distributed {dist['selected']} (stdout lines "
                        f"{dist['out_lines']}) line bytes {dist['line_bytes']}")
                for side in ("local", "distributed"):
                    got[side]["ok"] = ok
                    self.results.setdefault((key, side), []).append(got[side])
                log(f"round {rnd}/{a.runs} {key:<11}: local {loc['seconds']:.3f} s, distributed "
                    f"{dist['seconds']:.3f} s, {dist['selected']} lines"
                    f"{'' if ok else ' MISMATCH'}")

    def run_local(self, pattern, count, name):
        files = [os.path.join(n.name, name) for n in self.nodes]
        argv = ["grep", "-H", "--color=never"] + (["-c"] if count else []) + \
               ["-e", pattern, "--"] + files
        r = self.timed(argv, keep=count)
        if r["rc"] > 1:
            raise RuntimeError(f"local grep {pattern} exited {r['rc']}: {r['stderr'].strip()}")
        if count:
            r["selected"] = sum(int(l.rsplit(":", 1)[1]) for l in r["stdout"].splitlines() if l)
            r["line_bytes"] = None
            return r
        r["selected"] = r["out_lines"]
        if (pattern, name) not in self.prefix_cache:
            self.prefix_cache[(pattern, name)] = sum(
                self.local_count(pattern, [f]) * (len(f) + 1) for f in files)
        # Every line is "nodeK/<name>:<line>\n": subtract the prefixes.
        r["line_bytes"] = r["out_bytes"] - self.prefix_cache[(pattern, name)]
        return r

    def verify_lines(self):
        """Untimed: the frequent pattern's distributed output, split by node id, against a local
        grep of each node's own file (SHA-256 of the lines, in order)."""
        log("verify: comparing every node's lines for the frequent pattern")
        out_path = os.path.join(self.root, "verify.out")
        with open(out_path, "wb") as out:
            r = subprocess.run([self.rainctl_bin, "--node", self.nodes[0].addr, "--timeout",
                                str(self.args.timeout_ms), "grep", "--files", LOG_NAME,
                                FREQUENT], cwd=self.cdir, stdout=out, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError(f"verify: rainctl grep exited {r.returncode}: "
                               f"{r.stderr.decode(errors='replace').strip()}")
        got = {}
        with open(out_path, "rb") as f:
            for line in f:
                node, _, rest = line.partition(b" ")
                got.setdefault(node.decode(), hashlib.sha256()).update(rest)
        os.unlink(out_path)
        bad = []
        for n in self.nodes:
            want = hashlib.sha256()
            p = subprocess.Popen(["grep", "-H", "--color=never", "-e", FREQUENT, "--", LOG_NAME],
                                 cwd=n.dir, stdout=subprocess.PIPE)
            self.children.append(p)
            for chunk in iter(lambda: p.stdout.read(1 << 20), b""):
                want.update(chunk)
            p.wait()
            h = got.get(n.id)
            if h is None or h.digest() != want.digest():
                bad.append(n.name)
        self.verified = not bad
        if bad:
            self.problems.append(f"verify: the distributed lines of {', '.join(bad)} differ from "
                                 "a local grep of the node's file")
        log(f"verify: {'every node identical' if not bad else 'DIFFERENT: ' + ', '.join(bad)}")

    # --- driver -----------------------------------------------------------------------------

    def run(self):
        started = time.monotonic()
        self.load_start = os.getloadavg()
        self.start_cluster()
        self.make_logs()
        self.warm_cache()
        self.run_rounds()
        self.verify_lines()
        self.report(time.monotonic() - started)

    def cleanup(self):
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.stop_cluster()
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            log(f"kept the cluster dir and logs in {self.root}")

    # --- report -----------------------------------------------------------------------------

    def summary(self, key, side):
        runs = self.results[(key, side)]
        secs = [r["seconds"] for r in runs]
        s = med(secs)
        first = runs[0]
        cpu = [r["client_cpu"] for r in runs]
        ncpu = [r["node_cpu"] for r in runs if r["node_cpu"] is not None]
        return {"runs": len(runs), "s": s, "min": min(secs), "max": max(secs),
                "selected": first["selected"], "out_bytes": first["out_bytes"],
                "line_bytes": first["line_bytes"], "client_cpu": med(cpu),
                "node_cpu": med(ncpu), "ok": all(r["ok"] for r in runs)}

    def report(self, elapsed_s):
        a = self.args
        load = os.getloadavg()
        print(f"## Distributed log query benchmark ({time.strftime('%Y-%m-%d %H:%M %Z')}, "
              f"{os.cpu_count()} CPUs, {elapsed_s / 60:.1f} min, {a.nodes} nodes)")
        print(f"\ncommand: {' '.join(sys.argv)}")
        print(f"load average at the start: {self.load_start[0]:.2f} {self.load_start[1]:.2f} "
              f"{self.load_start[2]:.2f}; at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"patterns: rare '{RARE}', frequent '{FREQUENT}'. Every file was read once before "
              "the runs: both sides grep from the page cache.")

        rows = [[d["node"], f"{d['bytes'] / MIB:.0f}", d["lines"], d["rare"], d["frequent"],
                 f"{100 * d['frequent'] / d['lines']:.1f}%"] for d in self.data]
        print_table("Data", ["node", "bench.log MiB", "lines", "rare lines", "frequent lines",
                             "frequent share"], rows,
                    [f"Generated in {self.gen_s:.1f} s (seed {a.seed}); per node, in its data dir."])

        rows = []
        for key, _, _, _ in self.QUERIES:
            for side in ("local", "distributed"):
                for i, r in enumerate(self.results[(key, side)], 1):
                    rows.append([i, key, side, f"{r['seconds']:.3f}", r["selected"],
                                 r["out_bytes"], fmt(r["client_cpu"], 2),
                                 fmt(r["node_cpu"], 2) if side == "distributed" else "-",
                                 "yes" if r["ok"] else "NO"])
        rows.sort(key=lambda x: x[0])
        print_table("Every run", ["round", "query", "side", "s", "lines", "stdout bytes",
                                  "client CPU s", "nodes CPU s", "same result"], rows)

        rows = []
        self.sums = {}
        for key, _, count, _ in self.QUERIES:
            loc = self.summary(key, "local")
            for side in ("local", "distributed"):
                s = self.summary(key, side)
                self.sums[(key, side)] = s
                no_rate = count or not s["out_bytes"]  # -c, or the empty fixed-cost query
                raw = None if no_rate else s["out_bytes"] / MIB / s["s"]
                line = None if no_rate else s["line_bytes"] / MIB / s["s"]
                rows.append([key, side, s["runs"], f"{s['s']:.3f}", f"{s['min']:.3f}",
                             f"{s['max']:.3f}", s["selected"], f"{s['out_bytes'] / MIB:.2f}",
                             fmt(raw, 1), fmt(line, 1),
                             f"{100 * loc['s'] / s['s']:.0f}%",
                             fmt(s["client_cpu"], 2),
                             fmt(s["node_cpu"], 2) if side == "distributed" else "-",
                             "yes" if s["ok"] else "NO"])
        print_table("Query time and output rate (median of rounds)",
                    ["query", "side", "runs", "s", "min s", "max s", "lines", "stdout MiB",
                     "raw MiB/s", "line MiB/s", "speed of local", "client CPU s",
                     "nodes CPU s", "same result"], rows,
                    ["local: one GNU grep over all the nodes' files, stdout read through a pipe. "
                     "distributed: `rainctl grep --files bench.log` through node1, timed as a "
                     "process, stdout read through the same pipe. raw MiB/s: stdout bytes / s. "
                     "line MiB/s: the selected lines alone (no `nodeK/bench.log:` or `<node id> "
                     "bench.log:` prefix) / s, the same bytes on both sides. speed of local: "
                     "local s / this s (= ratio of line rates). client CPU: the timed process; "
                     "nodes CPU: every raind with its greps. same result: total and line bytes "
                     "equal on both sides in every round. fixed cost: a one-line file per node."])

        targets = []
        rl, rd = self.sums[("rare", "local")], self.sums[("rare", "distributed")]
        ok = rd["s"] <= TARGET_RARE_OF_LOCAL * rl["s"]
        targets.append([f"rare pattern: query <= {TARGET_RARE_OF_LOCAL:g} x local grep time",
                        f"{rd['s']:.3f} s = {rd['s'] / rl['s']:.2f} x {rl['s']:.3f} s",
                        "PASS" if ok else "MISS"])
        ok = rd["s"] < TARGET_RARE_S
        targets.append([f"rare pattern: query < {TARGET_RARE_S:g} s", f"{rd['s']:.3f} s",
                        "PASS" if ok else "MISS"])
        fl, fd = self.sums[("frequent", "local")], self.sums[("frequent", "distributed")]
        lr, dr = fl["line_bytes"] / MIB / fl["s"], fd["line_bytes"] / MIB / fd["s"]
        ok = dr >= TARGET_FREQ_RATE_OF_LOCAL * lr
        targets.append([f"frequent pattern: output rate >= {100 * TARGET_FREQ_RATE_OF_LOCAL:.0f}% "
                        "of local grep's",
                        f"{dr:.0f} MiB/s = {100 * dr / lr:.0f}% of {lr:.0f} MiB/s (lines only; "
                        f"raw {fd['out_bytes'] / MIB / fd['s']:.0f} vs "
                        f"{fl['out_bytes'] / MIB / fl['s']:.0f})", "PASS" if ok else "MISS"])
        correct = not self.problems
        targets.append(["same lines as a local grep (every round; per node once)",
                        "totals and bytes equal" + (", per-node SHA-256 equal"
                                                    if getattr(self, "verified", False) else ""),
                        "PASS" if correct else "MISS"])
        print_table("Targets", ["target", "measured", "verdict"], targets,
                    self.problems + self.notes +
                    ["Noise: both sides share the machine's cores with the daemons and with this "
                     "script (which reads both stdouts); rerun on a quiet machine before quoting."])


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build", help="build dir holding daemon/raind, ctl/rainctl")
    p.add_argument("--nodes", type=int, default=4, help="cluster size (default 4)")
    p.add_argument("--size-mib", type=int, default=100, help="MiB of log per node (default 100)")
    p.add_argument("--runs", type=int, default=5, help="rounds of every query (default 5)")
    p.add_argument("--frequent-fraction", type=float, default=0.25,
                   help="share of lines with the frequent pattern (default 0.25)")
    p.add_argument("--seed", type=int, default=1, help="seed of node1's log (nodeK: seed+K-1)")
    p.add_argument("--timeout-ms", type=int, default=10000, help="rainctl --timeout")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra raind setting for every node, repeatable")
    p.add_argument("--tmp", default="/tmp", help="where the temporary dir goes (default /tmp)")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary dir (logs); the cluster is still stopped")
    a = p.parse_args()
    if a.nodes < 1 or a.runs < 1 or a.size_mib < 1:
        p.error("--nodes, --runs and --size-mib must be positive")
    if not 0 < a.frequent_fraction < 1:
        p.error("--frequent-fraction: between 0 and 1")
    a.size = a.size_mib * MIB
    return a


def main():
    args = parse_args()
    bench = GrepBench(args)
    # SIGTERM/SIGINT: unwind through cleanup so no daemon or log file is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        bench.run()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except (RuntimeError, TimeoutError, OSError) as e:
        log(f"ERROR: {e}")
        return 1
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
