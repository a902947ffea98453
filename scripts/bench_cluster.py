"""Local raind clusters for the benchmarks: processes, logs, keys, convergence, and the small
helpers every bench shares (progress log, tables, the machine line). Imported by
bench_membership.py, bench_hydfs.py, bench_stream.py, bench_recovery.py and bench_grep.py."""

import argparse
import ctypes
import datetime
import json
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1



def parse_json_reply(text):
    """rainctl --json prints one JSON document per line; the last one that parses, or None."""
    doc = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
    if doc is None and text.strip():
        try:
            doc = json.loads(text)
        except ValueError:
            return {"text": text}
    return doc if doc is not None else {}


class JsonCtl:
    """`rainctl(node, *cmd)` for a bench with `rainctl_bin`: one rainctl --json command through
    `node` (with its cluster's key flags); the parsed reply, or None and `last_error` set (with
    check: raises)."""

    last_error = None

    def rainctl(self, node, *cmd, timeout_ms=10000, check=False):
        argv = [self.rainctl_bin, "--node", node.addr, "--timeout", str(timeout_ms), "--json"]
        argv += node.ctl_flags
        r = subprocess.run(argv + list(cmd), capture_output=True, text=True)
        if r.returncode != 0:
            self.last_error = (f"rainctl {shlex.join(cmd[:2])} exited {r.returncode}: "
                               + (r.stderr.strip() or r.stdout.strip())[:300])
            if check:
                raise RuntimeError(f"{self.last_error} (via {node.name})")
            return None
        return parse_json_reply(r.stdout)


def build_dir(repo, build):
    """A bench's --build: absolute, or relative to the repo's root."""
    return os.path.abspath(build if os.path.isabs(build) else os.path.join(repo, build))


def positive(text):
    """argparse type: an integer above 0."""
    n = int(text)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return n


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def die_with_parent():
    """preexec_fn: the child gets SIGKILL if the benchmark dies, so no daemon outlives it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def cpu_ticks(pid):
    """utime + stime of pid in clock ticks, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    except (OSError, IndexError, ValueError):
        return None


def vm_hwm_kib(pid):
    """The peak RSS of pid in KiB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_hwm(pid):
    """Resets the peak RSS of pid (Linux >= 4.0); False when not possible."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def wait_until(predicate, timeout_s, what, interval_s=0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g}s")
        time.sleep(interval_s)


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1 right now (serf binds both)."""
    for _ in range(100):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def fmt_ms(v):
    return "-" if v is None else f"{v:.0f}"


def median(xs):
    return statistics.median(xs) if xs else None


def print_table(title, header, rows, notes=()):
    print(f"\n### {title}\n")
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    for n in notes:
        print(f"\n{n}")
    sys.stdout.flush()


def print_run_header(what, extra, command, machine_before):
    """The first lines of every bench's report: title (with date, CPUs and `extra`), the command,
    the machine before the run (machine_line) and the load average at the end."""
    print(f"## {what} benchmark ({time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs, "
          f"{extra})")
    print(f"\ncommand: {command}")
    print(f"before the run: {machine_before}")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def machine_line(tmp_dir, mib=256):
    """One line on the machine, printed beside a run: cores, load average, and the disk's write
    rate (MiB/s of `dd bs=1M conv=fsync` of `mib` MiB into tmp_dir, the file removed after)."""
    path = os.path.join(tmp_dir, "disk-rate.probe")
    rate = None
    try:
        start = time.monotonic()
        subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}",
                        "conv=fsync", "status=none"], check=True)
        rate = mib / (time.monotonic() - start)
    except (OSError, subprocess.CalledProcessError):
        pass
    finally:
        if os.path.exists(path):
            os.unlink(path)
    load = os.getloadavg()
    disk = "unknown" if rate is None else f"{rate:.0f} MiB/s"
    return (f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
            f"{load[2]:.2f}, disk {disk} (dd {mib} MiB bs=1M conv=fsync in {tmp_dir})")


# --- raind ------------------------------------------------------------------------------------

LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) \w membership event=(\w+) member=(\S+)")


def log_time_ms(stamp):
    # spdlog writes local time; the daemons share this process's time zone.
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").timestamp() * 1000


class LogTail:
    """Reads the membership events appended to one raind.log since the last call."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = ""

    def read(self):
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() < self.offset:  # rotated or truncated
                    self.offset = 0
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except FileNotFoundError:
            return []
        data = self.partial + data
        lines = data.split("\n")
        self.partial = lines.pop()
        events = []
        for line in lines:
            m = LOG_RE.match(line)
            if m:
                events.append((log_time_ms(m.group(1)), m.group(2), m.group(3)))
        return events


class Raind:
    def __init__(self, bench, name, data_dir):
        self.bench = bench
        self.name = name
        self.dir = data_dir
        self.proc = None
        self.ready = {}
        self.self_id = None
        # rainctl's flags for this node: its cluster's admin key, or --insecure (plain text).
        self.ctl_flags = []
        self.tail = LogTail(os.path.join(data_dir, "raind.log"))
        self.events = []  # (ms, event, member) seen in this node's log

    @property
    def id(self):
        """The current member id: a node expelled by a false failure rejoins under a new one."""
        return self.self_id or self.ready["id"]

    @property
    def addr(self):
        return f"{self.ready['host']}:{self.ready['port']}"

    @property
    def pid(self):
        return self.proc.pid

    def start(self, introducer=None, sets=()):
        os.makedirs(self.dir, exist_ok=True)
        ready_path = os.path.join(self.dir, "ready")
        if os.path.exists(ready_path):
            os.unlink(ready_path)
        cmd = [self.bench.raind, "--host", "127.0.0.1", "--port", "0", "--data-dir", self.dir]
        if introducer:
            cmd += ["--introducer", introducer]
        for kv in sets:
            cmd += ["--set", kv]
        out = open(os.path.join(self.dir, "raind.out"), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     start_new_session=True, preexec_fn=die_with_parent)
        out.close()
        self.bench.children.append(self.proc)

    def wait_ready(self, timeout_s=15):
        ready_path = os.path.join(self.dir, "ready")

        def check():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before ready "
                                   f"(see {self.dir}/raind.out)")
            try:
                with open(ready_path) as f:
                    kv = dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l)
            except FileNotFoundError:
                return None
            return kv if kv.get("pid") == str(self.proc.pid) else None

        self.ready = wait_until(check, timeout_s, f"{self.name} ready", 0.02)
        self.self_id = None

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def poll_log(self):
        new = self.tail.read()
        self.events.extend(new)
        return new


def make_keys(bench, keys_dir):
    """A new cluster's keys (rainctl keys init) in keys_dir; rainctl runs of this process use
    its admin key ($RAIN_KEY). Returns keys_dir."""
    subprocess.run([bench.rainctl_bin, "keys", "init", keys_dir], check=True,
                   stdout=subprocess.DEVNULL)
    os.environ["RAIN_KEY"] = os.path.join(keys_dir, "admin.key")
    return keys_dir


class RaindCluster:
    def __init__(self, bench, root, n, sets):
        self.bench = bench
        self.nodes = [Raind(bench, f"node{i}", os.path.join(root, f"node{i}"))
                      for i in range(1, n + 1)]
        self.sets = list(sets)
        if "insecure=true" in self.sets:
            flags = ["--insecure"]
        else:
            keys = make_keys(bench, os.path.join(root, "keys"))
            self.sets.insert(0, "keys_dir=" + keys)
            flags = ["--key", os.path.join(keys, "admin.key")]
        for node in self.nodes:
            node.ctl_flags = flags

    def up(self, staggered=False):
        """Starts every node; with staggered, each joins only once the previous ones converged."""
        first = self.nodes[0]
        first.start(sets=self.sets)
        first.wait_ready()
        for node in self.nodes[1:]:
            node.start(first.addr, self.sets)
            if staggered:
                node.wait_ready()
                self.wait_converged()
        for node in self.nodes[1:]:
            node.wait_ready()
        self.wait_converged()

    def alive_nodes(self):
        return [n for n in self.nodes if n.alive()]

    def wait_converged(self, timeout_s=30):
        """Until every running node is in the cluster and lists every running node's current
        id as alive."""
        def check():
            nodes = self.alive_nodes()
            views = [self.bench.rainctl(node, "list_mem") for node in nodes]
            if any(v is None or not v.get("in_cluster") for v in views):
                return False
            for node, view in zip(nodes, views):
                node.self_id = view["self"]
            want = {v["self"] for v in views}
            for view in views:
                alive = {m["id"] for m in view.get("members", []) if m.get("state") == "alive"}
                if not want <= alive:
                    return False
            return True
        try:
            wait_until(check, timeout_s, "membership convergence", 0.1)
        except TimeoutError as e:
            raise TimeoutError(f"{e} ({self.describe_views()})") from None

    def describe_views(self):
        """Who sees how many members alive, for the error message of a failed convergence."""
        parts = []
        for node in self.alive_nodes():
            view = self.bench.rainctl(node, "list_mem")
            if view is None:
                parts.append(f"{node.name}: no answer")
                continue
            alive = sum(1 for m in view.get("members", []) if m.get("state") == "alive")
            parts.append(f"{node.name} sees {alive} alive")
        return ", ".join(parts)

    def restart(self, node):
        introducer = next(n for n in self.alive_nodes() if n is not node)
        node.start(introducer.addr, self.sets)
        node.wait_ready()

    def down(self):
        for node in self.nodes:
            if node.alive():
                node.proc.terminate()
        deadline = time.monotonic() + 5
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()

    def poll_logs(self):
        for node in self.nodes:
            node.poll_log()


def start_cluster(bench, tag, root, n, sets, attempts=3):
    """A converged cluster of `n` raind, and how many starts before it did not converge. The
    first start is concurrent (every node joins at once); retries are fresh clusters in fresh
    dirs (ROOT-tryN) whose nodes join one at a time (the failed one's logs stay for a look)."""
    for attempt in range(1, attempts + 1):
        log(f"{tag}: starting {n} nodes" +
            (f" (attempt {attempt}, staggered joins)" if attempt > 1 else ""))
        cluster = RaindCluster(bench, f"{root}-try{attempt}", n, sets)
        try:
            cluster.up(staggered=attempt > 1)
            return cluster, attempt - 1
        except (RuntimeError, TimeoutError) as e:
            log(f"{tag}: cluster start failed: {e}")
            cluster.down()
            if attempt == attempts:
                raise
