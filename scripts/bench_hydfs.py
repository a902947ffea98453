#!/usr/bin/env python3
"""HyDFS benchmark: throughput against the raw transport, get latency, re-replication, merge, RSS.

Runs real raind processes on 127.0.0.1 (ports from the OS) in a temporary dir under /tmp, which is
removed at the end (also on Ctrl-C or an error). Progress goes to stderr, result tables to stdout.

  python3 scripts/bench_hydfs.py --build build           # full run (~5-10 min, needs 8 GB in /tmp)
  python3 scripts/bench_hydfs.py --build build --quick   # 1 GiB steps at 256 MiB, fewer runs

What is measured, and how (sizes are binary: 1 MiB, 100 MiB, 1 GiB; rates are MiB/s):
  reference   tests/bench/stream_rate: 1 GiB as 1 MiB chunks PUSH -> PULL over tcp on 127.0.0.1
              between two threads, with the data plane's own frames (CRC32C), window 16 and acks
              ("acked", the like-for-like ceiling), and as bare messages without acks ("bare").
              Median of --ref-runs runs. Once in plain text and once with CurveZMQ (--curve on).
  CurveZMQ    with --curve both (the default), first the comparison in turns ("pair"): two
              clusters of --pair-nodes (6) nodes, plain text (insecure=true, rainctl
              --insecure) and CurveZMQ, up at once; each of --pair-runs (3) runs creates a fresh
              1 GiB file in both, gets it through a node holding no replica into a local file,
              and through another to /dev/null, the clusters taking turns (the order swaps every
              run). The CURVE >= 0.7 x plain target is read from these medians. Then the
              throughput part runs on a plain-text cluster of --nodes, which is stopped, and
              everything on a CurveZMQ cluster of --nodes (keys made for it: the default
              deployment); that table shows both (one run each at 1 GiB, minutes apart: a
              figure, not a verdict). "of raw" compares each operation with the raw stream of
              its own kind. --curve on / off: one cluster of that kind only, no comparison.
  machine     cores, load average and the disk's write rate (dd 256 MiB conv=fsync in the
              temporary dir) before the run, and the load average at the end.
  disk        the 1 GiB source file copied on the same filesystem: cp (page cache, no sync) and
              dd bs=1M conv=fsync (until the data is on disk).
  throughput  each rainctl create / get / append as a process, timed from start to exit (so the
              figure includes rainctl's start, the control requests and the commit). Create and
              append go through node1; get goes through a node that holds no replica (so every
              byte crosses two data-plane hops, replica -> client node -> rainctl) and whose
              cache does not hold the file, into a local file that is then compared with the
              source. Append adds SIZE bytes to a file created with 1 byte. "node MiB/s" uses the
              node's own elapsed_us. Median of the runs.
  RSS         VmHWM of every raind from /proc/<pid>/status, reset before each 1 GiB step by
              writing 5 to /proc/<pid>/clear_refs: the peak of each node during that step alone.
              rainctl's own peak comes from wait4().
  latency     tests/bench/hydfs_get_latency, one process calling rainctl's Download (no process
              start per get) against a node that holds no replica: cold = a fresh 1 MiB file
              created through node1 and got once; warm = the same file got again (served from
              the node's cache). Client time = the call; node time = elapsed_us of the reply.
  re-replication  SIGKILL one node (never node1) holding copies: (a) the node holding the most of
              100 files of 1 MiB, (b) a replica of the 1 GiB file. Time from the kill until every
              file is held, with one version, by all 3 nodes that the ring of the surviving nodes
              places it on (computed from `liststore` of each survivor: ring ids and file ids).
              Detection (each survivor's `event=fail` log line) and the first `repair_start`
              line are shown beside it: both are inside the total. Before each kill every other
              file is removed, so a measurement repairs only its own files.
  merge       for appends of 4 KiB and 40 KiB and k = 1, 2, 5, 10: a 1-byte file, then k appends
              at once through k different nodes (rainctl multiappend), then `rainctl merge`
              right away (before the repair scan's own merge, `hydfs_quiet_ms` after the last
              write). Client time of the merge process, and elapsed_ms from the reply.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (cpu_ticks, log, log_time_ms, machine_line, reset_hwm,  # noqa: E402
                           start_cluster, vm_hwm_kib, wait_until)
from bench_hydfs_report import GIB, MIB, fmt, label, med, print_report, rate  # noqa: E402

MIN_FREE_BYTES = 8 * 10**9

HYDFS_LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) \w (\w+) event=(\w+)(.*)$")


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MIB)
            f.write(os.urandom(n))
            left -= n


class HydfsBench:
    def __init__(self, args):
        self.args = args
        build = args.build
        if not os.path.isabs(build) and not os.path.isdir(build):
            build = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", build)
        build = os.path.abspath(build)
        self.raind = os.path.join(build, "daemon", "raind")
        self.rainctl_bin = os.path.join(build, "ctl", "rainctl")
        self.stream_rate = os.path.join(build, "tests", "bench", "stream_rate")
        self.latency_bin = os.path.join(build, "tests", "bench", "hydfs_get_latency")
        for b in (self.raind, self.rainctl_bin, self.stream_rate, self.latency_bin):
            if not os.access(b, os.X_OK):
                sys.exit(f"bench_hydfs.py: no executable {b} (build first: ninja -C {build}, "
                         "or pass --build)")
        free = shutil.disk_usage(args.tmp).free
        if free < MIN_FREE_BYTES:
            sys.exit(f"bench_hydfs.py: only {free / 1e9:.1f} GB free in {args.tmp}; the run "
                     f"needs {MIN_FREE_BYTES / 1e9:.0f} GB (1 GiB files, 3 replicas each, copies)")
        self.root = tempfile.mkdtemp(prefix="rainstorm-bench-hydfs.", dir=args.tmp)
        self.files = os.path.join(self.root, "files")
        os.makedirs(self.files)
        self.children = []
        self.cluster = None
        self.results = {}
        self.notes = []

    # --- helpers ----------------------------------------------------------------------------

    def rainctl(self, node, *cmd, timeout_ms=10000, check=False):
        """One rainctl --json command; the parsed reply, or None (with check: raises)."""
        argv = [self.rainctl_bin, "--node", node.addr, "--timeout", str(timeout_ms), "--json"]
        argv += node.ctl_flags
        r = subprocess.run(argv + list(cmd), capture_output=True, text=True)
        if r.returncode != 0:
            if check:
                raise RuntimeError(f"rainctl {' '.join(cmd)} via {node.name} exited "
                                   f"{r.returncode}: {r.stderr.strip()}")
            return None
        return json.loads(r.stdout)

    def timed(self, argv, discard=False):
        """Runs argv; returns (seconds, stdout, peak RSS of the child in KiB). Raises on failure.
        With discard, stdout goes to /dev/null."""
        out_path = os.devnull if discard else os.path.join(self.root, "timed.out")
        with open(out_path, "wb") as out:
            start = time.monotonic()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.PIPE)
            self.children.append(p)
            _, status, usage = os.wait4(p.pid, 0)
            seconds = time.monotonic() - start
            self.last_child_cpu = usage.ru_utime + usage.ru_stime
            p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode(errors="replace").strip()
        p.stderr.close()
        stdout = ""
        if not discard:
            with open(out_path) as f:
                stdout = f.read()
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(os.path.basename(a) for a in argv[:1])} "
                               f"{' '.join(argv[1:])} exited {p.returncode}: {err}")
        return seconds, stdout, usage.ru_maxrss

    def ctl_timed(self, node, *cmd, timeout_ms=120000):
        argv = [self.rainctl_bin, "--node", node.addr, "--timeout", str(timeout_ms), "--json"]
        argv += node.ctl_flags
        seconds, stdout, rss = self.timed(argv + list(cmd))
        return seconds, (json.loads(stdout) if stdout.strip() else {}), rss

    def nodes(self):
        return self.cluster.alive_nodes()

    def node_by_id(self, member_id):
        for n in self.cluster.nodes:
            if n.alive() and n.id == member_id:
                return n
        return None

    def replicas_of(self, name):
        reply = self.rainctl(self.nodes()[0], "ls", name, check=True)
        return [r["node"] for r in reply["replicas"]]

    def non_replica(self, name, avoid=()):
        """An alive node holding no replica of name (and not in avoid), else any alive node."""
        held = set(self.replicas_of(name))
        for n in self.nodes():
            if n.id not in held and n not in avoid:
                return n
        return self.nodes()[-1]

    def reset_rss(self):
        for n in self.nodes():
            reset_hwm(n.pid)

    def read_rss(self):
        return {n.name: vm_hwm_kib(n.pid) for n in self.nodes()}

    # --- phases -----------------------------------------------------------------------------

    def run_reference(self):
        self.results["reference"] = {}
        for curve in self.args.curves:
            log(f"reference: raw ZeroMQ stream, CURVE {curve}, {label(self.args.big)} x "
                f"{self.args.ref_runs} runs")
            _, out, _ = self.timed([self.stream_rate, "--bytes", str(self.args.big), "--runs",
                                    str(self.args.ref_runs), "--curve", curve])
            runs = [json.loads(line) for line in out.splitlines() if line.strip()]
            ref = {}
            for mode in ("acked", "plain"):
                rates = [r["mib_per_s"] for r in runs if r["mode"] == mode]
                ref[mode] = {"rate": med(rates), "runs": len(rates), "all": rates}
                log(f"reference: CURVE {curve} {mode} {' '.join(f'{x:.0f}' for x in rates)} "
                    "MiB/s")
            self.results["reference"][curve] = ref

    def make_sources(self):
        log("sources: writing random files")
        self.sources = {}
        for size in self.args.sizes:
            path = os.path.join(self.files, f"src-{size}")
            write_random(path, size)
            self.sources[size] = path
        self.one_byte = os.path.join(self.files, "one-byte")
        with open(self.one_byte, "wb") as f:
            f.write(b"x")
        os.sync()

    def run_disk(self):
        big = self.sources[self.args.big]
        dst = os.path.join(self.files, "disk-copy")
        disk = {}
        for what, argv in (("cp (no sync)", ["cp", big, dst]),
                           ("dd bs=1M (no sync)", ["dd", f"if={big}", f"of={dst}", "bs=1M",
                                                   "status=none"]),
                           ("dd conv=fsync", ["dd", f"if={big}", f"of={dst}", "bs=1M",
                                              "conv=fsync", "status=none"])):
            os.sync()
            seconds, _, _ = self.timed(argv)
            disk[what] = rate(self.args.big, seconds)
            log(f"disk: {what} {disk[what]:.0f} MiB/s")
            os.unlink(dst)
        self.results["disk"] = disk

    def start_cluster(self, curve):
        """A cluster with CurveZMQ (curve "on", keys made for it) or plain text ("off")."""
        # Log shipping off: its appends would add files and traffic to what is measured.
        sets = ["log_ship_interval_ms=0"] + list(self.args.set)
        if curve == "off":
            sets.append("insecure=true")
        self.cluster, _ = start_cluster(self, f"cluster-curve-{curve}",
                                        os.path.join(self.root, f"cluster-curve-{curve}"),
                                        self.args.nodes, sets)
        time.sleep(0.5)  # HyDFS polls the membership view every 100 ms for its ring
        first = self.nodes()[0]
        before = vm_hwm_kib(first.pid)
        self.rss_reset_works = reset_hwm(first.pid)
        if not self.rss_reset_works:
            self.notes.append("clear_refs not writable: peak RSS is since each raind started")
        log(f"cluster: up; VmHWM reset {'works' if self.rss_reset_works else 'NOT available'}"
            f" (node1 {before} KiB before)")

    def run_curve_pair(self):
        """The 1 GiB create and get with CurveZMQ against plain text, in turns: two clusters of
        --pair-nodes nodes, one of each kind, up at once. Each run creates a fresh file of the
        largest size in both and gets it through a node holding no replica into a local file,
        then through another to /dev/null; the order of the two clusters swaps every run, so a
        drift of the machine's speed hits both alike."""
        a = self.args
        clusters = {}
        try:
            for curve in ("off", "on"):
                sets = ["log_ship_interval_ms=0"] + list(a.set)
                if curve == "off":
                    sets.append("insecure=true")
                tag = f"pair-curve-{curve}"
                clusters[curve], _ = start_cluster(self, tag, os.path.join(self.root, tag),
                                                   a.pair_nodes, sets)
            time.sleep(0.5)  # HyDFS polls the membership view every 100 ms for its ring
            ops = ("create", "get", "get to /dev/null")
            res = {c: {op: [] for op in ops + ("get cpu", "get to /dev/null cpu")}
                   for c in clusters}
            tick = os.sysconf("SC_CLK_TCK")

            def cpu_of_nodes():
                return sum(cpu_ticks(n.pid) or 0 for n in self.nodes()) / tick
            src = self.sources[a.big]
            for i in range(a.pair_runs):
                for curve in (("off", "on") if i % 2 == 0 else ("on", "off")):
                    self.cluster = clusters[curve]
                    node1 = self.nodes()[0]
                    name = f"pair/{i}"
                    os.sync()
                    s, _, _ = self.ctl_timed(node1, "create", src, name)
                    res[curve]["create"].append(s)
                    reader = self.non_replica(name, avoid=(node1,))
                    out = os.path.join(self.files, "got")
                    os.sync()
                    before = cpu_of_nodes()
                    s, reply, _ = self.ctl_timed(reader, "get", name, out)
                    res[curve]["get cpu"].append(cpu_of_nodes() - before + self.last_child_cpu)
                    if reply.get("cached"):
                        self.notes.append(f"pair get {name} was served from the cache")
                    if subprocess.run(["cmp", "-s", src, out]).returncode != 0:
                        raise RuntimeError(f"get {name}: the local copy differs from the source")
                    os.unlink(out)
                    res[curve]["get"].append(s)
                    reader2 = self.non_replica(name, avoid=(node1, reader))
                    os.sync()
                    before = cpu_of_nodes()
                    s, _, _ = self.timed([self.rainctl_bin, "--node", reader2.addr, "--timeout",
                                          "120000", *reader2.ctl_flags, "get", name, "-"],
                                         discard=True)
                    res[curve]["get to /dev/null cpu"].append(
                        cpu_of_nodes() - before + self.last_child_cpu)
                    res[curve]["get to /dev/null"].append(s)
                    self.rainctl(node1, "rm", name, check=True)
                    log(f"pair run {i + 1}/{a.pair_runs} CURVE {curve}: " + ", ".join(
                        f"{op} {rate(a.big, res[curve][op][-1]):.0f}" for op in ops) + " MiB/s")
            self.results["pair"] = res
        finally:
            for c in clusters.values():
                c.down()
            self.cluster = None

    def run_throughput(self, curve):
        a = self.args
        node1 = self.nodes()[0]
        rows = {}
        self.rss = {}  # step -> {node name: KiB}
        self.ctl_rss = {}  # step -> KiB
        for size in a.sizes:
            runs = a.big_runs if size == a.big else (a.small_runs if size <= MIB else a.mid_runs)
            big = size == a.big
            res = {"create": [], "get": [], "get to /dev/null": [], "append": []}
            for i in range(runs):
                name = f"tp/{size}-{i}"
                src = self.sources[size]
                # create
                os.sync()  # no step pays for the write-back of the previous one
                if big:
                    self.reset_rss()
                s, reply, crss = self.ctl_timed(node1, "create", src, name)
                res["create"].append((s, reply.get("elapsed_us", 0) / 1e6))
                if big:
                    self.rss[f"create {label(size)}"] = self.read_rss()
                    self.ctl_rss["create"] = crss
                # get through a node without a replica, into a local file
                reader = self.non_replica(name, avoid=(node1,))
                out = os.path.join(self.files, "got")
                os.sync()
                if big:
                    self.reset_rss()
                s, reply, crss = self.ctl_timed(reader, "get", name, out)
                if reply.get("cached"):
                    self.notes.append(f"get {name} was served from the cache (unexpected)")
                res["get"].append((s, reply.get("elapsed_us", 0) / 1e6))
                if big:
                    self.rss[f"get {label(size)}"] = self.read_rss()
                    self.ctl_rss["get"] = crss
                if subprocess.run(["cmp", "-s", src, out]).returncode != 0:
                    raise RuntimeError(f"get {name}: the local copy differs from the source")
                os.unlink(out)
                # the same get with rainctl's output discarded: the transfer without the local
                # file write, through another reader (whose cache does not hold the file)
                reader2 = self.non_replica(name, avoid=(node1, reader))
                os.sync()
                s, _, _ = self.timed([self.rainctl_bin, "--node", reader2.addr, "--timeout",
                                      "120000", *reader2.ctl_flags, "get", name, "-"], discard=True)
                res["get to /dev/null"].append((s, None))
                # append SIZE bytes to a 1-byte file
                aname = f"tp/append-{size}-{i}"
                self.ctl_timed(node1, "create", self.one_byte, aname)
                os.sync()
                if big:
                    self.reset_rss()
                s, reply, crss = self.ctl_timed(node1, "append", src, aname)
                res["append"].append((s, reply.get("elapsed_us", 0) / 1e6))
                if big:
                    self.rss[f"append {label(size)}"] = self.read_rss()
                    self.ctl_rss["append"] = crss
                    self.rainctl(node1, "rm", aname, check=True)  # frees 3 GiB of disk
                if big and i > 0:
                    self.rainctl(node1, "rm", name, check=True)
                log(f"throughput CURVE {curve} {label(size)} run {i + 1}/{runs}: " + ", ".join(
                    f"{op} {rate(size, res[op][-1][0]):.0f}" for op in res) + " MiB/s")
            rows[size] = res
        self.results.setdefault("throughput", {})[curve] = rows
        self.big_file = f"tp/{a.big}-0"

    def run_latency(self):
        a = self.args
        node1 = self.nodes()[0]
        # A node other than node1 (the writer). Placement of the fresh files is not known in
        # advance: for about 3 in 10 of them the reader is itself a replica and reads locally.
        reader = self.nodes()[-1]
        log(f"latency: {a.cold} cold and {a.warm} warm gets of 1 MiB through {reader.name}")
        _, out, _ = self.timed([self.latency_bin, "--node", reader.addr, "--writer", node1.addr,
                                "--tmp", self.files, "--cold", str(a.cold), "--warm",
                                str(a.warm), "--prefix", "lat/f", *reader.ctl_flags])
        self.results["latency"] = json.loads(out)
        self.results["latency"]["reader"] = reader.name

    def run_merge(self):
        a = self.args
        nodes = self.nodes()
        rows = []
        for size in (4096, 40960):
            srcs = []
            for j in range(max(a.merge_ks)):
                path = os.path.join(self.files, f"merge-{size}-{j}")
                with open(path, "wb") as f:
                    f.write(os.urandom(size))
                srcs.append(path)
            for k in a.merge_ks:
                if k > len(nodes):
                    self.notes.append(f"merge k={k}: only {len(nodes)} nodes, skipped")
                    continue
                samples = []
                for i in range(a.merge_runs):
                    name = f"merge/{size}-{k}-{i}"
                    self.ctl_timed(nodes[0], "create", self.one_byte, name)
                    through = nodes[:k]
                    ms, reply, _ = self.ctl_timed(
                        nodes[0], "multiappend", name, *[n.addr for n in through], *srcs[:k])
                    if not all(r.get("ok") for r in reply):
                        raise RuntimeError(f"multiappend {name}: {reply}")
                    s, m, _ = self.ctl_timed(nodes[0], "merge", name)
                    samples.append({"client_ms": s * 1000, "node_ms": m.get("elapsed_ms"),
                                    "changed": m.get("replicas_changed", 0),
                                    "moved": m.get("moved_bytes", 0), "append_ms": ms * 1000})
                row = {"size": size, "k": k, "runs": len(samples),
                       "client_ms": med([x["client_ms"] for x in samples]),
                       "node_ms": med([x["node_ms"] for x in samples
                                       if x["node_ms"] is not None]),
                       "changed": med([x["changed"] for x in samples]),
                       "moved": med([x["moved"] for x in samples]),
                       "append_ms": med([x["append_ms"] for x in samples])}
                rows.append(row)
                log(f"merge {label(size)} x {k}: {row['client_ms']:.0f} ms client, "
                    f"{fmt(row['node_ms'])} ms node, {row['changed']:g} replicas changed")
        self.results["merge"] = rows

    # Re-replication ----------------------------------------------------------------------

    def stores(self):
        """liststore of every alive node, in parallel: {node name: reply}."""
        nodes = self.nodes()
        with concurrent.futures.ThreadPoolExecutor(len(nodes)) as ex:
            replies = list(ex.map(lambda n: self.rainctl(n, "liststore", timeout_ms=3000,
                                                         check=False), nodes))
        return {n.name: r for n, r in zip(nodes, replies)}

    def placed(self, names, versions, replicas=3):
        """True when each name is held with its version by the `replicas` nodes that the ring of
        the alive nodes places it on (first nodes at or after the file id, clockwise)."""
        stores = self.stores()
        if any(r is None for r in stores.values()):
            return False
        ring = sorted((int(r["ring_id"], 16), name) for name, r in stores.items())
        held = {}
        file_ids = {}
        for node, r in stores.items():
            for f in r.get("files", []):
                held.setdefault(f["name"], {})[node] = f["version"]
                file_ids[f["name"]] = int(f["file_id"], 16)
        for name in names:
            if name not in file_ids:
                return False
            fid = file_ids[name]
            start = next((i for i, (rid, _) in enumerate(ring) if rid >= fid), 0)
            owners = [ring[(start + j) % len(ring)][1] for j in range(min(replicas, len(ring)))]
            if any(held.get(name, {}).get(o) != versions[name] for o in owners):
                return False
        return True

    def versions_of(self, names):
        versions = {}
        for r in self.stores().values():
            for f in (r or {}).get("files", []):
                if f["name"] in names:
                    versions.setdefault(f["name"], set()).add(f["version"])
        bad = [n for n in names if len(versions.get(n, ())) != 1]
        if bad:
            raise RuntimeError(f"before the kill, replicas of {bad[:3]} disagree or are missing")
        return {n: next(iter(v)) for n, v in versions.items()}

    def log_events(self, node, since_ms):
        """(ms, module, event, rest) of node's raind.log lines at or after since_ms."""
        out = []
        try:
            with open(os.path.join(node.dir, "raind.log"), errors="replace") as f:
                for line in f:
                    m = HYDFS_LOG_RE.match(line)
                    if m:
                        ms = log_time_ms(m.group(1))
                        if ms >= since_ms:
                            out.append((ms, m.group(2), m.group(3), m.group(4)))
        except FileNotFoundError:
            pass
        return out

    def rereplicate(self, tag, names, victim):
        versions = self.versions_of(names)
        victim_id = victim.id
        survivors = [n for n in self.nodes() if n is not victim]
        self.reset_rss()
        log(f"re-replication {tag}: SIGKILL {victim.name} ({victim_id})")
        kill_ms = time.time() * 1000
        t0 = time.monotonic()
        victim.kill()
        done_s = None
        try:
            wait_until(lambda: self.placed(names, versions), self.args.repair_timeout,
                       f"re-replication {tag}", interval_s=0.02)
            done_s = time.monotonic() - t0
        except TimeoutError as e:
            log(f"re-replication {tag}: {e}")
        rss = self.read_rss()
        detect, repair_start, moved = [], None, 0
        for n in survivors:
            for ms, module, event, rest in self.log_events(n, kill_ms):
                if event == "fail" and f"member={victim_id}" in rest:
                    detect.append(ms - kill_ms)
                if event == "repair_start" and any(f"file={x} " in rest + " " for x in names):
                    repair_start = min(repair_start or 1e12, ms - kill_ms)
                if event == "repair_done":
                    m = re.search(r"moved_bytes=(\d+)", rest)
                    if m and any(f"file={x} " in rest for x in names):
                        moved += int(m.group(1))
        # Confirm with the nodes' own view: every replica of every file has the one version.
        verified = done_s is not None
        if verified:
            for name in names[:: max(1, len(names) // 10)]:
                reply = self.rainctl(survivors[0], "ls", name, check=True)
                vs = {r["version"] for r in reply["replicas"] if r["has_copy"]}
                if len(vs) != 1 or not all(r["has_copy"] for r in reply["replicas"]):
                    verified = False
        bytes_ = sum(self.file_size(n) for n in names[:1]) * len(names)
        result = {"tag": tag, "files": len(names), "bytes": bytes_, "victim": victim.name,
                  "done_s": done_s, "detect_first": min(detect) if detect else None,
                  "detect_last": max(detect) if len(detect) == len(survivors) else None,
                  "repair_start": repair_start, "moved": moved, "verified": verified,
                  "rss": rss}
        log(f"re-replication {tag}: {fmt(done_s, 2)} s (detection {fmt(result['detect_first'])}"
            f"-{fmt(result['detect_last'])} ms, first repair_start {fmt(repair_start)} ms)")
        self.results.setdefault("rerep", []).append(result)

    def file_size(self, name):
        return self.rainctl(self.nodes()[0], "ls", name, check=True)["size"]

    def run_rereplication(self):
        a = self.args
        node1 = self.nodes()[0]
        # Each measurement repairs only its own files: the others are removed first, and the
        # victim of the small files holds no copy of the big one.
        self.remove_all(keep={self.big_file})
        big_holders = set(self.replicas_of(self.big_file))
        names = [f"rr/small-{i:03d}" for i in range(a.rr_files)]
        log(f"re-replication: creating {a.rr_files} files of 1 MiB")
        for name in names:
            self.ctl_timed(node1, "create", self.sources[MIB], name)
        counts = {}
        for node, r in self.stores().items():
            counts[node] = sum(1 for f in r["files"] if f["name"].startswith("rr/"))
        candidates = [n for n in self.nodes()[1:] if n.id not in big_holders] or self.nodes()[1:]
        victim = max(candidates, key=lambda n: counts.get(n.name, 0))
        self.rereplicate(f"{a.rr_files} x 1 MiB", names, victim)
        self.remove_all(keep={self.big_file})
        time.sleep(a.settle)
        holders = [self.node_by_id(i) for i in self.replicas_of(self.big_file)]
        victim = next(n for n in holders if n is not None and n is not node1)
        self.rereplicate(f"1 x {label(a.big)}", [self.big_file], victim)

    def remove_all(self, keep):
        listing = self.rainctl(self.nodes()[0], "ls", check=True)
        names = [f["name"] for f in listing.get("files", []) if f["name"] not in keep]
        log(f"removing {len(names)} files")
        node = self.nodes()[0]
        for name in names:
            self.rainctl(node, "rm", name, check=True)

    # --- driver -----------------------------------------------------------------------------

    def run(self):
        started = time.monotonic()
        parts = self.args.parts
        self.machine_before = machine_line(self.root)
        log(self.machine_before)
        self.run_reference()
        self.make_sources()
        self.run_disk()
        if "pair" in parts and len(self.args.curves) == 2:
            self.run_curve_pair()
        # Throughput on a plain-text cluster first, then everything on the CURVE cluster (the
        # default deployment): these two never run at once.
        for curve in self.args.curves[:-1]:
            if "throughput" in parts:
                self.start_cluster(curve)
                self.run_throughput(curve)
                self.cluster.down()
                self.cluster = None
        main = self.args.curves[-1]
        if parts & {"throughput", "latency", "merge", "rerep"}:
            self.start_cluster(main)
        if "throughput" in parts or "rerep" in parts:
            self.run_throughput(main)
        if "latency" in parts:
            self.run_latency()
        if "merge" in parts:
            self.run_merge()
        if "rerep" in parts:
            self.run_rereplication()
        self.report(time.monotonic() - started)

    def cleanup(self):
        if self.cluster:
            self.cluster.down()
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            log(f"kept data dirs in {self.root}")

    def report(self, elapsed_s):
        print_report(self, elapsed_s)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build", help="build dir holding daemon/raind, ctl/rainctl")
    p.add_argument("--quick", action="store_true",
                   help="largest size 256 MiB, fewer runs and gets (~2 min)")
    p.add_argument("--nodes", type=int, default=10, help="cluster size (default 10)")
    p.add_argument("--ref-runs", type=int, default=3, help="runs of the raw stream reference")
    p.add_argument("--small-runs", type=int, help="runs of 1 MiB create/get/append (default 5)")
    p.add_argument("--mid-runs", type=int, help="runs of 100 MiB create/get/append (default 3)")
    p.add_argument("--big-runs", type=int, default=1, help="runs of 1 GiB create/get/append")
    p.add_argument("--cold", type=int, help="cold gets in the latency test (default 20)")
    p.add_argument("--warm", type=int, help="warm gets in the latency test (default 200)")
    p.add_argument("--merge-ks", default="1,2,5,10", help="concurrent appends before a merge")
    p.add_argument("--merge-runs", type=int, default=3, help="runs per merge configuration")
    p.add_argument("--rr-files", type=int, default=100, help="1 MiB files re-replicated")
    p.add_argument("--settle", type=float, default=3.0,
                   help="seconds of quiet before the 1 GiB kill (repairs of removals drain)")
    p.add_argument("--repair-timeout", type=float, default=120.0,
                   help="seconds to wait for re-replication")
    p.add_argument("--pair-runs", type=int, help="runs of the CURVE/plain comparison in turns "
                   "(default 3; --quick 1)")
    p.add_argument("--pair-nodes", type=int, default=6,
                   help="nodes of each cluster of that comparison (default 6)")
    p.add_argument("--parts", default="pair,throughput,latency,merge,rerep",
                   help="which parts to run besides the reference and disk copy")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra raind setting for every node, repeatable")
    p.add_argument("--curve", choices=("both", "on", "off"), default="both",
                   help="both (default): throughput on a plain-text cluster, then everything on "
                        "a CurveZMQ cluster; on / off: one cluster of that kind")
    p.add_argument("--tmp", default="/tmp", help="where the temporary dir goes (default /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the data dirs (logs)")
    a = p.parse_args()
    a.big = 256 * MIB if a.quick else GIB
    a.sizes = [MIB, 100 * MIB, a.big]
    a.small_runs = a.small_runs or (3 if a.quick else 5)
    a.mid_runs = a.mid_runs or (1 if a.quick else 3)
    a.cold = a.cold or (10 if a.quick else 20)
    a.warm = a.warm or (50 if a.quick else 200)
    a.merge_ks = [int(k) for k in a.merge_ks.split(",")]
    if a.quick:
        a.merge_runs = 1
        a.rr_files = min(a.rr_files, 30)
    a.curves = {"both": ["off", "on"], "on": ["on"], "off": ["off"]}[a.curve]
    a.parts = set(a.parts.split(","))
    if not a.parts <= {"pair", "throughput", "latency", "merge", "rerep"}:
        p.error("--parts: want a list of pair, throughput, latency, merge, rerep")
    a.pair_runs = (1 if a.quick else 3) if a.pair_runs is None else a.pair_runs
    if a.pair_runs < 1:
        p.error("--pair-runs: at least 1")
    if a.pair_nodes < 5:
        p.error("--pair-nodes: at least 5 (two readers holding no replica)")
    if a.nodes < 4 or a.nodes < max(a.merge_ks):
        p.error("--nodes: at least 4 (a kill must leave 3), and at least the largest merge k")
    return a


def main():
    args = parse_args()
    bench = HydfsBench(args)
    # SIGTERM/SIGINT: unwind through cleanup so no daemon or 1 GiB file is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        bench.run()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except (RuntimeError, TimeoutError) as e:
        log(f"ERROR: {e}")
        return 1
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
