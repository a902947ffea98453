#!/usr/bin/env python3
"""Stream benchmark: a 3-stage RainStorm job against the same operators chained by Unix pipes.

Workload: --events (default 10 M) generated events `ts,user,action,value` (100 K users, click
25 %; tests/bench/gen_events, no header), and the job  grep action == click -> select user ->
count by user.  Everything runs on this machine, in one temporary dir under /tmp that is removed
at the end (also on Ctrl-C or an error), with every process this script starts killed. Progress
goes to stderr, the tables to stdout.

  python3 scripts/bench_stream.py --build build                     # full run
  python3 scripts/bench_stream.py --build build --quick             # 1 M events, single runs
  python3 scripts/bench_stream.py --build build --references-only   # no cluster (no engine yet)

What is measured, and how (rates are input events per second; M = 10^6):
  references  awk:   awk -F, '$3=="click"{c[$2]++; print $2","c[$2]}' events > out
              chain: cat events | rainpipe lines | rainop-grep -x --column 2 click |
                     rainpipe relay | rainop-select 1 | rainpipe relay | rainop-count 0 |
                     rainpipe values > out    (tests/bench/rainpipe; one task per stage)
              chain, Python filter: the same with operators/python/filter.py --column 2 click
              in place of rainop-grep.
              Wall time from the first process's start to the last one's exit; CPU = user + sys
              of every process of the pipeline (os.wait4). Median of --ref-runs runs (by wall
              time). The awk output is the reference every other output is checked against:
              the chains must produce it byte for byte (one task, input order).
  cluster     3 raind on 127.0.0.1 (ports from the OS, log shipping off), the events file put
              into HyDFS as `events` (rainctl create), then through node1:
                rainctl job submit --stage 'grep -x --column 2 click' --stage 'select 1'
                  --stage 'count 0' --tasks 2 --src events --dest out-N [--no-exactly-once]
                  [--rate R] --detach
              4 ways: exactly-once on/off x C++ grep / Python filter.py (by absolute path), then
              the latency run: exactly-once on, C++, --rate = half the tuples/s of the
              exactly-once C++ run (--latency-all: such a run for each of the 4 configs). `rainctl --json job status J` is polled every 0.25 s until
              the state is done, failed or cancelled.
              tuples/s = events / elapsed_ms of the job (the leader's figure: submit to done).
              CPU = the growth of utime + stime + cutime + cstime of every raind
              (/proc/<pid>/stat) from before the submit to after the job's operator processes
              were reaped (raind's children count in its cutime/cstime). rainctl's own CPU is
              not counted. Latency = latency_p50_us / latency_p99_us of the job status (source
              emit to sink, measured by the engine).
              Output: `rainctl get out-N`, compared with the awk output as a multiset of lines
              (every `user,count` exactly once; line order differs with 2 tasks). Required with
              exactly-once; reported without it.
  CurveZMQ    the cluster above runs with its keys (CurveZMQ on every socket, the default).
              With --curve both (the default) a second cluster of as many nodes runs beside it
              in plain text (insecure=true, rainctl --insecure; its own copy of `events`), and
              each C++ config runs there right after its CurveZMQ run. --curve on / off: one
              cluster of that kind only.
  watching    --scrape-pairs (default 4) pairs of exactly-once C++ runs, one without and one
              with a scraper thread (scripts/bench_scraper.py) that GETs /metrics of every node
              and the console's JSON of node1 (list_mem, hydfs.lsall, job.list, job.status and
              job.tasks of the running job), from submit to done: pairs with it once a second
              (the issue's scraper), then as many 10 times a second (its cost magnified 10x
              above the noise of a pair, several % here). A pair's order alternates (ABBA), so
              a steady drift of the machine cancels out. Cost judged: (1 - the median over the
              10/s pairs of tuples/s with / without) / 10; the 1/s pairs' median beside it.
              Then the scraper's CPU: raind's own over 5 s of the idle cluster, then over 5 s
              of a scraper at 10 rounds a second (also asking for the last job), per round, and
              the scraper thread's (client) CPU per round.
  machine     cores, load average and the disk's write rate (dd 256 MiB conv=fsync in the
              temporary dir) before the run, and the load average at the end.
  targets     (issue 14) exactly-once (C++) >= 0.5 x the C++ pipe chain of the same run;
              exactly-once at >= 0.85 of the throughput without it; p99 <= 20 ms with
              exactly-once at half load; <= 1 CPU second per million tuples (exactly-once, C++);
              (security issue) exactly-once with CurveZMQ at >= 0.85 of exactly-once in plain
              text (C++); (issue 16) the scraper costs <= 2 % of the throughput.
Exit status: 0 when every job finished (and every exactly-once output was right), whatever the
figures; 1 otherwise or on an error; 130 on Ctrl-C.
"""

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cluster import (  # noqa: E402
    CLK_TCK, JsonCtl, cpu_ticks, log, machine_line, start_cluster)
from bench_scraper import Scraper
from bench_stream_report import fmt, report  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


AWK_PROGRAM = '$3=="click"{c[$2]++; print $2","c[$2]}'
EVENTS_NAME = "events"                 # the input's HyDFS name
BYTES_PER_EVENT = 31                   # about, for the disk check
POLL_S = 0.25
FINAL_STATES = ("done", "failed", "cancelled")



def shell_line(argvs, stdout):
    """A pipeline as one shell line, for the report."""
    return " | ".join(shlex.join(a) for a in argvs) + f" > {stdout}"


def non_negative(text):
    """argparse type: an integer >= 0."""
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return n


def proc_cpu_ticks(pid):
    """utime + stime + cutime + cstime of pid (clock ticks), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15])  # fields 14-17 of proc(5)
    except (OSError, IndexError, ValueError):
        return None


def children_of(pids):
    """Pids whose parent is one of pids (a scan of /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid in pids:
            found.append(int(entry))
    return found


def sorted_copy(path, out_path):
    """out_path = the lines of path sorted bytewise; returns (lines, sha256 of the sorted file)."""
    subprocess.run(["sort", "-S", "25%", "-o", out_path, path], check=True,
                   env=dict(os.environ, LC_ALL="C"))
    h = hashlib.sha256()
    lines = 0
    with open(out_path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            h.update(block)
            lines += block.count(b"\n")
    return lines, h.hexdigest()


def count_lines(argv):
    r = subprocess.run(argv, capture_output=True, env=dict(os.environ, LC_ALL="C"))
    return r.stdout.count(b"\n")


class StreamBench(JsonCtl):
    def __init__(self, args):
        self.args = args
        build = args.build
        if not os.path.isabs(build) and not os.path.isdir(build):
            build = os.path.join(REPO, build)
        self.build = os.path.abspath(build)
        b = self.build
        self.gen_events = os.path.join(b, "tests", "bench", "gen_events")
        self.rainpipe = os.path.join(b, "tests", "bench", "rainpipe")
        self.ops = {name: os.path.join(b, "operators", "builtin", f"rainop-{name}")
                    for name in ("grep", "select", "count")}
        self.filter_py = os.path.join(REPO, "operators", "python", "filter.py")
        self.raind = os.path.join(b, "daemon", "raind")
        self.rainctl_bin = os.path.join(b, "ctl", "rainctl")
        need = [self.gen_events, self.rainpipe, *self.ops.values(), self.filter_py]
        if not args.references_only:
            need += [self.raind, self.rainctl_bin]
        for exe in need:
            if not os.access(exe, os.X_OK):
                sys.exit(f"bench_stream.py: no executable {exe} (build first: ninja -C {b}, "
                         "or pass --build)")
        # local file + outputs; per cluster 3 replicas + spool
        copies = 2 if args.references_only else 2 + 4 * len(args.curves)
        need_bytes = args.events * BYTES_PER_EVENT * copies + (1 << 28)
        free = shutil.disk_usage(args.tmp).free
        if free < need_bytes:
            sys.exit(f"bench_stream.py: only {free / 1e9:.1f} GB free in {args.tmp}; the run "
                     f"needs about {need_bytes / 1e9:.1f} GB")
        self.root = tempfile.mkdtemp(prefix="rainstorm-bench-stream.", dir=args.tmp)
        # Searchable by others: a root raind runs operators as operator_user, which must reach
        # their task dirs below the data dirs (daemon/stream/README.md "Operator sandbox").
        os.chmod(self.root, 0o711)
        self.files = os.path.join(self.root, "files")
        os.makedirs(self.files)
        self.events_path = os.path.join(self.files, "events.csv")
        self.children = []
        self.clusters = {}  # "on" (CurveZMQ, the default) / "off" (insecure=true) -> cluster
        self.cluster = None  # the one jobs go to now (use())
        self.rows = []      # result rows, in report order
        self.notes = []
        self.commands = []  # (config, command line)
        self.last_error = None  # of the last rainctl that failed
        self.broken = False  # a job did not finish, or an exactly-once output was wrong

    # --- helpers ----------------------------------------------------------------------------

    def run_pipeline(self, argvs, stdin_path, stdout_path, tag):
        """Runs argvs chained by pipes, stdin from stdin_path and stdout to stdout_path.
        Returns (wall seconds, CPU seconds of all its processes). Raises if any exits non-zero."""
        procs = []
        errs = []
        start = time.monotonic()
        with open(stdin_path, "rb") as fin, open(stdout_path, "wb") as fout:
            prev = fin
            for i, argv in enumerate(argvs):
                last = i == len(argvs) - 1
                err = open(os.path.join(self.root, f"{tag}-{i}.err"), "wb+")
                errs.append(err)
                p = subprocess.Popen(argv, stdin=prev, stdout=fout if last else subprocess.PIPE,
                                     stderr=err)
                self.children.append(p)
                procs.append(p)
                if prev is not fin:
                    prev.close()  # the pipe's read end now belongs to p alone
                prev = p.stdout
            cpu = 0.0
            failed = []
            for p, argv, err in zip(procs, argvs, errs):
                _, status, usage = os.wait4(p.pid, 0)
                p.returncode = os.waitstatus_to_exitcode(status)
                cpu += usage.ru_utime + usage.ru_stime
                if p.returncode != 0:
                    err.seek(0)
                    tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
                    failed.append(f"{os.path.basename(argv[0])} exited {p.returncode}: "
                                  + " / ".join(tail))
            seconds = time.monotonic() - start
        for err in errs:
            err.close()
        if failed:
            raise RuntimeError(f"{tag}: " + "; ".join(failed))
        return seconds, cpu

    def display(self, line):
        """A command line for the report: $D for the temporary dir, paths from the repo root."""
        return line.replace(self.files + "/", "$D/").replace(REPO + "/", "")

    # --- the input and the references -------------------------------------------------------

    def make_events(self):
        a = self.args
        log(f"events: generating {a.events:,} lines (seed {a.seed})")
        start = time.monotonic()
        subprocess.run([self.gen_events, "--lines", str(a.events), "--seed", str(a.seed),
                        "--out", self.events_path], check=True)
        size = os.path.getsize(self.events_path)
        log(f"events: {size / 1e6:.0f} MB in {time.monotonic() - start:.1f} s")
        self.events_bytes = size

    def reference_configs(self):
        rp, ops = self.rainpipe, self.ops
        ev = self.events_path

        def chain(first_op):
            return [["cat", ev],
                    [rp, "lines", "--file", EVENTS_NAME, "--stage", "0", "--stages", "3"],
                    first_op,
                    [rp, "relay", "--stage", "1", "--stages", "3"],
                    [ops["select"], "1"],
                    [rp, "relay", "--stage", "2", "--stages", "3"],
                    [ops["count"], "0"],
                    [rp, "values"]]

        return [
            ("awk one-liner", "awk", [["awk", "-F,", AWK_PROGRAM, ev]]),
            ("pipe chain, C++ ops", "chain-cpp",
             chain([ops["grep"], "-x", "--column", "2", "click"])),
            ("pipe chain, Python filter", "chain-py",
             chain([self.filter_py, "--column", "2", "click"])),
        ]

    def run_references(self):
        a = self.args
        self.reference_out = os.path.join(self.files, "reference.out")
        for label, tag, argvs in self.reference_configs():
            out = self.reference_out if tag == "awk" else os.path.join(self.files, f"{tag}.out")
            self.commands.append((label, self.display(shell_line(argvs, stdout="out"))))
            runs = []
            for i in range(a.ref_runs):
                seconds, cpu = self.run_pipeline(argvs, os.devnull, out, tag)
                runs.append((seconds, cpu))
                log(f"{label}: run {i + 1}/{a.ref_runs} {seconds:.2f} s, "
                    f"{a.events / seconds / 1e6:.2f} M tuples/s, CPU {cpu:.2f} s")
                if tag != "awk" and i == 0:
                    same = subprocess.run(["cmp", "-s", self.reference_out, out]).returncode == 0
                    if not same:
                        raise RuntimeError(f"{label}: the output differs from awk's ({out})")
            seconds, cpu = sorted(runs)[len(runs) // 2]
            self.rows.append({
                "config": label, "kind": "reference", "seconds": seconds,
                "tuples_per_s": a.events / seconds, "cpu_s_per_m": cpu / (a.events / 1e6),
                "p50_ms": None, "p99_ms": None, "output": "same bytes" if tag != "awk" else "-",
                "runs": len(runs)})
            if tag != "awk":
                os.unlink(out)
        self.reference_lines, self.reference_digest = sorted_copy(
            self.reference_out, self.reference_out + ".sorted")
        log(f"reference: {self.reference_lines:,} output lines")

    # --- the cluster ------------------------------------------------------------------------

    def use(self, curve):
        """Jobs and rainctl calls go to the CurveZMQ cluster ("on") or the plain one ("off")."""
        self.cluster = self.clusters[curve]
        self.curve = curve

    def start_cluster(self, curve):
        sets = ["log_ship_interval_ms=0"] + list(self.args.set)
        if curve == "off":
            sets.append("insecure=true")
        tag = f"cluster-curve-{curve}"
        self.clusters[curve], _ = start_cluster(self, tag, os.path.join(self.root, tag),
                                                self.args.nodes, sets)
        self.use(curve)
        time.sleep(0.5)  # HyDFS polls the membership view every 100 ms for its ring
        node1 = self.cluster.nodes[0]
        log(f"{tag}: up; rainctl create {EVENTS_NAME} ({self.events_bytes / 1e6:.0f} MB)")
        start = time.monotonic()
        self.rainctl(node1, "create", self.events_path, EVENTS_NAME, timeout_ms=600000,
                     check=True)
        log(f"{tag}: {EVENTS_NAME} created in {time.monotonic() - start:.1f} s")

    def job_argv(self, python_filter, exactly_once, dest, rate=None):
        if python_filter:
            first = shlex.join([self.filter_py, "--column", "2", "click"])
        else:
            first = "grep -x --column 2 click"  # rainctl splits it: no shell, no quotes
        argv = ["job", "submit", "--stage", first, "--stage", "select 1", "--stage", "count 0",
                "--tasks", str(self.args.tasks), "--src", EVENTS_NAME, "--dest", dest]
        if not exactly_once:
            argv.append("--no-exactly-once")
        if rate:
            argv += ["--rate", str(int(rate))]
        argv.append("--detach")
        if self.args.keep:
            argv.append("--keep")  # the jobs' task logs stay in the kept dir too
        return argv

    def raind_pids(self):
        return [n.pid for n in self.cluster.alive_nodes()]

    def cluster_cpu_ticks(self):
        ticks = [proc_cpu_ticks(pid) for pid in self.raind_pids()]
        return None if None in ticks else sum(ticks)

    def wait_reaped(self, timeout_s=10):
        """Until no raind has a child process left (operators exited and reaped); False if some
        remain after timeout_s (their CPU is then missing from cutime/cstime)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = children_of(set(self.raind_pids()))
            if not left:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def measure_scrape_cpu(self, job, seconds=5.0, interval_s=0.1):
        """The scraper's own cost, without the noise of throughput: raind CPU (its own, not its
        children's) over `seconds` of the idle cluster, then as long with a scraper at
        1/interval_s rounds a second that also asks for `job` (ended: the status and tasks of a
        job of this size). {"ms_per_round", "rounds", "idle_ticks", "scraped_ticks"}."""
        pids = self.raind_pids()

        def ticks():
            return sum(cpu_ticks(p) or 0 for p in pids)  # raind's own, not its children's

        log(f"scraper CPU: {seconds:g} s idle, then {seconds:g} s scraped "
            f"{1 / interval_s:g} rounds a second")
        t0 = ticks()
        time.sleep(seconds)
        t1 = ticks()
        scraper = Scraper([int(n.ready["http_port"]) for n in self.cluster.nodes], interval_s,
                          jobs=[job])
        scraper.start()
        time.sleep(seconds)
        stats = scraper.stop()
        t2 = ticks()
        rounds = max(stats["rounds"], 1)
        ms = max(0, (t2 - t1) - (t1 - t0)) * 1000 / CLK_TCK / rounds
        log(f"scraper CPU: {ms:.1f} ms of raind CPU a round, {stats['cpu_s'] * 1000 / rounds:.1f} "
            f"ms of the scraper's own ({rounds} rounds)")
        return {"ms_per_round": ms, "rounds": rounds, "idle_ticks": t1 - t0,
                "scraped_ticks": t2 - t1, "errors": stats["errors"],
                "client_ms_per_round": stats["cpu_s"] * 1000 / rounds}

    def run_job(self, label, python_filter, exactly_once, rate=None, scrape_hz=0):
        a = self.args
        node1 = self.cluster.nodes[0]
        self.job_seq = getattr(self, "job_seq", 0) + 1
        dest = f"out-{self.job_seq}"
        cmd = self.job_argv(python_filter, exactly_once, dest, rate)
        self.commands.append((label, self.display(shlex.join(["rainctl", "--node", node1.addr]
                                                             + node1.ctl_flags + cmd))))
        row = {"config": label, "kind": "cluster", "python": python_filter, "eo": exactly_once,
               "curve": self.curve, "rate": rate, "dest": dest, "seconds": None,
               "tuples_per_s": None, "cpu_s_per_m": None, "p50_ms": None, "p99_ms": None,
               "output": "-", "state": None, "runs": 1}
        self.rows.append(row)
        if not self.wait_reaped():
            self.notes.append(f"{label}: raind still had children before the submit")
        scraper = None
        if scrape_hz:
            scraper = Scraper([int(n.ready["http_port"]) for n in self.cluster.nodes],
                              interval_s=1 / scrape_hz)
            scraper.start()
        cpu_before = self.cluster_cpu_ticks()
        submit_start = time.monotonic()
        log(f"{label}: {shlex.join(cmd)}")
        reply = self.rainctl(node1, *cmd, timeout_ms=120000)
        job = find_job_id(reply)
        if job is None:
            row["state"] = "submit failed"
            why = self.last_error if reply is None else f"the reply names no job: {reply!r:.200}"
            self.notes.append(f"{label}: submit failed: {why}")
            log(f"{label}: submit failed: {why}")
            return row
        status = None
        deadline = submit_start + a.job_timeout
        while time.monotonic() < deadline:
            status = job_entry(self.rainctl(node1, "job", "status", job), job)
            if status and status.get("state") in FINAL_STATES:
                break
            time.sleep(POLL_S)
        wall = time.monotonic() - submit_start
        if scraper:
            row["scraper"] = scraper.stop()
        if not status or status.get("state") not in FINAL_STATES:
            self.rainctl(node1, "job", "cancel", job)
            row["state"] = "timeout"
            self.notes.append(f"{label}: job {job} not finished after {a.job_timeout:g} s "
                              f"(cancelled); last status: {json.dumps(status)[:300]}")
            log(f"{label}: timeout")
            return row
        reaped = self.wait_reaped()
        cpu_after = self.cluster_cpu_ticks()
        row["state"] = status["state"]
        row["job"] = job
        row["status"] = status
        if status["state"] != "done":
            self.notes.append(f"{label}: job {job} {status['state']}: {status.get('reason')}")
            log(f"{label}: {status['state']}: {status.get('reason')}")
            return row
        elapsed_ms = status.get("elapsed_ms")
        seconds = elapsed_ms / 1000 if elapsed_ms else wall
        if not elapsed_ms:
            self.notes.append(f"{label}: no elapsed_ms in the job status; client wall time used")
        row["seconds"] = seconds
        row["wall_s"] = wall
        row["tuples_per_s"] = a.events / seconds
        if cpu_before is not None and cpu_after is not None:
            row["cpu_s_per_m"] = (cpu_after - cpu_before) / CLK_TCK / (a.events / 1e6)
        if not reaped:
            self.notes.append(f"{label}: operator processes still running 10 s after the job "
                              "ended; their CPU is missing")
        for key, field in (("p50_ms", "latency_p50_us"), ("p99_ms", "latency_p99_us")):
            if status.get(field) is not None:
                row[key] = status[field] / 1000
        row["duplicates"] = status.get("duplicates")
        if status.get("source_tuples") not in (None, a.events):
            self.notes.append(f"{label}: source_tuples {status['source_tuples']:,} "
                              f"(input has {a.events:,} lines)")
        log(f"{label}: done in {seconds:.2f} s ({row['tuples_per_s'] / 1e6:.2f} M tuples/s, "
            f"CPU {fmt(row['cpu_s_per_m'], 2)} s/M, p50 {fmt(row['p50_ms'], 1)} ms, "
            f"p99 {fmt(row['p99_ms'], 1)} ms)")
        row["output"] = self.check_output(node1, label, dest, exactly_once)
        return row

    def check_output(self, node, label, dest, exactly_once):
        got = os.path.join(self.files, f"{dest}.out")
        if self.rainctl(node, "get", dest, got, timeout_ms=600000) is None:
            self.notes.append(f"{label}: rainctl get {dest} failed")
            return "get failed"
        lines, digest = sorted_copy(got, got + ".sorted")
        os.unlink(got)
        if digest == self.reference_digest:
            os.unlink(got + ".sorted")
            return "equal"
        want = self.reference_out + ".sorted"
        missing = count_lines(["comm", "-23", want, got + ".sorted"])
        extra = count_lines(["comm", "-13", want, got + ".sorted"])
        os.unlink(got + ".sorted")
        what = f"DIFFERS ({lines:,} lines: {missing:,} missing, {extra:,} extra)"
        self.notes.append(f"{label}: output {what} vs the awk reference "
                          f"({self.reference_lines:,} lines)"
                          + ("" if exactly_once else "; exactly-once was off"))
        return what

    def run_cluster(self):
        a = self.args
        configs = [("RainStorm EO on, C++", False, True),
                   ("RainStorm EO off, C++", False, False),
                   ("RainStorm EO on, Python filter", True, True),
                   ("RainStorm EO off, Python filter", True, False)]
        if a.only:
            configs = [c for c in configs if a.only in c[0]]
        # With both clusters, the C++ configs also run in plain text, each right after its
        # CurveZMQ run (interleaved, so a drift of the machine's speed hits both alike).
        plain = [(f"{label}, plain text", py, eo) for label, py, eo in configs if not py]
        per_config = {c[0]: [] for c in configs + plain}
        main = a.curves[-1]
        for r in range(a.job_runs):
            for label, py, eo in configs:
                tag = label if a.job_runs == 1 else f"{label} (run {r + 1})"
                self.use(main)
                if main == "off":
                    tag += ", plain text"
                per_config[label].append(self.run_job(tag, py, eo))
                if "off" in self.clusters and main != "off" and not py:
                    self.use("off")
                    ptag = f"{label}, plain text"
                    per_config[ptag].append(self.run_job(
                        ptag if a.job_runs == 1 else f"{ptag} (run {r + 1})", py, eo))
                    self.use(main)
        # Several runs: keep every row, then one median row per config.
        if a.job_runs > 1:
            for label, _, _ in configs + (plain if len(self.clusters) > 1 else []):
                done = [x for x in per_config[label] if x["state"] == "done"]
                for x in per_config[label]:
                    x["kind"] = "cluster-run"
                if done:
                    m = sorted(done, key=lambda x: x["seconds"])[len(done) // 2]
                    self.rows.append(dict(m, config=f"{label} (median of {len(done)})",
                                          kind="cluster", runs=len(done)))
        self.use(main)
        # The cost of watching: exactly-once C++ runs with and without a scraper (every
        # node's /metrics and the console's JSON, once a second, then 10 times a second to
        # magnify its cost above the noise), in pairs whose order alternates (ABBA), so a drift
        # of the machine over the runs does not count as a cost.
        if a.scrape_pairs and configs and not configs[0][1]:
            label, py, eo = configs[0]
            row = {}
            for hz in (1, 10):
                for r in range(a.scrape_pairs):
                    for scrape in ((False, True) if r % 2 == 0 else (True, False)):
                        what = f"scraped {hz}/s" if scrape else "not scraped"
                        row = self.run_job(f"{label}, {what} (pair {r + 1} of {hz}/s)", py, eo,
                                           scrape_hz=hz if scrape else 0)
                        row["kind"] = "scraped" if scrape else "unscraped"
                        row["pair"] = (hz, r)
            if row.get("job"):
                self.scrape_cpu = self.measure_scrape_cpu(row["job"])
        # Latency at half the maximum rate: exactly-once C++ (the target), or every config.
        latency = configs if a.latency_all else configs[:1]
        if a.no_latency:
            latency = []
        for label, py, eo in latency:
            best = self.best(per_config[label])
            if best is None:
                self.notes.append(f"latency run of {label} skipped: its job did not finish")
                continue
            half = best["tuples_per_s"] / 2
            self.run_job(f"{label}, --rate {int(half):,} (half)", py, eo,
                         rate=half)["kind"] = "latency"

    @staticmethod
    def best(rows):
        done = [x for x in rows if x["state"] == "done"]
        return sorted(done, key=lambda x: x["seconds"])[len(done) // 2] if done else None

    # --- the run and the report -------------------------------------------------------------

    def run(self):
        started = time.monotonic()
        self.machine_before = machine_line(self.root)
        log(self.machine_before)
        self.make_events()
        self.run_references()
        if not self.args.references_only:
            for curve in self.args.curves:
                self.start_cluster(curve)
            self.run_cluster()
        report(self, time.monotonic() - started)

    def cleanup(self):
        for cluster in self.clusters.values():
            cluster.down()
        for p in self.children:
            if p.poll() is None:
                p.kill()
                p.wait()
        if not self.args.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            log(f"kept data dirs in {self.root}")

def find_job_id(reply):
    """The job id of a job.submit reply ({job, tasks}); None when there is none."""
    if isinstance(reply, dict):
        job = reply.get("job")
        if isinstance(job, (str, int)) and str(job):
            return str(job)
        if isinstance(job, dict):  # a job entry rather than an id
            return find_job_id(job)
        text = reply.get("text")
        if isinstance(text, str):
            m = re.search(r"\bjob\W+([\w.:-]+)", text)
            return m.group(1) if m else None
    return None


def job_entry(reply, job):
    """The job's status map from a job.status reply (also accepted: a job.list reply)."""
    if not isinstance(reply, dict):
        return None
    if "state" in reply:
        return reply
    for key in ("job", "status"):
        if isinstance(reply.get(key), dict) and "state" in reply[key]:
            return reply[key]
    for entry in reply.get("jobs", []) or []:
        if isinstance(entry, dict) and str(entry.get("job")) == job:
            return entry
    return None


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build",
                   help="build dir holding daemon/raind, ctl/rainctl, operators/builtin/, "
                        "tests/bench/ (default build)")
    p.add_argument("--events", type=int, help="input events (default 10000000; --quick 1000000)")
    p.add_argument("--quick", action="store_true", help="1 M events, single runs")
    p.add_argument("--references-only", action="store_true",
                   help="only the awk and pipe-chain references (no cluster)")
    p.add_argument("--ref-runs", type=int, help="runs of each reference (default 3; --quick 1)")
    p.add_argument("--job-runs", type=int, default=1, help="runs of each cluster job (default 1)")
    p.add_argument("--latency-all", action="store_true",
                   help="a half-rate latency run for every config, not only exactly-once C++")
    p.add_argument("--nodes", type=int, default=3, help="cluster size (default 3)")
    p.add_argument("--tasks", type=int, default=2, help="tasks per stage (default 2)")
    p.add_argument("--seed", type=int, default=1, help="gen_events seed (default 1)")
    p.add_argument("--job-timeout", type=float, default=600.0,
                   help="seconds a job may take before it is cancelled (default 600)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra raind setting for every node, repeatable")
    p.add_argument("--curve", choices=("both", "on", "off"), default="both",
                   help="both (default): a CurveZMQ cluster and a plain-text one side by side "
                        "(the C++ configs run on both); on / off: one cluster of that kind")
    p.add_argument("--tmp", default="/tmp", help="where the temporary dir goes (default /tmp)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary dir (logs, outputs) and submit the jobs with --keep "
                        "(their task logs and HyDFS checkpoints stay)")
    p.add_argument("--only", metavar="TEXT",
                   help="only the cluster configs whose label contains TEXT (for profiling)")
    p.add_argument("--no-latency", action="store_true", help="no half-rate latency run")
    p.add_argument("--scrape-pairs", type=non_negative, default=4,
                   help="pairs of exactly-once C++ runs without and with a scraper polling "
                        "every node's /metrics and the console's JSON each second, in "
                        "alternating order (default 4; 0: none)")
    a = p.parse_args()
    a.curves = {"both": ["off", "on"], "on": ["on"], "off": ["off"]}[a.curve]
    if a.events is None:
        a.events = 1_000_000 if a.quick else 10_000_000
    if a.ref_runs is None:
        a.ref_runs = 1 if a.quick else 3
    if a.events < 1 or a.ref_runs < 1 or a.job_runs < 1 or a.nodes < 1 or a.tasks < 1:
        p.error("--events, --ref-runs, --job-runs, --nodes and --tasks must be at least 1")
    return a


def main():
    args = parse_args()
    bench = StreamBench(args)
    # SIGTERM/SIGINT: unwind through cleanup so no daemon or operator is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        bench.run()
        if bench.broken:
            log("ERROR: a job did not finish or an exactly-once output differs (see Notes)")
            return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as e:
        log(f"ERROR: {e}")
        return 1
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
